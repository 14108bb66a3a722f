//! What encryption at rest costs: the same reads with and without a data key, on SQLite in a
//! temporary folder. A 1:N index rebuild reads every face (`all_api_faces`, `faces_by_pack`); a
//! face login reads one person's templates (`faces_of`). Run: `cargo run --release -p
//! facegate-store --example seal_cost [FACES]` (default 20000 faces of 512 dimensions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use facegate_store::{ApiFace, DataKey, DataKeys, Store};

fn embedding(i: usize) -> Vec<f32> {
    (0..512).map(|d| ((i * 512 + d) as f32 * 0.618).sin()).collect()
}

async fn fill(s: &Store, n: usize) {
    s.create_collection("c", "p", 1).await.unwrap();
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let faces: Vec<ApiFace> = chunk
            .iter()
            .map(|&i| ApiFace {
                id: format!("f{i:08}"),
                collection_id: "c".into(),
                external_id: None,
                pack: "p".into(),
                embedding: embedding(i),
                bbox: serde_json::json!({}),
                quality: serde_json::json!({}),
                created_at: 1,
            })
            .collect();
        s.add_api_faces(&faces).await.unwrap();
    }
    s.create_user(
        &facegate_core::User {
            id: "u1".into(),
            username: facegate_core::Username::parse("user1").unwrap(),
            email: None,
            email_verified: false,
            name: None,
            created_at: 1,
        },
        None,
    )
    .await
    .unwrap();
    for t in 0..5 {
        s.add_face(&facegate_core::face::FaceTemplate {
            id: format!("t{t}"),
            user_id: "u1".into(),
            pack: "p".into(),
            embedding: embedding(t),
            quality: serde_json::json!({}),
            created_at: 1,
        })
        .await
        .unwrap();
    }
}

/// Median of `runs` timings of `f`, in milliseconds.
async fn median<F, Fut>(runs: usize, mut f: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut t = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        f().await;
        t.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let mut rows = Vec::new();
    for sealed in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("f.db").display());
        let keys = sealed.then(|| DataKeys::new(DataKey::from_bytes(&[9u8; 32]).unwrap(), vec![]));
        let s = Store::open_with_keys(&url, keys).await.unwrap();
        let start = Instant::now();
        fill(&s, n).await;
        let write = start.elapsed().as_secs_f64() * 1000.0;
        let rebuild = median(5, || async {
            assert_eq!(s.all_api_faces().await.unwrap().len(), n);
        })
        .await;
        let login = median(201, || async {
            assert_eq!(s.faces_of("u1").await.unwrap().len(), 5);
        })
        .await;
        rows.push((sealed, write, rebuild, login));
    }
    println!("{n} faces of 512 dimensions, SQLite, median of 5 (rebuild) and 201 (login) runs");
    println!(
        "| data key | index {n} faces (ms) | 1:N rebuild: read all (ms) | face login: read 5 templates (ms) |"
    );
    println!("|---|---|---|---|");
    for (sealed, write, rebuild, login) in &rows {
        let name = if *sealed { "AES-256-GCM" } else { "none" };
        println!("| {name} | {write:.0} | {rebuild:.1} | {login:.3} |");
    }
    // The cipher alone, without the database: what sealing adds to each embedding read.
    let ring = DataKeys::new(DataKey::from_bytes(&[9u8; 32]).unwrap(), vec![]);
    let plain = facegate_core::face::to_bytes(&embedding(1));
    let sealed: Vec<Vec<u8>> = (0..n)
        .map(|i| ring.seal(&format!("api_faces:f{i:08}"), &plain).unwrap())
        .collect();
    let start = Instant::now();
    for (i, b) in sealed.iter().enumerate() {
        ring.open(&format!("api_faces:f{i:08}"), b).unwrap();
    }
    let open_all = start.elapsed().as_secs_f64() * 1000.0;
    println!(
        "AES-256-GCM alone: opening {n} embeddings of {} bytes takes {open_all:.1} ms ({:.2} us each)",
        plain.len(),
        open_all * 1000.0 / n as f64
    );
    let (p, s) = (&rows[0], &rows[1]);
    println!(
        "ratio sealed/plain: index {:.2}x, rebuild {:.2}x, login read {:.2}x",
        s.1 / p.1,
        s.2 / p.2,
        s.3 / p.3
    );
}
