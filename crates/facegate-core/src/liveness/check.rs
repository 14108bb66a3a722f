//! The check: a challenge, its clock, its one-time frame tokens, and the decision.

use std::collections::HashSet;
use std::fmt;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::*;
use crate::face::cosine;
use crate::secret::{constant_time_eq, random_token};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Created,
    InProgress,
    Succeeded,
    Failed,
    Expired,
}

impl Status {
    pub fn is_final(self) -> bool {
        matches!(self, Status::Succeeded | Status::Failed | Status::Expired)
    }
}

/// Why a check failed (stable strings, for APIs and audit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailReason {
    /// The deadline passed before the challenge was done.
    Timeout,
    /// The passive anti-spoof score says the face is not live (printed photo, screen).
    Spoof,
    /// Not the same person on every frame.
    IdentityChanged,
    /// Too many frames without exactly one face.
    FaceLost,
    /// More frames than a challenge can need.
    TooManyFrames,
    /// A movement that was not asked for.
    WrongMove,
    /// A frame of this check was seen in another check (a recording sent again).
    Replayed,
    /// The face jumped between consecutive frames (frames picked from a recording).
    Discontinuous,
}

impl FailReason {
    pub fn message(self) -> &'static str {
        match self {
            FailReason::Timeout => "The time for the check ran out.",
            FailReason::Spoof => "The check could not confirm a live person in front of the camera.",
            FailReason::IdentityChanged => "The face changed during the check.",
            FailReason::FaceLost => "Your face was out of view or not alone for too long.",
            FailReason::TooManyFrames => "The check took too many pictures.",
            FailReason::WrongMove => "That was not the movement asked for.",
            FailReason::Replayed => "These pictures were already used in another check.",
            FailReason::Discontinuous => "The pictures did not come from a camera watching one person.",
        }
    }
}

/// Why a frame was not accepted at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameRefusal {
    #[error("the frame token is not valid for this check (used, from another check, or made up)")]
    BadToken,
    #[error("this exact frame was already sent")]
    Replayed,
    #[error("the check's deadline has passed")]
    Late,
    #[error("the check is already finished")]
    Finished,
    #[error("a frame is already being analysed; wait for its answer")]
    Busy,
}

/// The rules a check is held to.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Time from creation to the end of the challenge.
    pub lifetime: Duration,
    pub max_frames: u32,
    /// Frames without exactly one face tolerated before failing.
    pub max_faceless: u32,
    /// Minimum median passive live score over the frames (when a passive model is loaded).
    pub min_live_score: f32,
    /// Cosine two frames of the same person must reach (lenient: one person across poses).
    pub continuity_threshold: f32,
    /// Frames turned no further than this are frontal: compared with the first at
    /// `continuity_threshold`, and averaged into the embedding a login compares with the account.
    pub frontal_yaw: f32,
    /// Frames turned no further than this are embedded (90: all of them).
    pub embed_yaw: f32,
    /// Every embedded frame, turned ones included, must reach this cosine with the mean of the
    /// check's frontal frames (the identity splice: frontal frames of one person, turns of another).
    pub identity_threshold: Option<f32>,
    /// How far a face may move between consecutive frames (None: not checked).
    pub continuity: Option<super::continuity::Limits>,
    /// Jumps tolerated in one check (a detector's occasional misfire) before it fails.
    pub max_jumps: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            lifetime: Duration::from_secs(30),
            max_frames: 300,
            max_faceless: 60,
            min_live_score: 0.02,
            continuity_threshold: 0.2,
            frontal_yaw: 25.0,
            embed_yaw: 90.0,
            identity_threshold: None,
            continuity: Some(super::continuity::Limits::default()),
            max_jumps: 3,
        }
    }
}

/// The answer to one frame.
#[derive(Debug, Clone, Serialize)]
pub struct FrameOutcome {
    pub status: Status,
    /// The token for the next frame (none once the check is finished).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    /// What to do now, in words (never how far the check has got).
    pub prompt: String,
    /// The move to make now, one word for the page to draw ("left", "blink", ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_move: Option<&'static str>,
    /// Feedback on this frame when it could not be used ("no-face", "several-faces").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame_issue: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<FailReason>,
}

/// The decision, once final.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Decision {
    pub live: bool,
    /// 0-100: see [`Check::decide`].
    pub confidence: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<FailReason>,
    /// Median passive live score (when a passive model is loaded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passive: Option<f32>,
}

