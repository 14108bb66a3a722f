//! The frames of every check, kept for a while across all checks: a frame whose perceptual hash
//! is within a few bits of a frame another check saw is a replay (the same recording sent again,
//! looped, re-encoded or with a byte changed). Within one check, frames may look alike (a person
//! holding still); across checks they may not.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Bits (of 256) within which two frames count as the same picture. Measured by `facegate
/// liveness-eval`: the same frame re-encoded, with a byte changed or with camera-like noise stays
/// far below; frames of the live video a second apart stay far above (docs/liveness.md).
pub const SAME_PICTURE_BITS: u32 = 24;

/// Frames of a check another check saw before the check fails (one could be chance: a person
/// holding very still in two checks a moment apart; a replayed recording matches frame after frame).
pub const REPLAY_FRAMES: u32 = 3;

#[derive(Debug)]
pub struct FrameMemory {
    entries: VecDeque<(Instant, u64, [u64; 4])>,
    /// How long a frame is remembered.
    pub keep: Duration,
    /// At most this many frames (the oldest go first).
    pub max_entries: usize,
    pub threshold: u32,
}

impl Default for FrameMemory {
    fn default() -> Self {
        FrameMemory::new(Duration::from_secs(30 * 60), 200_000, SAME_PICTURE_BITS)
    }
}

/// Bits that differ between two hashes.
pub fn distance(a: &[u64; 4], b: &[u64; 4]) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

/// A check's tag in the memory (from its id).
pub fn tag(check_id: &str) -> u64 {
    // FNV-1a: only to tell checks apart in memory, not a secret.
    check_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl FrameMemory {
    pub fn new(keep: Duration, max_entries: usize, threshold: u32) -> FrameMemory {
        FrameMemory {
            entries: VecDeque::new(),
            keep,
            max_entries,
            threshold,
        }
    }

    /// Was this picture seen in another check? Then remembers it for this check.
    pub fn seen_elsewhere(&mut self, check: u64, hash: [u64; 4], now: Instant) -> bool {
        while let Some((t, _, _)) = self.entries.front() {
            if now.saturating_duration_since(*t) > self.keep || self.entries.len() >= self.max_entries {
                self.entries.pop_front();
            } else {
                break;
            }
        }
        let seen = self
            .entries
            .iter()
            .any(|(_, c, h)| *c != check && distance(h, &hash) <= self.threshold);
        self.entries.push_back((now, check, hash));
        seen
    }

    /// Remembers a frame another instance saw (for check `check`), without asking.
    pub fn insert(&mut self, check: u64, hash: [u64; 4], now: Instant) {
        if self.entries.len() >= self.max_entries {
            self.entries.pop_front();
        }
        self.entries.push_back((now, check, hash));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
