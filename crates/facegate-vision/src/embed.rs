//! Face embeddings: align a detected face to the ArcFace template, run the recogniser, L2-normalise.

use std::fmt;
use std::path::Path;

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::detect::Detection;
use crate::error::Result;
use crate::geometry::{Affine, PixelNorm, Point, similarity_transform, to_tensor, warp_affine};
use crate::runtime::{Model, RuntimeOptions};

/// Where the five keypoints land in a 112x112 aligned face (insightface's ArcFace template).
pub const ARCFACE_TEMPLATE: [Point; 5] = [
    Point::new(38.2946, 51.6963),
    Point::new(73.5318, 51.5014),
    Point::new(56.0252, 71.7366),
    Point::new(41.5493, 92.3655),
    Point::new(70.7299, 92.2041),
];

/// Side of the aligned face crop.
pub const ALIGNED_SIZE: u32 = 112;

/// A unit-length face embedding. Its `Debug` shows only the dimension: embeddings are biometric data
/// and must never reach a log.
#[derive(Clone, PartialEq)]
pub struct Embedding(Box<[f32]>);

impl Embedding {
    /// Normalises `raw` to unit length; `None` if it is empty, zero or not finite.
    pub fn normalized(raw: &[f32]) -> Option<Embedding> {
        let norm = raw
            .iter()
            .map(|v| f64::from(*v) * f64::from(*v))
            .sum::<f64>()
            .sqrt();
        if raw.is_empty() || !norm.is_finite() || norm < 1e-12 {
            return None;
        }
        Some(Embedding(
            raw.iter().map(|v| (f64::from(*v) / norm) as f32).collect(),
        ))
    }

    pub fn as_slice(&self) -> &[f32] {
        &self.0
    }

    pub fn dim(&self) -> usize {
        self.0.len()
    }

    /// Cosine similarity in [-1, 1]; 0 when the dimensions differ.
    pub fn cosine(&self, other: &Embedding) -> f32 {
        if self.0.len() != other.0.len() {
            return 0.0;
        }
        self.0
            .iter()
            .zip(other.0.iter())
            .map(|(a, b)| a * b)
            .sum::<f32>()
            .clamp(-1.0, 1.0)
    }
}

impl fmt::Debug for Embedding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Embedding(dim={})", self.0.len())
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct EmbedderSpec {
    pub file: String,
    pub dim: usize,
    pub norm: PixelNorm,
}

/// The transform taking image coordinates to the 112x112 aligned crop.
pub fn alignment_transform(det: &Detection) -> Option<Affine> {
    similarity_transform(&det.keypoints, &ARCFACE_TEMPLATE)
}

/// The 112x112 aligned face crop; `None` when the keypoints are degenerate.
pub fn align(img: &RgbImage, det: &Detection) -> Option<RgbImage> {
    align_points(img, &det.keypoints)
}

/// The 112x112 crop aligning five points (ArcFace order) to the template; `None` when degenerate.
pub fn align_points(img: &RgbImage, points: &[Point; 5]) -> Option<RgbImage> {
    let inverse = similarity_transform(points, &ARCFACE_TEMPLATE)?.invert()?;
    Some(warp_affine(img, &inverse, ALIGNED_SIZE, ALIGNED_SIZE))
}

/// The aligned crop mirrored left to right (column `x` becomes `111 - x`): the input of the second
/// half of a flip-averaged embedding.
pub fn mirror(aligned: &RgbImage) -> RgbImage {
    image::imageops::flip_horizontal(aligned)
}

/// Sums an embedding of a crop and one of its mirror image and normalises: the flip-averaged
/// embedding (`None` if the two cancel out).
pub fn flip_average(plain: &Embedding, mirrored: &Embedding) -> Option<Embedding> {
    if plain.dim() != mirrored.dim() {
        return None;
    }
    let sum: Vec<f32> = plain
        .as_slice()
        .iter()
        .zip(mirrored.as_slice())
        .map(|(a, b)| a + b)
        .collect();
    Embedding::normalized(&sum)
}

#[derive(Debug)]
pub struct Embedder {
    spec: EmbedderSpec,
    model: Model,
}

impl Embedder {
    pub fn load(spec: EmbedderSpec, dir: &Path, library: &Path, opts: &RuntimeOptions) -> Result<Self> {
        let model = Model::load(&dir.join(&spec.file), library, opts)?;
        Ok(Self { spec, model })
    }

    pub fn spec(&self) -> &EmbedderSpec {
        &self.spec
    }

    /// Flip-averaged embeddings of aligned crops: each crop and its mirror image in one batch of
    /// twice the size, each pair summed and normalised.
    pub fn embed_flipped(&self, aligned: &[&RgbImage]) -> Result<Vec<Embedding>> {
        let mirrored: Vec<RgbImage> = aligned.iter().map(|a| mirror(a)).collect();
        let mut batch: Vec<&RgbImage> = aligned.to_vec();
        batch.extend(mirrored.iter());
        let all = self.embed(&batch)?;
        let (plain, flipped) = all.split_at(aligned.len());
        plain
            .iter()
            .zip(flipped)
            .map(|(p, m)| {
                flip_average(p, m).ok_or_else(|| self.model.bad_output("flip embeddings cancel out"))
            })
            .collect()
    }

    /// Embeds aligned 112x112 crops in one batch.
    pub fn embed(&self, aligned: &[&RgbImage]) -> Result<Vec<Embedding>> {
        if aligned.is_empty() {
            return Ok(Vec::new());
        }
        let side = ALIGNED_SIZE as usize;
        let per = side * side * 3;
        let mut tensor = vec![0f32; per * aligned.len()];
        for (chunk, img) in tensor.chunks_exact_mut(per).zip(aligned) {
            if img.width() != ALIGNED_SIZE || img.height() != ALIGNED_SIZE {
                return Err(self
                    .model
                    .bad_output("embedder input must be a 112x112 aligned crop"));
            }
            to_tensor(img, &self.spec.norm, chunk);
        }
        let n = aligned.len();
        let shape = if self.spec.norm.nhwc {
            [n, side, side, 3]
        } else {
            [n, 3, side, side]
        };
        let outputs = self.model.run(&shape, &tensor)?;
        let out = outputs
            .first()
            .ok_or_else(|| self.model.bad_output("no output"))?;
        if out.data.len() != n * self.spec.dim {
            return Err(self.model.bad_output(format!(
                "expected {n} x {} values, got {} (shape {:?})",
                self.spec.dim,
                out.data.len(),
                out.shape
            )));
        }
        out.data
            .chunks_exact(self.spec.dim)
            .map(|v| {
                Embedding::normalized(v).ok_or_else(|| self.model.bad_output("zero or non-finite embedding"))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedding_normalises_and_hides_its_values() {
        let e = Embedding::normalized(&[3.0, 4.0]).unwrap();
        assert!((e.as_slice()[0] - 0.6).abs() < 1e-6);
        assert!((e.cosine(&e) - 1.0).abs() < 1e-6);
        assert_eq!(format!("{e:?}"), "Embedding(dim=2)");
        assert!(Embedding::normalized(&[0.0, 0.0]).is_none());
        assert!(Embedding::normalized(&[f32::NAN, 1.0]).is_none());
    }

    #[test]
    fn template_keypoints_align_to_themselves() {
        let det = Detection {
            bbox: Default::default(),
            score: 1.0,
            keypoints: ARCFACE_TEMPLATE,
        };
        let m = alignment_transform(&det).unwrap();
        for (a, b) in m.0.iter().zip(Affine::IDENTITY.0) {
            assert!((a - b).abs() < 1e-5);
        }
    }
}