/// One liveness check: a challenge, its clock, its one-time frame tokens and what the frames showed.
pub struct Check {
    pub id: String,
    challenge: Box<dyn Challenge>,
    policy: Policy,
    pub created: Instant,
    pub deadline: Instant,
    token: Option<String>,
    in_flight: bool,
    seen: HashSet<[u8; 32]>,
    status: Status,
    frames: u32,
    faceless: u32,
    live_scores: Vec<f32>,
    /// Embeddings of near-frontal frames, for the identity checks (never logged).
    embeddings: Vec<Vec<f32>>,
    /// Turned frames' embeddings seen before the first frontal frame, compared once there is one.
    pending: Vec<Vec<f32>>,
    /// When the frame being analysed arrived.
    accepted_at: Option<Instant>,
    /// The last frame with one face, and when it arrived.
    last_face: Option<(FaceObservation, Instant)>,
    /// The one before it.
    before_last: Option<(FaceObservation, Instant)>,
    jumps: u32,
    /// Continuity carried on once from a frame after a pause ([`super::continuity::PAUSE`]).
    resumed: bool,
    decision: Option<Decision>,
}

/// A check as stored between frames (see [`Check::to_state`]); instants as wall-clock ms.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CheckState {
    id: String,
    challenge: ChallengeState,
    created: i64,
    deadline: i64,
    token: Option<String>,
    in_flight: bool,
    seen: Vec<[u8; 32]>,
    status: Status,
    frames: u32,
    faceless: u32,
    live_scores: Vec<f32>,
    #[serde(with = "super::wall::vectors")]
    embeddings: Vec<Vec<f32>>,
    #[serde(with = "super::wall::vectors")]
    pending: Vec<Vec<f32>>,
    accepted_at: Option<i64>,
    last_face: Option<(FaceObservation, i64)>,
    before_last: Option<(FaceObservation, i64)>,
    jumps: u32,
    #[serde(default)]
    resumed: bool,
    decision: Option<Decision>,
}

impl Check {
    /// Everything the check knows, to be continued by another instance ([`Check::from_state`]).
    pub fn to_state(&self) -> CheckState {
        use super::wall::to_ms;
        CheckState {
            id: self.id.clone(),
            challenge: self.challenge.state(),
            created: to_ms(self.created),
            deadline: to_ms(self.deadline),
            token: self.token.clone(),
            in_flight: self.in_flight,
            seen: self.seen.iter().copied().collect(),
            status: self.status,
            frames: self.frames,
            faceless: self.faceless,
            live_scores: self.live_scores.clone(),
            embeddings: self.embeddings.clone(),
            pending: self.pending.clone(),
            accepted_at: self.accepted_at.map(to_ms),
            last_face: self.last_face.map(|(o, t)| (o, to_ms(t))),
            before_last: self.before_last.map(|(o, t)| (o, to_ms(t))),
            jumps: self.jumps,
            resumed: self.resumed,
            decision: self.decision.clone(),
        }
    }

    /// The check a [`CheckState`] describes, under this instance's `policy`.
    pub fn from_state(s: CheckState, policy: Policy) -> Check {
        use super::wall::from_ms;
        Check {
            id: s.id,
            challenge: s.challenge.into_challenge(),
            policy,
            created: from_ms(s.created),
            deadline: from_ms(s.deadline),
            token: s.token,
            in_flight: s.in_flight,
            seen: s.seen.into_iter().collect(),
            status: s.status,
            frames: s.frames,
            faceless: s.faceless,
            live_scores: s.live_scores,
            embeddings: s.embeddings,
            pending: s.pending,
            accepted_at: s.accepted_at.map(from_ms),
            last_face: s.last_face.map(|(o, t)| (o, from_ms(t))),
            before_last: s.before_last.map(|(o, t)| (o, from_ms(t))),
            jumps: s.jumps,
            resumed: s.resumed,
            decision: s.decision,
        }
    }
}

impl fmt::Debug for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Check")
            .field("id", &self.id)
            .field("challenge", &self.challenge.kind())
            .field("status", &self.status)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

impl Check {
    pub fn new(challenge: Box<dyn Challenge>, policy: Policy, now: Instant) -> Check {
        Check {
            id: random_token(16),
            challenge,
            deadline: now + policy.lifetime,
            policy,
            created: now,
            token: Some(random_token(24)),
            in_flight: false,
            seen: HashSet::new(),
            status: Status::Created,
            frames: 0,
            faceless: 0,
            live_scores: Vec::new(),
            embeddings: Vec::new(),
            pending: Vec::new(),
            accepted_at: None,
            last_face: None,
            before_last: None,
            jumps: 0,
            resumed: false,
            decision: None,
        }
    }

    pub fn kind(&self) -> ChallengeKind {
        self.challenge.kind()
    }

    pub fn params(&self) -> serde_json::Value {
        self.challenge.params()
    }

    pub fn prompt(&self) -> String {
        self.challenge.prompt()
    }

    /// The token the first frame must carry (None once it was handed out... it stays until used).
    pub fn first_token(&self) -> Option<&str> {
        (self.frames == 0 && !self.in_flight)
            .then_some(self.token.as_deref())
            .flatten()
    }

