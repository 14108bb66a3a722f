//! Issue 13: the device authorization grant (RFC 8628), black box: a device asks for codes, polls,
//! and a person approves (or denies) in a browser through the login core. Written as the device's
//! and the attacker's tests: polling too fast, a denied or expired request, a replayed or foreign
//! device code, a guessed user code, a cross-site approval, a password where face is required.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use common::{PASSWORD, TestApp, browser, location, spawn_app, spawn_with};
use facegate_oidc::client::ClientMetadata;
use serde_json::Value;

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

async fn post(app: &TestApp, path: &str, basic: Option<(&str, &str)>, form: &[(&str, &str)]) -> (u16, Value) {
    let mut rb = reqwest::Client::new().post(app.url(path)).form(form);
    if let Some((id, secret)) = basic {
        rb = rb.basic_auth(id, Some(secret));
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A public device client (a CLI) whose policy is `acr` (None: the default).
async fn device_client(app: &TestApp, acr: Option<&str>) -> String {
    let (id, _) = app
        .add_client(ClientMetadata {
            name: Some("Terminal CLI".into()),
            grant_types: Some(vec![DEVICE_GRANT.into(), "refresh_token".into()]),
            token_endpoint_auth_method: Some("none".into()),
            ..Default::default()
        })
        .await;
    app.state.store.set_client_acr(&id, acr).await.unwrap();
    id
}

async fn start(app: &TestApp, client_id: &str, scope: &str) -> Value {
    let (status, v) = post(
        app,
        "/device_authorization",
        None,
        &[("client_id", client_id), ("scope", scope)],
    )
    .await;
    assert_eq!(status, 200, "{v}");
    v
}

async fn poll(app: &TestApp, client_id: &str, device_code: &str) -> (u16, Value) {
    post(
        app,
        "/token",
        None,
        &[
            ("grant_type", DEVICE_GRANT),
            ("device_code", device_code),
            ("client_id", client_id),
        ],
    )
    .await
}

fn error(v: &Value) -> &str {
    v["error"].as_str().unwrap_or("")
}

/// Opens `url` in `b`, signing in with alice's password wherever a login page comes: the first page
/// that is neither a redirect nor a login form (status, path, html).
async fn open_signing_in(app: &TestApp, b: &reqwest::Client, url: &str) -> (u16, String, String) {
    let mut next = url.to_string();
    for _ in 0..8 {
        let full = if next.starts_with('/') {
            app.url(&next)
        } else {
            next.clone()
        };
        let r = b.get(&full).send().await.unwrap();
        if r.status().is_redirection() {
            next = location(&r);
            continue;
        }
        let status = r.status().as_u16();
        let page = r.text().await.unwrap();
        if full.contains("/login?") {
            let form = [
                ("csrf", common::field(&page, "csrf")),
                ("req", common::field(&page, "req")),
                ("username", "alice".into()),
                ("password", PASSWORD.into()),
            ];
            let r = b.post(app.url("/login")).form(&form).send().await.unwrap();
            assert!(
                r.status().is_redirection(),
                "login failed: {}",
                r.text().await.unwrap()
            );
            next = location(&r);
            continue;
        }
        return (status, full, page);
    }
    panic!("too many redirects")
}

/// Answers the approval page at `page` with `decision`; the answer page.
async fn answer(app: &TestApp, b: &reqwest::Client, page: &str, decision: &str) -> (u16, String) {
    let form = [
        ("csrf", common::field(page, "csrf")),
        ("user_code", common::field(page, "user_code")),
        ("decision", decision.into()),
    ];
    let r = b.post(app.url("/device")).form(&form).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The claims of an ID token, after checking its signature against the provider's JWKS.
async fn verified_claims(app: &TestApp, id_token: &str) -> Value {
    let jwks: jsonwebtoken::jwk::JwkSet = reqwest::get(app.url("/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.set_issuer(&[&app.issuer]);
    v.validate_aud = false;
    jsonwebtoken::decode::<Value>(id_token, &key, &v).unwrap().claims
}

#[tokio::test]
async fn discovery_advertises_the_device_endpoint_and_grant() {
    let app = spawn_app().await;
    let d: Value = reqwest::get(app.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        d["device_authorization_endpoint"],
        app.url("/device_authorization")
    );
    assert!(
        d["grant_types_supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g == DEVICE_GRANT)
    );
}

#[tokio::test]
async fn pending_slow_down_approve_tokens_then_replay_is_refused_and_revokes() {
    let app = spawn_app().await;
    let alice = app.add_user("alice").await;
    let cli = device_client(&app, Some("urn:facegate:pwd")).await;
    let d = start(&app, &cli, "openid profile offline_access").await;
    let device_code = d["device_code"].as_str().unwrap();
    let user_code = d["user_code"].as_str().unwrap();
    assert_eq!(d["verification_uri"], app.url("/device"));
    assert_eq!(
        d["verification_uri_complete"],
        app.url(&format!("/device?user_code={user_code}"))
    );
    assert_eq!(d["interval"], 5);
    assert!(d["expires_in"].as_i64().unwrap() > 0);
    assert!(regex_like_user_code(user_code), "{user_code}");

    // Nobody has answered yet; polling again at once is too fast, and the interval grows.
    let (s, v) = poll(&app, &cli, device_code).await;
    assert_eq!((s, error(&v)), (400, "authorization_pending"), "{v}");
    let (s, v) = poll(&app, &cli, device_code).await;
    assert_eq!((s, error(&v)), (400, "slow_down"), "{v}");
    assert!(
        v["error_description"].as_str().unwrap().contains("10 seconds"),
        "{v}"
    );

    // The person types the code (lower case, no dash), signs in, sees the client and the scopes.
    let b = browser();
    let typed = user_code.replace('-', "").to_lowercase();
    let (s, url, page) = open_signing_in(&app, &b, &app.url(&format!("/device?user_code={typed}"))).await;
    assert_eq!(s, 200, "{url}\n{page}");
    assert!(
        page.contains("Terminal CLI") && page.contains(user_code),
        "{page}"
    );
    assert!(
        page.contains("Stay signed in"),
        "offline_access is listed: {page}"
    );
    let (s, done) = answer(&app, &b, &page, "approve").await;
    assert_eq!(s, 200, "{done}");
    assert!(done.contains("Device connected"), "{done}");

    // The device gets its tokens once.
    let (s, t) = poll(&app, &cli, device_code).await;
    assert_eq!(s, 200, "{t}");
    let claims = verified_claims(&app, t["id_token"].as_str().unwrap()).await;
    assert_eq!(claims["sub"], alice.as_str());
    assert_eq!(claims["aud"], cli.as_str());
    assert_eq!(claims["acr"], "urn:facegate:pwd");
    assert!(claims.get("nonce").is_none());
    assert!(t["refresh_token"].is_string(), "{t}");
    let access = t["access_token"].as_str().unwrap();
    let userinfo = |token: String| {
        let url = app.url("/userinfo");
        async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
        }
    };
    let info: Value = userinfo(access.to_string()).await.json().await.unwrap();
    assert_eq!(info["preferred_username"], "alice");

    // A second exchange is a replay: refused, and what the first one issued is revoked.
    let (s, v) = poll(&app, &cli, device_code).await;
    assert_eq!((s, error(&v)), (400, "invalid_grant"), "{v}");
    assert_eq!(userinfo(access.to_string()).await.status(), 401);
    // The code is spent on the page too.
    let (s, _, _) = open_signing_in(&app, &b, &app.url(&format!("/device?user_code={typed}"))).await;
    assert_eq!(s, 400);
}

fn regex_like_user_code(c: &str) -> bool {
    let (a, b) = c.split_once('-').unwrap_or(("", ""));
    a.len() == 4
        && b.len() == 4
        && (a.to_string() + b)
            .bytes()
            .all(|x| b"BCDFGHJKLMNPQRSTVWXZ".contains(&x))
}

#[tokio::test]
async fn a_denied_request_gets_access_denied() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let cli = device_client(&app, Some("urn:facegate:pwd")).await;
    let d = start(&app, &cli, "openid").await;
    let b = browser();
    let (_, _, page) = open_signing_in(&app, &b, d["verification_uri_complete"].as_str().unwrap()).await;
    let (s, done) = answer(&app, &b, &page, "deny").await;
    assert_eq!(s, 200);
    assert!(done.contains("denied"), "{done}");
    let (s, v) = poll(&app, &cli, d["device_code"].as_str().unwrap()).await;
    assert_eq!((s, error(&v)), (400, "access_denied"), "{v}");
    // A denial is final: approving afterwards (an old tab) changes nothing.
    let (s, _) = answer(&app, &b, &page, "approve").await;
    assert_eq!(s, 400);
    let (_, v) = poll(&app, &cli, d["device_code"].as_str().unwrap()).await;
    assert_eq!(error(&v), "access_denied");
}

#[tokio::test]
async fn an_expired_code_gets_expired_token_and_cannot_be_approved() {
    let app = spawn_with(|s| s.lifetimes.device_code = 1).await;
    app.add_user("alice").await;
    let cli = device_client(&app, Some("urn:facegate:pwd")).await;
    let d = start(&app, &cli, "openid").await;
    assert_eq!(d["expires_in"], 1);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (s, v) = poll(&app, &cli, d["device_code"].as_str().unwrap()).await;
    assert_eq!((s, error(&v)), (400, "expired_token"), "{v}");
    let b = browser();
    let (s, _, page) = open_signing_in(&app, &b, d["verification_uri_complete"].as_str().unwrap()).await;
    assert_eq!(s, 400);
    assert!(page.contains("expired"), "{page}");
}

#[tokio::test]
async fn by_default_a_password_cannot_approve_a_device() {
    // The default policy is face with liveness; face login is off here, so a password-only
    // session (a stolen password, say) is refused, and the device gets nothing.
    let app = spawn_app().await;
    app.add_user("alice").await;
    let cli = device_client(&app, None).await;
    let d = start(&app, &cli, "openid").await;
    let b = browser();
    let (s, _, page) = open_signing_in(&app, &b, d["verification_uri_complete"].as_str().unwrap()).await;
    assert_eq!(s, 403, "{page}");
    assert!(page.contains("urn:facegate:face:live"), "{page}");
    assert!(!page.contains("name=\"decision\""), "{page}");
    let (_, v) = poll(&app, &cli, d["device_code"].as_str().unwrap()).await;
    assert_eq!(error(&v), "authorization_pending");
}

#[tokio::test]
async fn another_clients_device_code_and_forged_approvals_are_refused() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let cli = device_client(&app, Some("urn:facegate:pwd")).await;
    let other = device_client(&app, Some("urn:facegate:pwd")).await;
    let d = start(&app, &cli, "openid").await;
    let device_code = d["device_code"].as_str().unwrap();
    let b = browser();
    let (_, _, page) = open_signing_in(&app, &b, d["verification_uri_complete"].as_str().unwrap()).await;

    // A cross-site form (no CSRF token, or another Origin) approves nothing.
    let user_code = common::field(&page, "user_code");
    let r = b
        .post(app.url("/device"))
        .form(&[("user_code", user_code.as_str()), ("decision", "approve")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = b
        .post(app.url("/device"))
        .header("origin", "https://evil.example")
        .form(&[
            ("csrf", common::field(&page, "csrf").as_str()),
            ("user_code", user_code.as_str()),
            ("decision", "approve"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Without the session, the form sends the person to sign in rather than approving.
    let stranger = browser();
    let r = stranger
        .post(app.url("/device"))
        .header("cookie", format!("fg_csrf={}", common::field(&page, "csrf")))
        .form(&[
            ("csrf", common::field(&page, "csrf").as_str()),
            ("user_code", user_code.as_str()),
            ("decision", "approve"),
        ])
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_redirection() && location(&r).starts_with("/login?req="),
        "{}",
        r.status()
    );
    let (_, v) = poll(&app, &cli, device_code).await;
    assert_eq!(error(&v), "authorization_pending");

    let (s, _) = answer(&app, &b, &page, "approve").await;
    assert_eq!(s, 200);
    // Another client holding the device code gets nothing, and does not burn it.
    let (s, v) = poll(&app, &other, device_code).await;
    assert_eq!((s, error(&v)), (400, "invalid_grant"), "{v}");
    let (s, v) = poll(&app, &cli, device_code).await;
    assert_eq!(s, 200, "{v}");
}

#[tokio::test]
async fn guessing_user_codes_is_throttled() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let cli = device_client(&app, Some("urn:facegate:pwd")).await;
    let d = start(&app, &cli, "openid").await;
    let b = browser();
    let mut statuses = Vec::new();
    for i in 0..6 {
        let r = b
            .get(app.url(&format!(
                "/device?user_code=BBBB-BBB{}",
                ["C", "D", "F", "G", "H", "J"][i]
            )))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(&statuses[..3], &[400, 400, 400], "{statuses:?}");
    assert!(statuses[3..].contains(&429), "{statuses:?}");
    // While throttled, even the right code is not looked up.
    let r = b
        .get(d["verification_uri_complete"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some());
}

#[tokio::test]
async fn only_clients_allowed_the_grant_may_start_it_and_secrets_are_checked() {
    let app = spawn_app().await;
    let (web, secret) = app.confidential_client("http://localhost:9/cb").await;
    let (s, v) = post(
        &app,
        "/device_authorization",
        Some((&web, &secret)),
        &[("scope", "openid")],
    )
    .await;
    assert_eq!((s, error(&v)), (400, "unauthorized_client"), "{v}");

    let (tv, tv_secret) = app
        .add_client(ClientMetadata {
            name: Some("Living-room TV".into()),
            grant_types: Some(vec![DEVICE_GRANT.into()]),
            ..Default::default()
        })
        .await;
    let tv_secret = tv_secret.unwrap();
    let (s, v) = post(&app, "/device_authorization", Some((&tv, "wrong")), &[]).await;
    assert_eq!((s, error(&v)), (401, "invalid_client"), "{v}");
    // A confidential client cannot pass as public by leaving its secret out.
    let (s, v) = post(&app, "/device_authorization", None, &[("client_id", &tv)]).await;
    assert_eq!((s, error(&v)), (401, "invalid_client"), "{v}");
    let (s, v) = post(
        &app,
        "/device_authorization",
        None,
        &[
            ("client_id", &tv),
            ("client_secret", &tv_secret),
            ("scope", "openid"),
        ],
    )
    .await;
    assert_eq!(s, 200, "client_secret_post works too: {v}");
    let (s, v) = post(
        &app,
        "/device_authorization",
        Some((&tv, &tv_secret)),
        &[("scope", "openid faces:write")],
    )
    .await;
    assert_eq!((s, error(&v)), (400, "invalid_scope"), "{v}");
    let (s, v) = post(
        &app,
        "/device_authorization",
        Some((&tv, &tv_secret)),
        &[("scope", "openid"), ("scope", "email")],
    )
    .await;
    assert_eq!((s, error(&v)), (400, "invalid_request"), "{v}");
    // Polling needs the same authentication as the start.
    let d = start_basic(&app, &tv, &tv_secret).await;
    let (s, v) = poll(&app, &tv, d["device_code"].as_str().unwrap()).await;
    assert_eq!((s, error(&v)), (401, "invalid_client"), "{v}");
    let (s, v) = post(
        &app,
        "/token",
        Some((&tv, &tv_secret)),
        &[
            ("grant_type", DEVICE_GRANT),
            ("device_code", d["device_code"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!((s, error(&v)), (400, "authorization_pending"), "{v}");
}

async fn start_basic(app: &TestApp, id: &str, secret: &str) -> Value {
    let (s, v) = post(
        app,
        "/device_authorization",
        Some((id, secret)),
        &[("scope", "openid")],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    v
}
