//! The face pipeline as one object: a loaded pack that turns images into faces.

use std::path::{Path, PathBuf};

use image::RgbImage;
use serde::Serialize;

use crate::detect::{Detection, Detector, detect_with_padding};
use crate::embed::{Embedder, Embedding, align};
use crate::error::{Result, VisionError};
use crate::geometry::Point;
use crate::landmarks::Landmarker;
use crate::pack::{PackManifest, check_installed, pack_dir};
use crate::quality::{Pose, Quality, measure, pose_from_keypoints};
use crate::runtime::{RuntimeOptions, locate_library};

/// What to compute for each face.
#[derive(Debug, Clone, Copy)]
pub struct AnalyzeOptions {
    pub embed: bool,
    pub landmarks: bool,
    /// Keep only the largest faces (by box area).
    pub max_faces: Option<usize>,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        Self {
            embed: true,
            landmarks: false,
            max_faces: None,
        }
    }
}

/// Accuracy levers beyond insightface's own pipeline (issue 18), each measured in docs/accuracy.md.
/// [`FacePipeline::analyze`] uses the pipeline's own set ([`FacePipeline::levers`]); a caller that
/// wants another (enrolment and 1:N asking for `flip`) passes it to [`FacePipeline::analyze_with`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Levers {
    /// Embed the aligned crop and its mirror image and average the two: a second embedding per face.
    pub flip: bool,
    /// Move the five alignment points this share (0..1) of the way to the points read off the 106
    /// landmarks ([`crate::landmarks::alignment_points`]); 0 = the detector's points. Needs a landmark
    /// model (ignored without one), applies to faces with eyes at least [`LANDMARK_ALIGN_MIN_EYE_PX`]
    /// apart, and costs a landmark run per embedded face unless landmarks are asked for anyway.
    pub landmark_alignment: f32,
    /// When the largest face is small in the detector's input, fills it, or is found with a low
    /// score, detect again on a crop around it (the face then takes 40% of the detector's input) and
    /// take the keypoints found there.
    pub second_scale: bool,
}

/// Landmark-refined alignment applies only to faces whose eyes are at least this far apart in the
/// source (the enrolment bar's minimum): on smaller faces the landmark model's 192-pixel crop is an
/// upsampling and its points are less exact than the detector's (docs/accuracy.md).
pub const LANDMARK_ALIGN_MIN_EYE_PX: f32 = 40.0;

/// Below this side (in the detector's input pixels) a face counts as small for `second_scale`.
pub const SECOND_SCALE_MIN_SIDE: f32 = 96.0;
/// Above this share of the detector's input side a face counts as filling the frame for
/// `second_scale` (a tight crop: detectors place keypoints worse on faces larger than they saw in training).
pub const SECOND_SCALE_MAX_SHARE: f32 = 0.6;
/// A score below the detector's threshold plus this margin counts as low for `second_scale`.
pub const SECOND_SCALE_LOW_SCORE_MARGIN: f32 = 0.15;
/// The crop of the second detection: this many times the face box's longer side, centred on it.
pub const SECOND_SCALE_CROP: f32 = 2.5;

/// A face with everything the pipeline measured about it.
#[derive(Debug, Clone, Serialize)]
pub struct Face {
    pub detection: Detection,
    pub pose: Pose,
    pub quality: Quality,
    #[serde(skip)]
    pub embedding: Option<Embedding>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub landmarks: Option<Vec<crate::geometry::Point>>,
    /// Eye and mouth measures, when landmarks were computed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expression: Option<crate::measures::Expression>,
}

/// A loaded model pack.
#[derive(Debug)]
pub struct FacePipeline {
    manifest: PackManifest,
    detector: Detector,
    embedder: Embedder,
    landmarker: Option<Landmarker>,
    levers: Levers,
}

impl FacePipeline {
    /// Loads `pack` from `models_dir`, with the ONNX Runtime library found by [`locate_library`].
    pub fn load(models_dir: &Path, pack: &str, opts: &RuntimeOptions) -> Result<FacePipeline> {
        Self::load_manifest(models_dir, PackManifest::builtin(pack)?, opts)
    }

