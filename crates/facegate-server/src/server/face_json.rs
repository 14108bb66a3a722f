//! How the face API shows a face in JSON: box, quality measures, pose and keypoints, rounded for
//! people (never the embedding).

use facegate_vision::Face;
use serde_json::{Value, json};

pub(crate) fn round1(x: f32) -> f64 {
    (f64::from(x) * 10.0).round() / 10.0
}

/// A face's box in image pixels.
pub fn bbox_json(face: &Face) -> Value {
    let b = &face.detection.bbox;
    json!({
        "left": round1(b.x1),
        "top": round1(b.y1),
        "width": round1(b.width()),
        "height": round1(b.height()),
    })
}

/// A face's quality measures (docs/face-api.md explains each).
pub fn quality_json(face: &Face) -> Value {
    let q = &face.quality;
    json!({
        "eyeDistancePx": round1(q.eye_distance_px),
        "faceSizePx": round1(q.face_size_px),
        "sharpness": round1(q.sharpness),
        "brightness": round1(q.brightness),
        "clipped": f64::from((q.clipped * 1000.0).round() / 1000.0),
        "confidence": f64::from((q.detector_score * 1000.0).round() / 1000.0),
    })
}

pub fn pose_json(face: &Face) -> Value {
    json!({
        "yaw": round1(face.pose.yaw),
        "pitch": round1(face.pose.pitch),
        "roll": round1(face.pose.roll),
    })
}

/// The five keypoints, named as they appear in the image (`eyeLeft` is the eye on the image's left).
pub fn keypoints_json(face: &Face) -> Value {
    const NAMES: [&str; 5] = ["eyeLeft", "eyeRight", "nose", "mouthLeft", "mouthRight"];
    Value::Array(
        NAMES
            .iter()
            .zip(face.detection.keypoints)
            .map(|(n, p)| json!({"type": n, "x": round1(p.x), "y": round1(p.y)}))
            .collect(),
    )
}
