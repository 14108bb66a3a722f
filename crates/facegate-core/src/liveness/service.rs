//! Liveness checks as a service: creates checks with random server-chosen challenges, has every
//! frame analysed by the face engine (through the [`FramePort`]) and feeds the numbers to the
//! check's state machine. Used by the login page (owner: the browser's device cookie) and by the
//! `/v1/liveness/sessions` API (owner: the OAuth client). Checks live in memory on this instance;
//! with several instances the server stores each check after every change ([`LivenessService::snapshot`])
//! and takes the stored one before every use ([`LivenessService::adopt`]).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::port::{Analysis, FramePort, PortError, Priority};
use super::{ChallengeKind, Check, Decision, FrameOutcome, FrameRefusal, Policy, Rng, Status};

/// Who may use a check.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Owner {
    /// A browser on the login page, by its device cookie.
    Browser(String),
    /// An API client, by client id.
    Client(String),
}

#[derive(Debug, Clone)]
pub struct LivenessSettings {
    pub kinds: Vec<ChallengeKind>,
    /// Fixed seed for the challenge parameters (tests only: every check gets the same challenge).
    pub seed: Option<u64>,
    pub lifetime: Duration,
    /// How long a finished check's result can still be read.
    pub keep_results: Duration,
    /// Moves in a [`super::Moves`] challenge.
    pub moves: usize,
    /// Keep every frame's perceptual hash across checks and fail a check that sends a frame
    /// another check saw ([`super::FrameMemory`]).
    pub remember_frames: bool,
}