    /// Loads a pack from a manifest the caller may have adjusted (e.g. the detector's input size).
    pub fn load_manifest(
        models_dir: &Path,
        manifest: PackManifest,
        opts: &RuntimeOptions,
    ) -> Result<FacePipeline> {
        let pack = manifest.name.clone();
        let dir = pack_dir(models_dir, &pack);
        check_installed(&manifest, &dir)?;
        let library: PathBuf = locate_library(opts.library.as_deref(), models_dir).ok_or_else(|| {
            VisionError::Runtime(format!(
                "the ONNX Runtime library is not installed in {}: run `facegate models fetch`",
                models_dir.display()
            ))
        })?;
        let missing = |what: &str| VisionError::Pack(format!("pack {pack} has no {what}"));
        let detector = Detector::load(
            manifest.detector.clone().ok_or_else(|| missing("detector"))?,
            &dir,
            &library,
            opts,
        )?;
        let embedder = Embedder::load(
            manifest.embedder.clone().ok_or_else(|| missing("embedder"))?,
            &dir,
            &library,
            opts,
        )?;
        let landmarker = match &manifest.landmarks {
            Some(spec) => Some(Landmarker::load(spec.clone(), &dir, &library, opts)?),
            None => None,
        };
        Ok(FacePipeline {
            manifest,
            detector,
            embedder,
            landmarker,
            levers: Levers::default(),
        })
    }

    pub fn manifest(&self) -> &PackManifest {
        &self.manifest
    }

    pub fn has_landmarks(&self) -> bool {
        self.landmarker.is_some()
    }

    /// The levers [`analyze`](Self::analyze) uses.
    pub fn levers(&self) -> Levers {
        self.levers
    }

    /// Sets the levers [`analyze`](Self::analyze) uses (e.g. from `facegate eval` flags).
    pub fn set_levers(&mut self, levers: Levers) {
        self.levers = levers;
    }

    /// [`detect`](Self::detect), then, when the largest face is small in the detector's input, fills
    /// most of it, or has a low score, a second detection on a square crop of [`SECOND_SCALE_CROP`] times its size around
    /// it (black outside the image), whose best overlapping face replaces the first one.
    pub fn detect_two_scale(&self, img: &RgbImage) -> Result<Vec<Detection>> {
        let mut dets = self.detect(img)?;
        let Some(main) = dets.first().cloned() else {
            return Ok(dets);
        };
        let spec = self.detector.spec();
        let fit = spec.fit_size.unwrap_or(spec.input_size).min(spec.input_size) as f32;
        let canvas_scale = fit / img.width().max(img.height()).max(1) as f32;
        let side = main.bbox.width().max(main.bbox.height());
        let small = side * canvas_scale < SECOND_SCALE_MIN_SIDE;
        let large = side * canvas_scale > SECOND_SCALE_MAX_SHARE * fit;
        let low = main.score < spec.score_threshold + SECOND_SCALE_LOW_SCORE_MARGIN;
        if !(small || large || low) || side < 4.0 {
            return Ok(dets);
        }
        if let Some(better) = self.detect_around(img, &main)? {
            dets[0] = better;
        }
        Ok(dets)
    }

    /// All faces, largest first. Tight crops with no face found are retried with a border.
    pub fn detect(&self, img: &RgbImage) -> Result<Vec<Detection>> {
        let mut dets = detect_with_padding(img, |i| self.detector.detect(i))?;
        dets.sort_by(|a, b| b.bbox.area().total_cmp(&a.bbox.area()));
        Ok(dets)
    }

    /// The face of `main` detected again on a square crop of [`SECOND_SCALE_CROP`] times its box's
    /// longer side around its centre (source resolution, at most twice the detector's input; black
    /// outside the image): the detection there that overlaps `main` most (IoU > 0.4), in image
    /// coordinates, or `None`.
    pub fn detect_around(&self, img: &RgbImage, main: &Detection) -> Result<Option<Detection>> {
        let spec = self.detector.spec();
        let side = main.bbox.width().max(main.bbox.height());
        if !side.is_finite() || side < 1.0 {
            return Ok(None);
        }
        let full = side * SECOND_SCALE_CROP;
        let crop_side = full.min(2.0 * spec.input_size as f32).max(32.0);
        let scale = crop_side / full;
        let c = main.bbox.center();
        let (x0, y0) = (c.x - full / 2.0, c.y - full / 2.0);
        // Crop pixel (u, v) samples the source at (x0 + u / scale, y0 + v / scale).
        let inverse = crate::geometry::Affine([
            f64::from(1.0 / scale),
            0.0,
            f64::from(x0),
            0.0,
            f64::from(1.0 / scale),
            f64::from(y0),
        ]);
        let n = crop_side.round() as u32;
        let crop = crate::geometry::warp_affine(img, &inverse, n, n);
        let back = |p: Point| Point::new(x0 + p.x / scale, y0 + p.y / scale);
        let best = self
            .detector
            .detect(&crop)?
            .into_iter()
            .map(|d| {
                let (a, b) = (
                    back(Point::new(d.bbox.x1, d.bbox.y1)),
                    back(Point::new(d.bbox.x2, d.bbox.y2)),
                );
                Detection {
                    bbox: crate::geometry::BBox {
                        x1: a.x,
                        y1: a.y,
                        x2: b.x,
                        y2: b.y,
                    },
                    score: d.score,
                    keypoints: d.keypoints.map(back),
                }
            })
            .filter(|d| d.bbox.iou(&main.bbox) > 0.4)
            .max_by(|a, b| a.bbox.iou(&main.bbox).total_cmp(&b.bbox.iou(&main.bbox)));
        Ok(best)
    }

