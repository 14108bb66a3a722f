//! `facegate eval`: verification accuracy of a pack on labelled pairs.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use facegate_core::face_fusion::{Fusion, Template, TemplateQuality, fused_score, select_diverse};
use facegate_vision::metrics::{Eer, OperatingPoint, ScoreSet};
use facegate_vision::{AnalyzeOptions, DecodeLimits, Embedding, FacePipeline};
use serde::Serialize;

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// CSV with a header and at least the columns a, b, same (1/0); optional source, identity_a, identity_b.
    #[arg(long)]
    pairs: PathBuf,
    /// Folder the image paths in the CSV are relative to.
    #[arg(long)]
    root: PathBuf,
    #[arg(long, default_value = facegate_vision::DEFAULT_PACK)]
    pack: String,
    /// Detector input size override (multiple of 32).
    #[arg(long)]
    det_size: Option<u32>,
    /// Worker threads (each loads its own copy of the models).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Also score every cross-identity pair of the images (needs identity_a/identity_b): many more
    /// impostor pairs, so thresholds at lower false-match rates can be measured.
    #[arg(long)]
    exhaustive: bool,
    /// Where to write roc.svg and pairs.csv (default: target/eval/<pack>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Flip-averaged embeddings (image + mirror): `both` sides of every pair, or only the `enrolled`
    /// side (the first image of a pair), as enrolment with plain login probes does.
    #[arg(long, value_enum, default_value_t = FlipMode::Off)]
    flip: FlipMode,
    /// Align with points moved this share (0..1) of the way to the 106 landmarks' (0 = off).
    #[arg(long, default_value_t = 0.0)]
    landmark_align: f32,
    /// Detect again on a crop around a small or low-scoring largest face.
    #[arg(long)]
    second_scale: bool,
    /// Also measure matching against enrolled galleries: each identity with more than K images enrols
    /// K of them (chosen first-by-path, at random, or diverse in pose and light) and the rest are
    /// probes, scored against every gallery with each fusion rule (needs identity_a/identity_b).
    #[arg(long)]
    templates: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FlipMode {
    Off,
    Both,
    Enrolled,
}

/// What eval keeps of an image: its plain embedding and, when flipping, its flip-averaged one.
#[derive(Debug, Clone)]
struct Embedded {
    plain: Embedding,
    flipped: Option<Embedding>,
    quality: TemplateQuality,
}

impl Embedded {
    /// The score of a pair, `self` being the enrolled side.
    fn score(&self, probe: &Embedded, mode: FlipMode) -> f32 {
        match (mode, &self.flipped, &probe.flipped) {
            (FlipMode::Both, Some(a), Some(b)) => a.cosine(b),
            (FlipMode::Enrolled, Some(a), _) => a.cosine(&probe.plain),
            _ => self.plain.cosine(&probe.plain),
        }
    }
}

#[derive(Debug, Clone)]
struct Pair {
    a: String,
    b: String,
    same: bool,
    source: String,
}

#[derive(Debug, Serialize)]
struct SourceStats {
    source: String,
    genuine: usize,
    impostor: usize,
    genuine_min: Option<f32>,
    impostor_max: Option<f32>,
    eer: Option<Eer>,
    /// TAR at FAR 1e-3 within this source's pairs (`measurable` false under 1,000 impostor pairs).
    at_far_1e3: Option<OperatingPoint>,
    #[serde(skip)]
    scores: ScoreSet,
}

impl SourceStats {
    fn new(source: &str) -> SourceStats {
        SourceStats {
            source: source.to_string(),
            genuine: 0,
            impostor: 0,
            genuine_min: None,
            impostor_max: None,
            eer: None,
            at_far_1e3: None,
            scores: ScoreSet::default(),
        }
    }

    fn push(&mut self, score: f32, same: bool) {
        if same {
            self.genuine += 1;
            self.genuine_min = Some(self.genuine_min.map_or(score, |m| m.min(score)));
        } else {
            self.impostor += 1;
            self.impostor_max = Some(self.impostor_max.map_or(score, |m| m.max(score)));
        }
        self.scores.push(score, same);
    }

