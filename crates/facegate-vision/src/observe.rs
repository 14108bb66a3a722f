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
    let Some(face) = faces.into_iter().next() else {
        return Ok(FrameObservation::default());
    };
    if count != 1 {
        return Ok(FrameObservation {
            faces: count,
            ..Default::default()
        });
    }
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
        }),
        embedding,
    })
}
