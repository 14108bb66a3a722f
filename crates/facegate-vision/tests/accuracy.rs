//! Accuracy of the default pack on the small labelled pair set, at the pack's own default threshold
//! (calibrated false-match rate 1e-3).
//!
//! Measured: 200 of 200 pairs on the right side of the threshold (genuine min 0.362, impostor max
//! 0.207, threshold 0.2597). The test allows 2 errors (99.0%): the closest score sits 0.05 from the
//! threshold, so only a real regression (a preprocessing or model change) crosses it, while a
//! different CPU's float rounding (cosine moves < 0.005, see golden.rs) cannot.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benches fail loudly by design

mod common;

#[test]
fn genuine_pairs_match_and_impostors_do_not_on_pairs_small() {
    let Some(pipeline) = common::pipeline(facegate_vision::DEFAULT_PACK) else {
        return;
    };
    let threshold = pipeline.manifest().default_threshold().expect("calibrated pack");
    let csv = String::from_utf8(common::read("faces/pairs_small.csv")).unwrap();
    let mut cache = std::collections::HashMap::new();
    let mut embed = |rel: &str| -> facegate_vision::Embedding {
        cache
            .entry(rel.to_string())
            .or_insert_with(|| common::embed_largest(&pipeline, rel))
            .clone()
    };
    let (mut right, mut total, mut genuine, mut impostor) = (0, 0, 0, 0);
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let same = f[2] == "1";
        let score = embed(f[0]).cosine(&embed(f[1]));
        if same {
            genuine += 1
        } else {
            impostor += 1
        }
        if (score >= threshold) == same {
            right += 1;
        } else {
            eprintln!(
                "wrong side of {threshold}: {} {} same={same} score={score}",
                f[0], f[1]
            );
        }
        total += 1;
    }
    assert_eq!((total, genuine, impostor), (200, 100, 100));
    assert!(
        right >= 198,
        "{right}/200 pairs on the right side of the threshold (measured 200/200)"
    );
}
