//! `facegate bench`: per-stage latency and end-to-end throughput of the face pipeline.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use facegate_vision::geometry::resize_bilinear;
use facegate_vision::{AnalyzeOptions, DecodeLimits};
use serde::Serialize;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A folder of images (searched recursively), or one image.
    #[arg(long)]
    images: PathBuf,
    #[arg(long, default_value = facegate_vision::DEFAULT_PACK)]
    pack: String,
    /// Detector input size override (multiple of 32).
    #[arg(long)]
    det_size: Option<u32>,
    /// Workers for the throughput run (each with its own models, one inference thread each).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Scale each image so its longer side is this many pixels before timing (e.g. 640 for selfies).
    #[arg(long)]
    fit: Option<u32>,
    /// Use at most this many images.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Timed repetitions of each stage per image (after one warm-up).
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Stage {
    stage: &'static str,
    samples: usize,
    median_ms: f64,
    p95_ms: f64,
}

#[derive(Debug, Serialize)]
struct BenchReport {
    pack: String,
    det_size: u32,
    images: usize,
    mean_size: (u32, u32),
    stages: Vec<Stage>,
    /// detect + align + embed of the largest face, one thread.
    detect_align_embed_median_ms: f64,
    throughput_threads: usize,
    images_per_second: f64,
    load_ms: f64,
    max_rss_mib: Option<f64>,
}

