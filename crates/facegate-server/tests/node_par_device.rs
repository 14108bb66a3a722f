//! A standard non-Rust client against facegate's pushed authorization requests (RFC 9126) and
//! device authorization grant (RFC 8628): Node's `openid-client` v6 (`buildAuthorizationUrlWithPAR`,
//! `initiateDeviceAuthorization`, `pollDeviceAuthorizationGrant`, unchanged library code, its default
//! client_secret_post), run from `tests/node/par_device.mjs`. This test plays the person's browser.
//!
//! Needs `npm ci --prefix tests/node`; without it the test prints SKIPPED, unless
//! FACEGATE_REQUIRE_NODE=1 (as in CI), which makes it fail.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::{PASSWORD, browser, location, sign_in, spawn_app};
use facegate_oidc::client::ClientMetadata;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

const REDIRECT: &str = "http://localhost:9/node-callback";

#[tokio::test]
async fn node_openid_client_pushes_its_request_and_logs_in_a_device() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/node");
    if !dir.join("node_modules/openid-client").is_dir() {
        let hint = "node_modules missing (npm ci --prefix tests/node)";
        assert!(
            std::env::var("FACEGATE_REQUIRE_NODE").as_deref() != Ok("1"),
            "FACEGATE_REQUIRE_NODE=1 but {hint}"
        );
        println!("SKIPPED: {hint}");
        return;
    }
    let app = spawn_app().await;
    let alice = app.add_user("alice").await;
    let (client_id, secret) = app
        .add_client(ClientMetadata {
            name: Some("Node RP".into()),
            redirect_uris: vec![REDIRECT.into()],
            grant_types: Some(vec![
                "authorization_code".into(),
                "urn:ietf:params:oauth:grant-type:device_code".into(),
            ]),
            // Plain requests are refused: only the pushed one can work.
            require_pushed_authorization_requests: true,
            ..Default::default()
        })
        .await;
    // Face login is off here: the client's policy lets a password approve its device.
    app.state
        .store
        .set_client_acr(&client_id, Some("urn:facegate:pwd"))
        .await
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("rp.json");
    let cfg = serde_json::json!({"issuer": app.issuer, "client_id": client_id, "client_secret": secret.unwrap(), "redirect_uri": REDIRECT});
    std::fs::write(&config, cfg.to_string()).unwrap();

    let mut child = tokio::process::Command::new("node")
        .arg(dir.join("par_device.mjs"))
        .arg(&config)
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr = child.stderr.take().unwrap();
    let errors = tokio::spawn(async move {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s).await;
        s
    });
    let limit = Duration::from_secs(60);
    let mut next = async || -> Value {
        match tokio::time::timeout(limit, stdout.next_line())
            .await
            .unwrap()
            .unwrap()
        {
            Some(line) => serde_json::from_str(&line).unwrap(),
            None => Value::Null,
        }
    };

    // 1. The pushed request: the browser sees only client_id and request_uri.
    let first = next().await;
    let Some(url) = first["authorization_url"].as_str() else {
        panic!("node failed: {}", errors.await.unwrap());
    };
    let q = common::params(url, false);
    assert!(
        q["request_uri"].starts_with("urn:ietf:params:oauth:request_uri:"),
        "{url}"
    );
    assert!(
        !q.contains_key("redirect_uri") && !q.contains_key("scope"),
        "{url}"
    );
    let back = sign_in(&browser(), &app, url, "alice").await;
    stdin.write_all(format!("{back}\n").as_bytes()).await.unwrap();
    stdin.flush().await.unwrap();
    drop(stdin);

    // 2. The device grant: the person approves in a browser.
    let device = next().await;
    let Some(verify) = device["verification_uri_complete"].as_str() else {
        panic!("node failed: {device} {}", errors.await.unwrap());
    };
    let b = browser();
    let mut at = verify.to_string();
    let page = loop {
        let r = b.get(&at).send().await.unwrap();
        if r.status().is_redirection() {
            at = app.url(&location(&r));
            continue;
        }
        let page = r.text().await.unwrap();
        if !at.contains("/login?") {
            break page;
        }
        let form = [
            ("csrf", common::field(&page, "csrf")),
            ("req", common::field(&page, "req")),
            ("username", "alice".into()),
            ("password", PASSWORD.into()),
        ];
        let r = b.post(app.url("/login")).form(&form).send().await.unwrap();
        at = app.url(&location(&r));
    };
    let form = [
        ("csrf", common::field(&page, "csrf")),
        ("user_code", common::field(&page, "user_code")),
        ("decision", "approve".into()),
    ];
    let r = b.post(app.url("/device")).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 200);

    let result = next().await;
    let status = tokio::time::timeout(limit, child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "node failed: {}", errors.await.unwrap());
    assert_eq!(result["par_claims"]["sub"], alice.as_str(), "{result}");
    let scope = |v: &Value| {
        let mut s: Vec<String> = v.as_str().unwrap_or("").split(' ').map(String::from).collect();
        s.sort();
        s.join(" ")
    };
    assert_eq!(scope(&result["par_scope"]), "email openid");
    assert_eq!(result["device_claims"]["sub"], alice.as_str());
    assert_eq!(result["device_claims"]["aud"], client_id.as_str());
    assert_eq!(scope(&result["device_scope"]), "openid profile");
}