    /// The status, turning to EXPIRED when the deadline passed before the check finished.
    pub fn status(&mut self, now: Instant) -> Status {
        if !self.status.is_final() && now > self.deadline {
            self.finish(Some(FailReason::Timeout), Status::Expired);
        }
        self.status
    }

    pub fn decision(&self) -> Option<&Decision> {
        self.decision.as_ref()
    }

    /// Embeddings of the frontal frames (for matching the check against an account).
    pub fn embeddings(&self) -> &[Vec<f32>] {
        &self.embeddings
    }

    /// Takes a frame in: its token must be the current one (it is used up), the deadline must not
    /// have passed, and the same bytes must never have come before. Then the caller analyses the
    /// frame and calls [`Check::record`].
    pub fn accept(&mut self, token: &str, frame: &[u8], now: Instant) -> Result<(), FrameRefusal> {
        if self.status(now).is_final() {
            return Err(if self.status == Status::Expired {
                FrameRefusal::Late
            } else {
                FrameRefusal::Finished
            });
        }
        if self.in_flight {
            return Err(FrameRefusal::Busy);
        }
        let ok = self
            .token
            .as_deref()
            .is_some_and(|t| constant_time_eq(t.as_bytes(), token.as_bytes()));
        if !ok {
            return Err(FrameRefusal::BadToken);
        }
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, frame);
        let mut hash = [0u8; 32];
        hash.copy_from_slice(digest.as_ref());
        if !self.seen.insert(hash) {
            return Err(FrameRefusal::Replayed);
        }
        self.token = None;
        self.in_flight = true;
        self.accepted_at = Some(now);
        self.status = Status::InProgress;
        Ok(())
    }

    /// A frame of this check was seen in another check: the check fails (see [`super::FrameMemory`]).
    pub fn fail_replayed(&mut self, now: Instant) -> FrameOutcome {
        self.in_flight = false;
        if !self.status(now).is_final() {
            self.finish(Some(FailReason::Replayed), Status::Failed);
        }
        self.outcome(None)
    }

    /// Mean of the frontal embeddings, unit length.
    fn reference(&self) -> Option<Vec<f32>> {
        let first = self.embeddings.first()?;
        let mut mean = vec![0f32; first.len()];
        for e in &self.embeddings {
            for (m, v) in mean.iter_mut().zip(e) {
                *m += v;
            }
        }
        let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        mean.iter_mut().for_each(|v| *v /= norm);
        Some(mean)
    }

    /// The identity checks on one frame's embedding: false when it is someone else.
    fn same_person(&mut self, e: Vec<f32>, frontal: bool) -> bool {
        if frontal {
            if let Some(first) = self.embeddings.first()
                && cosine(first, &e) < self.policy.continuity_threshold
            {
                tracing::debug!(check = %self.id, cosine = cosine(first, &e), "liveness: a frontal frame is unlike the first");
                return false;
            }
            if self.embeddings.len() < 64 {
                self.embeddings.push(e.clone());
            }
        }
        let Some(strict) = self.policy.identity_threshold else {
            return true;
        };
        let Some(reference) = self.reference() else {
            if self.pending.len() < 32 {
                self.pending.push(e);
            }
            return true;
        };
        let pending = std::mem::take(&mut self.pending);
        let least = pending
            .iter()
            .chain(std::iter::once(&e))
            .map(|p| cosine(&reference, p))
            .fold(f32::MAX, f32::min);
        if least < strict {
            tracing::debug!(check = %self.id, cosine = least, frontal, "liveness: a frame is unlike the check's frontal frames");
        }
        least >= strict
    }

    /// Records what the accepted frame showed and hands out the next token. A frame that could not
    /// be analysed at all is recorded as `None` (it counts as a faceless frame).
    pub fn record(&mut self, obs: Option<Observation>, now: Instant) -> FrameOutcome {
        self.in_flight = false;
        if self.status(now).is_final() {
            return self.outcome(None);
        }
        self.frames += 1;
        let obs = obs.unwrap_or_default();
        let mut issue = None;
        match (obs.faces, obs.face) {
            (1, Some(face)) => {
                if let Some(s) = face.live_score {
                    self.live_scores.push(s);
                }
                let arrived = self.accepted_at.unwrap_or(now);
                if let Some(limits) = self.policy.continuity
                    && let Some((prev, at)) = self.last_face
                    && let Some(measure) =
                        super::continuity::jump(&prev, &face, arrived.saturating_duration_since(at), &limits)
                {
                    self.jumps += 1;
                    // Measures only (never pictures or embeddings): why a genuine check failed.
                    tracing::debug!(
                        check = %self.id,
                        measure,
                        ms = arrived.saturating_duration_since(at).as_millis() as u64,
                        yaw = format!("{:.0}->{:.0}", prev.yaw, face.yaw),
                        pitch = format!("{:.0}->{:.0}", prev.pitch, face.pitch),
                        jumps = self.jumps,
                        "liveness: the face jumped between frames"
                    );
                    if self.jumps > self.policy.max_jumps {
                        self.finish(Some(FailReason::Discontinuous), Status::Failed);
                        return self.outcome(None);
                    }
                    // This frame fits the one before the last: the last was the odd one out (a
                    // pose estimate's misfire), and this one carries on. Otherwise this one is
                    // not used (a frame picked from elsewhere): the next is compared with the last.
                    let fits_before = self.before_last.is_some_and(|(b, bt)| {
                        super::continuity::jump(&b, &face, arrived.saturating_duration_since(bt), &limits)
                            .is_none()
                    });
                    let paused = arrived.saturating_duration_since(at) >= super::continuity::PAUSE;
                    if paused && !self.resumed {
                        // The frames stopped for a while (a stalled page or camera, a busy
                        // server): where the head went meanwhile is unknowable, so this frame
                        // (a jump all the same: it counted) is where continuity goes on from.
                        // Without this every later frame jumps from the stale one and a genuine
                        // check fails. Once per check: a script that waits out every jump gets
                        // one picked frame, not a sequence of them.
                        self.resumed = true;
                        self.before_last = None;
                    } else if !fits_before {
                        self.token = Some(random_token(24));
                        return self.outcome(None);
                    }
                    self.last_face = self.before_last;
                }
                self.before_last = self.last_face;
                self.last_face = Some((face, arrived));
                if let Some(e) = obs.embedding
                    && !self.same_person(e, face.yaw.abs() <= self.policy.frontal_yaw)
                {
                    self.finish(Some(FailReason::IdentityChanged), Status::Failed);
                    return self.outcome(None);
                }
                let step = self.challenge.observe(&face);
                if step == Step::Wrong {
                    self.finish(Some(FailReason::WrongMove), Status::Failed);
                    return self.outcome(None);
                }
                if step == Step::Done {
                    let reason = self.final_reason();
                    let status = if reason.is_none() {
                        Status::Succeeded
                    } else {
                        Status::Failed
                    };
                    self.finish(reason, status);
                    return self.outcome(None);
                }
            }
            (n, _) => {
                self.faceless += 1;
                issue = Some(if n > 1 { "several-faces" } else { "no-face" });
                if self.faceless > self.policy.max_faceless {
                    self.finish(Some(FailReason::FaceLost), Status::Failed);
                    return self.outcome(issue);
                }
            }
        }
        if self.frames >= self.policy.max_frames {
            self.finish(Some(FailReason::TooManyFrames), Status::Failed);
            return self.outcome(issue);
        }
        self.token = Some(random_token(24));
        self.outcome(issue)
    }

    fn final_reason(&self) -> Option<FailReason> {
        if let Some(m) = median(&self.live_scores)
            && m < self.policy.min_live_score
        {
            return Some(FailReason::Spoof);
        }
        if self.embeddings.is_empty() {
            // Not a single frontal frame to say who it was.
            return Some(FailReason::IdentityChanged);
        }
        None
    }

    fn finish(&mut self, reason: Option<FailReason>, status: Status) {
        self.status = status;
        self.token = None;
        self.decision = Some(self.decide(reason));
    }

    /// Confidence 0-100: half from the challenge (the share done), half from the passive score
    /// (its median over the frames, full marks at 0.5 and above; 0.4 of that half when no passive
    /// model is loaded). A check that failed for any reason is capped below 50.
    fn decide(&self, reason: Option<FailReason>) -> Decision {
        let passive = median(&self.live_scores);
        let p = passive.map_or(0.4, |m| (m / 0.5).min(1.0));
        let raw = 50.0 * self.challenge.progress() + 50.0 * p;
        let live = reason.is_none();
        let confidence = if live { raw.max(50.0) } else { raw.min(49.0) };
        Decision {
            live,
            confidence: confidence.round().clamp(0.0, 100.0) as u8,
            reason,
            passive,
        }
    }

    fn outcome(&self, issue: Option<&'static str>) -> FrameOutcome {
        FrameOutcome {
            status: self.status,
            next_token: self.token.clone(),
            current_move: if self.status.is_final() {
                None
            } else {
                self.challenge.current_move()
            },
            prompt: if self.status.is_final() {
                match self.decision.as_ref().and_then(|d| d.reason) {
                    None => "Done.".into(),
                    Some(r) => r.message().into(),
                }
            } else {
                self.challenge.prompt()
            },
            frame_issue: issue,
            reason: self.decision.as_ref().and_then(|d| d.reason),
        }
    }
}
