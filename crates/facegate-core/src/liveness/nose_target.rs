//! Nose into a target.

use super::*;

/// The nose must be moved into a randomly placed circle, and held there for two frames; the head
/// must have turned towards the target, so sliding a photo across the camera does not count.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct NoseTarget {
    /// Centre of the target, a fraction of the frame (image coordinates, not mirrored).
    pub target: (f32, f32),
    pub radius: f32,
    start: Option<FaceObservation>,
    held: u32,
    best: f32,
}

/// Yaw (or pitch) change towards the target that reaching it must come with, in degrees.
pub const NOSE_TURN: f32 = 8.0;

impl NoseTarget {
    pub fn new(target: (f32, f32), radius: f32) -> NoseTarget {
        NoseTarget {
            target,
            radius,
            start: None,
            held: 0,
            best: 0.0,
        }
    }

    pub fn random(rng: &mut Rng) -> NoseTarget {
        let side = if rng.below(2) == 0 { -1.0 } else { 1.0 };
        let dx = rng.range(0.13, 0.2) * side;
        let dy = rng.range(-0.08, 0.08);
        NoseTarget::new((0.5 + dx, 0.45 + dy), 0.06)
    }
}

impl Challenge for NoseTarget {
    fn state(&self) -> ChallengeState {
        ChallengeState::NoseTarget(self.clone())
    }
    fn kind(&self) -> ChallengeKind {
        ChallengeKind::NoseTarget
    }

    fn params(&self) -> serde_json::Value {
        serde_json::json!({ "target": { "x": self.target.0, "y": self.target.1, "radius": self.radius } })
    }

    fn observe(&mut self, f: &FaceObservation) -> Step {
        let Some(start) = self.start else {
            let d0 = dist(f.nose, self.target);
            // Start from a pose facing the camera, with the nose well away from the target.
            if f.yaw.abs() < 20.0 && d0 > 2.0 * self.radius {
                self.start = Some(*f);
                self.best = d0;
            }
            return Step::Waiting;
        };
        let d = dist(f.nose, self.target);
        let d0 = dist(start.nose, self.target);
        self.best = self.best.min(d);
        // The head turns towards the target: towards the image's right is yaw > 0.
        let towards = self.target.0 - start.nose.0;
        let turned = (f.yaw - start.yaw) * towards.signum() >= NOSE_TURN;
        let parallax = (f.parallax - start.parallax) * towards.signum() >= TURN_PARALLAX / 2.0;
        hold(
            &mut self.held,
            d <= self.radius && turned && parallax && d0 > self.radius,
        )
    }

    fn progress(&self) -> f32 {
        match self.start {
            None => 0.0,
            Some(s) => {
                let d0 = dist(s.nose, self.target).max(1e-6);
                ((d0 - self.best) / (d0 - self.radius).max(1e-6)).clamp(0.0, 1.0) * 0.9
                    + 0.05 * self.held as f32
            }
        }
    }

    fn prompt(&self) -> String {
        if self.start.is_none() {
            "Look straight at the camera.".into()
        } else if self.held > 0 {
            "Hold still.".into()
        } else {
            "Move your nose into the circle by turning your head.".into()
        }
    }
}
