//! The face API against its own OpenAPI document (routes/openapi.json), by schemathesis (PyPI):
//! every `/v1` operation, called with a valid token with every scope, with generated valid and
//! invalid input. Passes when no response is a 5xx and every response matches the document
//! (documented status code, content type, and body schema: problem+json for errors).
//!
//! Needs the `schemathesis` command (`pip install schemathesis`, done by .ci/run); skipped without it,
//! unless FACEGATE_REQUIRE_SCHEMATHESIS=1 (CI), which makes that a failure. The run's length is
//! `FACEGATE_SCHEMATHESIS_EXAMPLES` examples per operation (default 25).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use base64::Engine;

fn st() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("schemathesis"))
        .find(|p| p.is_file())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_v1_operation_answers_as_its_openapi_document_says() {
    let Some(st) = st() else {
        if std::env::var("FACEGATE_REQUIRE_SCHEMATHESIS").as_deref() == Ok("1") {
            panic!(
                "schemathesis is required here (FACEGATE_REQUIRE_SCHEMATHESIS=1): pip install schemathesis"
            );
        }
        eprintln!("SKIPPED: schemathesis not installed (pip install schemathesis)");
        return;
    };
    let Some(app) = common::face::face_app(facegate_server::server::face::Liveness::Off, |s| {
        // The run makes hundreds of requests a second: the rate limit is not what it tests.
        s.api.rate_per_sec = 10_000.0;
        s.api.burst = 10_000;
    })
    .await
    else {
        return;
    };
    let (_, token) = common::client_token(&app.issuer, &app.state, "faces:read faces:write liveness").await;
    // Something real to find: a collection with a face in it (schemathesis also invents ids).
    let http = reqwest::Client::new();
    let r = http
        .post(app.url("/v1/collections"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"collectionId": "staff"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let photo = common::face::photo("deepface/person_img1/img1.jpg");
    let r = http
        .post(app.url("/v1/collections/staff/faces"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"image": base64::engine::general_purpose::STANDARD.encode(photo)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let examples = std::env::var("FACEGATE_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "25".into());
    let report = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(st)
        .arg("run")
        .arg(app.url("/v1/openapi.json"))
        .args(["--url", &app.issuer])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        // Not the coverage phase: on this machine's Python (3.11.7) it stops with a SystemError
        // inside hypothesis ("AST constructor recursion depth mismatch", a CPython bug fixed in
        // 3.11.8), not with a finding about the API.
        .args(["--phases", "examples,fuzzing"])
        .args(["--max-examples", &examples])
        .args(["--workers", "2", "--seed", "19", "--no-color"])
        .args(["--request-timeout", "30"])
        .arg("--report-dir")
        .arg(report.path())
        // Its cache (.schemathesis/) goes there too, not into the source tree.
        .current_dir(report.path())
        .env("SCHEMATHESIS_HOOKS", "")
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "{}",
        text.lines()
            .rev()
            .take(15)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        out.status.success(),
        "schemathesis found responses that break the document:\n{text}"
    );
    // Every operation was selected (none filtered out); the 15 of the document other than the
    // one that serves it, which schemathesis leaves out when it loads the document from it.
    let line = text
        .lines()
        .find(|l| l.contains("Operations:"))
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let counts: Vec<usize> = line.split(' ').filter_map(|w| w.parse().ok()).collect();
    assert!(
        counts.len() == 2 && counts[0] == counts[1] && counts[0] >= 15,
        "every operation selected ({line}):\n{text}"
    );
}
