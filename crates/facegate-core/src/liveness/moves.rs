//! Moves: a short random sequence of moves of several kinds (head turns left, right, up, down and
//! blinks, a random number of times), in order. A recording rarely holds the drawn sequence in
//! order, and a move nobody asked for fails the check: a turn well past a step's size in another
//! direction, or a blink more than asked for.

use serde::Serialize;

use super::*;

/// One move of a [`Moves`] challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    Turn(Direction),
    /// Blink this many times (then keep the eyes open for a moment: one more blink fails).
    Blink(u8),
}

impl Move {
    /// What the page shows for this move ("left", "right", "up", "down", "blink").
    pub fn word(self) -> &'static str {
        match self {
            Move::Turn(d) => d.word(),
            Move::Blink(_) => "blink",
        }
    }
}

impl Serialize for Move {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.word())
    }
}

/// Frames with open eyes after the last blink asked for before the blink counts as done (a blink
/// in that time is one too many).
pub const BLINK_QUIET_FRAMES: u32 = 5;

/// A move as stored with its check (the public form above is one word, without blink counts).
#[derive(serde::Serialize, serde::Deserialize)]
enum StoredMove {
    Turn(Direction),
    Blink(u8),
}

mod stored_moves {
    use super::{Move, StoredMove};

    pub fn serialize<S: serde::Serializer>(moves: &[Move], s: S) -> Result<S::Ok, S::Error> {
        let v: Vec<StoredMove> = moves
            .iter()
            .map(|m| match *m {
                Move::Turn(d) => StoredMove::Turn(d),
                Move::Blink(n) => StoredMove::Blink(n),
            })
            .collect();
        serde::Serialize::serialize(&v, s)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Move>, D::Error> {
        let v: Vec<StoredMove> = serde::Deserialize::deserialize(d)?;
        Ok(v.into_iter()
            .map(|m| match m {
                StoredMove::Turn(d) => Move::Turn(d),
                StoredMove::Blink(n) => Move::Blink(n),
            })
            .collect())
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Moves {
    #[serde(with = "stored_moves")]
    pub sequence: Vec<Move>,
    done: usize,
    start: Option<FaceObservation>,
    centred: bool,
    /// Open-eye levels seen on frames facing the camera.
    open: Vec<f32>,
    closed: bool,
    blinks: u8,
    quiet: u32,
}

impl Moves {
    pub fn new(sequence: Vec<Move>) -> Moves {
        Moves {
            sequence,
            done: 0,
            start: None,
            centred: true,
            open: Vec::new(),
            closed: false,
            blinks: 0,
            quiet: 0,
        }
    }

    /// `len` moves (at least 2), never the same move twice in a row; with 3 or more, at least one
    /// that is not a sideways turn (a nod or a blink), so two sideways turns in a recording do not
    /// make a sequence. Blinks: 1 or 2.
    pub fn random(rng: &mut Rng, len: usize) -> Moves {
        let len = len.max(2);
        loop {
            let mut seq: Vec<Move> = Vec::with_capacity(len);
            while seq.len() < len {
                let m = match rng.below(5) {
                    4 => Move::Blink(1 + rng.below(2) as u8),
                    i => Move::Turn(Direction::ALL[i as usize]),
                };
                let same = match (seq.last(), m) {
                    (Some(Move::Blink(_)), Move::Blink(_)) => true,
                    (Some(a), b) => *a == b,
                    (None, _) => false,
                };
                if !same {
                    seq.push(m);
                }
            }
            let other = seq
                .iter()
                .any(|m| !matches!(m, Move::Turn(Direction::Left | Direction::Right)));
            if len < 3 || other {
                return Moves::new(seq);
            }
        }
    }

    fn open_level(&self) -> Option<f32> {
        (self.open.len() >= 3).then(|| {
            let mut v = self.open.clone();
            v.sort_by(f32::total_cmp);
            v[v.len() / 2]
        })
    }

    fn advance(&mut self) -> Step {
        self.done += 1;
        self.centred = false;
        self.blinks = 0;
        self.quiet = 0;
        if self.done >= self.sequence.len() {
            Step::Done
        } else {
            Step::Advanced
        }
    }

    fn prev_turn(&self) -> Option<Direction> {
        match self.done.checked_sub(1).map(|i| self.sequence[i]) {
            Some(Move::Turn(d)) => Some(d),
            _ => None,
        }
    }
}

impl Challenge for Moves {
    fn state(&self) -> ChallengeState {
        ChallengeState::Moves(self.clone())
    }
    fn kind(&self) -> ChallengeKind {
        ChallengeKind::Moves
    }

    /// Only how many moves there are: each answer says the one to do now.
    fn params(&self) -> serde_json::Value {
        serde_json::json!({ "moves": self.sequence.len() })
    }

    fn observe(&mut self, f: &FaceObservation) -> Step {
        let Some(&want) = self.sequence.get(self.done) else {
            return Step::Done;
        };
        let Some(start) = self.start else {
            if f.yaw.abs() < 20.0 && f.pitch.abs() < 30.0 {
                self.start = Some(*f);
                if f.eyes > 0.0 {
                    self.open.push(f.eyes);
                }
            }
            return Step::Waiting;
        };
        let near_centre = (f.yaw - start.yaw).abs() < CENTRE && (f.pitch - start.pitch).abs() < CENTRE;
        if near_centre {
            self.centred = true;
        }
        let prev = self.prev_turn();
        let asked = match want {
            Move::Turn(d) => Some(d),
            Move::Blink(_) => None,
        };
        let wrong = Direction::ALL
            .into_iter()
            .filter(|d| Some(*d) != asked && Some(*d) != prev)
            .any(|d| {
                let factor = if matches!(d, Direction::Up | Direction::Down) {
                    WRONG_NOD
                } else {
                    WRONG_MOVE
                };
                HeadTurns::moved(&start, f, d, factor)
            });
        if wrong {
            return Step::Wrong;
        }
        match want {
            Move::Turn(d) => {
                let may_count = self.centred || prev == Some(d.opposite());
                if may_count && HeadTurns::moved(&start, f, d, 1.0) {
                    return self.advance();
                }
                Step::Waiting
            }
            Move::Blink(n) => {
                // Eyes are measured only facing the camera, after a return to the centre.
                if !self.centred || !near_centre || f.eyes <= 0.0 {
                    return Step::Waiting;
                }
                let Some(level) = self.open_level() else {
                    self.open.push(f.eyes);
                    return Step::Waiting;
                };
                if self.closed {
                    if f.eyes > level * BLINK_OPEN {
                        self.closed = false;
                        self.blinks += 1;
                    }
                    return Step::Waiting;
                }
                if f.eyes < level * BLINK_CLOSED {
                    if self.blinks >= n {
                        // One blink more than asked: what a clip of someone blinking does.
                        return Step::Wrong;
                    }
                    self.closed = true;
                    return Step::Waiting;
                }
                if self.open.len() < 15 && self.blinks == 0 {
                    self.open.push(f.eyes);
                }
                if self.blinks >= n {
                    self.quiet += 1;
                    if self.quiet >= BLINK_QUIET_FRAMES {
                        return self.advance();
                    }
                }
                Step::Waiting
            }
        }
    }

    fn progress(&self) -> f32 {
        self.done as f32 / self.sequence.len().max(1) as f32
    }

    fn current_move(&self) -> Option<&'static str> {
        self.start?;
        self.sequence.get(self.done).map(|m| m.word())
    }

    fn prompt(&self) -> String {
        if self.start.is_none() {
            return "Look straight at the camera.".into();
        }
        match self.sequence.get(self.done) {
            None => "Done.".into(),
            Some(Move::Turn(d)) if !self.centred && self.prev_turn() != Some(d.opposite()) => {
                "Look straight at the camera again.".into()
            }
            Some(Move::Blink(_)) if !self.centred => "Look straight at the camera again.".into(),
            Some(Move::Turn(d)) => format!("Slowly turn your head {}.", d.word()),
            Some(Move::Blink(1)) => "Blink once, then keep your eyes open.".into(),
            Some(Move::Blink(n)) if self.blinks > 0 && self.blinks < *n => "Blink again.".into(),
            Some(Move::Blink(n)) if self.blinks >= *n => "Keep your eyes open.".into(),
            Some(Move::Blink(n)) => format!("Blink {n} times, then keep your eyes open."),
        }
    }
}
