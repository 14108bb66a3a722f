//! Quality signals of a detected face: size, sharpness, exposure and pose, each a plain number with a
//! documented meaning, so enrolment can tell a person what to fix.

use image::RgbImage;
use serde::Serialize;

use crate::detect::Detection;

/// Head pose in degrees. Yaw > 0: the face turns towards the image's right; pitch > 0: the chin goes
/// up; roll > 0: the head tilts clockwise in the image.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Pose {
    pub yaw: f32,
    pub pitch: f32,
    pub roll: f32,
}

/// Measures taken on the detection and on the aligned 112x112 crop.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Quality {
    /// Distance between the eyes in source pixels: the honest measure of a face's resolution.
    pub eye_distance_px: f32,
    /// Shorter side of the face box in source pixels.
    pub face_size_px: f32,
    /// Variance of the Laplacian of the aligned grey crop: below ~40 is visibly blurred.
    pub sharpness: f32,
    /// Mean luminance of the aligned crop's central face area, 0-255.
    pub brightness: f32,
    /// Share of that area's pixels at the extremes (<= 8 or >= 247): clipped shadows or highlights.
    pub clipped: f32,
    pub detector_score: f32,
}

/// Pose from the five keypoints: roll from the eye line; yaw and pitch from where the nose tip sits
/// relative to the eyes and mouth, calibrated so that the ArcFace template reads (0, 0, 0). Rough
/// (+-10 degrees) but dependable in sign; the 106-point landmarks give a finer estimate.
pub fn pose_from_keypoints(det: &Detection) -> Pose {
    let [le, re, nose, lm, rm] = det.keypoints;
    let roll = (re.y - le.y).atan2(re.x - le.x);
    let (sin, cos) = (-roll).sin_cos();
    let rot = |p: crate::geometry::Point| (p.x * cos - p.y * sin, p.x * sin + p.y * cos);
    let (le, re, nose, lm, rm) = (rot(le), rot(re), rot(nose), rot(lm), rot(rm));
    let eye_mid = ((le.0 + re.0) / 2.0, (le.1 + re.1) / 2.0);
    let mouth_mid = ((lm.0 + rm.0) / 2.0, (lm.1 + rm.1) / 2.0);
    let eye_dist = (re.0 - le.0).abs().max(1e-3);
    // In the template the nose sits at the eyes' midpoint horizontally and 0.58 of the way down
    // from eyes to mouth. The nose tip stands out of the face by about 0.55 eye distances.
    let horizontal = ((nose.0 - (eye_mid.0 + mouth_mid.0) / 2.0) / eye_dist / 0.55).clamp(-1.0, 1.0);
    let face_height = (mouth_mid.1 - eye_mid.1).abs().max(1e-3);
    let vertical = (((nose.1 - eye_mid.1) / face_height - 0.5) / 0.55 * 1.4).clamp(-1.0, 1.0);
    Pose {
        yaw: horizontal.asin().to_degrees(),
        pitch: -vertical.asin().to_degrees(),
        roll: roll.to_degrees(),
    }
}

/// Quality of a face, measured on its detection and its aligned crop.
pub fn measure(det: &Detection, aligned: &RgbImage) -> Quality {
    let grey: Vec<f32> = aligned
        .pixels()
        .map(|p| 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]))
        .collect();
    let (w, h) = (aligned.width() as usize, aligned.height() as usize);
    // The central area of the aligned crop is face in every pose the aligner accepts.
    let (x0, x1, y0, y1) = (w / 4, w * 3 / 4, h / 4, h * 7 / 8);
    let mut sum = 0.0f64;
    let mut sum_sq = 0.0f64;
    let mut n = 0usize;
    let mut brightness = 0.0f64;
    let mut clipped = 0usize;
    for y in y0.max(1)..y1.min(h - 1) {
        for x in x0.max(1)..x1.min(w - 1) {
            let c = grey[y * w + x];
            let lap =
                grey[(y - 1) * w + x] + grey[(y + 1) * w + x] + grey[y * w + x - 1] + grey[y * w + x + 1]
                    - 4.0 * c;
            sum += f64::from(lap);
            sum_sq += f64::from(lap) * f64::from(lap);
            brightness += f64::from(c);
            if !(8.0..247.0).contains(&c) {
                clipped += 1;
            }
            n += 1;
        }
    }
    let n_f = n.max(1) as f64;
    let mean = sum / n_f;
    let [le, re, ..] = det.keypoints;
    Quality {
        eye_distance_px: le.distance(re),
        face_size_px: det.bbox.width().min(det.bbox.height()),
        sharpness: (sum_sq / n_f - mean * mean).max(0.0) as f32,
        brightness: (brightness / n_f) as f32,
        clipped: (clipped as f64 / n_f) as f32,
        detector_score: det.score,
    }
}

/// Something about a photo that makes it a poor face template, in words a person can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Issue {
    TooSmall,
    Blurry,
    TooDark,
    TooBright,
    NotFrontal,
    Tilted,
}

impl Issue {
    pub fn message(self) -> &'static str {
        match self {
            Issue::TooSmall => "Your face is too small in the picture: come closer to the camera.",
            Issue::Blurry => "The picture is blurred: hold still, and make sure the camera is in focus.",
            Issue::TooDark => "The picture is too dark: face a window or a lamp.",
            Issue::TooBright => {
                "The picture is too bright: move away from direct light behind or in front of you."
            }
            Issue::NotFrontal => "Look straight at the camera.",
            Issue::Tilted => "Keep your head upright.",
        }
    }
}

