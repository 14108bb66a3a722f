//! `facegate liveness-eval`: APCER and BPCER (ISO/IEC 30107-3) of the liveness check on the shared
//! test material. Every presentation (a video, or a photo turned into one the way an attacker would
//! hold or move it) becomes frames with ffmpeg; each frame is analysed once; then every challenge
//! instance runs over the same frames through the real state machines and decision rules, with the
//! server's clock simulated at the frame rate.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use facegate_core::liveness::{
    Blink, Challenge, Check, Direction, HeadTurns, NoseTarget, Observation, Policy, Smile, Status,
};
use facegate_vision::antispoof::AntiSpoof;

#[derive(Debug, Args)]
pub struct LivenessEvalArgs {
    /// The shared test data folder (liveness/ and faces/ inside).
    #[arg(long, env = "FACEGATE_TESTDATA", default_value = "../shared/testdata")]
    testdata: PathBuf,
    #[arg(long, default_value = facegate_vision::DEFAULT_PACK)]
    pack: String,
    /// Frames per second taken from each presentation.
    #[arg(long, default_value_t = 8)]
    fps: u32,
    /// Write the Markdown report here as well.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// One presentation: its type, name, and frames.
struct Presentation {
    attack: Option<&'static str>,
    name: String,
    observations: Vec<Observation>,
}

/// The challenge instances every presentation meets: each kind, with several parameters.
/// A named challenge instance, made fresh for every trial.
type Instance = (String, Box<dyn Fn() -> Box<dyn Challenge>>);

fn challenges() -> Vec<Instance> {
    use Direction::*;
    let mut v: Vec<Instance> = Vec::new();
    for a in [Left, Right, Up, Down] {
        for b in [Left, Right, Up, Down] {
            if a != b {
                v.push((
                    format!("head-turns {a:?},{b:?}").to_lowercase(),
                    Box::new(move || Box::new(HeadTurns::new(vec![a, b]))),
                ));
            }
        }
    }
    for (x, y) in [(0.33, 0.42), (0.67, 0.42), (0.35, 0.5), (0.65, 0.5)] {
        v.push((
            format!("nose-target ({x},{y})"),
            Box::new(move || Box::new(NoseTarget::new((x, y), 0.06))),
        ));
    }
    v.push(("blink 1".into(), Box::new(|| Box::new(Blink::new(1)))));
    v.push(("blink 2".into(), Box::new(|| Box::new(Blink::new(2)))));
    v.push(("smile".into(), Box::new(|| Box::new(Smile::default()))));
    v
}

/// The challenges the bona fide video performs (it smiles, then turns right, then left).
fn performed_by_the_video(name: &str) -> bool {
    name == "smile" || name == "head-turns right,left"
}

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

pub fn run(args: LivenessEvalArgs, models_dir: &Path) -> anyhow::Result<()> {
    let pipeline = super::load_pipeline(models_dir, &args.pack, None, 1)?;
    let antispoof = AntiSpoof::load(models_dir, &Default::default())
        .map_err(|e| eprintln!("no passive model ({e}): challenge only"))
        .ok();
    let continuity = pipeline.manifest().threshold_for(1e-2).unwrap_or(0.2);
    let td = &args.testdata;
    let tmp = std::env::temp_dir().join(format!("facegate-liveness-eval-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let fps = args.fps;
    let s = |p: &Path| p.display().to_string();
    let still = |p: &Path| -> Vec<String> {
        vec![
            "-loop".into(),
            "1".into(),
            "-t".into(),
            "5".into(),
            "-i".into(),
            s(p),
            "-vf".into(),
            format!(
                "scale=640:480:force_original_aspect_ratio=decrease,pad=640:480:(ow-iw)/2:(oh-ih)/2,noise=alls=6:allf=t,fps={fps}"
            ),
            "-q:v".into(),
            "3".into(),
        ]
    };
    let slid = |p: &Path| -> Vec<String> {
        vec![
            "-f".into(),
            "lavfi".into(),
            "-i".into(),
            "color=c=gray:s=640x480:d=5".into(),
            "-loop".into(),
            "1".into(),
            "-t".into(),
            "5".into(),
            "-i".into(),
            s(p),
            "-filter_complex".into(),
            format!(
                "[1:v]scale=-2:300[p];[0:v][p]overlay=x='170+120*sin(t*1.6)':y=90,noise=alls=6:allf=t,fps={fps}"
            ),
            "-q:v".into(),
            "3".into(),
        ]
    };
    let lv = td.join("liveness");
    let video = lv.join("live_head_turn/real.webm");
    let mut inputs: Vec<(Option<&'static str>, String, Vec<String>)> = vec![
        (
            None,
            "real.webm (live person)".into(),
            vec![
                "-i".into(),
                s(&video),
                "-vf".into(),
                format!("fps={fps},scale=640:360"),
                "-q:v".into(),
                "3".into(),
            ],
        ),
        (
            Some("video replay of the live person"),
            "real.webm replayed".into(),
            vec![
                "-i".into(),
                s(&video),
                "-vf".into(),
                format!("fps={fps},scale=640:360"),
                "-q:v".into(),
                "3".into(),
            ],
        ),
        (
            Some("printed photo, held"),
            "image_F1.jpg".into(),
            still(&lv.join("silent_face/image_F1.jpg")),
        ),
        (
            Some("printed photo, moved"),
            "image_F1.jpg slid".into(),
            slid(&lv.join("silent_face/image_F1.jpg")),
        ),
        (
            Some("photo on a screen, held"),
            "image_F2.jpg".into(),
            still(&lv.join("silent_face/image_F2.jpg")),
        ),
        (
            Some("photo of a live face, held"),
            "image_T1.jpg".into(),
            still(&lv.join("silent_face/image_T1.jpg")),
        ),
        (
            Some("screen replay (demo.gif frames 12-29)"),
            "demo.gif screen part".into(),
            vec![
                "-i".into(),
                s(&lv.join("silent_face/demo.gif")),
                "-vf".into(),
                "select=gte(n\\,11),scale=-2:480".into(),
                "-fps_mode".into(),
                "passthrough".into(),
                "-q:v".into(),
                "3".into(),
            ],
        ),
    ];
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
            inputs.push((Some("digital photo, held"), name.clone(), still(img)));
            inputs.push((Some("digital photo, moved"), format!("{name} slid"), slid(img)));
        }
    }

    let mut presentations = Vec::new();
    for (attack, name, ff) in inputs {
        let frames = ffmpeg(&ff, &tmp)?;
        let mut observations = Vec::with_capacity(frames.len());
        for f in &frames {
            let img = facegate_vision::decode(f, &Default::default())?;
            observations.push(crate::server::liveness::observe_image_core(
                &pipeline,
                antispoof.as_ref(),
                &img,
                25.0,
            )?);
        }
        eprintln!("{name}: {} frames analysed", observations.len());
        presentations.push(Presentation {
            attack,
            name,
            observations,
        });
    }

    let _ = std::fs::remove_dir_all(&tmp);
    let policy = Policy {
        lifetime: Duration::from_secs(60),
        continuity_threshold: continuity,
        ..Policy::default()
    };
    let instances = challenges();
    // (attack type) -> (presentations, trials, accepted, example)
    let mut by_attack: Vec<(&'static str, usize, usize, usize, Vec<String>)> = Vec::new();
    let mut bona_trials = 0;
    let mut bona_rejected = Vec::new();
    let mut passive: Vec<(String, Vec<f32>)> = Vec::new();
    for p in &presentations {
        let scores: Vec<f32> = p
            .observations
            .iter()
            .filter_map(|o| o.face.and_then(|f| f.live_score))
            .collect();
        passive.push((p.name.clone(), scores));
        for (cname, make) in &instances {
            let bona = p.attack.is_none();
            if bona && !performed_by_the_video(cname) {
                continue;
            }
            let status = run_check(make(), &policy, &p.observations, fps);
            if let Some(kind) = p.attack {
                let i = match by_attack.iter().position(|a| a.0 == kind) {
                    Some(i) => i,
                    None => {
                        by_attack.push((kind, 0, 0, 0, Vec::new()));
                        by_attack.len() - 1
                    }
                };
                by_attack[i].2 += 1;
                if status == Status::Succeeded {
                    by_attack[i].3 += 1;
                    by_attack[i].4.push(format!("{} / {cname}", p.name));
                }
            } else {
                bona_trials += 1;
                if status != Status::Succeeded {
                    bona_rejected.push(format!("{cname}: {status:?}"));
                }
            }
        }
        if let Some(kind) = p.attack
            && let Some(a) = by_attack.iter_mut().find(|a| a.0 == kind)
        {
            a.1 += 1;
        }
    }

    let mut md = String::new();
    md.push_str(&format!(
        "Liveness on the shared test data (pack {}, passive model: {}; {} challenge instances per presentation, frames at {fps} fps).\n\n",
        args.pack,
        if antispoof.is_some() { "on" } else { "off" },
        instances.len()
    ));
    md.push_str("| attack type | presentations | trials | accepted | APCER |\n|---|---|---|---|---|\n");
    for (kind, n, trials, acc, _) in &by_attack {
        md.push_str(&format!(
            "| {kind} | {n} | {trials} | {acc} | {:.1}% |\n",
            100.0 * *acc as f64 / (*trials).max(1) as f64
        ));
    }
    md.push_str(&format!(
        "\nBona fide: {bona_trials} trials (the live video under the challenges it performs), {} rejected: BPCER {:.0}%{}.\n",
        bona_rejected.len(),
        100.0 * bona_rejected.len() as f64 / bona_trials.max(1) as f64,
        if bona_rejected.is_empty() { String::new() } else { format!(" ({})", bona_rejected.join("; ")) }
    ));
    // The replayed recording per challenge kind, and weighted as the server draws kinds by default
    // (each default kind equally likely, its parameters uniformly).
    if let Some(replay) = by_attack.iter().find(|a| a.0.starts_with("video replay")) {
        let kind_of = |c: &str| c.split(' ').next().unwrap_or("").to_string();
        let mut kinds: Vec<String> = instances.iter().map(|(c, _)| kind_of(c)).collect();
        kinds.dedup();
        let defaults = crate::server::liveness::LivenessSettings::default().kinds;
        let mut weighted = 0.0;
        md.push_str("\nThe replayed recording, per challenge kind: ");
        let mut parts = Vec::new();
        for k in &kinds {
            let n = instances.iter().filter(|(c, _)| kind_of(c) == *k).count();
            let passed = replay
                .4
                .iter()
                .filter(|a| a.split(" / ").nth(1).is_some_and(|c| kind_of(c) == *k))
                .count();
            parts.push(format!("{k} {passed}/{n}"));
            if defaults.iter().any(|d| d.as_str() == k) {
                weighted += passed as f64 / n as f64 / defaults.len() as f64;
            }
        }
        md.push_str(&format!(
            "{}; with the default challenge mix ({}) a replay passes {:.1}% of checks.\n",
            parts.join(", "),
            defaults.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", "),
            100.0 * weighted
        ));
    }
    let accepted: Vec<String> = by_attack.iter().flat_map(|a| a.4.clone()).collect();
    if !accepted.is_empty() {
        md.push_str(&format!("\nAccepted attacks: {}.\n", accepted.join("; ")));
    }
    md.push_str("\nPassive anti-spoof score per presentation (median of its frames' live probability; the check needs 0.02):\n\n| presentation | frames with a face | median | max |\n|---|---|---|---|\n");
    for (name, mut v) in passive {
        v.sort_by(f32::total_cmp);
        let med = v.get(v.len() / 2).copied();
        let max = v.last().copied();
        let f = |x: Option<f32>| x.map_or("-".into(), |x| format!("{x:.3}"));
        md.push_str(&format!("| {name} | {} | {} | {} |\n", v.len(), f(med), f(max)));
    }
    println!("{md}");
    if let Some(out) = args.out {
        std::fs::write(&out, &md).with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(())
}

/// Runs one check over the frames with the server's clock at the frame rate; the final status (a
/// check still in progress when the frames end counts as not passed).
fn run_check(challenge: Box<dyn Challenge>, policy: &Policy, frames: &[Observation], fps: u32) -> Status {
    let t0 = Instant::now();
    let mut check = Check::new(challenge, policy.clone(), t0);
    let mut token = check.first_token().map(str::to_string);
    for (i, obs) in frames.iter().enumerate() {
        let t = t0 + Duration::from_millis(i as u64 * 1000 / u64::from(fps.max(1)));
        let Some(tok) = token.take() else { break };
        if check.accept(&tok, format!("frame {i}").as_bytes(), t).is_err() {
            break;
        }
        let out = check.record(Some(obs.clone()), t);
        if out.status.is_final() {
            return out.status;
        }
        token = out.next_token;
    }
    check.status(t0 + policy.lifetime + Duration::from_secs(1))
}
