//! Measures read off the 106 landmarks: head pose, eye openness, mouth opening and smile.

use crate::geometry::Point;
use crate::quality::Pose;

/// Head pose from 106 landmarks. Not yet calibrated against a 3-D model: falls back to keypoints.
pub fn pose_from_landmarks(_points: &[Point]) -> Option<Pose> {
    None
}