impl Default for LivenessSettings {
    fn default() -> Self {
        LivenessSettings {
            // Smile is left out by default: one smile is all a recording of the person smiling
            // needs (docs/liveness.md). FACEGATE_LIVENESS_CHALLENGES can add it.
            // A random sequence of moves of several kinds: the eval (docs/liveness.md) measured
            // head-turns, nose-target and blink alone as passable by a recording or a script.
            kinds: vec![ChallengeKind::Moves],
            seed: None,
            lifetime: Duration::from_secs(45),
            keep_results: Duration::from_secs(10 * 60),
            moves: super::DEFAULT_MOVES,
            remember_frames: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LivenessError {
    #[error("no such liveness check")]
    NotFound,
    #[error("{0}")]
    Refused(FrameRefusal),
    #[error("the liveness check has not succeeded")]
    NotPassed,
    #[error("the liveness check was already used")]
    Used,
    #[error("the liveness check was made for another sign-in")]
    WrongBinding,
    #[error("the liveness check passed too long ago")]
    Stale,
    #[error("too many liveness checks are running from this address")]
    TooMany,
    #[error("{0}")]
    Unavailable(String),
    /// The face engine's queue is full; the frame was not taken (its token still holds).
    #[error("the server is busy: send the frame again in {retry_after} s")]
    Busy { retry_after: u64 },
}

#[derive(Debug)]
struct Entry {
    owner: Owner,
    check: Check,
    client_request_token: Option<String>,
    /// Keep the best frontal frame (JPEG bytes as sent) to hand back as a reference image.
    want_reference: bool,
    reference: Option<(f32, Vec<u8>)>,
    used: bool,
    /// What the check was started for (a pending login's id, an enrolment): it is usable for that only.
    binding: Option<String>,
    /// Where it was started from (the client address), for the per-address cap.
    origin: Option<String>,
    /// When it succeeded.
    succeeded_at: Option<Instant>,
    /// Frames accepted so far: after the first, the check is under way and its frames go first.
    frames_sent: u32,
    /// Frames another check saw (see [`super::FrameMemory`]).
    replayed_frames: u32,
    /// Changes so far: a stored copy with a higher version is newer (see [`LivenessService::adopt`]).
    version: u64,
}

/// An [`Entry`] as stored between frames.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct EntryState {
    owner: Owner,
    check: super::CheckState,
    client_request_token: Option<String>,
    want_reference: bool,
    #[serde(with = "super::wall::bytes")]
    reference: Option<(f32, Vec<u8>)>,
    used: bool,
    binding: Option<String>,
    origin: Option<String>,
    succeeded_at: Option<i64>,
    frames_sent: u32,
    replayed_frames: u32,
}

/// A check as another instance needs it: its version, when it may be forgotten (wall-clock
/// seconds), and its state (JSON; it holds the check's embeddings: never log it).
#[derive(Clone)]
pub struct Snapshot {
    pub version: u64,
    pub expires_at: i64,
    pub state: Vec<u8>,
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("version", &self.version)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A passed check is usable this long after it passed.
pub const USE_WITHIN: Duration = Duration::from_secs(60);
/// Checks running at once from one address (an office behind one NAT runs several; one address
/// cannot take the whole `MAX_CHECKS`).
pub const MAX_PER_ORIGIN: usize = 16;

/// What a new check looks like to its caller.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Started {
    pub id: String,
    pub kind: ChallengeKind,
    pub params: serde_json::Value,
    pub prompt: String,
    /// The token for the first frame (absent when an idempotent repeat finds the check under way).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame_token: Option<String>,
    pub expires_in: u64,
    pub status: Status,
    /// An idempotent repeat found this check (it was not made now).
    #[serde(skip)]
    pub existing: bool,
}

impl Started {
    fn of(check: &mut Check, now: Instant, existing: bool) -> Started {
        Started {
            status: check.status(now),
            id: check.id.clone(),
            kind: check.kind(),
            params: check.params(),
            prompt: check.prompt(),
            frame_token: check.first_token().map(str::to_string),
            expires_in: check.deadline.saturating_duration_since(now).as_secs(),
            existing,
        }
    }
}

/// A check's result as the API reports it.
#[derive(Debug, Clone)]
pub struct Report {
    pub id: String,
    pub kind: ChallengeKind,
    pub status: Status,
    pub decision: Option<Decision>,
    pub reference: Option<Vec<u8>>,
}

pub struct LivenessService<P: FramePort> {
    port: P,
    has_passive: bool,
    policy: Policy,
    pub settings: LivenessSettings,
    checks: Mutex<HashMap<String, Arc<Mutex<Entry>>>>,
    rng: Mutex<Rng>,
    memory: Mutex<super::FrameMemory>,
    clock: Arc<dyn Fn() -> Instant + Send + Sync>,
    /// Told of every frame remembered, so other instances can remember it too.
    frame_hook: std::sync::OnceLock<FrameHook>,
}

/// Told of each frame remembered: (check tag, perceptual hash).
type FrameHook = Box<dyn Fn(u64, [u64; 4]) + Send + Sync>;

/// Checks kept in memory at most (running ones and results still readable).
const MAX_CHECKS: usize = 20_000;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<P: FramePort> fmt::Debug for LivenessService<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LivenessService")
            .field("has_passive", &self.has_passive)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl<P: FramePort> LivenessService<P> {
    /// `port`: the face engine; `continuity_threshold`: the cosine two frames of one check must reach.
    pub fn new(
        port: impl Into<P>,
        has_landmarks: bool,
        has_passive: bool,
        continuity_threshold: f32,
        mut settings: LivenessSettings,
    ) -> LivenessService<P> {
        // Without 106 landmarks there are no eye or mouth measures: only head movement challenges.
        if !has_landmarks {
            settings
                .kinds
                .retain(|k| matches!(k, ChallengeKind::HeadTurns | ChallengeKind::NoseTarget));
            if settings.kinds.is_empty() {
                settings.kinds.push(ChallengeKind::HeadTurns);
            }
        }
        let rng = settings.seed.map_or_else(Rng::from_system, Rng::seeded);
        let port: P = port.into();
        LivenessService {
            policy: Policy {
                lifetime: settings.lifetime,
                continuity_threshold,
                identity_threshold: port.identity_threshold(),
                ..Policy::default()
            },
            port,
            has_passive,
            settings,
            checks: Mutex::new(HashMap::new()),
            rng: Mutex::new(rng),
            memory: Mutex::new(super::FrameMemory::default()),
            clock: Arc::new(Instant::now),
            frame_hook: std::sync::OnceLock::new(),
        }
    }

    /// The same service with another clock (the eval runs checks at a camera's frame rate).
    pub fn with_clock(mut self, clock: impl Fn() -> Instant + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The same service with other rules for its checks.
    pub fn with_policy(mut self, edit: impl FnOnce(&mut Policy)) -> Self {
        edit(&mut self.policy);
        self
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    fn now(&self) -> Instant {
        (self.clock)()
    }

    pub fn has_passive_model(&self) -> bool {
        self.has_passive
    }

    /// Starts a check. With a `client_request_token` already used by this owner (and still known),
    /// the same check is returned instead of a new one.
    pub fn start(
        &self,
        owner: Owner,
        client_request_token: Option<String>,
        want_reference: bool,
    ) -> Result<Started, LivenessError> {
        self.start_bound(owner, client_request_token, want_reference, None, None)
    }

    /// Starts a check usable only for `binding` (a pending login, an enrolment), from `origin`
    /// (an address: at most `MAX_PER_ORIGIN` running at once).
    pub fn start_bound(
        &self,
        owner: Owner,
        client_request_token: Option<String>,
        want_reference: bool,
        binding: Option<String>,
        origin: Option<String>,
    ) -> Result<Started, LivenessError> {
        let now = self.now();
        let mut checks = lock(&self.checks);
        let keep = self.settings.keep_results;
        checks.retain(|_, e| lock(e).check.deadline + keep > now);
        if let Some(crt) = &client_request_token {
            for e in checks.values() {
                let mut e = lock(e);
                if e.owner == owner && e.client_request_token.as_deref() == Some(crt.as_str()) {
                    return Ok(Started::of(&mut e.check, now, true));
                }
            }
        }
        if let Some(o) = &origin {
            let running = checks
                .values()
                .filter(|e| {
                    let mut e = lock(e);
                    e.origin.as_ref() == Some(o) && !e.check.status(now).is_final()
                })
                .count();
            if running >= MAX_PER_ORIGIN {
                return Err(LivenessError::TooMany);
            }
        }
        if checks.len() >= MAX_CHECKS {
            return Err(LivenessError::Unavailable(format!(
                "{MAX_CHECKS} liveness checks are under way; try again in a minute"
            )));
        }
        let challenge = {
            let mut rng = match self.settings.seed {
                // A fixed seed gives every check the same challenge (tests).
                Some(seed) => Rng::seeded(seed),
                None => lock(&self.rng).clone(),
            };
            let kind = self.settings.kinds[rng.below(self.settings.kinds.len() as u64) as usize];
            let c = kind.create_with(&mut rng, self.settings.moves);
            if self.settings.seed.is_none() {
                *lock(&self.rng) = rng;
            }
            c
        };
        let mut check = Check::new(challenge, self.policy.clone(), now);
        let started = Started::of(&mut check, now, false);
        checks.insert(
            check.id.clone(),
            Arc::new(Mutex::new(Entry {
                owner,
                check,
                client_request_token,
                want_reference,
                reference: None,
                used: false,
                binding,
                origin,
                succeeded_at: None,
                frames_sent: 0,
                replayed_frames: 0,
                version: 1,
            })),
        );
        Ok(started)
    }

    fn entry(&self, owner: &Owner, id: &str) -> Result<Arc<Mutex<Entry>>, LivenessError> {
        let e = lock(&self.checks)
            .get(id)
            .cloned()
            .ok_or(LivenessError::NotFound)?;
        // Another owner's check is answered as if it did not exist.
        if lock(&e).owner != *owner {
            return Err(LivenessError::NotFound);
        }
        Ok(e)
    }

    /// One frame: token and replay checks, then analysis, then the state machine.
    pub async fn frame(
        &self,
        owner: &Owner,
        id: &str,
        token: &str,
        bytes: Vec<u8>,
    ) -> Result<FrameOutcome, LivenessError> {
        let entry = self.entry(owner, id)?;
        // A place in the face engine first (a frame of a check under way goes before new work): when
        // there is none the frame is refused before its token is used, so the page sends it again.
        let priority = if lock(&entry).frames_sent > 0 {
            Priority::Continuing
        } else {
            Priority::New
        };
        let permit = self.port.reserve(priority).map_err(|e| match e {
            PortError::Busy { retry_after } => LivenessError::Busy {
                retry_after: retry_after.as_secs().max(1),
            },
            PortError::Unavailable(m) => LivenessError::Unavailable(m),
        })?;
        {
            let mut g = lock(&entry);
            g.check
                .accept(token, &bytes, self.now())
                .map_err(LivenessError::Refused)?;
            g.frames_sent += 1;
            g.version += 1;
        }
        let (bytes, analysed) = self.port.analyse(permit, bytes, self.policy.embed_yaw).await;
        let obs = match analysed {
            Ok(Analysis::Observed(o)) => Some(o),
            Ok(Analysis::Unreadable) => None,
            Err(e) => {
                let mut g = lock(&entry);
                let _ = g.check.record(None, self.now());
                g.version += 1;
                return Err(LivenessError::Unavailable(e.to_string()));
            }
        };
        let mut g = lock(&entry);
        if g.want_reference
            && let Some(f) = obs
                .as_ref()
                .and_then(|o| o.face.filter(|_| o.faces == 1 && o.embedding.is_some()))
        {
            let score = f.yaw.abs() + f.pitch.abs() / 2.0;
            if g.reference.as_ref().is_none_or(|(s, _)| score < *s) {
                g.reference = Some((score, bytes));
            }
        }
        let now = self.now();
        let replayed = self.settings.remember_frames
            && obs.as_ref().and_then(|o| o.phash).is_some_and(|h| {
                let tag = super::memory::tag(&g.check.id);
                let seen = lock(&self.memory).seen_elsewhere(tag, h, now);
                if let Some(hook) = self.frame_hook.get() {
                    hook(tag, h);
                }
                seen
            });
        if replayed {
            g.replayed_frames += 1;
        }
        let out = if g.replayed_frames >= super::memory::REPLAY_FRAMES {
            g.check.fail_replayed(now)
        } else {
            g.check.record(obs, now)
        };
        if out.status == Status::Succeeded && g.succeeded_at.is_none() {
            g.succeeded_at = Some(self.now());
        }
        g.version += 1;
        if out.status.is_final()
            && let Some(d) = g.check.decision()
        {
            // Scores only: never embeddings or pictures.
            tracing::info!(
                check = %g.check.id,
                kind = g.check.kind().as_str(),
                status = ?out.status,
                reason = ?d.reason,
                confidence = d.confidence,
                passive = ?d.passive,
                "liveness check finished"
            );
        }
        Ok(out)
    }

    pub fn report(&self, owner: &Owner, id: &str) -> Result<Report, LivenessError> {
        let entry = self.entry(owner, id)?;
        let mut g = lock(&entry);
        let status = g.check.status(self.now());
        Ok(Report {
            id: g.check.id.clone(),
            kind: g.check.kind(),
            status,
            decision: g.check.decision().cloned(),
            reference: if status == Status::Succeeded {
                g.reference.as_ref().map(|(_, b)| b.clone())
            } else {
                None
            },
        })
    }

    /// For a login or an enrolment: the check must have been started for `binding`, have
    /// succeeded within the last `USE_WITHIN`, and not have been used; it is used up now.
    /// Returns the mean embedding of its frontal frames (unit length) and its confidence.
    pub fn consume(&self, owner: &Owner, id: &str, binding: &str) -> Result<(Vec<f32>, u8), LivenessError> {
        let entry = self.entry(owner, id)?;
        let mut g = lock(&entry);
        let now = self.now();
        if g.check.status(now) != Status::Succeeded {
            return Err(LivenessError::NotPassed);
        }
        if g.used {
            return Err(LivenessError::Used);
        }
        if g.binding.as_deref() != Some(binding) {
            return Err(LivenessError::WrongBinding);
        }
        if g.succeeded_at.is_none_or(|t| now.duration_since(t) > USE_WITHIN) {
            g.used = true;
            g.version += 1;
            return Err(LivenessError::Stale);
        }
        g.used = true;
        g.version += 1;
        let embs = g.check.embeddings();
        let dim = embs.first().map_or(0, Vec::len);
        let mut mean = vec![0f32; dim];
        for e in embs {
            for (m, v) in mean.iter_mut().zip(e) {
                *m += v;
            }
        }
        let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        mean.iter_mut().for_each(|v| *v /= norm);
        let confidence = g.check.decision().map_or(0, |d| d.confidence);
        Ok((mean, confidence))
    }

    /// Calls `hook(check tag, hash)` for every frame this instance remembers (set once), so it can
    /// be announced to the other instances ([`LivenessService::remember_remote`]).
    pub fn set_frame_hook(&self, hook: impl Fn(u64, [u64; 4]) + Send + Sync + 'static) {
        let _ = self.frame_hook.set(Box::new(hook));
    }

    /// Remembers a frame another instance saw, so a recording replayed to this instance after
    /// another saw it is refused here too.
    pub fn remember_remote(&self, check_tag: u64, hash: [u64; 4]) {
        if self.settings.remember_frames {
            lock(&self.memory).insert(check_tag, hash, self.now());
        }
    }

    /// The check `id` as it stands, for the other instances (see [`Snapshot`]).
    pub fn snapshot(&self, id: &str) -> Option<Snapshot> {
        let e = lock(&self.checks).get(id).cloned()?;
        let g = lock(&e);
        let state = EntryState {
            owner: g.owner.clone(),
            check: g.check.to_state(),
            client_request_token: g.client_request_token.clone(),
            want_reference: g.want_reference,
            reference: g.reference.clone(),
            used: g.used,
            binding: g.binding.clone(),
            origin: g.origin.clone(),
            succeeded_at: g.succeeded_at.map(super::wall::to_ms),
            frames_sent: g.frames_sent,
            replayed_frames: g.replayed_frames,
        };
        let keep = g.check.deadline + self.settings.keep_results;
        Some(Snapshot {
            version: g.version,
            expires_at: super::wall::to_ms(keep).div_euclid(1000) + 1,
            state: serde_json::to_vec(&state).ok()?,
        })
    }

    /// This instance's version of check `id` (None: it does not hold it).
    pub fn version(&self, id: &str) -> Option<u64> {
        let e = lock(&self.checks).get(id).cloned()?;
        let v = lock(&e).version;
        Some(v)
    }

    /// Takes the stored state of check `id` (written by any instance) when it is newer than this
    /// instance's copy, or when `force` (this instance's own change lost a race to another's).
    /// A state that does not parse is ignored (an error is logged).
    pub fn adopt(&self, id: &str, snapshot: &Snapshot, force: bool) {
        let state: EntryState = match serde_json::from_slice(&snapshot.state) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(check = %id, "a stored liveness check does not parse: {e}");
                return;
            }
        };
        let mut checks = lock(&self.checks);
        if let Some(e) = checks.get(id) {
            let mut g = lock(e);
            if !force && g.version >= snapshot.version {
                return;
            }
            *g = entry_of(state, snapshot.version, &self.policy);
            return;
        }
        if checks.len() < MAX_CHECKS {
            checks.insert(
                id.to_string(),
                Arc::new(Mutex::new(entry_of(state, snapshot.version, &self.policy))),
            );
        }
    }
}

fn entry_of(s: EntryState, version: u64, policy: &Policy) -> Entry {
    Entry {
        owner: s.owner,
        check: Check::from_state(s.check, policy.clone()),
        client_request_token: s.client_request_token,
        want_reference: s.want_reference,
        reference: s.reference,
        used: s.used,
        binding: s.binding,
        origin: s.origin,
        succeeded_at: s.succeeded_at.map(super::wall::from_ms),
        frames_sent: s.frames_sent,
        replayed_frames: s.replayed_frames,
        version,
    }
}
