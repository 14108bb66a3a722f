//! A standard non-Rust relying party against the running server: Node's `openid-client` (v6, run
//! from `tests/node/rp.mjs`, unchanged library code) does discovery, the code flow with PKCE S256,
//! state and nonce, ID token validation through the JWKS, userinfo, refresh, introspection and
//! revocation, with the library's defaults (no client authentication method named: it sends
//! client_secret_post) against a client registered the default way. This test plays the browser in
//! between.
//!
//! Needs `npm ci --prefix tests/node`; without it the test prints SKIPPED, unless
//! FACEGATE_REQUIRE_NODE=1 (as in CI), which makes it fail.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::{browser, sign_in, spawn_app};
use facegate_oidc::client::ClientMetadata;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

const REDIRECT: &str = "http://localhost:9/node-callback";

fn node_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/node")
}

#[tokio::test]
async fn node_openid_client_code_flow_userinfo_refresh_introspect_revoke() {
    let dir = node_dir();
    if !dir.join("node_modules/openid-client").is_dir() {
        let hint = "node_modules missing (npm ci --prefix tests/node)";
        if std::env::var("FACEGATE_REQUIRE_NODE").as_deref() == Ok("1") {
            panic!("FACEGATE_REQUIRE_NODE=1 but {hint}: run `npm ci --prefix tests/node`");
        }
        println!("SKIPPED: {hint}");
        return;
    }

    let app = spawn_app().await;
    let user_id = app.add_user("alice").await;
    let (client_id, secret) = app
        .add_client(ClientMetadata {
            name: Some("Node openid-client RP".into()),
            redirect_uris: vec![REDIRECT.into()],
            // What `facegate client add` registers by default (client_secret_basic); the library's
            // default method is client_secret_post, which a secret-holding client may use too.
            scope: Some("openid email profile offline_access".into()),
            ..Default::default()
        })
        .await;
    let secret = secret.expect("a confidential client gets a secret");

    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("rp.json");
    let cfg = serde_json::json!({
        "issuer": app.issuer,
        "client_id": client_id,
        "client_secret": secret,
        "redirect_uri": REDIRECT,
    });
    std::fs::write(&config, cfg.to_string()).unwrap();

    let mut child = Command::new("node")
        .arg(dir.join("rp.mjs"))
        .arg(&config)
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (is Node.js installed?)");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr = child.stderr.take().unwrap();
    let stderr_task = tokio::spawn(async move {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s).await;
        s
    });

    // Every step is bounded, so a hung RP fails the test instead of stalling the run.
    let limit = Duration::from_secs(60);
    let first = tokio::time::timeout(limit, stdout.next_line())
        .await
        .expect("node printed the authorization request in time")
        .unwrap();
    let Some(first) = first else {
        let status = child.wait().await.unwrap();
        panic!("node exited ({status}) early:\n{}", stderr_task.await.unwrap());
    };
    let request: Value = serde_json::from_str(&first).unwrap();
    let auth_url = request["authorization_url"].as_str().unwrap();
    assert!(
        auth_url.starts_with(&format!("{}/authorize?", app.issuer)),
        "{auth_url}"
    );
    let q = common::params(auth_url, false);
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["state"], request["state"].as_str().unwrap());
    assert_eq!(q["nonce"], request["nonce"].as_str().unwrap());
    assert_eq!(q["client_id"], client_id);

    let back = sign_in(&browser(), &app, auth_url, "alice").await;
    assert!(back.starts_with(REDIRECT), "{back}");
    stdin.write_all(format!("{back}\n").as_bytes()).await.unwrap();
    stdin.flush().await.unwrap();
    drop(stdin);

    let last = tokio::time::timeout(limit, stdout.next_line())
        .await
        .expect("node finished in time")
        .unwrap();
    let status = tokio::time::timeout(limit, child.wait())
        .await
        .expect("node exited in time")
        .unwrap();
    let errors = stderr_task.await.unwrap();
    assert!(status.success(), "node failed ({status}):\n{errors}");
    let result: Value = serde_json::from_str(&last.expect("a result line")).unwrap();
    println!("openid-client result: {result}");

    assert_eq!(result["sub"], user_id.as_str());
    assert_eq!(result["email"], "alice@example.com");
    assert_eq!(result["email_verified"], true);
    assert_eq!(result["preferred_username"], "alice");
    let claims = &result["id_token_claims"];
    assert_eq!(claims["sub"], user_id.as_str());
    assert_eq!(claims["iss"], app.issuer.as_str());
    assert_eq!(claims["aud"], client_id.as_str());
    assert_eq!(claims["nonce"], request["nonce"]);
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
    assert!(claims["auth_time"].is_u64(), "{claims}");
    assert!(claims["at_hash"].is_string(), "{claims}");
    assert_eq!(result["refreshed"], true);
    assert_eq!(result["refreshed_userinfo_sub"], user_id.as_str());
    assert_eq!(result["introspection_active_before"], true);
    assert_eq!(result["introspection_client_id_before"], client_id.as_str());
    assert_eq!(result["introspection_active_after"], false);
    assert_eq!(result["userinfo_after_revocation_rejected"], true);
}