    fn finish(mut self) -> SourceStats {
        self.eer = self.scores.eer();
        self.at_far_1e3 = self.scores.at_far(1e-3);
        self
    }
}

/// The source of an image: the first folder of its path.
fn source_of(path: &str) -> &str {
    path.split('/').next().unwrap_or(path)
}

#[derive(Debug, Serialize)]
struct Report {
    pack: String,
    det_size: u32,
    flip: FlipMode,
    landmark_align: f32,
    second_scale: bool,
    pairs_file: String,
    pairs: usize,
    genuine: usize,
    impostor: usize,
    images: usize,
    images_without_face: Vec<String>,
    pairs_not_scored: usize,
    eer: Option<Eer>,
    at_far: Vec<OperatingPoint>,
    per_source: Vec<SourceStats>,
    exhaustive: Option<ExhaustiveReport>,
    galleries: Option<GalleryReport>,
    roc_svg: String,
    per_pair_csv: String,
    seconds: f64,
}

#[derive(Debug, Serialize)]
struct ExhaustiveReport {
    genuine: usize,
    impostor: usize,
    eer: Option<Eer>,
    at_far: Vec<OperatingPoint>,
    /// Every pair of two images of one source ("cross" for images of two sources).
    per_source: Vec<SourceStats>,
}

#[derive(Debug, Serialize)]
struct GalleryReport {
    templates: usize,
    identities: usize,
    probes: usize,
    /// The pack's calibrated cosine at FMR 1e-3, at which `far_at_pack_threshold` is measured.
    pack_threshold: Option<f32>,
    results: Vec<GalleryResult>,
}

#[derive(Debug, Serialize)]
struct GalleryResult {
    selection: &'static str,
    fusion: Fusion,
    genuine: usize,
    impostor: usize,
    eer: Option<Eer>,
    at_far_1e3: Option<OperatingPoint>,
    at_far_1e4: Option<OperatingPoint>,
    far_at_pack_threshold: Option<f64>,
    tar_at_pack_threshold: Option<f64>,
    per_source: Vec<SourceStats>,
}

/// One identity in a gallery run: its id, its enrolled templates (embedding, quality), its probes
/// (path, embedding).
type Split<'a> = (
    &'a str,
    Vec<(Vec<f32>, TemplateQuality)>,
    Vec<(&'a str, Vec<f32>)>,
);

const FUSIONS: [Fusion; 5] = [
    Fusion::Max,
    Fusion::Mean,
    Fusion::QualityMean,
    Fusion::QualityTemplate,
    Fusion::MaxQualityMean,
];