pub fn run(args: BenchArgs, models_dir: &Path) -> anyhow::Result<()> {
    let files = collect_images(&args.images, args.limit)?;
    let limits = DecodeLimits {
        max_bytes: 64 << 20,
        ..DecodeLimits::default()
    };
    let t_load = Instant::now();
    let pipeline = super::load_pipeline(models_dir, &args.pack, args.det_size, 1)?;
    let load_ms = ms(t_load.elapsed());
    let det_size = pipeline
        .manifest()
        .detector
        .as_ref()
        .map(|d| d.input_size)
        .unwrap_or(0);

    let mut stages: [(&'static str, Vec<f64>); 9] = [
        ("decode", vec![]),
        ("detect", vec![]),
        ("align", vec![]),
        ("embed", vec![]),
        ("landmarks", vec![]),
        ("detect+align+embed", vec![]),
        ("embed flip-averaged", vec![]),
        ("login probe (analyze, landmarks)", vec![]),
        ("enrol probe (analyze, landmarks, flip)", vec![]),
    ];
    let mut decoded = Vec::new();
    for path in &files {
        let bytes = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
        let mut img = None;
        for rep in 0..=args.repeat {
            let t = Instant::now();
            let d = facegate_vision::decode(&bytes, &limits)
                .with_context(|| format!("decode {}", path.display()))?;
            if rep > 0 {
                stages[0].1.push(ms(t.elapsed()));
            }
            img = Some(d);
        }
        let Some(mut img) = img else { continue };
        img = fit_long_side(img, args.fit);
        for rep in 0..=args.repeat {
            let t0 = Instant::now();
            let dets = pipeline.detect(&img)?;
            let t1 = Instant::now();
            let Some(det) = dets.first() else { break };
            let aligned = pipeline.align(&img, det)?;
            let t2 = Instant::now();
            pipeline.embed(&[&aligned])?;
            let t3 = Instant::now();
            pipeline.landmarks(&img, det)?;
            let t4 = Instant::now();
            pipeline.embed_flipped(&[&aligned])?;
            let t5 = Instant::now();
            // Face login's and enrolment's probes: everything the face service asks of the pipeline.
            let opts = AnalyzeOptions {
                embed: true,
                landmarks: pipeline.has_landmarks(),
                max_faces: None,
            };
            pipeline.analyze_with(&img, &opts, &pipeline.levers())?;
            let t6 = Instant::now();
            let flip = facegate_vision::Levers {
                flip: true,
                ..pipeline.levers()
            };
            pipeline.analyze_with(&img, &opts, &flip)?;
            let t7 = Instant::now();
            if rep > 0 {
                stages[6].1.push(ms(t5 - t4));
                stages[7].1.push(ms(t6 - t5));
                stages[8].1.push(ms(t7 - t6));
                stages[1].1.push(ms(t1 - t0));
                stages[2].1.push(ms(t2 - t1));
                stages[3].1.push(ms(t3 - t2));
                if pipeline.has_landmarks() {
                    stages[4].1.push(ms(t4 - t3));
                }
                stages[5].1.push(ms(t3 - t0));
            }
        }
        decoded.push(img);
    }
    if decoded.is_empty() {
        bail!("no decodable images under {}", args.images.display());
    }

    // Throughput: every worker takes the next image; decoding is counted (from the encoded bytes).
    let encoded: Vec<Vec<u8>> = files.iter().filter_map(|p| std::fs::read(p).ok()).collect();
    let workers = (0..args.threads.max(1))
        .map(|_| super::load_pipeline(models_dir, &args.pack, args.det_size, 1))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let rounds = 3;
    let next = AtomicUsize::new(0);
    let total = encoded.len() * rounds;
    let t = Instant::now();
    std::thread::scope(|s| {
        for w in &workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let Ok(mut img) = facegate_vision::decode(&encoded[i % encoded.len()], &limits) else {
                        continue;
                    };
                    img = fit_long_side(img, args.fit);
                    let _ = w.analyze(
                        &img,
                        &AnalyzeOptions {
                            embed: true,
                            landmarks: false,
                            max_faces: Some(1),
                        },
                    );
                }
            });
        }
    });
    let images_per_second = total as f64 / t.elapsed().as_secs_f64();

    let (sw, sh) = decoded.iter().fold((0u64, 0u64), |(w, h), i| {
        (w + u64::from(i.width()), h + u64::from(i.height()))
    });
    let n = decoded.len() as u64;
    let stages: Vec<Stage> = stages
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(stage, mut v)| {
            v.sort_by(f64::total_cmp);
            Stage {
                stage,
                samples: v.len(),
                median_ms: percentile(&v, 0.5),
                p95_ms: percentile(&v, 0.95),
            }
        })
        .collect();
    let report = BenchReport {
        pack: args.pack.clone(),
        det_size,
        images: decoded.len(),
        mean_size: ((sw / n) as u32, (sh / n) as u32),
        detect_align_embed_median_ms: stages
            .iter()
            .find(|s| s.stage == "detect+align+embed")
            .map_or(0.0, |s| s.median_ms),
        stages,
        throughput_threads: workers.len(),
        images_per_second,
        load_ms,
        max_rss_mib: max_rss_mib(),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "pack {} (detector input {}), {} images, mean size {}x{} after decode{}",
            report.pack,
            report.det_size,
            report.images,
            report.mean_size.0,
            report.mean_size.1,
            args.fit
                .map(|f| format!(" (stages timed at longer side {f})"))
                .unwrap_or_default()
        );
        println!(
            "{:<20} {:>8} {:>10} {:>10}",
            "stage (1 thread)", "samples", "median ms", "p95 ms"
        );
        for s in &report.stages {
            println!(
                "{:<20} {:>8} {:>10.2} {:>10.2}",
                s.stage, s.samples, s.median_ms, s.p95_ms
            );
        }
        println!(
            "end to end (decode+detect+align+embed): {:.1} images/s with {} worker(s); models loaded in {:.0} ms; max RSS {}",
            report.images_per_second,
            report.throughput_threads,
            report.load_ms,
            report
                .max_rss_mib
                .map(|m| format!("{m:.0} MiB"))
                .unwrap_or_else(|| "?".into())
        );
    }
    Ok(())
}

fn collect_images(root: &Path, limit: usize) -> anyhow::Result<Vec<PathBuf>> {
    if root.is_file() {
        return Ok(vec![root.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
            .with_context(|| format!("read {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                matches!(
                    e.to_ascii_lowercase().as_str(),
                    "jpg" | "jpeg" | "png" | "webp" | "pgm" | "ppm"
                )
            }) {
                out.push(p);
            }
        }
    }
    out.sort();
    out.truncate(limit);
    if out.is_empty() {
        bail!("no images found under {}", root.display());
    }
    Ok(out)
}

/// Scales the image so its longer side is `fit` pixels (unchanged when `fit` is `None`).
fn fit_long_side(img: image::RgbImage, fit: Option<u32>) -> image::RgbImage {
    let Some(fit) = fit else { return img };
    let scale = fit as f32 / img.width().max(img.height()) as f32;
    let (w, h) = (
        (img.width() as f32 * scale).round() as u32,
        (img.height() as f32 * scale).round() as u32,
    );
    resize_bilinear(&img, w.max(1), h.max(1))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let idx = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Peak resident memory of this process, from /proc (Linux).
fn max_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
