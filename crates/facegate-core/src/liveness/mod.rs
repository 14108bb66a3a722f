//! Liveness: server-chosen challenges and the check that runs them.
//!
//! The server picks a [`Challenge`] kind and its parameters at random, keeps the clock, and binds
//! every frame to the [`Check`] with a one-time token. The HTTP layer analyses each frame with the
//! vision pipeline and hands the numbers to [`Check::record`] as an [`Observation`]; the challenge's
//! state machine decides whether it moved on. No pixels reach this module, only measures.
//!
//! Conventions (those of `facegate-vision`): positions are fractions of the frame (0-1, x to the
//! image's right, y down); yaw > 0 means the face turns towards the image's right, which is the
//! person's own left; pitch > 0 means the chin goes up.

use std::fmt;

use serde::Serialize;

mod blink;
mod check;
pub mod continuity;
mod head_turns;
pub mod memory;
mod moves;
mod nose_target;
pub mod port;
mod rng;
pub mod service;
mod smile;
#[cfg(test)]
mod tests;
mod wall;

pub use blink::*;
pub use check::*;
pub use head_turns::*;
pub use memory::FrameMemory;
pub use moves::*;
pub use nose_target::*;
pub use port::{Analysis, FramePort, PortError, Priority};
pub use rng::Rng;
pub use service::{
    LivenessError, LivenessService, LivenessSettings, MAX_PER_ORIGIN, Owner, Report, Snapshot, Started,
    USE_WITHIN,
};
pub use smile::*;

/// Moves in a default [`Moves`] challenge: `facegate liveness-eval` measured 3 and 4; with 3, a
/// recording of the person replayed or walked frame by frame passed 1-4% of checks, with 4 none of
/// 100 (docs/liveness.md).
pub const DEFAULT_MOVES: usize = 4;

/// Everything measured on one face in one frame.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct FaceObservation {
    /// Nose tip, as a fraction of the frame.
    pub nose: (f32, f32),
    /// Face box height over frame height.
    pub size: f32,
    pub yaw: f32,
    pub pitch: f32,
    pub roll: f32,
    /// Horizontal offset of the nose tip from the midpoint of the inner eye corners, over the
    /// distance between the outer eye corners. A real head turning sideways moves the nose off
    /// that midline (parallax of a 3-D nose); a flat picture turned or slid keeps it where it was.
    pub parallax: f32,
    /// Mean eye aspect ratio of the two eyes (~0.2-0.35 open, lower when closed).
    pub eyes: f32,
    /// Mouth width over outer eye corner distance (larger in a smile).
    pub mouth_width: f32,
    /// Mouth corners above the lip midline, over mouth width (> 0 in a smile).
    pub corner_lift: f32,
    /// Passive anti-spoof model: probability that the face is live, when a model is loaded.
    pub live_score: Option<f32>,
    /// Centre of the face box, as a fraction of the frame.
    pub center: (f32, f32),
    /// Face box width over frame width.
    pub width: f32,
}

/// What the server saw in one frame.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observation {
    /// Faces of a meaningful size (bystanders far smaller than the main face are not counted).
    pub faces: usize,
    pub face: Option<FaceObservation>,
    /// The frame's embedding, for the identity checks.
    pub embedding: Option<Vec<f32>>,
    /// Perceptual hash of the frame (256 bits): near-identical pictures hash within a few bits.
    pub phash: Option<[u64; 4]>,
}

/// What a challenge says after a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing new.
    Waiting,
    /// One more part of the challenge is done.
    Advanced,
    /// The challenge is complete.
    Done,
    /// A movement that was not asked for (a recording doing its own thing): the check fails.
    Wrong,
}

