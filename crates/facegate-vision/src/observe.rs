//! One camera frame turned into the measures a liveness challenge needs: how many faces, and for
//! the main one its nose, box, pose, nose parallax, eyes, mouth, passive anti-spoof score and (when
//! asked) its embedding. Plain numbers, no policy: the liveness check (facegate-core) decides.
//!
//! Conventions: positions are fractions of the frame (0-1, x to the image's right, y down); yaw > 0
//! means the face turns towards the image's right (the person's own left); pitch > 0: chin up.

use crate::antispoof::AntiSpoof;
use crate::geometry::Point;
use crate::{AnalyzeOptions, DecodeLimits, FacePipeline, VisionError};

/// Everything measured on the main face of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FaceMeasures {
    /// Nose tip, as a fraction of the frame.
    pub nose: (f32, f32),
    /// Face box height over frame height.
    pub size: f32,
    pub yaw: f32,
    pub pitch: f32,
    pub roll: f32,
    /// Horizontal offset of the nose tip from the midpoint of the inner eye corners, over the
    /// distance between the outer eye corners (a real 3-D nose moves off that line when the head
    /// turns; a flat picture's does not).
    pub parallax: f32,
    /// Mean eye aspect ratio of the two eyes.
    pub eyes: f32,
    /// Mouth width over outer eye corner distance.
    pub mouth_width: f32,
    /// Mouth corners above the lip midline, over mouth width.
    pub corner_lift: f32,
    /// Passive anti-spoof model: probability that the face is live, when a model is loaded.
    pub live_score: Option<f32>,
    /// Centre of the face box, as a fraction of the frame.
    pub center: (f32, f32),
    /// Face box width over frame width.
    pub width: f32,
}

/// What one frame showed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FrameObservation {
    /// Faces of a meaningful size (bystanders far smaller than the main face are not counted).
    pub faces: usize,
    /// The main face, when there is exactly one.
    pub face: Option<FaceMeasures>,
    /// Its embedding, when the face is turned no further than asked.
    pub embedding: Option<Vec<f32>>,
    /// Perceptual hash of the frame (see [`perceptual_hash`]): the same picture re-encoded, with a
    /// byte changed or a little noise, hashes within a few bits of the original.
    pub phash: Option<[u64; 4]>,
}

/// A 256-bit difference hash of the whole picture: grey levels on a 17x16 grid (each cell the mean of its
/// pixels), one bit per pair of horizontal neighbours (left brighter than right). Averaging over
/// cells makes it blind to JPEG re-encoding and sensor-like noise, while a different moment of a
/// moving person (a head a few pixels elsewhere) changes many bits.
pub fn perceptual_hash(img: &image::RgbImage) -> [u64; 4] {
    region_hash(img, (0, 0, img.width(), img.height()))
}

/// The same over a region (x0, y0, x1, y1) of the picture: the face and a margin around it, so a
/// still background does not make two moments of a person look alike.
pub fn region_hash(img: &image::RgbImage, (x0, y0, x1, y1): (u32, u32, u32, u32)) -> [u64; 4] {
    const W: usize = 17;
    const H: usize = 16;
    let (x1, y1) = (x1.min(img.width()), y1.min(img.height()));
    let (x0, y0) = (x0.min(x1.saturating_sub(1)), y0.min(y1.saturating_sub(1)));
    let (iw, ih) = (((x1 - x0) as usize).max(1), ((y1 - y0) as usize).max(1));
    let step = if iw * ih > 200_000 { 2 } else { 1 };
    let mut sum = [[0f64; W]; H];
    let mut count = [[0u32; W]; H];
    for y in (0..ih).step_by(step) {
        let cy = (y * H / ih).min(H - 1);
        for x in (0..iw).step_by(step) {
            let cx = (x * W / iw).min(W - 1);
            let Some(p) = img.get_pixel_checked(x0 + x as u32, y0 + y as u32).map(|p| p.0) else {
                continue;
            };
            sum[cy][cx] += 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]);
            count[cy][cx] += 1;
        }
    }
    let mut bits = [0u64; 4];
    for y in 0..H {
        for x in 0..W - 1 {
            let a = sum[y][x] / f64::from(count[y][x].max(1));
            let b = sum[y][x + 1] / f64::from(count[y][x + 1].max(1));
            if a > b {
                let i = y * (W - 1) + x;
                bits[i / 64] |= 1 << (i % 64);
            }
        }
    }
    bits
}

/// Bits that differ between two perceptual hashes (0-256).
pub fn hash_distance(a: &[u64; 4], b: &[u64; 4]) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

/// Everything the challenges need from one frame.
pub fn observe_frame(
    pipeline: &FacePipeline,
    antispoof: Option<&AntiSpoof>,
    bytes: &[u8],
    frontal_yaw: f32,
) -> Result<FrameObservation, VisionError> {
    let limits = DecodeLimits {
        max_bytes: 2 * 1024 * 1024,
        max_side: 1920,
        ..DecodeLimits::default()
    };
    let img = crate::decode(bytes, &limits)?;
    observe_image(pipeline, antispoof, &img, frontal_yaw)
}

