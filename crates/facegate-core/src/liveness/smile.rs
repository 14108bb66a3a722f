//! Smile.

use super::*;

/// A smile that was not there at the start: the mouth widens and its corners lift, over the
/// person's own neutral face, for two frames.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Smile {
    neutral: Vec<(f32, f32)>,
    held: u32,
}

pub const SMILE_WIDTH: f32 = 1.12;
pub const SMILE_LIFT: f32 = 0.05;

impl Smile {
    fn baseline(&self) -> Option<(f32, f32)> {
        (self.neutral.len() >= 2).then(|| {
            let n = self.neutral.len() as f32;
            let w = self.neutral.iter().map(|p| p.0).sum::<f32>() / n;
            let l = self.neutral.iter().map(|p| p.1).sum::<f32>() / n;
            (w, l)
        })
    }
}

impl Challenge for Smile {
    fn state(&self) -> ChallengeState {
        ChallengeState::Smile(self.clone())
    }
    fn kind(&self) -> ChallengeKind {
        ChallengeKind::Smile
    }

    fn params(&self) -> serde_json::Value {
        serde_json::json!({})
    }

    fn observe(&mut self, f: &FaceObservation) -> Step {
        if f.yaw.abs() > 25.0 || f.mouth_width <= 0.0 {
            return Step::Waiting;
        }
        let Some((w, l)) = self.baseline() else {
            self.neutral.push((f.mouth_width, f.corner_lift));
            return Step::Waiting;
        };
        hold(
            &mut self.held,
            f.mouth_width >= w * SMILE_WIDTH && f.corner_lift >= l + SMILE_LIFT,
        )
    }

    fn progress(&self) -> f32 {
        self.held as f32 / 2.0
    }

    fn prompt(&self) -> String {
        if self.baseline().is_none() {
            "Look at the camera with a relaxed face.".into()
        } else {
            "Now smile.".into()
        }
    }
}