/// Enrols `k` images of each identity (three ways of choosing them) and scores the rest against
/// every gallery with every fusion rule. The enrolled side is flip-averaged when `flip` is not off.
fn galleries(
    k: usize,
    images: &[String],
    embeddings: &HashMap<String, Option<Embedded>>,
    identities: &HashMap<String, String>,
    flip: FlipMode,
    pack_threshold: Option<f32>,
) -> GalleryReport {
    let mut by_id: BTreeMap<&str, Vec<(&str, &Embedded)>> = BTreeMap::new();
    for i in images {
        if let (Some(Some(e)), Some(id)) = (embeddings.get(i), identities.get(i)) {
            by_id.entry(id.as_str()).or_default().push((i.as_str(), e));
        }
    }
    by_id.retain(|_, v| v.len() > k);
    let enrolled = |e: &Embedded| -> Vec<f32> {
        match (flip, &e.flipped) {
            (FlipMode::Off, _) | (_, None) => e.plain.as_slice().to_vec(),
            (_, Some(f)) => f.as_slice().to_vec(),
        }
    };
    let probe_of = |e: &Embedded| -> Vec<f32> {
        match (flip, &e.flipped) {
            (FlipMode::Both, Some(f)) => f.as_slice().to_vec(),
            _ => e.plain.as_slice().to_vec(),
        }
    };
    let mut results = Vec::new();
    let mut probes_counted = 0;
    for selection in ["first", "random", "diverse"] {
        // (identity, gallery embeddings + qualities, probes)
        let mut split: Vec<Split<'_>> = Vec::new();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for (id, imgs) in &by_id {
            let chosen: Vec<usize> = match selection {
                "first" => (0..k).collect(),
                "random" => {
                    let mut idx: Vec<usize> = (0..imgs.len()).collect();
                    for i in (1..idx.len()).rev() {
                        seed = seed
                            .wrapping_mul(6_364_136_223_846_793_005)
                            .wrapping_add(1_442_695_040_888_963_407);
                        idx.swap(i, (seed >> 33) as usize % (i + 1));
                    }
                    idx.truncate(k);
                    idx
                }
                _ => {
                    let embs: Vec<Vec<f32>> = imgs.iter().map(|(_, e)| enrolled(e)).collect();
                    let cands: Vec<Template<'_>> = imgs
                        .iter()
                        .zip(&embs)
                        .map(|((_, e), v)| Template {
                            embedding: v,
                            quality: e.quality,
                        })
                        .collect();
                    select_diverse(&cands, k)
                }
            };
            let gallery = chosen
                .iter()
                .map(|&c| (enrolled(imgs[c].1), imgs[c].1.quality))
                .collect();
            let probes = (0..imgs.len())
                .filter(|i| !chosen.contains(i))
                .map(|i| (imgs[i].0, probe_of(imgs[i].1)))
                .collect();
            split.push((id, gallery, probes));
        }
        probes_counted = split.iter().map(|s| s.2.len()).sum();
        for fusion in FUSIONS {
            let mut all = ScoreSet::default();
            let mut per_source: BTreeMap<&str, SourceStats> = BTreeMap::new();
            for (pid, _, probes) in &split {
                for (path, probe) in probes {
                    let source = source_of(path);
                    for (gid, gallery, _) in &split {
                        let ts: Vec<Template<'_>> = gallery
                            .iter()
                            .map(|(v, q)| Template {
                                embedding: v,
                                quality: *q,
                            })
                            .collect();
                        let Some(score) = fused_score(probe, &ts, fusion) else {
                            continue;
                        };
                        all.push(score, pid == gid);
                        per_source
                            .entry(source)
                            .or_insert_with(|| SourceStats::new(source))
                            .push(score, pid == gid);
                    }
                }
            }
            results.push(GalleryResult {
                selection,
                fusion,
                genuine: all.genuine().len(),
                impostor: all.impostor().len(),
                eer: all.eer(),
                at_far_1e3: all.at_far(1e-3),
                at_far_1e4: all.at_far(1e-4),
                far_at_pack_threshold: pack_threshold.map(|t| all.far(t)),
                tar_at_pack_threshold: pack_threshold.map(|t| all.tar(t)),
                per_source: per_source.into_values().map(SourceStats::finish).collect(),
            });
        }
    }
    GalleryReport {
        templates: k,
        identities: by_id.len(),
        probes: probes_counted,
        pack_threshold,
        results,
    }
}

const FAR_TARGETS: [f64; 5] = [1e-2, 1e-3, 1e-4, 1e-5, 1e-6];

