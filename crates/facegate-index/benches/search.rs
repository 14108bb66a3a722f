//! `make bench-index` (`cargo bench -p facegate-index --bench search`): search latency (p50/p99), memory and build time of the exact scan and the
//! IVF index at several collection sizes, and IVF recall against the exact answer, on synthetic
//! clustered embeddings (facegate_index::synthetic: ~10 photos per identity, same-identity cosine
//! ~0.6, like real faces), and the same for HNSW (int8 graph, exact f32 re-ranking; its f32 copies
//! on disk under BENCH_HNSW_DIR when set, else in memory). Prints a markdown table (or JSON).

use std::time::Instant;

use facegate_index::hnsw::{Hnsw, HnswConfig};
use facegate_index::synthetic::Synthetic;
use facegate_index::{Hit, Index, IndexConfig};

/// Settings from the environment: BENCH_SIZES (comma-separated, default 10000,100000,1000000),
/// BENCH_DIM (512), BENCH_QUERIES (200), BENCH_K (10), BENCH_MATCH_COSINE (0.3526: insightface-s at
/// FMR 1e-5, similarity 80), BENCH_NPROBE (0: automatic), BENCH_JSON (1 for JSON), BENCH_KINDS
/// (exact,ivf,hnsw), BENCH_EF (HNSW ef_search values, one build: 96), BENCH_M (16), BENCH_EFC (128), BENCH_HNSW_DIR.
#[derive(Debug)]
struct BenchIndexArgs {
    sizes: Vec<usize>,
    dim: usize,
    queries: usize,
    k: usize,
    match_cosine: f32,
    nprobe: usize,
    json: bool,
    kinds: Vec<String>,
    efs: Vec<usize>,
    m: usize,
    efc: usize,
    hnsw_dir: Option<std::path::PathBuf>,
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sizes = std::env::var("BENCH_SIZES").unwrap_or_else(|_| "10000,100000,1000000".into());
    run(BenchIndexArgs {
        sizes: sizes.split(',').filter_map(|s| s.trim().parse().ok()).collect(),
        dim: env("BENCH_DIM", 512),
        queries: env("BENCH_QUERIES", 200),
        k: env("BENCH_K", 10),
        match_cosine: env("BENCH_MATCH_COSINE", 0.3526),
        nprobe: env("BENCH_NPROBE", 0),
        json: env("BENCH_JSON", 0u8) == 1,
        kinds: std::env::var("BENCH_KINDS")
            .unwrap_or_else(|_| "exact,ivf,hnsw".into())
            .split(',')
            .map(|s| s.trim().to_string())
            .collect(),
        efs: std::env::var("BENCH_EF")
            .unwrap_or_else(|_| "96".into())
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect(),
        m: env("BENCH_M", 16),
        efc: env("BENCH_EFC", 128),
        hnsw_dir: std::env::var_os("BENCH_HNSW_DIR").map(Into::into),
    })
}

fn percentile(sorted_ms: &[f64], p: f64) -> f64 {
    if sorted_ms.is_empty() {
        return 0.0;
    }
    let i = ((sorted_ms.len() as f64 - 1.0) * p).round() as usize;
    sorted_ms[i.min(sorted_ms.len() - 1)]
}

