//! Overload, black-box: with one face worker and a queue bound of 2, twenty callers at once to
//! `/v1/compare` get either a correct 200 or a 503 problem+json with `Retry-After` (answered at once,
//! never after the client's timeout), and the server serves normally afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

fn photo(rel: &str) -> Vec<u8> {
    let root = std::env::var_os("FACEGATE_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata"));
    std::fs::read(root.join("faces").join(rel)).unwrap()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[derive(Debug)]
struct Answer {
    status: u16,
    retry_after: Option<u64>,
    content_type: String,
    body: Value,
    took: Duration,
}

async fn compare(http: &reqwest::Client, base: &str, token: &str, body: &Value) -> Answer {
    let t = Instant::now();
    let r = http
        .post(format!("{base}/v1/compare"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("no request may time out");
    let status = r.status().as_u16();
    let retry_after = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = r.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        retry_after,
        content_type,
        body,
        took: t.elapsed(),
    }
}

fn same_person_matched(v: &Value) -> bool {
    v["faceMatches"]
        .as_array()
        .is_some_and(|m| m.len() == 1 && m[0]["similarity"].as_f64().is_some_and(|s| s >= 80.0))
        && v["unmatchedFaces"].as_array().is_some_and(|u| u.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_face_queue_sheds_with_503_and_retry_after_and_recovers() {
    let app = common::spawn_with(|s| {
        s.face.enabled = true;
        s.face.engine = facegate_vision::EngineConfig {
            workers: 1,
            queue: 2,
            ..Default::default()
        };
        s.api.rate_per_sec = 1000.0;
        s.api.burst = 1000;
    })
    .await;
    if app.state.face.is_none() {
        assert_ne!(
            std::env::var("FACEGATE_REQUIRE_MODELS").as_deref(),
            Ok("1"),
            "the overload test needs the default model pack"
        );
        eprintln!("SKIPPED: default model pack not installed (facegate models fetch)");
        return;
    }
    let token = common::client_token(&app.issuer, &app.state, "faces:read")
        .await
        .1;
    let body = json!({
        "sourceImage": b64(&photo("deepface/person_img1/img4.jpg")),
        "targetImage": b64(&photo("deepface/person_img1/img1.jpg")),
    });
    let timeout = Duration::from_secs(30);
    let http = reqwest::Client::builder().timeout(timeout).build().unwrap();

    let before = compare(&http, &app.issuer, &token, &body).await;
    assert_eq!(before.status, 200, "{:?}", before.body);
    assert!(same_person_matched(&before.body), "{}", before.body);

    let calls = (0..20).map(|_| {
        let (http, base, token, body) = (http.clone(), app.issuer.clone(), token.clone(), body.clone());
        tokio::spawn(async move { compare(&http, &base, &token, &body).await })
    });
    // Spawned all at once (the iterator is lazy), awaited after.
    let calls: Vec<_> = calls.collect();
    let mut answers = Vec::new();
    for c in calls {
        answers.push(c.await.unwrap());
    }
    eprintln!(
        "{:?}",
        answers
            .iter()
            .map(|a| (a.status, a.took.as_millis()))
            .collect::<Vec<_>>()
    );
    eprintln!("{:?}", app.state.face.as_ref().unwrap().engine().stats());
    let served: Vec<&Answer> = answers.iter().filter(|a| a.status == 200).collect();
    let shed: Vec<&Answer> = answers.iter().filter(|a| a.status == 503).collect();
    assert_eq!(
        served.len() + shed.len(),
        20,
        "every caller gets 200 or 503: {:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    assert!(!served.is_empty(), "some callers are served");
    // A compare is two jobs; one worker and two places cannot take twenty callers' forty jobs.
    assert!(!shed.is_empty(), "some callers are shed");
    for a in &served {
        assert!(
            same_person_matched(&a.body),
            "a 200 under load is still right: {}",
            a.body
        );
    }
    for a in &shed {
        assert_eq!(a.content_type, "application/problem+json");
        assert_eq!(
            a.body["type"].as_str().map(|t| t.ends_with("busy")),
            Some(true),
            "{}",
            a.body
        );
        assert!(
            a.retry_after.is_some_and(|s| s >= 1),
            "503 without Retry-After: {a:?}"
        );
    }
    for a in &answers {
        assert!(a.took < timeout, "{a:?}");
    }
    let stats = app.state.face.as_ref().unwrap().engine().stats();
    assert!(stats.shed >= shed.len() as u64, "{stats:?}");

    // Recovered: once the burst is over, a caller is served again.
    let mut after = compare(&http, &app.issuer, &token, &body).await;
    for _ in 0..20 {
        if after.status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        after = compare(&http, &app.issuer, &token, &body).await;
    }
    assert_eq!(after.status, 200, "{:?}", after.body);
    assert!(same_person_matched(&after.body), "{}", after.body);
    assert_eq!(app.state.face.as_ref().unwrap().engine().stats().queued, 0);
}
