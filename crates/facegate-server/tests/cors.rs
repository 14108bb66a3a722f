//! What browsers enforce, as a browser app sees it. CORS: discovery and JWKS readable from anywhere; token,
//! userinfo and revocation readable only from the origin of a registered client's redirect URI, with
//! preflight answered; no other origin gets CORS headers, and none gets credentials. CSP: the login and
//! consent forms may end (after redirects) at the client.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use common::{browser, params, sign_in, spawn_app};
use facegate_oidc::client::ClientMetadata;
use openidconnect::PkceCodeChallenge;
use serde_json::Value;

const SPA: &str = "http://localhost:7000";
const EVIL: &str = "https://evil.example";

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers().get(name).map(|v| v.to_str().unwrap().to_string())
}

async fn preflight(url: &str, origin: &str, method: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, url)
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn discovery_and_jwks_are_readable_from_any_origin() {
    let app = spawn_app().await;
    for path in ["/.well-known/openid-configuration", "/jwks.json"] {
        let r = reqwest::Client::new()
            .get(app.url(path))
            .header("origin", EVIL)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(
            header(&r, "access-control-allow-origin").as_deref(),
            Some("*"),
            "{path}"
        );
        assert!(header(&r, "access-control-allow-credentials").is_none());
        let p = preflight(&app.url(path), SPA, "GET").await;
        assert_eq!(p.status(), 204, "{path} preflight");
        assert_eq!(header(&p, "access-control-allow-origin").as_deref(), Some("*"));
        assert!(
            header(&p, "access-control-allow-methods")
                .unwrap()
                .contains("GET")
        );
    }
    // A plain OPTIONS (no CORS headers) is not a preflight: the router answers it as before.
    let r = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, app.url("/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
}

#[tokio::test]
async fn token_userinfo_and_revoke_answer_only_registered_origins() {
    let app = spawn_app().await;
    let user = app.add_user("alice").await;
    let redirect = format!("{SPA}/callback.html");
    let (client_id, secret) = app
        .add_client(ClientMetadata {
            name: Some("SPA".into()),
            redirect_uris: vec![redirect.clone()],
            token_endpoint_auth_method: Some("none".into()),
            ..Default::default()
        })
        .await;
    assert!(secret.is_none(), "a public client has no secret");

    // Preflight: the SPA's origin is allowed, with the headers a form POST and a bearer GET need.
    for (path, method) in [("/token", "POST"), ("/userinfo", "GET"), ("/revoke", "POST")] {
        let p = preflight(&app.url(path), SPA, method).await;
        assert_eq!(p.status(), 204, "{path}");
        assert_eq!(
            header(&p, "access-control-allow-origin").as_deref(),
            Some(SPA),
            "{path}"
        );
        assert!(
            header(&p, "access-control-allow-methods")
                .unwrap()
                .contains(method)
        );
        let allowed = header(&p, "access-control-allow-headers").unwrap();
        assert!(
            allowed.contains("content-type") && allowed.contains("authorization"),
            "{allowed}"
        );
        assert!(header(&p, "access-control-allow-credentials").is_none());
        assert!(header(&p, "vary").unwrap().to_lowercase().contains("origin"));
    }
    // Other origins, "null", and origins with a path or another port are refused.
    for origin in [
        EVIL,
        "null",
        "http://localhost:7001",
        "http://localhost:7000/x",
        "http://localhost:7000/",
    ] {
        let p = preflight(&app.url("/token"), origin, "POST").await;
        assert_eq!(p.status(), 403, "{origin}");
        assert!(header(&p, "access-control-allow-origin").is_none(), "{origin}");
    }

    // The code flow as a browser app does it: code + PKCE, no secret, token call from its origin.
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let auth = format!(
        "{}/authorize?client_id={client_id}&redirect_uri={}&response_type=code&scope=openid&state=s&code_challenge={}&code_challenge_method=S256",
        app.issuer,
        enc(&redirect),
        challenge.as_str()
    );
    let back = sign_in(&browser(), &app, &auth, "alice").await;
    let code = params(&back, false)["code"].clone();
    let r = reqwest::Client::new()
        .post(app.url("/token"))
        .header("origin", SPA)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect.as_str()),
            ("client_id", client_id.as_str()),
            ("code_verifier", verifier.secret().as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "access-control-allow-origin").as_deref(), Some(SPA));
    assert!(header(&r, "access-control-allow-credentials").is_none());
    let tokens: Value = r.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_string();
    assert!(tokens["id_token"].is_string());

    let r = reqwest::Client::new()
        .get(app.url("/userinfo"))
        .header("origin", SPA)
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "access-control-allow-origin").as_deref(), Some(SPA));
    let info: Value = r.json().await.unwrap();
    assert_eq!(info["sub"], user);

    // The server still answers another origin (CORS is the browser's rule), but without CORS headers
    // the browser does not let that page read the answer.
    let r = reqwest::Client::new()
        .get(app.url("/userinfo"))
        .header("origin", EVIL)
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert!(header(&r, "access-control-allow-origin").is_none());

    // Errors carry CORS headers too, so the app can read why (and the WWW-Authenticate challenge).
    let r = reqwest::Client::new()
        .get(app.url("/userinfo"))
        .header("origin", SPA)
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(header(&r, "access-control-allow-origin").as_deref(), Some(SPA));
    assert!(
        header(&r, "access-control-expose-headers")
            .unwrap()
            .contains("www-authenticate")
    );

    let r = reqwest::Client::new()
        .post(app.url("/revoke"))
        .header("origin", SPA)
        .form(&[("token", access.as_str()), ("client_id", client_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "access-control-allow-origin").as_deref(), Some(SPA));
    let r = reqwest::Client::new()
        .get(app.url("/userinfo"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "revoked from the browser app");
}

/// Browsers apply a page's CSP `form-action` to every redirect after a form submission: the login and
/// consent forms of an authorization request end at the client, so its origin must be allowed there.
#[tokio::test]
async fn login_and_consent_forms_may_end_at_the_client() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let redirect = format!("{SPA}/cb");
    let (client_id, _) = app.confidential_client(&redirect).await;
    let csp = |r: &reqwest::Response| header(r, "content-security-policy").unwrap();
    let b = browser();
    let r = b
        .get(format!(
            "{}/authorize?client_id={client_id}&redirect_uri={}&response_type=code&scope=openid&state=s",
            app.issuer,
            enc(&redirect)
        ))
        .send()
        .await
        .unwrap();
    let login = app.url(&common::location(&r));
    let r = b.get(&login).send().await.unwrap();
    assert!(
        csp(&r).contains(&format!("form-action 'self' {SPA};")),
        "{}",
        csp(&r)
    );
    let page = r.text().await.unwrap();
    let form = [
        ("csrf", common::field(&page, "csrf")),
        ("req", common::field(&page, "req")),
        ("username", "alice".to_string()),
        ("password", "wrong password".to_string()),
    ];
    let r = b.post(app.url("/login")).form(&form).send().await.unwrap();
    assert!(
        csp(&r).contains(&format!("form-action 'self' {SPA};")),
        "the retry page too"
    );
    let mut form = form;
    form[3].1 = common::PASSWORD.to_string();
    let r = b.post(app.url("/login")).form(&form).send().await.unwrap();
    let mut next = common::location(&r);
    while !next.contains("/consent") {
        let r = b.get(app.url(&next)).send().await.unwrap();
        next = common::location(&r);
    }
    let r = b.get(app.url(&next)).send().await.unwrap();
    assert!(
        csp(&r).contains(&format!("form-action 'self' {SPA};")),
        "{}",
        csp(&r)
    );
    // Without an authorization request the login page posts only to itself.
    let r = b.get(app.url("/login")).send().await.unwrap();
    assert!(csp(&r).contains("form-action 'self';"), "{}", csp(&r));
    // A native app's private-use redirect URI: its scheme.
    let (native, _) = app.confidential_client("com.example.app:/cb").await;
    let r = browser()
        .get(format!(
            "{}/authorize?client_id={native}&redirect_uri={}&response_type=code&scope=openid&state=s",
            app.issuer,
            enc("com.example.app:/cb")
        ))
        .send()
        .await
        .unwrap();
    let r = b.get(app.url(&common::location(&r))).send().await.unwrap();
    assert!(
        csp(&r).contains("form-action 'self' com.example.app:;"),
        "{}",
        csp(&r)
    );
}