/// The bar a face must clear to be enrolled. Login photos are held to a lower bar (`login`): a
/// person should not be turned away by a slightly dim room once their template is good.
#[derive(Debug, Clone, Copy)]
pub struct QualityBar {
    pub min_eye_distance_px: f32,
    pub min_sharpness: f32,
    pub brightness: (f32, f32),
    pub max_clipped: f32,
    pub max_yaw: f32,
    pub max_pitch: f32,
    pub max_roll: f32,
}

impl QualityBar {
    pub const ENROL: QualityBar = QualityBar {
        min_eye_distance_px: 40.0,
        min_sharpness: 25.0,
        brightness: (45.0, 215.0),
        max_clipped: 0.25,
        max_yaw: 25.0,
        max_pitch: 25.0,
        max_roll: 25.0,
    };
    pub const LOGIN: QualityBar = QualityBar {
        min_eye_distance_px: 24.0,
        min_sharpness: 8.0,
        brightness: (25.0, 235.0),
        max_clipped: 0.5,
        max_yaw: 40.0,
        max_pitch: 35.0,
        max_roll: 40.0,
    };

    /// Every issue of the face against this bar, most actionable first.
    pub fn assess(&self, q: &Quality, pose: &Pose) -> Vec<Issue> {
        let mut issues = Vec::new();
        if q.eye_distance_px < self.min_eye_distance_px {
            issues.push(Issue::TooSmall);
        }
        if pose.yaw.abs() > self.max_yaw || pose.pitch.abs() > self.max_pitch {
            issues.push(Issue::NotFrontal);
        }
        if pose.roll.abs() > self.max_roll {
            issues.push(Issue::Tilted);
        }
        if q.brightness < self.brightness.0 {
            issues.push(Issue::TooDark);
        } else if q.brightness > self.brightness.1 || q.clipped > self.max_clipped {
            issues.push(Issue::TooBright);
        }
        if q.sharpness < self.min_sharpness {
            issues.push(Issue::Blurry);
        }
        issues
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::ARCFACE_TEMPLATE;
    use crate::geometry::{Affine, BBox};

    fn det_with(kps: [crate::geometry::Point; 5]) -> Detection {
        Detection {
            bbox: BBox {
                x1: 0.0,
                y1: 0.0,
                x2: 112.0,
                y2: 112.0,
            },
            score: 0.9,
            keypoints: kps,
        }
    }

    #[test]
    fn template_is_frontal_and_rotation_shows_as_roll() {
        let p = pose_from_keypoints(&det_with(ARCFACE_TEMPLATE));
        assert!(
            p.yaw.abs() < 3.0 && p.pitch.abs() < 3.0 && p.roll.abs() < 1.0,
            "{p:?}"
        );
        let a = 20f64.to_radians();
        let rot = Affine([a.cos(), -a.sin(), 0.0, a.sin(), a.cos(), 0.0]);
        let p = pose_from_keypoints(&det_with(ARCFACE_TEMPLATE.map(|k| rot.apply(k))));
        assert!((p.roll - 20.0).abs() < 1.0 && p.yaw.abs() < 3.0, "{p:?}");
    }

    #[test]
    fn enrolment_bar_names_each_problem() {
        let good = Quality {
            eye_distance_px: 80.0,
            face_size_px: 200.0,
            sharpness: 300.0,
            brightness: 120.0,
            clipped: 0.01,
            detector_score: 0.9,
        };
        let frontal = Pose::default();
        assert!(QualityBar::ENROL.assess(&good, &frontal).is_empty());
        let small_dark = Quality {
            eye_distance_px: 20.0,
            brightness: 20.0,
            ..good
        };
        assert_eq!(
            QualityBar::ENROL.assess(&small_dark, &frontal),
            vec![Issue::TooSmall, Issue::TooDark]
        );
        let turned = Pose {
            yaw: 35.0,
            pitch: 0.0,
            roll: 0.0,
        };
        assert_eq!(QualityBar::ENROL.assess(&good, &turned), vec![Issue::NotFrontal]);
        assert!(
            QualityBar::LOGIN.assess(&good, &turned).is_empty(),
            "login accepts more"
        );
        assert!(!Issue::Blurry.message().is_empty());
    }

    #[test]
    fn nose_towards_image_right_is_positive_yaw() {
        let mut kps = ARCFACE_TEMPLATE;
        kps[2].x += 12.0;
        assert!(pose_from_keypoints(&det_with(kps)).yaw > 15.0);
    }

    #[test]
    fn flat_image_has_no_sharpness_and_checkerboard_has_much() {
        let det = det_with(ARCFACE_TEMPLATE);
        let flat = RgbImage::from_pixel(112, 112, image::Rgb([128, 128, 128]));
        let q = measure(&det, &flat);
        assert!(q.sharpness < 1e-3 && (q.brightness - 128.0).abs() < 1.0 && q.clipped == 0.0);
        let checker = RgbImage::from_fn(112, 112, |x, y| {
            if (x + y) % 2 == 0 {
                image::Rgb([255, 255, 255])
            } else {
                image::Rgb([0, 0, 0])
            }
        });
        let q = measure(&det, &checker);
        assert!(q.sharpness > 1000.0 && q.clipped > 0.99);
    }
}
