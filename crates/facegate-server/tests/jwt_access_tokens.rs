//! Issue 13: JWT access tokens (RFC 9068) as a per-client option: the token is a JWT with
//! `typ: at+jwt` signed with the provider's keys and the claims RFC 9068 names; userinfo and
//! introspection accept it; revoking it works at facegate's endpoints; clients that did not ask
//! keep opaque tokens.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use common::{TestApp, browser, params, sign_in, spawn_app};
use facegate_oidc::client::ClientMetadata;
use serde_json::Value;

const REDIRECT: &str = "http://localhost:9/cb";

async fn post(app: &TestApp, path: &str, basic: (&str, &str), form: &[(&str, &str)]) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(app.url(path))
        .basic_auth(basic.0, Some(basic.1))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The header and claims of an access token, after checking its signature against the JWKS.
async fn verified(app: &TestApp, jwt: &str) -> (jsonwebtoken::Header, Value) {
    let jwks: jsonwebtoken::jwk::JwkSet = reqwest::get(app.url("/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(jwt).unwrap();
    let key =
        jsonwebtoken::DecodingKey::from_jwk(jwks.find(header.kid.as_deref().unwrap()).unwrap()).unwrap();
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.set_issuer(&[&app.issuer]);
    v.set_audience(&[&app.issuer]);
    v.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    let claims = jsonwebtoken::decode::<Value>(jwt, &key, &v).unwrap().claims;
    (header, claims)
}

#[tokio::test]
async fn a_jwt_client_gets_rfc9068_access_tokens_that_userinfo_introspection_and_revocation_accept() {
    let app = spawn_app().await;
    let alice = app.add_user("alice").await;
    let (id, secret) = app
        .add_client(ClientMetadata {
            name: Some("JWT RP".into()),
            redirect_uris: vec![REDIRECT.into()],
            skip_consent: true,
            jwt_access_tokens: true,
            ..Default::default()
        })
        .await;
    let secret = secret.unwrap();
    let url = format!(
        "{}/authorize?client_id={id}&redirect_uri={}&response_type=code&scope=openid%20profile&state=s",
        app.issuer,
        url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
    );
    let back = sign_in(&browser(), &app, &url, "alice").await;
    let code = params(&back, false).remove("code").unwrap();
    let t = common::exchange_code(&app, &id, Some(&secret), &code, REDIRECT).await;
    let at = t["access_token"].as_str().unwrap();
    let (header, c) = verified(&app, at).await;
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(c["sub"], alice.as_str());
    assert_eq!(c["client_id"], id.as_str());
    assert_eq!(c["scope"], "openid profile");
    assert_eq!(c["acr"], "urn:facegate:pwd");
    assert!(c["jti"].as_str().is_some_and(|j| j.len() >= 16), "{c}");
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 3600);

    // userinfo and introspection take it like any access token.
    let info: Value = reqwest::Client::new()
        .get(app.url("/userinfo"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["sub"], alice.as_str());
    let (_, i) = post(&app, "/introspect", (&id, &secret), &[("token", at)]).await;
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["sub"], alice.as_str());

    // A JWT facegate did not issue (re-signed by nobody, here: a tampered payload) is refused.
    let mut parts: Vec<String> = at.split('.').map(String::from).collect();
    parts[1].insert(0, 'e');
    let forged = parts.join(".");
    let r = reqwest::Client::new()
        .get(app.url("/userinfo"))
        .bearer_auth(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Revoked at facegate: userinfo and introspection stop accepting it at once.
    let (s, _) = post(&app, "/revoke", (&id, &secret), &[("token", at)]).await;
    assert_eq!(s, 200);
    let r = reqwest::Client::new()
        .get(app.url("/userinfo"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let (_, i) = post(&app, "/introspect", (&id, &secret), &[("token", at)]).await;
    assert_eq!(i["active"], false, "{i}");
}

#[tokio::test]
async fn client_credentials_jwts_name_the_client_and_opaque_stays_the_default() {
    let app = spawn_app().await;
    let service = |jwt: bool| ClientMetadata {
        name: Some("Service".into()),
        grant_types: Some(vec!["client_credentials".into()]),
        jwt_access_tokens: jwt,
        ..Default::default()
    };
    let (jwt_id, jwt_secret) = app.add_client(service(true)).await;
    let (s, t) = post(
        &app,
        "/token",
        (&jwt_id, &jwt_secret.unwrap()),
        &[("grant_type", "client_credentials"), ("scope", "faces:read")],
    )
    .await;
    assert_eq!(s, 200, "{t}");
    let (_, c) = verified(&app, t["access_token"].as_str().unwrap()).await;
    assert_eq!(c["sub"], jwt_id.as_str());
    assert_eq!(c["client_id"], jwt_id.as_str());
    assert_eq!(c["scope"], "faces:read");
    assert!(c.get("acr").is_none(), "{c}");

    let (plain_id, plain_secret) = app.add_client(service(false)).await;
    let (_, t) = post(
        &app,
        "/token",
        (&plain_id, &plain_secret.unwrap()),
        &[("grant_type", "client_credentials")],
    )
    .await;
    let at = t["access_token"].as_str().unwrap();
    assert_eq!(at.len(), 43, "opaque: {at}");
    assert!(jsonwebtoken::decode_header(at).is_err());
}
