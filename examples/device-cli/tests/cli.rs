//! device-cli against a real facegate (in-process, port 0): the CLI prints where to go, a person
//! approves in a browser (here with a password, the client's policy), and the CLI prints the ID
//! token's verified claims; a denial ends it with status 2.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::net::SocketAddr;
use std::process::Stdio;

use facegate_oidc::client::ClientMetadata;
use facegate_server::server::{self, Settings};
use tokio::io::{AsyncBufReadExt, BufReader};

const PASSWORD: &str = "correct horse battery staple";

async fn facegate() -> (String, server::AppState, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let issuer = format!("http://localhost:{}", addr.port());
    let mut settings = Settings::new(addr, issuer.clone(), dir.path().to_path_buf(), None).unwrap();
    settings.face.enabled = false;
    let state = server::open(settings).await.unwrap();
    tokio::spawn(server::serve(state.clone(), listener));
    let user = facegate_core::User {
        id: facegate_core::secret::random_token(16),
        username: facegate_core::Username::parse("alice").unwrap(),
        email: Some(facegate_core::Email::parse("alice@example.com").unwrap()),
        email_verified: true,
        name: Some("Alice Example".into()),
        created_at: server::now(),
    };
    let hash = facegate_core::password::hash(PASSWORD).unwrap();
    state.store.create_user(&user, Some(&hash)).await.unwrap();
    (issuer, state, user.id, dir)
}

async fn cli_client(state: &server::AppState) -> String {
    let (client, _) = server::provider::register_client(
        &state.store,
        ClientMetadata {
            name: Some("device-cli".into()),
            grant_types: Some(vec!["urn:ietf:params:oauth:grant-type:device_code".into()]),
            token_endpoint_auth_method: Some("none".into()),
            ..Default::default()
        },
        None,
    )
    .await
    .unwrap();
    // Face login is off in this test: the client's policy lets a password approve.
    state
        .store
        .set_client_acr(&client.client_id, Some("urn:facegate:pwd"))
        .await
        .unwrap();
    client.client_id
}

/// Starts the CLI; returns it and the verification_uri_complete it printed.
async fn start_cli(issuer: &str, client_id: &str) -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_device-cli"))
        .args(["--issuer", issuer, "--client-id", client_id])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut first = String::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        if first.is_empty() {
            first = line.clone();
        }
        if let Some(url) = line.strip_prefix("or open ") {
            assert!(first.contains("/device and enter the code "), "{first}");
            // Keep reading what it says after, so that its stderr stays open.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return (child, url.to_string());
        }
    }
    panic!("the CLI printed no verification URL (first line: {first})");
}

/// Signs in as alice at `url` and answers the approval page with `decision`.
async fn approve(issuer: &str, url: &str, decision: &str) {
    let b = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let field = |page: &str, name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        let start = page
            .find(&marker)
            .unwrap_or_else(|| panic!("no {name} in {page}"))
            + marker.len();
        page[start..start + page[start..].find('"').unwrap()].to_string()
    };
    let mut next = url.to_string();
    let page = loop {
        let r = b.get(&next).send().await.unwrap();
        if r.status().is_redirection() {
            next = format!("{issuer}{}", r.headers()["location"].to_str().unwrap());
            continue;
        }
        let page = r.text().await.unwrap();
        if !next.contains("/login?") {
            break page;
        }
        let form = [
            ("csrf", field(&page, "csrf")),
            ("req", field(&page, "req")),
            ("username", "alice".into()),
            ("password", PASSWORD.into()),
        ];
        let r = b
            .post(format!("{issuer}/login"))
            .form(&form)
            .send()
            .await
            .unwrap();
        next = format!("{issuer}{}", r.headers()["location"].to_str().unwrap());
    };
    let form = [
        ("csrf", field(&page, "csrf")),
        ("user_code", field(&page, "user_code")),
        ("decision", decision.into()),
    ];
    let r = b
        .post(format!("{issuer}/device"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn the_cli_signs_in_and_prints_verified_claims() {
    let (issuer, state, alice, _dir) = facegate().await;
    let client_id = cli_client(&state).await;
    let (child, url) = start_cli(&issuer, &client_id).await;
    approve(&issuer, &url, "approve").await;
    let out = child.wait_with_output().await.unwrap();
    assert!(out.status.success(), "{out:?}");
    let claims: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(claims["sub"], alice.as_str());
    assert_eq!(claims["aud"], client_id.as_str());
    assert_eq!(claims["iss"], issuer.as_str());
    assert_eq!(claims["acr"], "urn:facegate:pwd");
}

#[tokio::test]
async fn a_denial_ends_the_cli_with_status_2() {
    let (issuer, state, _, _dir) = facegate().await;
    let client_id = cli_client(&state).await;
    let (child, url) = start_cli(&issuer, &client_id).await;
    approve(&issuer, &url, "deny").await;
    let out = child.wait_with_output().await.unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty());
}
