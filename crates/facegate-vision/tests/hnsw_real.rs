//! HNSW recall on real photos: the embeddings of every labelled test photo that has a face, hidden
//! among 20,000 synthetic distractors (uniformly scattered identities, HNSW's hard case). For each
//! photo, every other photo the exact scan finds at or above the pack's 1e-3 threshold must also be
//! found by HNSW (int8 graph, exact f32 re-ranking), with the same score.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use facegate_index::hnsw::{Hnsw, HnswConfig};
use facegate_index::synthetic::Synthetic;
use facegate_index::{Index, IndexConfig};

#[test]
fn hnsw_finds_the_exact_matches_of_real_photos_among_distractors() {
    let Some(pipeline) = common::pipeline(facegate_vision::DEFAULT_PACK) else {
        return;
    };
    let threshold = pipeline.manifest().default_threshold().expect("calibrated pack");
    let manifest = String::from_utf8(common::read("faces/manifest.csv")).unwrap();
    let mut real: Vec<(u32, String, Vec<f32>)> = Vec::new();
    for line in manifest.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let img =
            facegate_vision::decode(&common::read(&format!("faces/{}", f[0])), &Default::default()).unwrap();
        let opts = facegate_vision::AnalyzeOptions {
            max_faces: Some(1),
            ..Default::default()
        };
        let Some(face) = pipeline.analyze(&img, &opts).unwrap().into_iter().next() else {
            continue; // a tight crop without a detectable face
        };
        let e = face.embedding.unwrap().as_slice().to_vec();
        real.push((real.len() as u32, f[1].to_string(), e));
    }
    assert!(real.len() >= 400, "{} photos with a face", real.len());
    let dim = real[0].2.len();
    let mut g = Synthetic::new(dim, 2000, 0.8, 17);
    let distractors: Vec<(u32, Vec<f32>)> = (0..20_000u32).map(|i| (1_000_000 + i, g.sample())).collect();
    let items: Vec<(u32, Vec<f32>)> = real
        .iter()
        .map(|(k, _, v)| (*k, v.clone()))
        .chain(distractors)
        .collect();
    let exact = Index::build(
        dim,
        IndexConfig {
            exact_max: usize::MAX,
            ..Default::default()
        },
        items.iter().cloned(),
    )
    .unwrap();
    let hnsw = Hnsw::build(dim, HnswConfig::default(), items).unwrap();
    let (mut found, mut total, mut same_identity) = (0usize, 0usize, 0usize);
    for (key, identity, v) in &real {
        let want = exact.search_exact(v, 50, threshold);
        let got = hnsw.search(v, 50, threshold);
        for w in want.iter().filter(|w| w.key != *key) {
            total += 1;
            if let Some(h) = got.iter().find(|h| h.key == w.key) {
                found += 1;
                assert!((h.score - w.score).abs() < 1e-4, "re-ranked scores are exact");
            }
            same_identity += usize::from(real.get(w.key as usize).is_some_and(|r| &r.1 == identity));
        }
    }
    let recall = found as f64 / total as f64;
    eprintln!(
        "{} real photos + 20000 distractors: {found}/{total} exact matches found by HNSW (recall {recall:.4}); {same_identity} of them the same person",
        real.len()
    );
    assert!(total > 1000, "the photos have matches ({total})");
    assert!(recall >= 0.99, "recall of exact matches {recall}");
}
