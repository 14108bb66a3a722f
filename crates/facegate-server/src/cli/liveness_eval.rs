//! `facegate liveness-eval`: APCER and BPCER (ISO/IEC 30107-3) of the liveness check on the shared
//! test material, attack by attack, each with its number of trials and a 95% upper bound
//! (Clopper-Pearson). Every presentation becomes frames with ffmpeg and each frame is analysed once
//! with the real pipeline; then every trial runs through the real `LivenessService` (challenge draw,
//! tokens, frame memory, continuity, identity, passive score, decision) with a port that hands back
//! the analysed frame and a clock at the camera's frame rate. Attackers are scripts that see every
//! answer, as they would over HTTP.
//!
//! Configurations: the default, then the default with one mechanism off at a time, and the classic
//! challenges without any of the new mechanisms (what facegate did before): a mechanism is on by
//! default only when this shows it helps.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use facegate_core::liveness::{
    Analysis, ChallengeKind, Direction, FramePort, FrameRefusal, LivenessError, LivenessService,
    LivenessSettings, Move, Moves, Observation, Owner, PortError, Priority, Rng, Status, memory,
};
use facegate_vision::antispoof::AntiSpoof;

#[derive(Debug, Args)]
pub struct LivenessEvalArgs {
    /// The shared test data folder (liveness/ and faces/ inside).
    #[arg(long, env = "FACEGATE_TESTDATA", default_value = "../shared/testdata")]
    testdata: PathBuf,
    #[arg(long, default_value = facegate_vision::DEFAULT_PACK)]
    pack: String,
    /// Trials per attack type drawn from the server's challenge distribution.
    #[arg(long, default_value_t = 100)]
    trials: usize,
    /// Write the Markdown report here as well.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write the live video's per-frame measures (CSV) here.
    #[arg(long)]
    dump: Option<PathBuf>,
    /// Only the live video: which sequences of moves (2 to 4) it performs in order without an
    /// extra move, from every starting point of the video looped as a browser's fake camera does,
    /// and the seeds that draw them (for the browser tests).
    #[arg(long)]
    sequences: bool,
}

/// The seed (FACEGATE_LIVENESS_SEED, kinds = moves, 2 moves) whose challenge is "turn right, then
/// left": what the live video does. Found by [`seed_for_right_left`]; the server tests use it too.
pub fn seed_for_right_left() -> u64 {
    (0..10_000u64)
        .find(|s| {
            let mut r = Rng::seeded(*s);
            r.below(1);
            Moves::random(&mut r, 2).sequence == [Move::Turn(Direction::Right), Move::Turn(Direction::Left)]
        })
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// The port: frames are keys into a table of analysed frames.

type Table = Arc<HashMap<u64, Observation>>;

struct EvalPort {
    table: Table,
    identity: Option<f32>,
}

impl FramePort for EvalPort {
    type Permit = ();

    fn reserve(&self, _: Priority) -> Result<(), PortError> {
        Ok(())
    }

    fn analyse(
        &self,
        _: (),
        frame: Vec<u8>,
        _: f32,
    ) -> impl Future<Output = (Vec<u8>, Result<Analysis, PortError>)> + Send {
        let key = frame
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .unwrap_or(u64::MAX);
        let r = match self.table.get(&key) {
            Some(o) => Ok(Analysis::Observed(o.clone())),
            None => Ok(Analysis::Unreadable),
        };
        std::future::ready((frame, r))
    }

    fn identity_threshold(&self) -> Option<f32> {
        self.identity
    }
}

/// The bytes "sent" for a frame: its key and a nonce (re-encoding gives new bytes every send).
fn bytes(key: u64, nonce: u64) -> Vec<u8> {
    let mut b = key.to_le_bytes().to_vec();
    b.extend_from_slice(&nonce.to_le_bytes());
    b
}

// ---------------------------------------------------------------------------------------------
// Configurations

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Config {
    Default,
    NoMemory,
    NoContinuity,
    NoIdentity,
    NoExtraMoveRule,
    /// Sequences one move longer than the default.
    LongerSequences,
    /// Before issue 12: head-turns, nose-target, blink; none of the new mechanisms.
    Classic,
}

impl Config {
    const ALL: [Config; 7] = [
        Config::Default,
        Config::NoMemory,
        Config::NoContinuity,
        Config::NoIdentity,
        Config::NoExtraMoveRule,
        Config::LongerSequences,
        Config::Classic,
    ];

    fn label(self) -> &'static str {
        match self {
            Config::Default => "default",
            Config::NoMemory => "no frame memory",
            Config::NoContinuity => "no continuity",
            Config::NoIdentity => "no identity on turned frames",
            Config::NoExtraMoveRule => "sequences of 2 (no nod-or-blink rule)",
            Config::LongerSequences => "one move more",
            Config::Classic => "before (classic)",
        }
    }
}

struct Sim {
    table: Table,
    identity: Option<f32>,
    continuity_threshold: f32,
    clock: Arc<Mutex<Instant>>,
    rt: tokio::runtime::Runtime,
}

/// What a trial's challenge should be.
#[derive(Clone, Copy)]
enum Draw {
    /// The server's own distribution (for this configuration), with this seed.
    Server(u64),
    /// The challenge the live video performs (turn right, then left).
    RightLeft,
}

impl Sim {
    fn service(&self, config: Config, draw: Draw) -> LivenessService<EvalPort> {
        let settings = self.settings(config, draw);
        self.service_with(config, settings)
    }

