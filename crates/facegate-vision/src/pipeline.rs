//! The face pipeline as one object: a loaded pack that turns images into faces.

use std::path::{Path, PathBuf};

use image::RgbImage;
use serde::Serialize;

use crate::detect::{Detection, Detector, detect_with_padding};
use crate::embed::{Embedder, Embedding, align};
use crate::error::{Result, VisionError};
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
        })
    }

    pub fn manifest(&self) -> &PackManifest {
        &self.manifest
    }

    pub fn has_landmarks(&self) -> bool {
        self.landmarker.is_some()
    }

    /// All faces, largest first. Tight crops with no face found are retried with a border.
    pub fn detect(&self, img: &RgbImage) -> Result<Vec<Detection>> {
        let mut dets = detect_with_padding(img, |i| self.detector.detect(i))?;
        dets.sort_by(|a, b| b.bbox.area().total_cmp(&a.bbox.area()));
        Ok(dets)
    }

    /// Aligned 112x112 crop of a detection.
    pub fn align(&self, img: &RgbImage, det: &Detection) -> Result<RgbImage> {
        align(img, det).ok_or_else(|| VisionError::Runtime("degenerate keypoints".into()))
    }

    /// Embeddings of aligned crops, in one batch.
    pub fn embed(&self, aligned: &[&RgbImage]) -> Result<Vec<Embedding>> {
        self.embedder.embed(aligned)
    }

    /// 106 landmarks of a detection, if the pack has a landmark model.
    pub fn landmarks(&self, img: &RgbImage, det: &Detection) -> Result<Option<Vec<crate::geometry::Point>>> {
        match &self.landmarker {
            Some(l) => l.landmarks(img, &det.bbox).map(Some),
            None => Ok(None),
        }
    }

    /// Detects, aligns, measures and (as asked) embeds every face, largest first.
    pub fn analyze(&self, img: &RgbImage, opts: &AnalyzeOptions) -> Result<Vec<Face>> {
        let mut dets = self.detect(img)?;
        if let Some(n) = opts.max_faces {
            dets.truncate(n);
        }
        let mut aligned = Vec::with_capacity(dets.len());
        for d in &dets {
            aligned.push(self.align(img, d)?);
        }
        let embeddings = if opts.embed {
            self.embed(&aligned.iter().collect::<Vec<_>>())?
                .into_iter()
                .map(Some)
                .collect()
        } else {
            vec![None; dets.len()]
        };
        let mut faces = Vec::with_capacity(dets.len());
        for ((det, crop), embedding) in dets.into_iter().zip(&aligned).zip(embeddings) {
            let landmarks = if opts.landmarks {
                self.landmarks(img, &det)?
            } else {
                None
            };
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
