//! Helpers shared by the face tests: the app with face login on, photos from ../shared/testdata,
//! password and face logins, enrolment from the account page, the relying party's side.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)] // tests fail loudly by design

use std::path::PathBuf;

use facegate_server::server::face::Liveness;
use serde_json::Value;

use super::{TestApp, browser, exchange_code, field, location, params, spawn_with};

pub const REDIRECT: &str = "http://localhost:9/cb";

pub fn testdata() -> PathBuf {
    std::env::var_os("FACEGATE_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata"))
}

pub fn photo(rel: &str) -> Vec<u8> {
    std::fs::read(testdata().join("faces").join(rel)).unwrap()
}

/// An app with face login on (liveness as given), or None when the models are not installed.
pub async fn face_app(
    liveness: Liveness,
    adjust: impl FnOnce(&mut facegate_server::server::Settings),
) -> Option<TestApp> {
    let app = spawn_with(|s| {
        s.face.enabled = true;
        s.face.liveness = liveness;
        adjust(s);
    })
    .await;
    if app.state.face.is_none() {
        if std::env::var("FACEGATE_REQUIRE_MODELS").as_deref() == Ok("1") {
            panic!(
                "face login needs the default model pack (FACEGATE_REQUIRE_MODELS=1): run facegate models fetch"
            );
        }
        eprintln!("SKIPPED: default model pack not installed (facegate models fetch)");
        return None;
    }
    Some(app)
}

pub async fn password_login(b: &reqwest::Client, app: &TestApp, username: &str) {
    let page = super::get_text(b, &app.url("/login")).await;
    let r = b
        .post(app.url("/login"))
        .form(&[
            ("csrf", field(&page, "csrf")),
            ("req", String::new()),
            ("username", username.into()),
            ("password", super::PASSWORD.into()),
        ])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection());
}

pub async fn post_photo(
    b: &reqwest::Client,
    app: &TestApp,
    path: &str,
    fields: &[(&str, &str)],
    image: Vec<u8>,
) -> (u16, Value) {
    let mut form = reqwest::multipart::Form::new();
    for (k, v) in fields {
        form = form.text(k.to_string(), v.to_string());
    }
    form = form.part(
        "image",
        reqwest::multipart::Part::bytes(image)
            .file_name("capture.jpg")
            .mime_str("image/jpeg")
            .unwrap(),
    );
    let r = b
        .post(app.url(path))
        .header("accept", "application/json")
        .multipart(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

pub async fn enrol_from_account_page(app: &TestApp, username: &str, photos: &[&str]) {
    enrol_images(app, username, photos.iter().map(|p| photo(p)).collect()).await;
}

/// Signs in with the password and enrols each image from the account page. With liveness required
/// the account page only takes a face from a passed liveness check, so tests that are not about
/// enrolment enrol as the operator does (`facegate user enroll`).
pub async fn enrol_images(app: &TestApp, username: &str, images: Vec<Vec<u8>>) {
    if app.state.settings.face.liveness == Liveness::Required {
        let uid = app
            .state
            .store
            .user_with_password(username)
            .await
            .unwrap()
            .unwrap()
            .0
            .id;
        let face = app.state.face.clone().unwrap();
        for image in images {
            face.enrol(&app.state.store, &uid, image).await.unwrap();
        }
        return;
    }
    let b = browser();
    password_login(&b, app, username).await;
    let page = super::get_text(&b, &app.url("/account")).await;
    let csrf = field(&page, "csrf");
    for (i, image) in images.into_iter().enumerate() {
        let (status, body) = post_photo(&b, app, "/account/faces", &[("csrf", &csrf)], image).await;
        assert_eq!(status, 201, "image {i}: {body}");
    }
}

/// Starts an authorization at the app and returns (browser, request id).
pub async fn start_authorization(app: &TestApp, client_id: &str) -> (reqwest::Client, String) {
    let b = browser();
    let url = format!(
        "{}/authorize?client_id={client_id}&redirect_uri={}&response_type=code&scope=openid&state=face",
        app.issuer,
        url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
    );
    let r = b.get(&url).send().await.unwrap();
    let login = location(&r);
    let req = login.split("req=").nth(1).unwrap().to_string();
    (b, req)
}

pub async fn face_login(
    b: &reqwest::Client,
    app: &TestApp,
    req: &str,
    username: Option<&str>,
    image: Vec<u8>,
) -> (u16, Value) {
    let page = super::get_text(b, &app.url(&format!("/login/face?req={req}"))).await;
    let csrf = field(&page, "csrf");
    let mut fields = vec![("csrf", csrf.as_str()), ("req", req)];
    if let Some(u) = username {
        fields.push(("username", u));
    }
    post_photo(b, app, "/login/face", &fields, image).await
}

/// Follows a successful face login to the client and exchanges the code; returns the ID token claims.
pub async fn finish(b: &reqwest::Client, app: &TestApp, redirect: &str, client: (&str, &str)) -> Value {
    let back = super::sign_in(b, app, redirect, "unused").await;
    let code = params(&back, false)
        .remove("code")
        .unwrap_or_else(|| panic!("{back}"));
    let t = exchange_code(app, client.0, Some(client.1), &code, REDIRECT).await;
    let token = t["id_token"].as_str().unwrap();
    let payload = token.split('.').nth(1).unwrap();
    use base64::Engine as _;
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}