    /// Aligned 112x112 crop of a detection.
    pub fn align(&self, img: &RgbImage, det: &Detection) -> Result<RgbImage> {
        align(img, det).ok_or_else(|| VisionError::Runtime("degenerate keypoints".into()))
    }

    /// Embeddings of aligned crops, in one batch.
    pub fn embed(&self, aligned: &[&RgbImage]) -> Result<Vec<Embedding>> {
        self.embedder.embed(aligned)
    }

    /// Flip-averaged embeddings of aligned crops (each with its mirror image, one batch of 2n).
    pub fn embed_flipped(&self, aligned: &[&RgbImage]) -> Result<Vec<Embedding>> {
        self.embedder.embed_flipped(aligned)
    }

    /// 106 landmarks of a detection, if the pack has a landmark model.
    pub fn landmarks(&self, img: &RgbImage, det: &Detection) -> Result<Option<Vec<crate::geometry::Point>>> {
        match &self.landmarker {
            Some(l) => l.landmarks(img, &det.bbox).map(Some),
            None => Ok(None),
        }
    }

    /// Detects, aligns, measures and (as asked) embeds every face, largest first, with the
    /// pipeline's own [`Levers`].
    pub fn analyze(&self, img: &RgbImage, opts: &AnalyzeOptions) -> Result<Vec<Face>> {
        self.analyze_with(img, opts, &self.levers)
    }

    /// [`analyze`](Self::analyze) with the given levers.
    pub fn analyze_with(&self, img: &RgbImage, opts: &AnalyzeOptions, levers: &Levers) -> Result<Vec<Face>> {
        let mut dets = crate::timed("detect", || {
            if levers.second_scale {
                self.detect_two_scale(img)
            } else {
                self.detect(img)
            }
        })?;
        if let Some(n) = opts.max_faces {
            dets.truncate(n);
        }
        let refine = opts.embed && levers.landmark_alignment > 0.0 && self.landmarker.is_some();
        let mut landmarks = Vec::with_capacity(dets.len());
        for d in &dets {
            landmarks.push(if opts.landmarks || refine {
                crate::timed("landmarks", || self.landmarks(img, d))?
            } else {
                None
            });
        }
        let mut aligned = Vec::with_capacity(dets.len());
        for (d, lm) in dets.iter().zip(&landmarks) {
            let resolved = d.keypoints[0].distance(d.keypoints[1]) >= LANDMARK_ALIGN_MIN_EYE_PX;
            let points = match lm.as_deref().and_then(crate::landmarks::alignment_points) {
                Some(five) if refine && resolved => {
                    crate::landmarks::refine_keypoints(&d.keypoints, &five, levers.landmark_alignment)
                }
                _ => d.keypoints,
            };
            aligned.push(
                crate::embed::align_points(img, &points)
                    .ok_or_else(|| VisionError::Runtime("degenerate keypoints".into()))?,
            );
        }
        let embeddings = if opts.embed {
            let crops = aligned.iter().collect::<Vec<_>>();
            let embedded = crate::timed("embed", || {
                if levers.flip {
                    self.embedder.embed_flipped(&crops)
                } else {
                    self.embed(&crops)
                }
            })?;
            embedded.into_iter().map(Some).collect()
        } else {
            vec![None; dets.len()]
        };
        let mut faces = Vec::with_capacity(dets.len());
        for (((det, crop), embedding), lm) in dets.into_iter().zip(&aligned).zip(embeddings).zip(landmarks) {
            let landmarks = if opts.landmarks { lm } else { None };
            let pose = match &landmarks {
                Some(pts) => {
                    crate::measures::pose_from_landmarks(pts).unwrap_or_else(|| pose_from_keypoints(&det))
                }
                None => pose_from_keypoints(&det),
            };
            let expression = landmarks.as_deref().and_then(crate::measures::expression);
            faces.push(Face {
                quality: measure(&det, crop),
                pose,
                detection: det,
                embedding,
                landmarks,
                expression,
            });
        }
        Ok(faces)
    }

    /// The embedding of the one face in the image: errors when there is none or more than one.
    pub fn embed_single(&self, img: &RgbImage) -> Result<Face> {
        let mut faces = self.analyze(img, &AnalyzeOptions::default())?;
        match faces.len() {
            0 => Err(VisionError::NoFace),
            1 => Ok(faces.remove(0)),
            count => Err(VisionError::MultipleFaces { count }),
        }
    }
}