pub fn run(args: EvalArgs, models_dir: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let (pairs, identities) = read_pairs(&args.pairs)?;
    let mut images: Vec<String> = pairs.iter().flat_map(|p| [p.a.clone(), p.b.clone()]).collect();
    images.sort();
    images.dedup();

    let levers = facegate_vision::Levers {
        flip: false,
        landmark_alignment: args.landmark_align,
        second_scale: args.second_scale,
    };
    let pipelines = (0..args.threads.max(1))
        .map(|_| {
            let mut p = super::load_pipeline(models_dir, &args.pack, args.det_size, 1)?;
            p.set_levers(levers);
            Ok(p)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let det_size = pipelines[0]
        .manifest()
        .detector
        .as_ref()
        .map(|d| d.input_size)
        .unwrap_or(0);
    let embeddings = embed_all(&pipelines, &args.root, &images, args.flip != FlipMode::Off)?;
    let without_face: Vec<String> = images
        .iter()
        .filter(|i| embeddings.get(*i).is_none_or(Option::is_none))
        .cloned()
        .collect();

    let mut scores = ScoreSet::default();
    let mut per_source: BTreeMap<String, SourceStats> = BTreeMap::new();
    let mut csv = String::from("a,b,same,source,score\n");
    let mut not_scored = 0;
    for p in &pairs {
        let score = match (
            embeddings.get(&p.a).and_then(Option::as_ref),
            embeddings.get(&p.b).and_then(Option::as_ref),
        ) {
            (Some(ea), Some(eb)) => Some(ea.score(eb, args.flip)),
            _ => None,
        };
        let _ = writeln!(
            csv,
            "{},{},{},{},{}",
            p.a,
            p.b,
            u8::from(p.same),
            p.source,
            score
                .map(|s| format!("{s:.6}"))
                .unwrap_or_else(|| "no_face".into())
        );
        let Some(score) = score else {
            not_scored += 1;
            continue;
        };
        scores.push(score, p.same);
        per_source
            .entry(p.source.clone())
            .or_insert_with(|| SourceStats::new(&p.source))
            .push(score, p.same);
    }

    let exhaustive = if args.exhaustive {
        if identities.is_empty() {
            bail!(
                "--exhaustive needs identity_a and identity_b columns in {}",
                args.pairs.display()
            );
        }
        let mut all = ScoreSet::default();
        let mut by_source: BTreeMap<&str, SourceStats> = BTreeMap::new();
        let labelled: Vec<(&String, &Embedded, &String)> = images
            .iter()
            .filter_map(|i| Some((i, embeddings.get(i)?.as_ref()?, identities.get(i)?)))
            .collect();
        for (i, (pa, ea, ida)) in labelled.iter().enumerate() {
            for (pb, eb, idb) in &labelled[i + 1..] {
                let (score, same) = (ea.score(eb, args.flip), ida == idb);
                all.push(score, same);
                let (sa, sb) = (source_of(pa), source_of(pb));
                let source = if sa == sb { sa } else { "cross" };
                by_source
                    .entry(source)
                    .or_insert_with(|| SourceStats::new(source))
                    .push(score, same);
            }
        }
        Some(ExhaustiveReport {
            genuine: all.genuine().len(),
            impostor: all.impostor().len(),
            eer: all.eer(),
            at_far: FAR_TARGETS.iter().filter_map(|t| all.at_far(*t)).collect(),
            per_source: by_source.into_values().map(SourceStats::finish).collect(),
        })
    } else {
        None
    };

    let galleries = match args.templates {
        Some(k) if identities.is_empty() => bail!(
            "--templates {k} needs identity_a and identity_b columns in {}",
            args.pairs.display()
        ),
        Some(k) => Some(galleries(
            k.max(1),
            &images,
            &embeddings,
            &identities,
            args.flip,
            pipelines[0].manifest().default_threshold(),
        )),
        None => None,
    };

    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("target/eval").join(&args.pack));
    std::fs::create_dir_all(&out).with_context(|| format!("create {}", out.display()))?;
    let svg_path = out.join("roc.svg");
    let csv_path = out.join("pairs.csv");
    std::fs::write(&svg_path, roc_svg(&scores, &args.pack))
        .with_context(|| format!("write {}", svg_path.display()))?;
    std::fs::write(&csv_path, csv).with_context(|| format!("write {}", csv_path.display()))?;

    let report = Report {
        pack: args.pack.clone(),
        det_size,
        flip: args.flip,
        landmark_align: args.landmark_align,
        second_scale: args.second_scale,
        pairs_file: args.pairs.display().to_string(),
        pairs: pairs.len(),
        genuine: scores.genuine().len(),
        impostor: scores.impostor().len(),
        images: images.len(),
        images_without_face: without_face,
        pairs_not_scored: not_scored,
        eer: scores.eer(),
        at_far: FAR_TARGETS.iter().filter_map(|t| scores.at_far(*t)).collect(),
        per_source: per_source.into_values().map(SourceStats::finish).collect(),
        exhaustive,
        galleries,
        roc_svg: svg_path.display().to_string(),
        per_pair_csv: csv_path.display().to_string(),
        seconds: started.elapsed().as_secs_f64(),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}

/// Embeds the largest face of every image once (and flip-averaged too when `flip`), spreading images
/// over the pipelines' threads.
fn embed_all(
    pipelines: &[FacePipeline],
    root: &Path,
    images: &[String],
    flip: bool,
) -> anyhow::Result<HashMap<String, Option<Embedded>>> {
    let next = Mutex::new(0usize);
    let results = Mutex::new(HashMap::with_capacity(images.len()));
    let first_error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let limits = DecodeLimits {
        max_bytes: 64 << 20,
        ..DecodeLimits::default()
    };
    std::thread::scope(|scope| {
        for pipeline in pipelines {
            scope.spawn(|| {
                loop {
                    let i = {
                        let Ok(mut n) = next.lock() else { return };
                        let i = *n;
                        *n += 1;
                        i
                    };
                    let Some(rel) = images.get(i) else { return };
                    let result = (|| -> anyhow::Result<Option<Embedded>> {
                        let path = root.join(rel);
                        let bytes =
                            std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
                        let img = facegate_vision::decode(&bytes, &limits)
                            .with_context(|| format!("decode {rel}"))?;
                        let opts = AnalyzeOptions {
                            embed: true,
                            landmarks: false,
                            max_faces: Some(1),
                        };
                        let faces = pipeline
                            .analyze(&img, &opts)
                            .with_context(|| format!("analyse {rel}"))?;
                        let Some(face) = faces.into_iter().next() else {
                            return Ok(None);
                        };
                        let quality = TemplateQuality {
                            eye_distance_px: face.quality.eye_distance_px,
                            sharpness: face.quality.sharpness,
                            brightness: face.quality.brightness,
                            yaw: face.pose.yaw,
                            pitch: face.pose.pitch,
                        };
                        let Some(plain) = face.embedding else {
                            return Ok(None);
                        };
                        let flipped = if flip {
                            let levers = facegate_vision::Levers {
                                flip: true,
                                ..pipeline.levers()
                            };
                            pipeline
                                .analyze_with(&img, &opts, &levers)
                                .with_context(|| format!("analyse {rel}"))?
                                .into_iter()
                                .next()
                                .and_then(|f| f.embedding)
                        } else {
                            None
                        };
                        Ok(Some(Embedded {
                            plain,
                            flipped,
                            quality,
                        }))
                    })();
                    match result {
                        Ok(e) => {
                            if let Ok(mut r) = results.lock() {
                                r.insert(rel.clone(), e);
                            }
                        }
                        Err(e) => {
                            if let Ok(mut slot) = first_error.lock() {
                                slot.get_or_insert(e);
                            }
                            return;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().ok().flatten() {
        return Err(e);
    }
    results
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a worker panicked"))
}

/// Reads the pairs CSV. Returns the pairs and, when the identity columns exist, each image's identity.
fn read_pairs(path: &Path) -> anyhow::Result<(Vec<Pair>, HashMap<String, String>)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .context("the pairs file is empty")?
        .split(',')
        .map(str::trim)
        .collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (Some(ca), Some(cb), Some(cs)) = (col("a"), col("b"), col("same")) else {
        bail!(
            "{}: the header must name the columns a, b and same",
            path.display()
        );
    };
    let (csrc, cia, cib) = (col("source"), col("identity_a"), col("identity_b"));
    let mut pairs = Vec::new();
    let mut identities = HashMap::new();
    for (n, line) in lines.enumerate() {
        if line.contains('"') {
            bail!(
                "{} line {}: quoted fields are not supported",
                path.display(),
                n + 2
            );
        }
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let get = |c: usize| {
            f.get(c)
                .copied()
                .with_context(|| format!("{} line {}: too few columns", path.display(), n + 2))
        };
        let same = match get(cs)? {
            "1" | "true" => true,
            "0" | "false" => false,
            other => bail!(
                "{} line {}: same must be 1 or 0, not {other:?}",
                path.display(),
                n + 2
            ),
        };
        let (a, b) = (get(ca)?.to_string(), get(cb)?.to_string());
        if let (Some(ia), Some(ib)) = (cia, cib) {
            identities.insert(a.clone(), get(ia)?.to_string());
            identities.insert(b.clone(), get(ib)?.to_string());
        }
        let source = csrc
            .and_then(|c| f.get(c))
            .map(|s| s.to_string())
            .unwrap_or_else(|| "all".into());
        pairs.push(Pair { a, b, same, source });
    }
    if pairs.is_empty() {
        bail!("{}: no pairs", path.display());
    }
    Ok((pairs, identities))
}

fn print_report(r: &Report) {
    println!(
        "pack {} (detector input {}), {}; levers: flip {:?}, landmark alignment {}, second scale {}",
        r.pack, r.det_size, r.pairs_file, r.flip, r.landmark_align, r.second_scale
    );
    println!(
        "{} pairs ({} genuine, {} impostor scored), {} images, {} without a face, {} pairs not scored",
        r.pairs,
        r.genuine,
        r.impostor,
        r.images,
        r.images_without_face.len(),
        r.pairs_not_scored
    );
    if let Some(e) = r.eer {
        println!("EER {:.3}% at cosine {:.4}", e.rate * 100.0, e.threshold);
    }
    print_points(&r.at_far);
    print_sources(&r.per_source);
    if let Some(x) = &r.exhaustive {
        println!("exhaustive: {} genuine, {} impostor pairs", x.genuine, x.impostor);
        if let Some(e) = x.eer {
            println!("  EER {:.3}% at cosine {:.4}", e.rate * 100.0, e.threshold);
        }
        print_points(&x.at_far);
        print_sources(&x.per_source);
    }
    if let Some(g) = &r.galleries {
        println!(
            "galleries: {} templates each, {} identities, {} probes; pack threshold {:?}",
            g.templates, g.identities, g.probes, g.pack_threshold
        );
        println!(
            "  {:<8} {:<16} {:>7} {:>7} {:>7} {:>8} {:>8}  per source TAR@1e-3 / EER",
            "select", "fusion", "EER", "TAR1e-3", "TAR1e-4", "FAR@thr", "TAR@thr"
        );
        for x in &g.results {
            let per: Vec<String> = x
                .per_source
                .iter()
                .map(|s| {
                    format!(
                        "{} {} / {}",
                        s.source,
                        s.at_far_1e3.map(|p| format!("{:.4}", p.tar)).unwrap_or_default(),
                        s.eer
                            .map(|e| format!("{:.2}%", e.rate * 100.0))
                            .unwrap_or_default()
                    )
                })
                .collect();
            println!(
                "  {:<8} {:<16} {:>7} {:>7} {:>7} {:>8} {:>8}  {}",
                x.selection,
                format!("{:?}", x.fusion),
                x.eer
                    .map(|e| format!("{:.3}%", e.rate * 100.0))
                    .unwrap_or_default(),
                x.at_far_1e3.map(|p| format!("{:.4}", p.tar)).unwrap_or_default(),
                x.at_far_1e4.map(|p| format!("{:.4}", p.tar)).unwrap_or_default(),
                x.far_at_pack_threshold
                    .map(|f| format!("{f:.5}"))
                    .unwrap_or_default(),
                x.tar_at_pack_threshold
                    .map(|f| format!("{f:.4}"))
                    .unwrap_or_default(),
                per.join(", ")
            );
        }
    }
    println!(
        "ROC plot: {}\nper-pair scores: {}\n{:.1} s",
        r.roc_svg, r.per_pair_csv, r.seconds
    );
}

fn print_sources(sources: &[SourceStats]) {
    println!(
        "{:<14} {:>8} {:>8} {:>12} {:>13} {:>8} {:>15}",
        "source", "genuine", "impostor", "genuine min", "impostor max", "EER", "TAR@FAR1e-3"
    );
    for s in sources {
        let f = |v: Option<f32>| v.map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into());
        let eer = s
            .eer
            .map(|e| format!("{:.3}%", e.rate * 100.0))
            .unwrap_or_else(|| "-".into());
        let tar = s
            .at_far_1e3
            .map(|p| format!("{:.4}{}", p.tar, if p.measurable { "" } else { "*" }))
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<14} {:>8} {:>8} {:>12} {:>13} {:>8} {:>15}",
            s.source,
            s.genuine,
            s.impostor,
            f(s.genuine_min),
            f(s.impostor_max),
            eer,
            tar
        );
    }
    if sources
        .iter()
        .any(|s| s.at_far_1e3.is_some_and(|p| !p.measurable))
    {
        println!("  * fewer than 1,000 impostor pairs: FAR 1e-3 cannot be measured, FAR 0 is used");
    }
}

fn print_points(points: &[OperatingPoint]) {
    for p in points {
        println!(
            "  FAR <= {:<6.0e} TAR {:.4} (FAR {:.5}) at cosine {:.4}{}",
            p.target_far,
            p.tar,
            p.far,
            p.threshold,
            if p.measurable {
                ""
            } else {
                "  [too few impostor pairs to measure]"
            }
        );
    }
}

/// A ROC curve (true-accept rate against false-accept rate on a log axis) as a standalone SVG.
fn roc_svg(scores: &ScoreSet, title: &str) -> String {
    let (w, h, left, right, top, bottom) = (640.0, 420.0, 70.0, 20.0, 40.0, 50.0);
    let (x_min, x_max) = (-5.0f64, 0.0f64);
    let curve = scores.det_curve();
    let y_min = curve
        .iter()
        .filter(|(far, _)| *far >= 1e-5)
        .map(|(_, frr)| 1.0 - frr)
        .fold(1.0f64, f64::min);
    let y_min = ((y_min - 0.005) * 100.0).floor() / 100.0;
    let y_min = y_min.clamp(0.0, 0.99);
    let px = |far: f64| left + (far.max(1e-5).log10() - x_min) / (x_max - x_min) * (w - left - right);
    let py = |tar: f64| top + (1.0 - (tar - y_min) / (1.0 - y_min)) * (h - top - bottom);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">ROC, pack {} ({} genuine, {} impostor pairs)</text>\n",
        w / 2.0,
        xml_escape(title),
        scores.genuine().len(),
        scores.impostor().len()
    );
    for e in -5..=0 {
        let x = px(10f64.powi(e));
        let _ = writeln!(
            s,
            "<line x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"#ddd\"/><text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">1e{e}</text>",
            h - bottom,
            h - bottom + 16.0
        );
    }
    for i in 0..=4 {
        let tar = y_min + (1.0 - y_min) * f64::from(i) / 4.0;
        let y = py(tar);
        let _ = writeln!(
            s,
            "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{}\" y2=\"{y:.1}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{tar:.3}</text>",
            w - right,
            left - 6.0,
            y + 4.0
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">false-accept rate</text>",
        w / 2.0,
        h - 10.0
    );
    let _ = writeln!(
        s,
        "<text x=\"16\" y=\"{}\" transform=\"rotate(-90 16 {})\" text-anchor=\"middle\">true-accept rate</text>",
        h / 2.0,
        h / 2.0
    );
    let points: Vec<String> = curve
        .iter()
        .rev()
        .map(|(far, frr)| format!("{:.1},{:.1}", px(*far), py((1.0 - frr).max(y_min))))
        .collect();
    let _ = writeln!(
        s,
        "<polyline fill=\"none\" stroke=\"#1f6feb\" stroke-width=\"2\" points=\"{}\"/>",
        points.join(" ")
    );
    s.push_str("</svg>\n");
    s
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
