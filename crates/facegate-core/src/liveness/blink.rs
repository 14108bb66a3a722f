//! Blink.

use super::*;

/// Blinks: the eyes' aspect ratio drops well below the person's own open-eye level and comes back,
/// while the head faces the camera (eye measures are unreliable on turned heads).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Blink {
    pub count: usize,
    done: usize,
    open: Vec<f32>,
    closed: bool,
    /// Open-eyed frames since the last blink asked for.
    quiet: u32,
}

impl Blink {
    pub fn new(count: usize) -> Blink {
        Blink {
            count: count.max(1),
            done: 0,
            open: Vec::new(),
            closed: false,
            quiet: 0,
        }
    }

    fn open_level(&self) -> Option<f32> {
        if self.open.len() < 3 {
            return None;
        }
        let mut v = self.open.clone();
        v.sort_by(f32::total_cmp);
        Some(v[v.len() / 2])
    }
}

/// Eyes count as closed below this share of their open level, and open again above the second.
pub const BLINK_CLOSED: f32 = 0.6;
pub const BLINK_OPEN: f32 = 0.85;

impl Challenge for Blink {
    fn state(&self) -> ChallengeState {
        ChallengeState::Blink(self.clone())
    }
    fn kind(&self) -> ChallengeKind {
        ChallengeKind::Blink
    }

    fn params(&self) -> serde_json::Value {
        serde_json::json!({ "count": self.count })
    }

    fn observe(&mut self, f: &FaceObservation) -> Step {
        if f.yaw.abs() > 25.0 || f.pitch.abs() > 35.0 || f.eyes <= 0.0 {
            return Step::Waiting;
        }
        let Some(level) = self.open_level() else {
            self.open.push(f.eyes);
            return Step::Waiting;
        };
        if !self.closed {
            if f.eyes < level * BLINK_CLOSED {
                if self.done >= self.count {
                    // One blink more than asked: what a clip of someone blinking does.
                    return Step::Wrong;
                }
                self.closed = true;
            } else if self.done >= self.count {
                self.quiet += 1;
                if self.quiet >= super::BLINK_QUIET_FRAMES {
                    return Step::Done;
                }
            } else if self.open.len() < 15 {
                self.open.push(f.eyes);
            }
            Step::Waiting
        } else if f.eyes > level * BLINK_OPEN {
            self.closed = false;
            self.done += 1;
            Step::Advanced
        } else {
            Step::Waiting
        }
    }

    fn progress(&self) -> f32 {
        self.done as f32 / self.count as f32
    }

    fn prompt(&self) -> String {
        if self.open_level().is_none() {
            "Look straight at the camera.".into()
        } else if self.done >= self.count {
            "Keep your eyes open.".into()
        } else if self.done > 0 {
            "Blink again.".into()
        } else if self.count > 1 {
            format!("Blink {} times, then keep your eyes open.", self.count)
        } else {
            "Blink once, then keep your eyes open.".into()
        }
    }

    fn current_move(&self) -> Option<&'static str> {
        self.open_level().map(|_| "blink")
    }
}
