//! Temporal continuity: between two consecutive frames of a camera, a head moves only so far. A
//! frame picked from elsewhere in a recording (the frame that best answers the prompt) jumps: its
//! face box, nose or pose is far from the previous frame's. The allowance grows with the time
//! between the frames' arrivals (a slow server takes frames further apart), up to a cap, so a
//! script cannot buy large jumps by sending slowly.

use std::time::Duration;

use super::FaceObservation;

/// How far a face may move between two consecutive frames that arrive `REFERENCE` apart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Face box centre, in face widths.
    pub center: f32,
    /// Face box width, as a ratio (larger over smaller).
    pub scale: f32,
    /// Degrees of yaw.
    pub yaw: f32,
    /// Degrees of pitch.
    pub pitch: f32,
}

/// The frame interval the limits are for (a camera at 15 frames a second).
pub const REFERENCE: Duration = Duration::from_millis(67);
/// The allowance grows with the gap between frames up to this many times the limits (no more: a
/// script answering slowly must not buy the jump from one picked frame to the next).
pub const MAX_STRETCH: f32 = 1.5;

/// Frames this far apart are a pause (a stalled page or camera), not one camera interval: a jump
/// across a pause still counts, but the check carries on from the new frame instead of comparing
/// every later frame with the one before the pause (seen in the browser test: a 14 s stall of the
/// page failed a genuine check at the next four frames).
pub const PAUSE: Duration = Duration::from_secs(1);

impl Default for Limits {
    fn default() -> Self {
        Limits {
            center: 0.35,
            scale: 1.25,
            yaw: 30.0,
            pitch: 15.0,
        }
    }
}

/// Is `cur` a plausible next frame after `prev`, `dt` later? Returns the name of the measure
/// that jumped, if one did.
pub fn jump(
    prev: &FaceObservation,
    cur: &FaceObservation,
    dt: Duration,
    limits: &Limits,
) -> Option<&'static str> {
    let stretch = (dt.as_secs_f32() / REFERENCE.as_secs_f32()).clamp(1.0, MAX_STRETCH);
    let width = prev.width.max(cur.width).max(1e-3);
    let dc = ((cur.center.0 - prev.center.0).powi(2) + (cur.center.1 - prev.center.1).powi(2)).sqrt() / width;
    let scale = (cur.width.max(1e-3) / prev.width.max(1e-3)).max(prev.width.max(1e-3) / cur.width.max(1e-3));
    if prev.width > 0.0 && cur.width > 0.0 {
        if dc > limits.center * stretch {
            return Some("position");
        }
        if scale > 1.0 + (limits.scale - 1.0) * stretch {
            return Some("size");
        }
    }
    if (cur.yaw - prev.yaw).abs() > limits.yaw * stretch {
        return Some("yaw");
    }
    if (cur.pitch - prev.pitch).abs() > limits.pitch * stretch {
        return Some("pitch");
    }
    None
}
