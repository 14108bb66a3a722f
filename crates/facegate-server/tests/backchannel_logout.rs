//! Issue 13: OpenID Connect Back-Channel Logout 1.0. Two relying parties get tokens in one login
//! session; on logout each registered one receives a logout token at its `backchannel_logout_uri`
//! (a tiny receiving server here), which the test verifies like an RP would: signature against the
//! JWKS, `typ: logout+jwt`, iss, aud, the event, the session's `sid`, no nonce. A relying party that
//! never answers does not hold up the logout.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::time::Duration;

use axum::Form;
use axum::routing::post;
use common::{TestApp, browser, field, get_text, params, sign_in, spawn_app};
use facegate_oidc::client::ClientMetadata;
use serde_json::Value;
use tokio::sync::mpsc;

const REDIRECT: &str = "http://localhost:9/cb";

/// A relying party's back-channel endpoint: every logout_token it receives goes to the channel.
/// With `hang`, it never answers.
async fn receiver(hang: bool) -> (String, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/backchannel",
        post(move |Form(f): Form<Vec<(String, String)>>| {
            let tx = tx.clone();
            async move {
                for (k, v) in f {
                    if k == "logout_token" {
                        let _ = tx.send(v);
                    }
                }
                if hang {
                    std::future::pending::<()>().await;
                }
                "ok"
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/backchannel", l.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(l, app).await });
    (url, rx)
}

async fn rp(app: &TestApp, backchannel: Option<String>) -> (String, String) {
    let (id, secret) = app
        .add_client(ClientMetadata {
            name: Some("RP".into()),
            redirect_uris: vec![REDIRECT.into()],
            skip_consent: true,
            backchannel_logout_uri: backchannel,
            backchannel_logout_session_required: true,
            ..Default::default()
        })
        .await;
    (id, secret.unwrap())
}

/// Signs in through `b` for client `id`: the ID token's claims.
async fn id_token_claims(app: &TestApp, b: &reqwest::Client, id: &str, secret: &str) -> Value {
    let url = format!(
        "{}/authorize?client_id={id}&redirect_uri={}&response_type=code&scope=openid&state=s&nonce=n",
        app.issuer,
        url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
    );
    let back = sign_in(b, app, &url, "alice").await;
    let code = params(&back, false).remove("code").unwrap();
    let t = common::exchange_code(app, id, Some(secret), &code, REDIRECT).await;
    verify(app, t["id_token"].as_str().unwrap(), id, None).await
}

/// Verifies a JWT from the provider against its JWKS (and its `typ` when given): the claims.
async fn verify(app: &TestApp, jwt: &str, aud: &str, typ: Option<&str>) -> Value {
    let jwks: jsonwebtoken::jwk::JwkSet = reqwest::get(app.url("/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(jwt).unwrap();
    if let Some(t) = typ {
        assert_eq!(header.typ.as_deref(), Some(t));
    }
    let key =
        jsonwebtoken::DecodingKey::from_jwk(jwks.find(header.kid.as_deref().unwrap()).unwrap()).unwrap();
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.set_issuer(&[&app.issuer]);
    v.set_audience(&[aud]);
    jsonwebtoken::decode::<Value>(jwt, &key, &v).unwrap().claims
}

async fn log_out(app: &TestApp, b: &reqwest::Client) -> reqwest::Response {
    let page = get_text(b, &app.url("/logout")).await;
    b.post(app.url("/logout"))
        .form(&[("csrf", field(&page, "csrf")), ("confirm", "1".into())])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn logout_sends_each_rp_of_the_session_a_verifiable_logout_token() {
    let app = spawn_app().await;
    let alice = app.add_user("alice").await;
    let d: Value = reqwest::get(app.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d["backchannel_logout_supported"], true);
    assert_eq!(d["backchannel_logout_session_supported"], true);

    let (url_a, mut inbox_a) = receiver(false).await;
    let (url_slow, mut inbox_slow) = receiver(true).await;
    let (a, a_secret) = rp(&app, Some(url_a)).await;
    let (slow, slow_secret) = rp(&app, Some(url_slow)).await;
    let (quiet, quiet_secret) = rp(&app, None).await;
    let (_outsider, _) = rp(&app, Some(receiver(false).await.0)).await;

    let b = browser();
    let id_a = id_token_claims(&app, &b, &a, &a_secret).await;
    let id_slow = id_token_claims(&app, &b, &slow, &slow_secret).await;
    id_token_claims(&app, &b, &quiet, &quiet_secret).await;
    let sid = id_a["sid"].as_str().unwrap().to_string();
    assert_eq!(id_slow["sid"], sid.as_str(), "one session");

    // The logout answers even though one relying party never does.
    let r = tokio::time::timeout(Duration::from_secs(3), log_out(&app, &b))
        .await
        .expect("logout waited for a relying party");
    assert!(
        r.status().is_success() || r.status().is_redirection(),
        "{}",
        r.status()
    );

    let token = tokio::time::timeout(Duration::from_secs(10), inbox_a.recv())
        .await
        .unwrap()
        .unwrap();
    let c = verify(&app, &token, &a, Some("logout+jwt")).await;
    assert_eq!(c["sub"], alice.as_str());
    assert_eq!(c["sid"], sid.as_str());
    assert!(
        c["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object(),
        "{c}"
    );
    assert!(c.get("nonce").is_none(), "{c}");
    assert!(c["jti"].is_string() && c["iat"].is_i64(), "{c}");
    // The slow one got its own token (for its own audience) too.
    let token = tokio::time::timeout(Duration::from_secs(10), inbox_slow.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        verify(&app, &token, &slow, Some("logout+jwt")).await["sid"],
        sid.as_str()
    );
    assert!(inbox_a.try_recv().is_err(), "one token per client");
}

#[tokio::test]
async fn a_client_outside_the_session_hears_nothing_and_bad_uris_are_refused() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let (url_out, mut inbox_out) = receiver(false).await;
    let (url_in, mut inbox_in) = receiver(false).await;
    rp(&app, Some(url_out)).await;
    let (inside, secret) = rp(&app, Some(url_in)).await;
    let b = browser();
    id_token_claims(&app, &b, &inside, &secret).await;
    log_out(&app, &b).await;
    tokio::time::timeout(Duration::from_secs(10), inbox_in.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(inbox_out.try_recv().is_err());

    for bad in [
        "http://rp.example/bc",
        "https://rp.example/bc#frag",
        "javascript:alert(1)",
        "/relative",
    ] {
        let meta = ClientMetadata {
            redirect_uris: vec![REDIRECT.into()],
            backchannel_logout_uri: Some(bad.into()),
            ..Default::default()
        };
        let e = facegate_server::server::provider::register_client(&app.state.store, meta, None)
            .await
            .unwrap_err();
        assert_eq!(e.error.as_str(), "invalid_client_metadata", "{bad}");
    }
    // Dynamic registration may not aim facegate's POSTs at its own loopback services.
    let r = reqwest::Client::new()
        .post(app.url("/register"))
        .bearer_auth("initial-token")
        .json(&serde_json::json!({"redirect_uris": [REDIRECT], "backchannel_logout_uri": "http://127.0.0.1:22/x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = reqwest::Client::new()
        .post(app.url("/register"))
        .bearer_auth("initial-token")
        .json(&serde_json::json!({"redirect_uris": [REDIRECT], "backchannel_logout_uri": "https://rp.example/bc"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["backchannel_logout_uri"], "https://rp.example/bc");
}
