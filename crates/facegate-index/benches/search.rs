//! `make bench-index` (`cargo bench -p facegate-index --bench search`): search latency (p50/p99), memory and build time of the exact scan and the
//! IVF index at several collection sizes, and IVF recall against the exact answer, on synthetic
//! clustered embeddings (facegate_index::synthetic: ~10 photos per identity, same-identity cosine
//! ~0.6, like real faces). Prints a markdown table (or JSON).

use std::time::Instant;

use facegate_index::synthetic::Synthetic;
use facegate_index::{Index, IndexConfig, recall};

/// Settings from the environment: BENCH_SIZES (comma-separated, default 10000,100000,1000000),
/// BENCH_DIM (512), BENCH_QUERIES (200), BENCH_K (10), BENCH_MATCH_COSINE (0.3526: insightface-s at
/// FMR 1e-5, similarity 80), BENCH_NPROBE (0: automatic), BENCH_JSON (1 for JSON).
#[derive(Debug)]
struct BenchIndexArgs {
    sizes: Vec<usize>,
    dim: usize,
    queries: usize,
    k: usize,
    match_cosine: f32,
    nprobe: usize,
    json: bool,
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

fn latencies(index: &Index<u32>, queries: &[Vec<f32>], k: usize, exact: bool) -> (f64, f64) {
    let mut ms: Vec<f64> = queries
        .iter()
        .map(|q| {
            let t = Instant::now();
            let hits = if exact {
                index.search_exact(q, k, f32::MIN)
            } else {
                index.search(q, k, f32::MIN)
            };
            std::hint::black_box(hits);
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    (percentile(&ms, 0.5), percentile(&ms, 0.99))
}

fn items(n: usize, dim: usize) -> (Vec<(u32, Vec<f32>)>, Synthetic) {
    let mut g = Synthetic::new(dim, (n / 10).max(1), 0.8, n as u64);
    let items = (0..n as u32).map(|i| (i, g.sample())).collect();
    (items, g)
}

fn run(args: BenchIndexArgs) -> Result<(), Box<dyn std::error::Error>> {
    let mut rows = Vec::new();
    if !args.json {
        println!(
            "{}-d synthetic embeddings, {} queries, top {}; recall = share of the exact answer's hits (cosine >= {}) IVF also returns",
            args.dim, args.queries, args.k, args.match_cosine
        );
        println!(
            "| faces | index | build | memory | search p50 | search p99 | recall of matches | recall@1 |"
        );
        println!("|---|---|---|---|---|---|---|---|");
    }
    for &n in &args.sizes {
        for ivf in [false, true] {
            let (data, mut g) = items(n, args.dim);
            let queries: Vec<Vec<f32>> = (0..args.queries).map(|_| g.sample()).collect();
            let (rss_before, _) = rss_mib();
            let config = IndexConfig {
                exact_max: if ivf { 0 } else { usize::MAX },
                nprobe: args.nprobe,
                ..IndexConfig::default()
            };
            let t = Instant::now();
            let index = Index::build(args.dim, config, data)?;
            let build_s = t.elapsed().as_secs_f64();
            let (rss_after, peak) = rss_mib();
            let (p50, p99) = latencies(&index, &queries, args.k, !ivf);
            let (matches, top1) = if ivf {
                (
                    recall(&index, &queries, args.k, args.match_cosine),
                    recall(&index, &queries, 1, f32::MIN),
                )
            } else {
                (1.0, 1.0)
            };
            let kind = if ivf {
                format!("IVF {} lists, nprobe {}", index.lists(), index.nprobe())
            } else {
                "exact".to_string()
            };
            let mem = index.memory_bytes() as f64 / (1024.0 * 1024.0);
            if args.json {
                rows.push(format!(
                    "{{\"faces\": {n}, \"index\": \"{kind}\", \"build_s\": {build_s:.3}, \"memory_mib\": {mem:.1}, \"rss_growth_mib\": {:.1}, \"peak_rss_mib\": {peak:.1}, \"p50_ms\": {p50:.4}, \"p99_ms\": {p99:.4}, \"recall_matches\": {matches:.4}, \"recall_at_1\": {top1:.4}}}",
                    rss_after - rss_before
                ));
            } else {
                println!(
                    "| {n} | {kind} | {build_s:.1} s | {mem:.0} MiB (RSS +{:.0}, peak {peak:.0}) | {p50:.3} ms | {p99:.3} ms | {} | {} |",
                    rss_after - rss_before,
                    if ivf {
                        format!("{matches:.4}")
                    } else {
                        "1 (exact)".into()
                    },
                    if ivf {
                        format!("{top1:.4}")
                    } else {
                        "1 (exact)".into()
                    },
                );
            }
            drop(index);
        }
    }
    if args.json {
        println!("[\n  {}\n]", rows.join(",\n  "));
    }
    Ok(())
}