    fn settings(&self, config: Config, draw: Draw) -> LivenessSettings {
        let mut settings = LivenessSettings {
            lifetime: Duration::from_secs(45),
            ..LivenessSettings::default()
        };
        match draw {
            Draw::Server(seed) => settings.seed = Some(seed),
            Draw::RightLeft => {
                settings.seed = Some(seed_for_right_left());
                settings.kinds = vec![ChallengeKind::Moves];
                settings.moves = 2;
            }
        }
        if config == Config::NoMemory || config == Config::Classic {
            settings.remember_frames = false;
        }
        if config == Config::NoExtraMoveRule && matches!(draw, Draw::Server(_)) {
            settings.moves = 2;
        }
        if config == Config::LongerSequences && matches!(draw, Draw::Server(_)) {
            settings.moves = facegate_core::liveness::DEFAULT_MOVES + 1;
        }
        if config == Config::Classic && matches!(draw, Draw::Server(_)) {
            settings.kinds = vec![
                ChallengeKind::HeadTurns,
                ChallengeKind::NoseTarget,
                ChallengeKind::Blink,
            ];
        }
        settings
    }

    fn service_with(&self, config: Config, settings: LivenessSettings) -> LivenessService<EvalPort> {
        let clock = self.clock.clone();
        let identity = match config {
            Config::NoIdentity | Config::Classic => None,
            _ => self.identity,
        };
        LivenessService::new(
            EvalPort {
                table: self.table.clone(),
                identity,
            },
            true,
            true,
            self.continuity_threshold,
            settings,
        )
        .with_clock(move || *clock.lock().unwrap_or_else(|e| e.into_inner()))
        .with_policy(|p| {
            if matches!(config, Config::NoContinuity | Config::Classic) {
                p.continuity = None;
            }
        })
    }

    fn advance(&self, d: Duration) {
        let mut c = self.clock.lock().unwrap_or_else(|e| e.into_inner());
        *c += d;
    }
}

/// What an attacker (or a camera) sees of the check: the prompt and move of the last answer, and
/// the challenge's parameters.
struct Seen {
    /// Every distinct prompt so far, in order (what the challenge asked).
    asked: Vec<String>,
    prompt: String,
    current_move: Option<String>,
    params: serde_json::Value,
}

/// Runs one check: `next` gives the next frame (key, nonce) from what was seen, or None to stop.
/// `dt`: time between frames. Returns the final status and the failure reason.
fn run_trial(
    sim: &Sim,
    svc: &LivenessService<EvalPort>,
    dt: Duration,
    mut next: impl FnMut(&Seen) -> Option<(u64, u64)>,
) -> (Status, Option<String>) {
    let owner = Owner::Client("eval".into());
    let Ok(started) = svc.start(owner.clone(), None, false) else {
        return (Status::Failed, Some("start".into()));
    };
    let mut seen = Seen {
        asked: vec![started.prompt.clone()],
        prompt: started.prompt.clone(),
        current_move: None,
        params: started.params.clone(),
    };
    let mut token = started.frame_token.unwrap_or_default();
    for _ in 0..400 {
        let Some((key, nonce)) = next(&seen) else { break };
        sim.advance(dt);
        match sim
            .rt
            .block_on(svc.frame(&owner, &started.id, &token, bytes(key, nonce)))
        {
            Ok(out) => {
                if out.status.is_final() {
                    let reason = match out.reason {
                        Some(r) => serde_json::to_value(r)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string)),
                        None => Some(format!("passed: {}", seen.asked.join(" / "))),
                    };
                    return (out.status, reason);
                }
                if seen.asked.last() != Some(&out.prompt) {
                    seen.asked.push(out.prompt.clone());
                }
                seen.prompt = out.prompt;
                seen.current_move = out.current_move.map(str::to_string);
                let Some(t) = out.next_token else { break };
                token = t;
            }
            Err(LivenessError::Refused(FrameRefusal::Replayed)) => continue,
            Err(_) => break,
        }
    }
    sim.advance(Duration::from_secs(60));
    let r = svc.report(&owner, &started.id).ok();
    (
        r.as_ref().map_or(Status::Failed, |r| r.status),
        Some("did not finish".into()),
    )
}

// ---------------------------------------------------------------------------------------------
// Material

fn ffmpeg(args: &[String], dir: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let status = Command::new("ffmpeg")
        .args(["-y", "-loglevel", "error"])
        .args(args)
        .arg(dir.join("f%04d.jpg"))
        .status()
        .context("running ffmpeg (apt-get install ffmpeg)")?;
    if !status.success() {
        bail!("ffmpeg failed: {args:?}");
    }
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let frames = files.iter().map(std::fs::read).collect::<Result<Vec<_>, _>>()?;
    for f in &files {
        std::fs::remove_file(f)?;
    }
    Ok(frames)
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// One byte changed, in the last stretch of entropy-coded data (the picture still decodes).
fn one_byte_changed(jpeg: &[u8]) -> Vec<u8> {
    let mut b = jpeg.to_vec();
    let i = b.len().saturating_sub(4);
    if let Some(x) = b.get_mut(i) {
        *x ^= 0x01;
        if *x == 0xff {
            *x = 0xfe;
        }
    }
    b
}

struct Source {
    name: String,
    keys: Vec<u64>,
    /// Frames a second.
    fps: f32,
}

impl Source {
    fn dt(&self) -> Duration {
        Duration::from_secs_f32(1.0 / self.fps.max(1.0))
    }
}

fn obs_of(table: &HashMap<u64, Observation>, key: u64) -> Option<&facegate_core::liveness::FaceObservation> {
    table
        .get(&key)
        .and_then(|o| o.face.as_ref().filter(|_| o.faces == 1))
}

// ---------------------------------------------------------------------------------------------
// Attackers

/// How a frame-picking script chooses.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Picker {
    /// The recorded frame that best answers the prompt, from anywhere in the recording.
    OutOfOrder,
    /// The best of the next 20 recorded frames (never going back).
    InOrder,
    /// Walks through the recording one frame at a time (forwards or backwards) towards the best
    /// frame: every pair of frames sent is a real pair of neighbours.
    Navigate,
}

