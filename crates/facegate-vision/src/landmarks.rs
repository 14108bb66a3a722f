//! 106-point facial landmarks (insightface 2d106det) and the measures derived from them.

use std::path::Path;

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::geometry::{Affine, BBox, PixelNorm, Point, to_tensor, warp_affine};
use crate::runtime::{Model, RuntimeOptions};

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct LandmarkSpec {
    pub file: String,
    pub input_size: u32,
    pub norm: PixelNorm,
}

#[derive(Debug)]
pub struct Landmarker {
    spec: LandmarkSpec,
    model: Model,
}

/// The crop the landmark model sees: a square of side 1.5 x the box's longer side around its centre.
pub fn landmark_crop_transform(bbox: &BBox, input_size: u32) -> Affine {
    let c = bbox.center();
    let side = 1.5 * bbox.width().max(bbox.height()).max(1.0);
    let s = f64::from(input_size) / f64::from(side);
    let half = f64::from(input_size) / 2.0;
    Affine::scale_translate(s, half - f64::from(c.x) * s, half - f64::from(c.y) * s)
}

impl Landmarker {
    pub fn load(spec: LandmarkSpec, dir: &Path, library: &Path, opts: &RuntimeOptions) -> Result<Self> {
        let model = Model::load(&dir.join(&spec.file), library, opts)?;
        Ok(Self { spec, model })
    }

    /// The 106 points of the face in `bbox`, in image coordinates.
    pub fn landmarks(&self, img: &RgbImage, bbox: &BBox) -> Result<Vec<Point>> {
        let size = self.spec.input_size;
        let m = landmark_crop_transform(bbox, size);
        let inverse = m
            .invert()
            .ok_or_else(|| self.model.bad_output("degenerate face box"))?;
        let crop = warp_affine(img, &inverse, size, size);
        let mut tensor = vec![0f32; (size * size * 3) as usize];
        to_tensor(&crop, &self.spec.norm, &mut tensor);
        let s = size as usize;
        let shape = if self.spec.norm.nhwc {
            [1, s, s, 3]
        } else {
            [1, 3, s, s]
        };
        let outputs = self.model.run(&shape, &tensor)?;
        let out = outputs
            .first()
            .ok_or_else(|| self.model.bad_output("no output"))?;
        if out.data.len() != 212 {
            return Err(self
                .model
                .bad_output(format!("expected 212 values, got {}", out.data.len())));
        }
        let half = size as f32 / 2.0;
        Ok(out
            .data
            .chunks_exact(2)
            .map(|p| inverse.apply(Point::new((p[0] + 1.0) * half, (p[1] + 1.0) * half)))
            .collect())
    }
}
