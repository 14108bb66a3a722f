//! Face detectors: SCRFD (insightface) and YuNet (OpenCV Zoo). Both take a letterboxed square and give
//! boxes with five keypoints in ArcFace order: the eye on the image's left, the eye on the image's
//! right, nose tip, mouth corner on the left, mouth corner on the right.

use std::path::Path;

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::geometry::{BBox, Letterbox, PixelNorm, Point};
use crate::runtime::{Model, Output, RuntimeOptions};

/// One face found in an image, in that image's pixel coordinates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    pub bbox: BBox,
    pub score: f32,
    pub keypoints: [Point; 5],
}

impl Detection {
    fn map(&self, scale: f32, dx: f32, dy: f32) -> Detection {
        Detection {
            bbox: self.bbox.map(scale, dx, dy),
            score: self.score,
            keypoints: self
                .keypoints
                .map(|p| Point::new(p.x * scale + dx, p.y * scale + dy)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DetectorKind {
    Scrfd,
    Yunet,
}

/// A detector as a pack manifest describes it.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct DetectorSpec {
    pub kind: DetectorKind,
    pub file: String,
    /// Side of the square the model takes.
    pub input_size: u32,
    /// Side the image's longer edge is scaled to inside that square (defaults to `input_size`). A
    /// smaller value makes close-up faces smaller, for detectors trained on small faces.
    #[serde(default)]
    pub fit_size: Option<u32>,
    pub score_threshold: f32,
    pub nms_iou: f32,
    pub norm: PixelNorm,
}

#[derive(Debug)]
pub struct Detector {
    spec: DetectorSpec,
    model: Model,
}

impl Detector {
    pub fn load(spec: DetectorSpec, dir: &Path, library: &Path, opts: &RuntimeOptions) -> Result<Self> {
        let model = Model::load(&dir.join(&spec.file), library, opts)?;
        Ok(Self { spec, model })
    }

    pub fn spec(&self) -> &DetectorSpec {
        &self.spec
    }

    /// Every face above the score threshold, best first, after non-maximum suppression.
    pub fn detect(&self, img: &RgbImage) -> Result<Vec<Detection>> {
        let size = self.spec.input_size;
        let fit = self.spec.fit_size.unwrap_or(size).min(size);
        let mut lb = Letterbox::fit(img.width(), img.height(), fit);
        lb.size = size;
        let mut tensor = vec![0f32; (size * size * 3) as usize];
        lb.write_tensor(img, &self.spec.norm, &mut tensor);
        let shape = if self.spec.norm.nhwc {
            [1, size as usize, size as usize, 3]
        } else {
            [1, 3, size as usize, size as usize]
        };
        let outputs = self.model.run(&shape, &tensor)?;
        let raw = match self.spec.kind {
            DetectorKind::Scrfd => decode_scrfd(&self.model, &outputs, size, self.spec.score_threshold)?,
            DetectorKind::Yunet => decode_yunet(&self.model, &outputs, size, self.spec.score_threshold)?,
        };
        let kept = nms(raw, self.spec.nms_iou);
        let inv = 1.0 / lb.scale;
        Ok(kept.iter().map(|d| d.map(inv, 0.0, 0.0)).collect())
    }
}

const STRIDES: [u32; 3] = [8, 16, 32];

/// SCRFD with keypoints: nine outputs, scores / boxes / keypoints for strides 8, 16, 32, two anchors a
/// cell; distances are in stride units from the anchor centre `(col * s, row * s)`.
fn decode_scrfd(model: &Model, outputs: &[Output], size: u32, threshold: f32) -> Result<Vec<Detection>> {
    if outputs.len() != 9 {
        return Err(model.bad_output(format!(
            "expected 9 outputs (SCRFD with keypoints), got {}",
            outputs.len()
        )));
    }
    let mut dets = Vec::new();
    for (level, stride) in STRIDES.iter().enumerate() {
        let (scores, boxes, kps) = (
            &outputs[level].data,
            &outputs[level + 3].data,
            &outputs[level + 6].data,
        );
        let cols = (size / stride) as usize;
        let anchors = cols * cols * 2;
        if scores.len() != anchors || boxes.len() != anchors * 4 || kps.len() != anchors * 10 {
            return Err(model.bad_output(format!(
                "stride {stride}: output sizes do not match {anchors} anchors"
            )));
        }
        let s = *stride as f32;
        for (i, &score) in scores.iter().enumerate() {
            if score < threshold {
                continue;
            }
            let cell = i / 2;
            let (cx, cy) = (((cell % cols) as f32) * s, ((cell / cols) as f32) * s);
            let b = &boxes[i * 4..i * 4 + 4];
            let k = &kps[i * 10..i * 10 + 10];
            dets.push(Detection {
                bbox: BBox {
                    x1: cx - b[0] * s,
                    y1: cy - b[1] * s,
                    x2: cx + b[2] * s,
                    y2: cy + b[3] * s,
                },
                score,
                keypoints: std::array::from_fn(|j| Point::new(cx + k[2 * j] * s, cy + k[2 * j + 1] * s)),
            });
        }
    }
    Ok(dets)
}

/// YuNet 2023mar: twelve outputs named cls_/obj_/bbox_/kps_ and the stride, one anchor a cell.
fn decode_yunet(model: &Model, outputs: &[Output], size: u32, threshold: f32) -> Result<Vec<Detection>> {
    let find = |prefix: &str, stride: u32| -> Result<&Output> {
        let name = format!("{prefix}_{stride}");
        model
            .output_names()
            .iter()
            .position(|n| *n == name)
            .and_then(|i| outputs.get(i))
            .ok_or_else(|| model.bad_output(format!("no output named {name}")))
    };
    let mut dets = Vec::new();
    for stride in STRIDES {
        let (cls, obj, boxes, kps) = (
            &find("cls", stride)?.data,
            &find("obj", stride)?.data,
            &find("bbox", stride)?.data,
            &find("kps", stride)?.data,
        );
        let cols = (size / stride) as usize;
        let cells = cols * cols;
        if cls.len() != cells || obj.len() != cells || boxes.len() != cells * 4 || kps.len() != cells * 10 {
            return Err(model.bad_output(format!(
                "stride {stride}: output sizes do not match {cells} cells"
            )));
        }
        let s = stride as f32;
        for i in 0..cells {
            let score = (cls[i].clamp(0.0, 1.0) * obj[i].clamp(0.0, 1.0)).sqrt();
            if score < threshold {
                continue;
            }
            let (col, row) = ((i % cols) as f32, (i / cols) as f32);
            let b = &boxes[i * 4..i * 4 + 4];
            let (cx, cy) = ((col + b[0]) * s, (row + b[1]) * s);
            let (w, h) = (b[2].exp() * s, b[3].exp() * s);
            let k = &kps[i * 10..i * 10 + 10];
            dets.push(Detection {
                bbox: BBox {
                    x1: cx - w / 2.0,
                    y1: cy - h / 2.0,
                    x2: cx + w / 2.0,
                    y2: cy + h / 2.0,
                },
                score,
                keypoints: std::array::from_fn(|j| {
                    Point::new((k[2 * j] + col) * s, (k[2 * j + 1] + row) * s)
                }),
            });
        }
    }
    Ok(dets)
}

/// Greedy non-maximum suppression, best score first (stable for equal scores). Areas use the `+1`
/// pixel convention of insightface's reference code, so the same boxes survive as there.
pub fn nms(mut dets: Vec<Detection>, iou: f32) -> Vec<Detection> {
    dets.retain(|d| d.score.is_finite() && d.bbox.x2 >= d.bbox.x1 && d.bbox.y2 >= d.bbox.y1);
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let area = |b: &BBox| (b.x2 - b.x1 + 1.0) * (b.y2 - b.y1 + 1.0);
    let mut kept: Vec<Detection> = Vec::new();
    for d in dets {
        let overlaps = kept.iter().any(|k| {
            let w = (k.bbox.x2.min(d.bbox.x2) - k.bbox.x1.max(d.bbox.x1) + 1.0).max(0.0);
            let h = (k.bbox.y2.min(d.bbox.y2) - k.bbox.y1.max(d.bbox.y1) + 1.0).max(0.0);
            let inter = w * h;
            inter / (area(&k.bbox) + area(&d.bbox) - inter) > iou
        });
        if !overlaps {
            kept.push(d);
        }
    }
    kept
}

/// Runs `detect` on the image, and if it finds nothing, once more on the image with a black border of
/// half its size on each side (tight crops give detectors too little context), mapping back.
pub fn detect_with_padding(
    img: &RgbImage,
    detect: impl Fn(&RgbImage) -> Result<Vec<Detection>>,
) -> Result<Vec<Detection>> {
    let found = detect(img)?;
    if !found.is_empty() {
        return Ok(found);
    }
    let (padded, px, py) = crate::decode::pad(img, 0.5);
    Ok(detect(&padded)?
        .iter()
        .map(|d| d.map(1.0, -(px as f32), -(py as f32)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(x: f32, score: f32) -> Detection {
        Detection {
            bbox: BBox {
                x1: x,
                y1: 0.0,
                x2: x + 10.0,
                y2: 10.0,
            },
            score,
            keypoints: [Point::default(); 5],
        }
    }

    #[test]
    fn nms_keeps_best_of_overlapping_and_all_of_separate() {
        let kept = nms(
            vec![det(0.0, 0.7), det(1.0, 0.9), det(50.0, 0.6), det(0.0, f32::NAN)],
            0.4,
        );
        let xs: Vec<f32> = kept.iter().map(|d| d.bbox.x1).collect();
        assert_eq!(xs, vec![1.0, 50.0]);
    }
}
