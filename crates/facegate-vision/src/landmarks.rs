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

/// The five alignment points (ArcFace order: eye on the image's left, eye on the image's right, nose
/// tip, mouth corner left, mouth corner right) read off the 106 landmarks: each eye's centre is the
/// mean of its ten contour points (33-42, 87-96), the nose tip is 86, the mouth corners 52 and 61.
/// `None` unless there are exactly 106 finite points.
pub fn alignment_points(points: &[Point]) -> Option<[Point; 5]> {
    if points.len() != 106 || points.iter().any(|p| !p.x.is_finite() || !p.y.is_finite()) {
        return None;
    }
    let mean = |r: std::ops::RangeInclusive<usize>| {
        let n = r.clone().count() as f32;
        let (sx, sy) = r.fold((0.0, 0.0), |(sx, sy), i| (sx + points[i].x, sy + points[i].y));
        Point::new(sx / n, sy / n)
    };
    Some([mean(33..=42), mean(87..=96), points[86], points[52], points[61]])
}

/// Alignment keypoints refined with the landmarks: `(1 - weight) * detector + weight * landmarks`,
/// point by point (`weight` clamped to 0..1; 0 gives the detector's points unchanged).
pub fn refine_keypoints(detector: &[Point; 5], landmarks: &[Point; 5], weight: f32) -> [Point; 5] {
    let w = weight.clamp(0.0, 1.0);
    std::array::from_fn(|i| {
        Point::new(
            detector[i].x + w * (landmarks[i].x - detector[i].x),
            detector[i].y + w * (landmarks[i].y - detector[i].y),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_points_take_eye_centres_nose_and_mouth_corners() {
        let mut pts = vec![Point::new(0.0, 0.0); 106];
        for (i, p) in pts.iter_mut().enumerate().take(43).skip(33) {
            *p = Point::new(10.0 + (i % 2) as f32 * 2.0, 20.0);
        }
        for (i, p) in pts.iter_mut().enumerate().take(97).skip(87) {
            *p = Point::new(40.0, 20.0 + (i % 2) as f32 * 4.0);
        }
        pts[86] = Point::new(25.0, 35.0);
        pts[52] = Point::new(15.0, 50.0);
        pts[61] = Point::new(35.0, 50.0);
        let five = alignment_points(&pts).unwrap();
        assert_eq!(five[0], Point::new(11.0, 20.0));
        assert_eq!(five[1], Point::new(40.0, 22.0));
        assert_eq!(&five[2..], &[pts[86], pts[52], pts[61]]);
        assert!(alignment_points(&pts[..105]).is_none());
        pts[3].x = f32::NAN;
        assert!(alignment_points(&pts).is_none());
    }

    #[test]
    fn refinement_blends_point_by_point() {
        let a = [Point::new(0.0, 0.0); 5];
        let b = [Point::new(10.0, -4.0); 5];
        assert_eq!(refine_keypoints(&a, &b, 0.0), a);
        assert_eq!(refine_keypoints(&a, &b, 1.0), b);
        assert_eq!(refine_keypoints(&a, &b, 0.5)[3], Point::new(5.0, -2.0));
        assert_eq!(refine_keypoints(&a, &b, 7.0), b);
    }
}