/// How well a frame answers a prompt (higher is better).
fn score(
    prompt: &str,
    params: &serde_json::Value,
    f: &facegate_core::liveness::FaceObservation,
    blink_phase: bool,
) -> f32 {
    let p = prompt.to_lowercase();
    let frontal = -(f.yaw.abs() + f.pitch.abs());
    if p.contains("turn your head left") {
        f.yaw + 100.0 * f.parallax
    } else if p.contains("turn your head right") {
        -f.yaw - 100.0 * f.parallax
    } else if p.contains("turn your head up") {
        f.pitch - f.yaw.abs()
    } else if p.contains("turn your head down") {
        -f.pitch - f.yaw.abs()
    } else if p.contains("blink") {
        // Closed then open, alternately.
        frontal / 10.0
            + if blink_phase {
                -100.0 * f.eyes
            } else {
                100.0 * f.eyes
            }
    } else if p.contains("eyes open") {
        frontal / 10.0 + 100.0 * f.eyes
    } else if p.contains("circle") || p.contains("hold still") {
        let t = &params["target"];
        let (tx, ty) = (
            t["x"].as_f64().unwrap_or(0.5) as f32,
            t["y"].as_f64().unwrap_or(0.5) as f32,
        );
        -((f.nose.0 - tx).powi(2) + (f.nose.1 - ty).powi(2)).sqrt() * 100.0 + f.yaw.abs() / 100.0
    } else if p.contains("smile") {
        f.corner_lift * 100.0 + f.mouth_width
    } else {
        frontal
    }
}

fn picker(
    table: &HashMap<u64, Observation>,
    src: &Source,
    kind: Picker,
) -> impl FnMut(&Seen) -> Option<(u64, u64)> {
    let usable: Vec<(usize, facegate_core::liveness::FaceObservation)> = src
        .keys
        .iter()
        .enumerate()
        .filter_map(|(i, k)| obs_of(table, *k).map(|f| (i, *f)))
        .collect();
    let keys = src.keys.clone();
    let mut pos: Option<usize> = None;
    let mut nonce = 0u64;
    let mut sent = 0;
    let mut last_prompt = String::new();
    let mut blink_phase = true;
    move |seen: &Seen| {
        sent += 1;
        if sent > 300 || usable.is_empty() {
            return None;
        }
        if seen.prompt.to_lowercase().contains("blink") && seen.prompt == last_prompt {
            blink_phase = !blink_phase;
        } else if seen.prompt != last_prompt {
            blink_phase = true;
        }
        last_prompt = seen.prompt.clone();
        let best_in =
            |range: &mut dyn Iterator<Item = &(usize, facegate_core::liveness::FaceObservation)>| {
                range
                    .max_by(|a, b| {
                        score(&seen.prompt, &seen.params, &a.1, blink_phase).total_cmp(&score(
                            &seen.prompt,
                            &seen.params,
                            &b.1,
                            blink_phase,
                        ))
                    })
                    .map(|x| x.0)
            };
        let target = match kind {
            Picker::OutOfOrder | Picker::Navigate => best_in(&mut usable.iter()),
            Picker::InOrder => {
                let from = pos.map_or(0, |p| p + 1);
                best_in(&mut usable.iter().filter(|(i, _)| *i >= from && *i < from + 20)).or(Some(from))
            }
        }?;
        let idx = match (kind, pos) {
            (Picker::Navigate, Some(p)) if target > p => p + 1,
            (Picker::Navigate, Some(p)) if target < p => p - 1,
            (Picker::Navigate, Some(p)) => p,
            _ => target,
        };
        if idx >= keys.len() {
            return None;
        }
        pos = Some(idx);
        nonce += 1;
        Some((keys[idx], nonce))
    }
}

/// The frames in order from `from`, every `stride`-th, `loops` times; each send new bytes unless
/// `same_bytes`.
fn replay(
    keys: &[u64],
    from: usize,
    stride: usize,
    loops: usize,
    same_bytes: bool,
) -> impl FnMut(&Seen) -> Option<(u64, u64)> {
    let seq: Vec<u64> = (0..loops)
        .flat_map(|_| keys.iter().skip(from).step_by(stride.max(1)).copied())
        .collect();
    let mut i = 0;
    move |_: &Seen| {
        let k = *seq.get(i)?;
        i += 1;
        Some((k, if same_bytes { 0 } else { i as u64 }))
    }
}

// ---------------------------------------------------------------------------------------------
// Statistics

/// ln C(n, k)
fn ln_choose(n: usize, k: usize) -> f64 {
    (1..=k).map(|i| ((n - k + i) as f64).ln() - (i as f64).ln()).sum()
}

/// P(X <= k) for X ~ Binomial(n, p).
fn binom_cdf(k: usize, n: usize, p: f64) -> f64 {
    if p <= 0.0 {
        return 1.0;
    }
    if p >= 1.0 {
        return if k >= n { 1.0 } else { 0.0 };
    }
    (0..=k)
        .map(|i| (ln_choose(n, i) + i as f64 * p.ln() + (n - i) as f64 * (1.0 - p).ln()).exp())
        .sum()
}

