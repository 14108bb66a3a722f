//! Head turns.

use serde::Serialize;

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The person's own left (the face turns towards the image's right: yaw > 0).
    Left,
    Right,
    Up,
    Down,
}

impl Direction {
    pub const ALL: [Direction; 4] = [Direction::Left, Direction::Right, Direction::Up, Direction::Down];

    pub(crate) fn word(self) -> &'static str {
        match self {
            Direction::Left => "left",
            Direction::Right => "right",
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }

    pub(crate) fn opposite(self) -> Direction {
        match self {
            Direction::Left => Direction::Right,
            Direction::Right => Direction::Left,
            Direction::Up => Direction::Down,
            Direction::Down => Direction::Up,
        }
    }
}

/// Turn needed for a sideways step (degrees of yaw from the starting pose).
pub const TURN_YAW: f32 = 25.0;
/// Nod needed for an up/down step (degrees of pitch from the starting pose).
pub const TURN_PITCH: f32 = 15.0;
/// Nose parallax change that must come with a sideways turn (see [`FaceObservation::parallax`]).
pub const TURN_PARALLAX: f32 = 0.08;
/// A movement this many times a step's size in a direction not asked for fails the check.
pub const WRONG_MOVE: f32 = 1.5;
/// The same for up/down: twice a step's size.
pub const WRONG_NOD: f32 = 2.5;
/// Back to the centre: within this many degrees of the starting pose.
pub(crate) const CENTRE: f32 = 12.0;

/// A random sequence of head turns; each needs real rotation of the head from where it started,
/// with the nose's parallax moving the same way for sideways turns.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct HeadTurns {
    pub sequence: Vec<Direction>,
    done: usize,
    start: Option<FaceObservation>,
    centred: bool,
}

impl HeadTurns {
    pub fn new(sequence: Vec<Direction>) -> HeadTurns {
        HeadTurns {
            sequence,
            done: 0,
            start: None,
            centred: true,
        }
    }

    /// Two turns, never the same direction twice in a row.
    pub fn random(rng: &mut Rng) -> HeadTurns {
        let first = Direction::ALL[rng.below(4) as usize];
        let others: Vec<Direction> = Direction::ALL.into_iter().filter(|d| *d != first).collect();
        let second = others[rng.below(others.len() as u64) as usize];
        HeadTurns::new(vec![first, second])
    }

    fn reached(&self, start: &FaceObservation, f: &FaceObservation, d: Direction) -> bool {
        Self::moved(start, f, d, 1.0)
    }

    /// Has the head moved in direction `d` by `factor` times the turn a step needs?
    pub(crate) fn moved(start: &FaceObservation, f: &FaceObservation, d: Direction, factor: f32) -> bool {
        let dyaw = f.yaw - start.yaw;
        let dpitch = f.pitch - start.pitch;
        let dpar = f.parallax - start.parallax;
        let (yaw, pitch, par) = (TURN_YAW * factor, TURN_PITCH * factor, TURN_PARALLAX * factor);
        match d {
            Direction::Left => dyaw >= yaw && dpar >= par,
            Direction::Right => dyaw <= -yaw && dpar <= -par,
            // A nod nobody asked for counts only with the head facing the camera: pitch estimates
            // wander by 20-30 degrees while a head turns sideways (measured on the live video).
            Direction::Up => dpitch >= pitch && dyaw.abs() < if factor > 1.0 { CENTRE } else { TURN_YAW },
            Direction::Down => dpitch <= -pitch && dyaw.abs() < if factor > 1.0 { CENTRE } else { TURN_YAW },
        }
    }
}

impl Challenge for HeadTurns {
    fn state(&self) -> ChallengeState {
        ChallengeState::HeadTurns(self.clone())
    }
    fn kind(&self) -> ChallengeKind {
        ChallengeKind::HeadTurns
    }

    fn params(&self) -> serde_json::Value {
        serde_json::json!({ "sequence": self.sequence })
    }

    fn observe(&mut self, f: &FaceObservation) -> Step {
        if self.done >= self.sequence.len() {
            return Step::Done;
        }
        let Some(start) = self.start else {
            // The starting pose: roughly facing the camera.
            if f.yaw.abs() < 20.0 && f.pitch.abs() < 30.0 {
                self.start = Some(*f);
            }
            return Step::Waiting;
        };
        let near_centre = (f.yaw - start.yaw).abs() < CENTRE && (f.pitch - start.pitch).abs() < CENTRE;
        if near_centre {
            self.centred = true;
        }
        let want = self.sequence[self.done];
        // A turn counts after a return to the centre, or straight after the opposite turn (a swing
        // from one side to the other passes the centre between two frames).
        let prev = self.done.checked_sub(1).map(|i| self.sequence[i]);
        // A clear movement nobody asked for (well past a step's size, in a direction that is
        // neither the one asked nor the one just done) is what a replayed recording does.
        let wrong = Direction::ALL
            .into_iter()
            .filter(|d| *d != want && Some(*d) != prev)
            .any(|d| {
                // Pitch wanders more than yaw when people turn (and its estimate is noisier).
                let factor = if matches!(d, Direction::Up | Direction::Down) {
                    WRONG_NOD
                } else {
                    WRONG_MOVE
                };
                Self::moved(&start, f, d, factor)
            });
        if wrong {
            return Step::Wrong;
        }
        let may_count = self.centred || prev == Some(want.opposite());
        if may_count && self.reached(&start, f, want) {
            self.done += 1;
            self.centred = false;
            return if self.done == self.sequence.len() {
                Step::Done
            } else {
                Step::Advanced
            };
        }
        Step::Waiting
    }

    fn progress(&self) -> f32 {
        self.done as f32 / self.sequence.len().max(1) as f32
    }

    fn current_move(&self) -> Option<&'static str> {
        self.start?;
        self.sequence.get(self.done).map(|d| d.word())
    }

    fn prompt(&self) -> String {
        if self.start.is_none() {
            return "Look straight at the camera.".into();
        }
        match self.sequence.get(self.done) {
            Some(d) if !self.centred && self.done > 0 && self.sequence[self.done - 1] != d.opposite() => {
                "Look straight at the camera again.".into()
            }
            Some(d) => format!("Slowly turn your head {}.", d.word()),
            None => "Done.".into(),
        }
    }
}