pub fn observe_image(
    pipeline: &FacePipeline,
    antispoof: Option<&AntiSpoof>,
    img: &image::RgbImage,
    frontal_yaw: f32,
) -> Result<FrameObservation, VisionError> {
    let mut faces = pipeline.analyze(
        img,
        &AnalyzeOptions {
            embed: false,
            landmarks: pipeline.has_landmarks(),
            max_faces: Some(3),
        },
    )?;
    if let Some(main) = faces.first().map(|f| f.detection.bbox.area()) {
        faces.retain(|f| f.detection.bbox.area() >= main * 0.25);
    }
    let count = faces.len();
    let phash = Some(perceptual_hash(img));
    let Some(face) = faces.into_iter().next() else {
        return Ok(FrameObservation {
            phash,
            ..Default::default()
        });
    };
    if count != 1 {
        return Ok(FrameObservation {
            faces: count,
            phash,
            ..Default::default()
        });
    }
    // The face with half its size around it.
    let b = &face.detection.bbox;
    let (mx, my) = (b.width() * 0.25, b.height() * 0.25);
    let region = (
        (b.x1 - mx).max(0.0) as u32,
        (b.y1 - my).max(0.0) as u32,
        (b.x2 + mx).max(0.0) as u32,
        (b.y2 + my).max(0.0) as u32,
    );
    let phash = Some(region_hash(img, region));
    let (w, h) = (img.width().max(1) as f32, img.height().max(1) as f32);
    let kps = &face.detection.keypoints;
    // Nose, eye midline and eye width: from the 106 landmarks when there are any, else the 5 points.
    let (nose, mid, eye_width) = match &face.landmarks {
        Some(p) if p.len() == 106 => (p[86], p[39].midpoint(p[89]), p[35].distance(p[93])),
        _ if kps.len() >= 3 => (kps[2], kps[0].midpoint(kps[1]), kps[0].distance(kps[1]) * 1.4),
        _ => (face.detection.bbox.center(), face.detection.bbox.center(), 1.0),
    };
    let parallax = (nose.x - mid.x) / eye_width.max(1.0);
    let (eyes, mouth_width, corner_lift) = face.expression.map_or((0.0, 0.0, 0.0), |e| {
        ((e.left_eye + e.right_eye) / 2.0, e.mouth_width, e.corner_lift)
    });
    let live_score = match antispoof {
        Some(a) => Some(a.live_score(img, &face.detection.bbox)?),
        None => None,
    };
    let embedding = if face.pose.yaw.abs() <= frontal_yaw {
        let aligned = pipeline.align(img, &face.detection)?;
        pipeline
            .embed(&[&aligned])?
            .into_iter()
            .next()
            .map(|e| e.as_slice().to_vec())
    } else {
        None
    };
    let norm = |p: Point| (p.x / w, p.y / h);
    Ok(FrameObservation {
        faces: 1,
        face: Some(FaceMeasures {
            nose: norm(nose),
            size: face.detection.bbox.height() / h,
            yaw: face.pose.yaw,
            pitch: face.pose.pitch,
            roll: face.pose.roll,
            parallax,
            eyes,
            mouth_width,
            corner_lift,
            live_score,
            center: norm(face.detection.bbox.center()),
            width: face.detection.bbox.width() / w,
        }),
        embedding,
        phash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A picture with structure: a bright disc (a "face") on a gradient.
    fn picture(dx: u32, noise: u32) -> image::RgbImage {
        image::RgbImage::from_fn(320, 240, |x, y| {
            let (cx, cy) = (160.0 + dx as f32, 120.0);
            let d = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt();
            let base = if d < 60.0 { 200.0 - d } else { (x + y) as f32 / 3.0 };
            // Deterministic "sensor noise".
            let n = ((x * 7919 + y * 104_729 + noise * 31) % 11) as f32 - 5.0;
            let v = (base + if noise > 0 { n } else { 0.0 }).clamp(0.0, 255.0) as u8;
            image::Rgb([v, v, v])
        })
    }

    #[test]
    fn the_same_picture_with_noise_hashes_alike_and_a_moved_one_does_not() {
        let a = perceptual_hash(&picture(0, 0));
        assert!(hash_distance(&a, &perceptual_hash(&picture(0, 1))) <= 8);
        assert!(hash_distance(&a, &perceptual_hash(&picture(40, 0))) > 24);
        // A region: only what is inside it counts.
        let r = (100, 60, 220, 180);
        let b = region_hash(&picture(0, 0), r);
        assert_eq!(b, region_hash(&picture(0, 0), r));
        assert_ne!(b, a);
    }
}