/// A kind of challenge: a state machine over observations. New kinds implement this trait and are
/// added to [`ChallengeKind`] so the server can choose them.
pub trait Challenge: Send + Sync + fmt::Debug {
    fn kind(&self) -> ChallengeKind;
    /// Parameters the page needs to show the challenge (targets, directions), as JSON.
    fn params(&self) -> serde_json::Value;
    /// Feeds one frame's single face.
    fn observe(&mut self, face: &FaceObservation) -> Step;
    /// Share of the challenge done, 0-1 (for the confidence only: never shown to the client).
    fn progress(&self) -> f32;
    /// What the person should do now, in plain words.
    fn prompt(&self) -> String;
    /// The move to make now, as one word the page can draw ("left", "right", "up", "down",
    /// "blink"), when there is one.
    fn current_move(&self) -> Option<&'static str> {
        None
    }
    /// The challenge's whole state, to keep a check in the database between frames (so any
    /// instance can take its next frame).
    fn state(&self) -> ChallengeState;
}

/// A challenge's state as stored: one variant per kind.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ChallengeState {
    Moves(Moves),
    HeadTurns(HeadTurns),
    NoseTarget(NoseTarget),
    Blink(Blink),
    Smile(Smile),
}

impl ChallengeState {
    pub fn into_challenge(self) -> Box<dyn Challenge> {
        match self {
            ChallengeState::Moves(c) => Box::new(c),
            ChallengeState::HeadTurns(c) => Box::new(c),
            ChallengeState::NoseTarget(c) => Box::new(c),
            ChallengeState::Blink(c) => Box::new(c),
            ChallengeState::Smile(c) => Box::new(c),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChallengeKind {
    HeadTurns,
    NoseTarget,
    Blink,
    Smile,
    /// A random sequence of moves of several kinds (see [`Moves`]): the default.
    Moves,
}

impl ChallengeKind {
    pub const ALL: [ChallengeKind; 5] = [
        ChallengeKind::HeadTurns,
        ChallengeKind::NoseTarget,
        ChallengeKind::Blink,
        ChallengeKind::Smile,
        ChallengeKind::Moves,
    ];
    /// The four kinds before [`ChallengeKind::Moves`] (the tests' seeds are for this list).
    pub const CLASSIC: [ChallengeKind; 4] = [
        ChallengeKind::HeadTurns,
        ChallengeKind::NoseTarget,
        ChallengeKind::Blink,
        ChallengeKind::Smile,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChallengeKind::HeadTurns => "head-turns",
            ChallengeKind::NoseTarget => "nose-target",
            ChallengeKind::Blink => "blink",
            ChallengeKind::Smile => "smile",
            ChallengeKind::Moves => "moves",
        }
    }

    pub fn parse(s: &str) -> Option<ChallengeKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s.trim())
    }

    /// A new challenge of this kind with random parameters (a [`Moves`] sequence of [`DEFAULT_MOVES`] moves).
    pub fn create(self, rng: &mut Rng) -> Box<dyn Challenge> {
        self.create_with(rng, DEFAULT_MOVES)
    }

    /// The same, with `moves` moves in a [`Moves`] sequence.
    pub fn create_with(self, rng: &mut Rng, moves: usize) -> Box<dyn Challenge> {
        match self {
            ChallengeKind::Moves => Box::new(Moves::random(rng, moves)),
            ChallengeKind::HeadTurns => Box::new(HeadTurns::random(rng)),
            ChallengeKind::NoseTarget => Box::new(NoseTarget::random(rng)),
            ChallengeKind::Blink => Box::new(Blink::new(1 + rng.below(2) as usize)),
            ChallengeKind::Smile => Box::new(Smile::default()),
        }
    }
}

/// A pose or expression that must be held for two frames in a row: `ok` now or not.
pub(crate) fn hold(held: &mut u32, ok: bool) -> Step {
    if !ok {
        *held = 0;
        return Step::Waiting;
    }
    *held += 1;
    if *held >= 2 { Step::Done } else { Step::Advanced }
}

pub(crate) fn dist(a: (f32, f32), b: (f32, f32)) -> f32 {
    ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt()
}

pub(crate) fn median(v: &[f32]) -> Option<f32> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f32::total_cmp);
    Some(s[s.len() / 2])
}