/// Clopper-Pearson upper limit of the two-sided 95% interval for k of n.
pub fn upper95(k: usize, n: usize) -> f64 {
    if n == 0 || k >= n {
        return 1.0;
    }
    let (mut lo, mut hi) = (k as f64 / n as f64, 1.0);
    for _ in 0..60 {
        let mid = (lo + hi) / 2.0;
        if binom_cdf(k, n, mid) > 0.025 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

#[derive(Default, Clone)]
struct Tally {
    trials: usize,
    passed: usize,
    reasons: HashMap<String, usize>,
    /// What the accepted trials were asked.
    examples: Vec<String>,
}

impl Tally {
    fn add(&mut self, (status, reason): (Status, Option<String>)) {
        self.trials += 1;
        if status == Status::Succeeded {
            self.passed += 1;
            if let Some(r) = reason
                && self.examples.len() < 3
            {
                self.examples.push(r);
            }
        } else {
            *self
                .reasons
                .entry(reason.unwrap_or_else(|| "-".into()))
                .or_default() += 1;
        }
    }

    fn rate(&self, of_failures: bool) -> String {
        let k = if of_failures {
            self.trials - self.passed
        } else {
            self.passed
        };
        format!(
            "{k}/{} = {:.1}% (≤ {:.1}%)",
            self.trials,
            100.0 * k as f64 / self.trials.max(1) as f64,
            100.0 * upper95(k, self.trials)
        )
    }

    fn top_reasons(&self) -> String {
        let mut v: Vec<_> = self.reasons.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        v.iter()
            .take(3)
            .map(|(r, n)| format!("{r} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

// ---------------------------------------------------------------------------------------------

pub fn run(args: LivenessEvalArgs, models_dir: &Path) -> anyhow::Result<()> {
    let pipeline = super::load_pipeline(models_dir, &args.pack, None, 1)?;
    let antispoof = AntiSpoof::load(models_dir, &Default::default())
        .context("liveness-eval needs the passive anti-spoof model (facegate models fetch)")?;
    let continuity = pipeline.manifest().threshold_for(1e-2).unwrap_or(0.2);
    let identity = pipeline
        .manifest()
        .threshold_for(crate::server::liveness::IDENTITY_FAR);
    let td = &args.testdata;
    let tmp = std::env::temp_dir().join(format!("facegate-liveness-eval-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let lv = td.join("liveness");
    let video = lv.join("live_head_turn/real.webm").display().to_string();

    let mut table: HashMap<u64, Observation> = HashMap::new();
    let mut sources: Vec<Source> = Vec::new();
    let mut raw: HashMap<String, Vec<Vec<u8>>> = HashMap::new();
    let mut analyse =
        |name: &str, frames: Vec<Vec<u8>>, fps: f32, sources: &mut Vec<Source>| -> anyhow::Result<()> {
            let id = sources.len() as u64;
            let mut keys = Vec::new();
            for (i, f) in frames.iter().enumerate() {
                let key = (id << 32) | i as u64;
                let o = match facegate_vision::decode(f, &Default::default()) {
                    Ok(img) => {
                        crate::server::liveness::observe_image_core(&pipeline, Some(&antispoof), &img, 90.0)?
                    }
                    Err(_) => Observation::default(),
                };
                table.insert(key, o);
                keys.push(key);
            }
            eprintln!("{name}: {} frames analysed", keys.len());
            raw.insert(name.to_string(), frames);
            sources.push(Source {
                name: name.to_string(),
                keys,
                fps,
            });
            Ok(())
        };
    let cam = |extra: &str| -> Vec<String> {
        strs(&[
            "-i",
            &video,
            "-vf",
            &format!("fps=15,scale=640:360{extra}"),
            "-q:v",
            "2",
        ])
    };
    // The live video as a webcam at 15 fps; the same through camera noise and the JPEG the page makes.
    let live = ffmpeg(&cam(""), &tmp)?;
    let bytechanged: Vec<Vec<u8>> = live.iter().map(|f| one_byte_changed(f)).collect();
    analyse("live", live, 15.0, &mut sources)?;
    analyse(
        "live, camera noise + JPEG",
        ffmpeg(&cam(",noise=alls=5:allf=t"), &tmp)?,
        15.0,
        &mut sources,
    )?;
    analyse(
        "live, one byte changed per frame",
        bytechanged,
        15.0,
        &mut sources,
    )?;
    let still = |p: &Path| -> Vec<String> {
        strs(&[
            "-loop",
            "1",
            "-t",
            "5",
            "-i",
            &p.display().to_string(),
            "-vf",
            "scale=640:480:force_original_aspect_ratio=decrease,pad=640:480:(ow-iw)/2:(oh-ih)/2,noise=alls=6:allf=t,fps=8",
            "-q:v",
            "3",
        ])
    };
    let slid = |p: &Path| -> Vec<String> {
        strs(&[
            "-f",
            "lavfi",
            "-i",
            "color=c=gray:s=640x480:d=5",
            "-loop",
            "1",
            "-t",
            "5",
            "-i",
            &p.display().to_string(),
            "-filter_complex",
            "[1:v]scale=-2:300[p];[0:v][p]overlay=x='170+120*sin(t*1.6)':y=90,noise=alls=6:allf=t,fps=8",
            "-q:v",
            "3",
        ])
    };
    let mut stills: Vec<(&'static str, usize)> = Vec::new();
    let mut held_photos = Vec::new();
    if !args.sequences {
        let sf = lv.join("silent_face");
        for (kind, name, args) in [
            (
                "printed photo, held",
                "image_F1.jpg",
                still(&sf.join("image_F1.jpg")),
            ),
            (
                "printed photo, moved",
                "image_F1.jpg slid",
                slid(&sf.join("image_F1.jpg")),
            ),
            (
                "photo on a screen, held",
                "image_F2.jpg",
                still(&sf.join("image_F2.jpg")),
            ),
            (
                "photo on a screen, moved",
                "image_F2.jpg slid",
                slid(&sf.join("image_F2.jpg")),
            ),
            (
                "photo of a live face, held",
                "image_T1.jpg",
                still(&sf.join("image_T1.jpg")),
            ),
            (
                "screen replay (demo.gif frames 12-29)",
                "demo.gif screen part",
                strs(&[
                    "-i",
                    &sf.join("demo.gif").display().to_string(),
                    "-vf",
                    "select=gte(n\\,11),scale=-2:480",
                    "-fps_mode",
                    "passthrough",
                    "-q:v",
                    "3",
                ]),
            ),
        ] {
            analyse(name, ffmpeg(&args, &tmp)?, 8.0, &mut sources)?;
            stills.push((kind, sources.len() - 1));
        }
        // One photo per person of the deepface set, held still and slid across the camera.
        let deepface = td.join("faces/deepface");
        let mut people: Vec<PathBuf> = std::fs::read_dir(&deepface)
            .with_context(|| format!("reading {}", deepface.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        people.sort();
        for dir in &people {
            let mut imgs: Vec<PathBuf> = std::fs::read_dir(dir)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
                .collect();
            imgs.sort();
            if let Some(img) = imgs.first() {
                let name = img.strip_prefix(&deepface).unwrap_or(img).display().to_string();
                analyse(&name, ffmpeg(&still(img), &tmp)?, 8.0, &mut sources)?;
                stills.push(("digital photo, held", sources.len() - 1));
                held_photos.push(sources.len() - 1);
                analyse(
                    &format!("{name} slid"),
                    ffmpeg(&slid(img), &tmp)?,
                    8.0,
                    &mut sources,
                )?;
                stills.push(("digital photo, moved", sources.len() - 1));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);

    let table: Table = Arc::new(table);
    let sim = Sim {
        table: table.clone(),
        identity,
        continuity_threshold: continuity,
        clock: Arc::new(Mutex::new(Instant::now())),
        rt: tokio::runtime::Builder::new_current_thread().build()?,
    };
    let (live, cam, byte) = (&sources[0], &sources[1], &sources[2]);
    if let Some(path) = &args.dump {
        dump(path, &table, live, &raw)?;
    }
    if args.sequences {
        let md = sequences_report(&sim, live, cam);
        println!("{md}");
        if let Some(out) = args.out {
            std::fs::write(&out, &md).with_context(|| format!("writing {}", out.display()))?;
        }
        return Ok(());
    }
    let n = args.trials.max(50);
    let seeds = |salt: u64| (0..n as u64).map(move |i| salt * 1_000_003 + i);

    // Where the live video's turn starts: bona fide segments start anywhere before it.
    let first_turn = live
        .keys
        .iter()
        .position(|k| obs_of(&table, *k).is_some_and(|f| f.yaw.abs() > 15.0))
        .unwrap_or(0);
    let offsets: Vec<usize> = (0..first_turn.saturating_sub(8)).step_by(3).collect();

    let mut md = String::new();
    md.push_str(&format!(
        "Liveness on the shared test data: pack {}, passive model on, identity threshold {} (FAR {:e}), \
         {n} trials per attack drawn from the server's challenge distribution unless said otherwise; \
         APCER/BPCER as k/n = rate (≤ 95% Clopper-Pearson upper bound).\n\n",
        args.pack,
        identity.map_or("-".into(), |t| format!("{t:.3}")),
        crate::server::liveness::IDENTITY_FAR
    ));
    let mut rows: Vec<(String, Vec<Tally>)> = Vec::new();
    let mut bona: Vec<Tally> = Vec::new();
    for config in Config::ALL {
        let mut results: Vec<(String, Tally)> = Vec::new();
        let put = |name: &str, r: (Status, Option<String>), results: &mut Vec<(String, Tally)>| match results
            .iter_mut()
            .find(|x| x.0 == name)
        {
            Some(x) => x.1.add(r),
            None => {
                let mut t = Tally::default();
                t.add(r);
                results.push((name.to_string(), t));
            }
        };
        // Bona fide: contiguous segments of the live video, clean and through camera noise + JPEG,
        // at 15 and 7.5 frames a second, under the challenge it performs.
        let mut b = Tally::default();
        for src in [live, cam] {
            for stride in [1usize, 2] {
                for &from in &offsets {
                    let svc = sim.service(config, Draw::RightLeft);
                    b.add(run_trial(
                        &sim,
                        &svc,
                        src.dt() * stride as u32,
                        replay(&src.keys, from, stride, 1, false),
                    ));
                }
            }
        }
        bona.push(b);
        // Frame-picking scripts with a recording of the person the server has never seen.
        for (name, kind) in [
            ("frame-picking script, out of order", Picker::OutOfOrder),
            ("frame-picking script, in order", Picker::InOrder),
            ("frame-picking script, walking the recording", Picker::Navigate),
        ] {
            for seed in seeds(1) {
                let svc = sim.service(config, Draw::Server(seed));
                let r = run_trial(&sim, &svc, live.dt(), picker(&table, live, kind));
                put(name, r, &mut results);
            }
            // The same against a slow server (a frame every 250 ms): more time between frames
            // must not buy larger jumps.
            if kind == Picker::OutOfOrder {
                for seed in seeds(4) {
                    let svc = sim.service(config, Draw::Server(seed));
                    let r = run_trial(&sim, &svc, Duration::from_millis(250), picker(&table, live, kind));
                    put(
                        "frame-picking script, out of order, slow server (4 frames/s)",
                        r,
                        &mut results,
                    );
                }
                // The script that waits out a pause (over a second) before every picked frame:
                // continuity carries on after one pause per check, not more.
                for seed in seeds(5) {
                    let svc = sim.service(config, Draw::Server(seed));
                    let r = run_trial(
                        &sim,
                        &svc,
                        Duration::from_millis(1100),
                        picker(&table, live, kind),
                    );
                    put(
                        "frame-picking script, out of order, pausing 1.1 s before every frame",
                        r,
                        &mut results,
                    );
                }
            }
        }
        // The recording replayed, never seen before: plain and looped.
        for seed in seeds(2) {
            let svc = sim.service(config, Draw::Server(seed));
            put(
                "recording replayed (new to the server)",
                run_trial(&sim, &svc, live.dt(), replay(&live.keys, 0, 1, 1, false)),
                &mut results,
            );
            let svc = sim.service(config, Draw::Server(seed));
            put(
                "recording looped (new to the server)",
                run_trial(&sim, &svc, live.dt(), replay(&live.keys, 0, 1, 3, false)),
                &mut results,
            );
        }
        // The recording sent again in a fresh check after the server saw it (the person's own
        // earlier check), under the challenge it performs: only the frame memory can stop it.
        for (name, src, same) in [
            ("replayed in a fresh check, same bytes", live, true),
            (
                "replayed in a fresh check, one byte changed per frame",
                byte,
                false,
            ),
            ("replayed in a fresh check, camera noise + JPEG", cam, false),
        ] {
            for (i, &from) in offsets.iter().cycle().take(n).enumerate() {
                let svc = sim.service(config, Draw::RightLeft);
                // The genuine check whose frames the attacker captured.
                let _ = run_trial(
                    &sim,
                    &svc,
                    live.dt(),
                    replay(&live.keys, offsets[(i + 1) % offsets.len()], 1, 1, false),
                );
                put(
                    name,
                    run_trial(&sim, &svc, src.dt(), replay(&src.keys, from, 1, 1, same)),
                    &mut results,
                );
            }
        }
        // Identity splice: the victim's frontal frames (a photo held to the camera), the
        // attacker's own turned frames (the live video), under the challenge the turns perform.
        for (i, &photo) in held_photos
            .iter()
            .cycle()
            .take(n.max(held_photos.len()))
            .enumerate()
        {
            let from = offsets[i % offsets.len()];
            let ph = sources[photo].keys.clone();
            let lk = live.keys.clone();
            let t = table.clone();
            let mut j = from;
            let mut nonce = 0;
            let next = move |_: &Seen| {
                let k = *lk.get(j)?;
                j += 1;
                nonce += 1;
                let turned = obs_of(&t, k).is_some_and(|f| f.yaw.abs() > 25.0);
                Some((if turned { k } else { ph[j % ph.len()] }, nonce))
            };
            let svc = sim.service(config, Draw::RightLeft);
            put(
                "identity splice: frontal frames of one person, turns of another",
                run_trial(&sim, &svc, live.dt(), next),
                &mut results,
            );
        }
        // Prints, screens, photos, held and moved, and the screen replay.
        for (kind, src) in &stills {
            let per = if stills.iter().filter(|s| s.0 == *kind).count() == 1 {
                n
            } else {
                n.div_ceil(13)
            };
            for seed in seeds(3).take(per) {
                let svc = sim.service(config, Draw::Server(seed));
                let s = &sources[*src];
                put(
                    kind,
                    run_trial(&sim, &svc, s.dt(), replay(&s.keys, 0, 1, 1, false)),
                    &mut results,
                );
            }
        }
        for (name, t) in results {
            match rows.iter_mut().find(|r| r.0 == name) {
                Some(r) => r.1.push(t),
                None => rows.push((name, vec![t])),
            }
        }
        eprintln!("{}: done", config.label());
    }

    md.push_str("| attack type | trials | default: APCER | refused by (default) |");
    for c in &Config::ALL[1..] {
        md.push_str(&format!(" {} |", c.label()));
    }
    md.push_str("\n|---|---|---|---|");
    for _ in &Config::ALL[1..] {
        md.push_str("---|");
    }
    md.push('\n');
    for (name, t) in &rows {
        md.push_str(&format!(
            "| {name} | {} | {} | {} |",
            t[0].trials,
            t[0].rate(false),
            t[0].top_reasons()
        ));
        for x in &t[1..] {
            md.push_str(&format!(
                " {:.1}% |",
                100.0 * x.passed as f64 / x.trials.max(1) as f64
            ));
        }
        md.push('\n');
    }
    md.push_str(&format!(
        "| **bona fide** (BPCER): segments of the live video, clean and with camera noise + JPEG, 15 and 7.5 fps | {} | {} | {} |",
        bona[0].trials,
        bona[0].rate(true),
        bona[0].top_reasons()
    ));
    for x in &bona[1..] {
        md.push_str(&format!(
            " {:.1}% |",
            100.0 * (x.trials - x.passed) as f64 / x.trials.max(1) as f64
        ));
    }
    for (name, t) in &rows {
        for e in &t[0].examples {
            md.push_str(&format!("\n- accepted ({name}): {e}"));
        }
    }
    md.push_str("\n\nColumns after the third: APCER (BPCER in the last row) with one mechanism off, and with the challenges and rules from before issue 12.\n");
    md.push_str(&hash_report(&table, live, cam, byte));
    md.push_str(&identity_report(
        &table,
        live,
        &held_photos.iter().map(|i| &sources[*i]).collect::<Vec<_>>(),
        identity,
    ));
    md.push_str(&passive_report(&table, &sources));
    println!("{md}");
    if let Some(out) = args.out {
        std::fs::write(&out, &md).with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(())
}

/// Perceptual hash distances: what the frame memory must catch and what it must let through.
fn hash_report(table: &HashMap<u64, Observation>, live: &Source, cam: &Source, byte: &Source) -> String {
    let h = |k: &u64| table.get(k).and_then(|o| o.phash);
    let pairs = |a: &Source, b: &Source| -> Vec<u32> {
        a.keys
            .iter()
            .zip(&b.keys)
            .filter_map(|(x, y)| Some(memory::distance(&h(x)?, &h(y)?)))
            .collect()
    };
    let stats = |mut v: Vec<u32>| -> String {
        v.sort();
        if v.is_empty() {
            return "-".into();
        }
        let within = v.iter().filter(|d| **d <= memory::SAME_PICTURE_BITS).count();
        format!(
            "{} / {} / {} | {:.1}% of {} |",
            v[0],
            v[v.len() / 2],
            v[v.len() - 1],
            100.0 * within as f64 / v.len() as f64,
            v.len()
        )
    };
    let hashes: Vec<[u64; 4]> = live.keys.iter().filter_map(h).collect();
    let apart = |min_gap: usize, max_gap: usize| -> Vec<u32> {
        let mut v = Vec::new();
        for i in 0..hashes.len() {
            for j in i + min_gap..hashes.len().min(i + max_gap + 1) {
                v.push(memory::distance(&hashes[i], &hashes[j]));
            }
        }
        v
    };
    format!(
        "\nPerceptual hash distances (bits of 256; min / median / max), the frame memory's threshold is {} bits, and a check fails at the {}rd frame within it of another check's:\n\n\
         | pair of frames | distance | within the threshold |\n|---|---|---|\n\
         | same frame, one byte changed | {}\n\
         | same frame, camera noise + JPEG re-encoded | {}\n\
         | consecutive frames of the live video (1/15 s) | {}\n\
         | live video frames 1-5 s apart | {}\n\
         | live video frames more than 5 s apart | {}\n",
        memory::SAME_PICTURE_BITS,
        memory::REPLAY_FRAMES,
        stats(pairs(live, byte)),
        stats(pairs(live, cam)),
        stats(apart(1, 1)),
        stats(apart(15, 75)),
        stats(apart(76, 10_000)),
    )
}

fn cos(a: &[f32], b: &[f32]) -> f32 {
    facegate_core::face::cosine(a, b)
}

/// Cosines of turned frames with the frontal frames' mean: the same person (the live video) and
/// another (the deepface photos).
fn identity_report(
    table: &HashMap<u64, Observation>,
    live: &Source,
    photos: &[&Source],
    threshold: Option<f32>,
) -> String {
    let emb = |k: &u64| table.get(k).and_then(|o| o.embedding.clone().zip(o.face));
    let frames: Vec<(Vec<f32>, facegate_core::liveness::FaceObservation)> =
        live.keys.iter().filter_map(emb).collect();
    let frontal: Vec<&Vec<f32>> = frames
        .iter()
        .filter(|(_, f)| f.yaw.abs() <= 25.0)
        .map(|x| &x.0)
        .collect();
    let Some(first) = frontal.first() else {
        return String::new();
    };
    let mut mean = vec![0f32; first.len()];
    for e in &frontal {
        for (m, v) in mean.iter_mut().zip(e.iter()) {
            *m += v;
        }
    }
    let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
    mean.iter_mut().for_each(|v| *v /= norm);
    let turned: Vec<f32> = frames
        .iter()
        .filter(|(_, f)| f.yaw.abs() > 25.0)
        .map(|(e, _)| cos(&mean, e))
        .collect();
    let all: Vec<f32> = frames.iter().map(|(e, _)| cos(&mean, e)).collect();
    let mut others = Vec::new();
    for p in photos {
        let pf: Vec<Vec<f32>> = p.keys.iter().filter_map(emb).map(|x| x.0).collect();
        let Some(pe) = pf.first() else { continue };
        // The splice as the check sees it: the photo's frontal frames are the reference.
        others.extend(
            frames
                .iter()
                .filter(|(_, f)| f.yaw.abs() > 25.0)
                .map(|(e, _)| cos(pe, e)),
        );
    }
    let st = |mut v: Vec<f32>| -> String {
        v.sort_by(f32::total_cmp);
        if v.is_empty() {
            return "-".into();
        }
        format!(
            "{:.3} / {:.3} / {:.3} ({})",
            v[0],
            v[v.len() / 2],
            v[v.len() - 1],
            v.len()
        )
    };
    format!(
        "\nCosine with the check's frontal frames (min / median / max (frames)); the threshold is {}:\n\n\
         | frames | cosine |\n|---|---|\n| live video, every frame | {} |\n| live video, turned more than 25° | {} |\n\
         | live video's turned frames against another person's photo | {} |\n",
        threshold.map_or("-".into(), |t| format!("{t:.3}")),
        st(all),
        st(turned),
        st(others)
    )
}

fn passive_report(table: &HashMap<u64, Observation>, sources: &[Source]) -> String {
    let mut md = String::from(
        "\n<details><summary>Passive anti-spoof score per presentation</summary>\n\n\
         Median of its frames' live probability (the check needs 0.02):\n\n| presentation | frames with a face | median | max |\n|---|---|---|---|\n",
    );
    for s in sources {
        let mut v: Vec<f32> = s
            .keys
            .iter()
            .filter_map(|k| obs_of(table, *k).and_then(|f| f.live_score))
            .collect();
        v.sort_by(f32::total_cmp);
        let f = |x: Option<&f32>| x.map_or("-".into(), |x| format!("{x:.3}"));
        md.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            s.name,
            v.len(),
            f(v.get(v.len() / 2)),
            f(v.last())
        ));
    }
    md.push_str("\n</details>\n");
    md
}

/// Every sequence of turns that [`Moves::random`] can draw with `len` moves, with the first seed
/// (FACEGATE_LIVENESS_SEED, kinds = moves, `len` moves) that draws it.
pub fn turn_sequences(len: usize) -> Vec<(Vec<Move>, u64)> {
    let mut found: Vec<(Vec<Move>, u64)> = Vec::new();
    for seed in 0..400_000u64 {
        let mut r = Rng::seeded(seed);
        r.below(1);
        let seq = Moves::random(&mut r, len).sequence;
        if seq.iter().all(|m| matches!(m, Move::Turn(_))) && !found.iter().any(|f| f.0 == seq) {
            found.push((seq, seed));
        }
    }
    found.sort_by_key(|f| f.0.iter().map(|m| m.word()).collect::<Vec<_>>().join(","));
    found
}

/// Which turn sequences the live video performs, in order and without an extra move: every
/// sequence of 2, 3 and 4 moves the server can draw without a blink (the video has none), run as
/// bona fide trials from every 2nd frame of the video as a start, the video looped twice (a
/// browser's fake camera loops its file and a check starts wherever the file is), clean and with
/// camera noise + JPEG, at 15 and 7.5 frames a second.
fn sequences_report(sim: &Sim, live: &Source, cam: &Source) -> String {
    let mut md = String::from(
        "Turn sequences the live video performs (bona fide trials: every 2nd frame as a start, the video looped, \
         clean and with camera noise + JPEG, 15 and 7.5 fps):\n\n\
         | moves | sequence | seed | passed | share | starting frames where all 4 passed | refused by |\n|---|---|---|---|---|---|---|\n",
    );
    let n = live.keys.len();
    // A check whose frontal frames are all one pose (a person holding still at the start): the
    // turned frames against that pose alone.
    let emb = |k: &u64| sim.table.get(k).and_then(|o| o.embedding.clone().zip(o.face));
    let frames: Vec<_> = live.keys.iter().filter_map(emb).collect();
    md.push_str("\nMinimum cosine of the turned frames (> 25°) with one frontal frame's embedding (the reference of a check that holds still):");
    for k in [0usize, 8, 16, 30, 60, 90] {
        if let Some((e0, _)) = frames.get(k) {
            let m = frames
                .iter()
                .filter(|(_, f)| f.yaw.abs() > 25.0)
                .map(|(e, _)| cos(e0, e))
                .fold(f32::MAX, f32::min);
            md.push_str(&format!(" frame {k}: {m:.3};"));
        }
    }
    md.push_str("\n\n");
    for src in [live, cam] {
        let fr: Vec<_> = src.keys.iter().filter_map(emb).collect();
        if let Some((e0, _)) = fr.first() {
            let mut low: Vec<(usize, f32, f32)> = fr
                .iter()
                .enumerate()
                .filter(|(_, (_, f))| f.yaw.abs() <= 25.0)
                .map(|(i, (e, f))| (i, cos(e0, e), f.yaw))
                .collect();
            low.sort_by(|a, b| a.1.total_cmp(&b.1));
            low.truncate(5);
            md.push_str(&format!(
                "{}: frontal frames least like frame 0 (frame, cosine, yaw): {low:?}\n\n",
                src.name
            ));
        }
    }
    for len in 2..=4 {
        let mut rows: Vec<(f64, String)> = Vec::new();
        for (seq, seed) in turn_sequences(len) {
            let mut t = Tally::default();
            // Per starting frame: how many of its 4 trials passed.
            let mut by_start = vec![0usize; n];
            for src in [live, cam] {
                for stride in [1usize, 2] {
                    for from in (0..n).step_by(2) {
                        let settings = LivenessSettings {
                            lifetime: Duration::from_secs(45),
                            seed: Some(seed),
                            kinds: vec![ChallengeKind::Moves],
                            moves: len,
                            ..LivenessSettings::default()
                        };
                        let svc = sim.service_with(Config::Default, settings);
                        let r = run_trial(
                            sim,
                            &svc,
                            src.dt() * stride as u32,
                            replay(&src.keys, from, stride, 2, false),
                        );
                        if r.0 == Status::Succeeded {
                            by_start[from] += 1;
                        }
                        t.add(r);
                    }
                }
            }
            let words = seq.iter().map(|m| m.word()).collect::<Vec<_>>().join(", ");
            let share = t.passed as f64 / t.trials.max(1) as f64;
            rows.push((
                share,
                format!(
                    "| {len} | {words} | {seed} | {}/{} | {:.1}% | {} | {} |\n",
                    t.passed,
                    t.trials,
                    100.0 * share,
                    ranges(&by_start, 4),
                    t.top_reasons()
                ),
            ));
        }
        rows.sort_by(|a, b| b.0.total_cmp(&a.0));
        for (_, r) in rows {
            md.push_str(&r);
        }
    }
    md
}

/// The runs of (even) indices whose count is `all`, as "18-74, 90-96".
fn ranges(counts: &[usize], all: usize) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut run: Option<(usize, usize)> = None;
    for i in (0..counts.len()).step_by(2) {
        if counts[i] == all {
            run = Some(run.map_or((i, i), |(a, _)| (a, i)));
        } else if let Some((a, b)) = run.take() {
            out.push(if a == b { a.to_string() } else { format!("{a}-{b}") });
        }
    }
    if let Some((a, b)) = run {
        out.push(if a == b { a.to_string() } else { format!("{a}-{b}") });
    }
    if out.is_empty() {
        "-".into()
    } else {
        out.join(", ")
    }
}

/// The live video's measures, frame by frame (for tuning thresholds).
fn dump(
    path: &Path,
    table: &HashMap<u64, Observation>,
    live: &Source,
    _raw: &HashMap<String, Vec<Vec<u8>>>,
) -> anyhow::Result<()> {
    let mut s = String::from(
        "i,faces,yaw,pitch,parallax,nose_x,nose_y,cx,cy,width,eyes,mouth,lift,live,phash_prev\n",
    );
    let mut prev: Option<[u64; 4]> = None;
    for (i, k) in live.keys.iter().enumerate() {
        let Some(o) = table.get(k) else { continue };
        let d = match (prev, o.phash) {
            (Some(a), Some(b)) => memory::distance(&a, &b).to_string(),
            _ => String::new(),
        };
        prev = o.phash;
        match o.face {
            Some(f) => s.push_str(&format!(
                "{i},{},{:.1},{:.1},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{d}\n",
                o.faces,
                f.yaw,
                f.pitch,
                f.parallax,
                f.nose.0,
                f.nose.1,
                f.center.0,
                f.center.1,
                f.width,
                f.eyes,
                f.mouth_width,
                f.corner_lift,
                f.live_score.unwrap_or(-1.0)
            )),
            None => s.push_str(&format!("{i},{},,,,,,,,,,,,,{d}\n", o.faces)),
        }
    }
    std::fs::write(path, s)?;
    Ok(())
}
