//! Issue 13: Pushed Authorization Requests (RFC 9126), black box, written as the attacker's tests:
//! another client's request_uri, a replayed one, an expired one, a push without (or with wrong)
//! client authentication, and a client that must push sending a plain request.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use common::{TestApp, browser, location, params, sign_in, spawn_app, spawn_with};
use facegate_oidc::client::ClientMetadata;
use serde_json::Value;

const REDIRECT: &str = "http://localhost:9/cb";
const PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn push(app: &TestApp, basic: Option<(&str, &str)>, form: &[(&str, &str)]) -> (u16, Value) {
    let mut rb = reqwest::Client::new().post(app.url("/par")).form(form);
    if let Some((id, secret)) = basic {
        rb = rb.basic_auth(id, Some(secret));
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn request(scope: &str) -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".into()),
        ("redirect_uri", REDIRECT.into()),
        ("scope", scope.into()),
        ("state", "pushed-state".into()),
        ("nonce", "n-1".into()),
    ]
}

async fn push_ok(app: &TestApp, id: &str, secret: &str, scope: &str) -> String {
    let form = request(scope);
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (s, v) = push(app, Some((id, secret)), &form).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["expires_in"], 60);
    let uri = v["request_uri"].as_str().unwrap().to_string();
    assert!(uri.starts_with(PREFIX) && uri.len() > PREFIX.len() + 40, "{uri}");
    uri
}

fn authorize_url(app: &TestApp, client_id: &str, request_uri: &str) -> String {
    format!(
        "{}/authorize?client_id={client_id}&request_uri={}",
        app.issuer,
        enc(request_uri)
    )
}

async fn client(app: &TestApp, require_par: bool) -> (String, String) {
    let (id, secret) = app
        .add_client(ClientMetadata {
            name: Some("Pushing RP".into()),
            redirect_uris: vec![REDIRECT.into()],
            skip_consent: true,
            require_pushed_authorization_requests: require_par,
            ..Default::default()
        })
        .await;
    (id, secret.unwrap())
}

/// Opens `url` in a fresh browser: the status and body of the first answer.
async fn open(url: &str) -> (u16, String) {
    let r = browser().get(url).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn a_pushed_request_signs_in_once_with_the_pushed_parameters() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let (id, secret) = client(&app, false).await;
    let d: Value = reqwest::get(app.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d["pushed_authorization_request_endpoint"], app.url("/par"));

    let uri = push_ok(&app, &id, &secret, "openid").await;
    // Parameters on the browser's URL other than client_id and request_uri are ignored: the
    // pushed ones hold (a wider scope added in the browser does not widen the grant).
    let url = format!(
        "{}&scope=openid%20email&state=tampered",
        authorize_url(&app, &id, &uri)
    );
    let back = sign_in(&browser(), &app, &url, "alice").await;
    let p = params(&back, false);
    assert!(back.starts_with(REDIRECT), "{back}");
    assert_eq!(p["state"], "pushed-state");
    let t = common::exchange_code(&app, &id, Some(&secret), &p["code"], REDIRECT).await;
    assert_eq!(t["scope"], "openid", "{t}");
    assert!(t["id_token"].is_string(), "{t}");

    // Used once: the same request_uri again is refused, with a page rather than a redirect.
    let (s, page) = open(&authorize_url(&app, &id, &uri)).await;
    assert_eq!(s, 400, "{page}");
    assert!(page.contains("request_uri"), "{page}");
}

#[tokio::test]
async fn another_clients_request_uri_is_worth_nothing_and_is_not_burned() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let (victim, secret) = client(&app, false).await;
    let (attacker, _) = client(&app, false).await;
    let uri = push_ok(&app, &victim, &secret, "openid").await;
    let r = browser()
        .get(authorize_url(&app, &attacker, &uri))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "{}", location(&r));
    // Without client_id at all, nothing either.
    let (s, _) = open(&format!("{}/authorize?request_uri={}", app.issuer, enc(&uri))).await;
    assert_eq!(s, 400);
    // The owner can still use it.
    let back = sign_in(&browser(), &app, &authorize_url(&app, &victim, &uri), "alice").await;
    assert!(params(&back, false).contains_key("code"), "{back}");
}

#[tokio::test]
async fn an_expired_request_uri_is_refused() {
    let app = spawn_with(|s| s.lifetimes.par = 1).await;
    let (id, secret) = client(&app, false).await;
    let form = request("openid");
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (_, v) = push(&app, Some((&id, &secret)), &form).await;
    assert_eq!(v["expires_in"], 1);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (s, _) = open(&authorize_url(&app, &id, v["request_uri"].as_str().unwrap())).await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn pushing_needs_client_authentication_and_a_valid_request() {
    let app = spawn_app().await;
    let (id, secret) = client(&app, false).await;
    let form = request("openid");
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (s, v) = push(&app, Some((&id, "wrong")), &form).await;
    assert_eq!((s, v["error"].as_str()), (401, Some("invalid_client")), "{v}");
    let mut no_secret = form.clone();
    no_secret.push(("client_id", &id));
    let (s, v) = push(&app, None, &no_secret).await;
    assert_eq!((s, v["error"].as_str()), (401, Some("invalid_client")), "{v}");
    // Errors come back to the client as JSON, never as a redirect.
    let mut bad = form.clone();
    bad[1] = ("redirect_uri", "https://evil.example/cb");
    let (s, v) = push(&app, Some((&id, &secret)), &bad).await;
    assert_eq!(s, 400, "{v}");
    assert!(v["error"].is_string(), "{v}");
    let mut nested = form.clone();
    nested.push(("request_uri", "urn:ietf:params:oauth:request_uri:x"));
    let (s, v) = push(&app, Some((&id, &secret)), &nested).await;
    assert_eq!((s, v["error"].as_str()), (400, Some("invalid_request")), "{v}");
    let mut other = form.clone();
    other.push(("client_id", "someone-else"));
    let (s, v) = push(&app, Some((&id, &secret)), &other).await;
    assert_eq!((s, v["error"].as_str()), (401, Some("invalid_client")), "{v}");
    let mut repeated = form.clone();
    repeated.push(("scope", "email"));
    let (s, v) = push(&app, Some((&id, &secret)), &repeated).await;
    assert_eq!((s, v["error"].as_str()), (400, Some("invalid_request")), "{v}");
}

#[tokio::test]
async fn a_client_that_must_push_cannot_send_a_plain_request() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let (id, secret) = client(&app, true).await;
    let plain = format!(
        "{}/authorize?client_id={id}&redirect_uri={}&response_type=code&scope=openid&state=s",
        app.issuer,
        enc(REDIRECT)
    );
    let r = browser().get(&plain).send().await.unwrap();
    let back = location(&r);
    assert!(back.starts_with(REDIRECT), "{back}");
    let p = params(&back, false);
    assert_eq!(p["error"], "invalid_request", "{back}");
    assert!(!p.contains_key("code"));
    let uri = push_ok(&app, &id, &secret, "openid").await;
    let back = sign_in(&browser(), &app, &authorize_url(&app, &id, &uri), "alice").await;
    assert!(params(&back, false).contains_key("code"), "{back}");
}