/// Resident and peak resident memory of this process in MiB (Linux /proc).
fn rss_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn time_queries(
    queries: &[Vec<f32>],
    mut search: impl FnMut(&[f32]) -> Vec<Hit<u32>>,
) -> (f64, f64, Vec<Vec<Hit<u32>>>) {
    let mut answers = Vec::with_capacity(queries.len());
    let mut ms: Vec<f64> = queries
        .iter()
        .map(|q| {
            let t = Instant::now();
            let hits = search(q);
            let e = t.elapsed().as_secs_f64() * 1e3;
            answers.push(hits);
            e
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    (percentile(&ms, 0.5), percentile(&ms, 0.99), answers)
}

/// Share of the exact answers' hits with score >= `min` that `got` also holds (top `k`).
fn recall_of(exact: &[Vec<Hit<u32>>], got: &[Vec<Hit<u32>>], k: usize, min: f32) -> f64 {
    let (mut found, mut total) = (0usize, 0usize);
    for (e, g) in exact.iter().zip(got) {
        for h in e.iter().take(k).filter(|h| h.score >= min) {
            total += 1;
            found += usize::from(g.iter().take(k).any(|x| x.key == h.key));
        }
    }
    if total == 0 {
        1.0
    } else {
        found as f64 / total as f64
    }
}

fn items(n: usize, dim: usize) -> (Vec<(u32, Vec<f32>)>, Synthetic) {
    let mut g = Synthetic::new(dim, (n / 10).max(1), 0.8, n as u64);
    let items = (0..n as u32).map(|i| (i, g.sample())).collect();
    (items, g)
}

struct Row {
    n: usize,
    kind: String,
    build_s: f64,
    mem_mib: f64,
    rss_growth: f64,
    peak: f64,
    p50: f64,
    p99: f64,
    matches: Option<f64>,
    top1: Option<f64>,
}

fn run(args: BenchIndexArgs) -> Result<(), Box<dyn std::error::Error>> {
    let mut rows: Vec<Row> = Vec::new();
    if !args.json {
        println!(
            "{}-d synthetic embeddings, {} queries, top {}; recall = share of the exact answer's hits (cosine >= {}) the index also returns",
            args.dim, args.queries, args.k, args.match_cosine
        );
        println!(
            "| faces | index | build | memory | search p50 | search p99 | recall of matches | recall@1 |"
        );
        println!("|---|---|---|---|---|---|---|---|");
    }
    let wants = |k: &str| args.kinds.iter().any(|x| x == k);
    for &n in &args.sizes {
        let (data, mut g) = items(n, args.dim);
        let queries: Vec<Vec<f32>> = (0..args.queries).map(|_| g.sample()).collect();
        // The exact answers, always (recall is measured against them); timed as the exact row.
        let mut exact_answers = Vec::new();
        for ivf in [false, true] {
            if ivf && !wants("ivf") {
                continue;
            }
            let (rss_before, _) = rss_mib();
            let config = IndexConfig {
                exact_max: if ivf { 0 } else { usize::MAX },
                nprobe: args.nprobe,
                ..IndexConfig::default()
            };
            let t = Instant::now();
            let index = Index::build(args.dim, config, data.iter().cloned())?;
            let build_s = t.elapsed().as_secs_f64();
            let (rss_after, peak) = rss_mib();
            let (p50, p99, answers) = time_queries(&queries, |q| index.search(q, args.k, f32::MIN));
            let (kind, matches, top1) = if ivf {
                (
                    format!("IVF {} lists, nprobe {}", index.lists(), index.nprobe()),
                    Some(recall_of(&exact_answers, &answers, args.k, args.match_cosine)),
                    Some(recall_of(&exact_answers, &answers, 1, f32::MIN)),
                )
            } else {
                exact_answers = answers;
                ("exact".to_string(), None, None)
            };
            let row = Row {
                n,
                kind,
                build_s,
                mem_mib: index.memory_bytes() as f64 / (1024.0 * 1024.0),
                rss_growth: rss_after - rss_before,
                peak,
                p50,
                p99,
                matches,
                top1,
            };
            drop(index);
            if ivf || wants("exact") {
                print_row(&row, args.json);
                rows.push(row);
            }
        }
        if wants("hnsw") {
            let (rss_before, _) = rss_mib();
            let config = HnswConfig {
                m: args.m,
                ef_construction: args.efc,
                ef_search: args.efs.first().copied().unwrap_or(96),
                exact_dir: args.hnsw_dir.clone(),
                ..HnswConfig::default()
            };
            let on_disk = config.exact_dir.is_some();
            let t = Instant::now();
            let index = Hnsw::build(args.dim, config, data.iter().cloned())?;
            let build_s = t.elapsed().as_secs_f64();
            let (rss_after, peak) = rss_mib();
            for &ef in &args.efs {
                let (p50, p99, answers) =
                    time_queries(&queries, |q| index.search_ef(q, args.k, f32::MIN, ef));
                let row = Row {
                    n,
                    kind: format!(
                        "HNSW int8 M {} efC {} ef {ef}, f32 re-rank {}",
                        args.m,
                        args.efc,
                        if on_disk { "from file" } else { "in memory" }
                    ),
                    build_s,
                    mem_mib: index.memory_bytes() as f64 / (1024.0 * 1024.0),
                    rss_growth: rss_after - rss_before,
                    peak,
                    p50,
                    p99,
                    matches: Some(recall_of(&exact_answers, &answers, args.k, args.match_cosine)),
                    top1: Some(recall_of(&exact_answers, &answers, 1, f32::MIN)),
                };
                print_row(&row, args.json);
                rows.push(row);
            }
        }
    }
    if args.json {
        let json: Vec<String> = rows.iter().map(row_json).collect();
        println!("[\n  {}\n]", json.join(",\n  "));
    }
    Ok(())
}

fn row_json(r: &Row) -> String {
    format!(
        "{{\"faces\": {}, \"index\": \"{}\", \"build_s\": {:.3}, \"memory_mib\": {:.1}, \"rss_growth_mib\": {:.1}, \"peak_rss_mib\": {:.1}, \"p50_ms\": {:.4}, \"p99_ms\": {:.4}, \"recall_matches\": {:.4}, \"recall_at_1\": {:.4}}}",
        r.n,
        r.kind,
        r.build_s,
        r.mem_mib,
        r.rss_growth,
        r.peak,
        r.p50,
        r.p99,
        r.matches.unwrap_or(1.0),
        r.top1.unwrap_or(1.0)
    )
}

fn print_row(r: &Row, json: bool) {
    if json {
        return;
    }
    let f = |x: Option<f64>| x.map_or("1 (exact)".to_string(), |v| format!("{v:.4}"));
    println!(
        "| {} | {} | {:.1} s | {:.0} MiB (RSS +{:.0}, peak {:.0}) | {:.3} ms | {:.3} ms | {} | {} |",
        r.n,
        r.kind,
        r.build_s,
        r.mem_mib,
        r.rss_growth,
        r.peak,
        r.p50,
        r.p99,
        f(r.matches),
        f(r.top1)
    );
}
