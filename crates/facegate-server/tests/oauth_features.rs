//! Issue 13, part 4: what users of Keycloak and Hydra expect.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{browser, params, sign_in, spawn_app};
use serde_json::Value;

const REDIRECT: &str = "http://localhost:9/cb";

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn jwt_claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn the_claims_parameter_adds_claims_to_the_id_token_and_userinfo() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let (id, secret) = app.confidential_client(REDIRECT).await;
    // scope=openid alone would give neither email nor name; the claims parameter asks for them.
    let claims = r#"{"id_token":{"email":{"essential":true},"acr":{"essential":true,"values":["urn:facegate:pwd"]}},"userinfo":{"name":null}}"#;
    let url = format!(
        "{}/authorize?client_id={id}&redirect_uri={}&response_type=code&scope=openid&state=s&claims={}",
        app.issuer,
        enc(REDIRECT),
        enc(claims)
    );
    let back = sign_in(&browser(), &app, &url, "alice").await;
    let code = params(&back, false).remove("code").unwrap();
    let t = common::exchange_code(&app, &id, Some(&secret), &code, REDIRECT).await;
    let idt = jwt_claims(t["id_token"].as_str().unwrap());
    assert_eq!(idt["email"], "alice@example.com", "{idt}");
    assert!(
        idt.get("name").is_none(),
        "name was asked for at userinfo only: {idt}"
    );
    let info: Value = reqwest::Client::new()
        .get(app.url("/userinfo"))
        .bearer_auth(t["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["name"], "alice Example", "{info}");
    assert!(
        info.get("email").is_none(),
        "email was asked for in the ID token only: {info}"
    );

    // Malformed claims: an error at the redirect URI, as any other bad parameter.
    let url = format!(
        "{}/authorize?client_id={id}&redirect_uri={}&response_type=code&scope=openid&state=s&claims=%5B%5D",
        app.issuer,
        enc(REDIRECT)
    );
    let r = browser().get(&url).send().await.unwrap();
    let err = params(&common::location(&r), false);
    assert_eq!(err["error"], "invalid_request");
    let d: Value = reqwest::get(app.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d["claims_parameter_supported"], true);
}

#[tokio::test]
async fn rfc7592_read_update_and_delete_a_registration() {
    let app = spawn_app().await;
    let http = reqwest::Client::new();
    let reg: Value = http
        .post(app.url("/register"))
        .bearer_auth("initial-token")
        .json(&serde_json::json!({"client_name": "Old name", "redirect_uris": [REDIRECT]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = reg["client_id"].as_str().unwrap();
    let secret = reg["client_secret"].as_str().unwrap();
    let token = reg["registration_access_token"].as_str().unwrap();
    let uri = reg["registration_client_uri"].as_str().unwrap();
    assert_eq!(uri, app.url(&format!("/register/{id}")));

    // Update: new name and redirect URI; the secret stays, the registration token rotates.
    let update = |token: &str, body: Value| http.put(uri).bearer_auth(token).json(&body).send();
    let body = serde_json::json!({"client_id": id, "client_name": "New name", "redirect_uris": ["http://localhost:9/new"]});
    let r = update(token, body.clone()).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let updated: Value = r.json().await.unwrap();
    assert_eq!(updated["client_name"], "New name");
    assert_eq!(
        updated["redirect_uris"],
        serde_json::json!(["http://localhost:9/new"])
    );
    assert!(
        updated.get("client_secret").is_none(),
        "the secret was kept, not re-issued"
    );
    let new_token = updated["registration_access_token"].as_str().unwrap().to_string();
    assert_ne!(new_token, token);
    assert_eq!(
        update(token, body.clone()).await.unwrap().status().as_u16(),
        401,
        "old token"
    );
    let read: Value = http
        .get(uri)
        .bearer_auth(&new_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["client_name"], "New name");
    // Still the same client and secret at the token endpoint (the redirect URI check uses the new one).
    let r = http
        .post(app.url("/token"))
        .basic_auth(id, Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("redirect_uri", "http://localhost:9/new"),
        ])
        .send()
        .await
        .unwrap();
    let e: Value = r.json().await.unwrap();
    assert_eq!(
        e["error"], "invalid_grant",
        "authenticated, the code is just wrong: {e}"
    );

    // The same rules as registering: no self-granted skip_consent; the body names the client.
    let r = update(
        &new_token,
        serde_json::json!({"client_id": id, "redirect_uris": [REDIRECT], "skip_consent": true}),
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = update(&new_token, serde_json::json!({"redirect_uris": [REDIRECT]}))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400, "client_id missing from the body");
    // Another client's registration token opens nothing here.
    let other: Value = http
        .post(app.url("/register"))
        .bearer_auth("initial-token")
        .json(&serde_json::json!({"redirect_uris": [REDIRECT]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let other_token = other["registration_access_token"].as_str().unwrap();
    assert_eq!(
        http.delete(uri)
            .bearer_auth(other_token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );

    // Delete: 204, then the client is gone.
    let r = http.delete(uri).bearer_auth(&new_token).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(
        http.get(uri)
            .bearer_auth(&new_token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    let r = http
        .post(app.url("/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401, "a deleted client cannot authenticate");
}
