//! Negative cases, table-driven where they share a shape: what a provider must refuse, and how.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{TestApp, browser, location, params, sign_in, spawn_app, spawn_with};
use facegate_oidc::client::ClientMetadata;
use serde_json::Value;

const REDIRECT: &str = "http://localhost:9/cb";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn auth_url(app: &TestApp, client_id: &str, extra: &str) -> String {
    format!(
        "{}/authorize?client_id={client_id}&redirect_uri={}&response_type=code&scope=openid%20offline_access&state=st{extra}",
        app.issuer,
        enc(REDIRECT)
    )
}

async fn code_for(app: &TestApp, client_id: &str, extra: &str) -> String {
    let back = sign_in(&browser(), app, &auth_url(app, client_id, extra), "alice").await;
    params(&back, false)
        .remove("code")
        .unwrap_or_else(|| panic!("no code in {back}"))
}

async fn token(
    app: &TestApp,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut rb = reqwest::Client::new().post(app.url("/token")).form(form);
    if let Some((id, secret)) = basic {
        rb = rb.basic_auth(id, Some(secret));
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, r.json().await.unwrap_or(Value::Null), headers)
}

#[tokio::test]
async fn unknown_client_or_redirect_uri_gets_an_error_page_never_a_redirect() {
    let app = spawn_app().await;
    let (client_id, _) = app.confidential_client(REDIRECT).await;
    let cases = [
        (
            "unknown redirect_uri",
            client_id.as_str(),
            "https://evil.example/cb",
        ),
        (
            "redirect_uri with an extra path",
            client_id.as_str(),
            "http://localhost:9/cb/extra",
        ),
        (
            "redirect_uri with an extra query",
            client_id.as_str(),
            "http://localhost:9/cb?x=1",
        ),
        (
            "redirect_uri differing in case",
            client_id.as_str(),
            "http://localhost:9/CB",
        ),
        ("unknown client", "no-such-client", REDIRECT),
    ];
    for (name, client, redirect) in cases {
        let url = format!(
            "{}/authorize?client_id={client}&redirect_uri={}&response_type=code&scope=openid&state=s",
            app.issuer,
            enc(redirect)
        );
        let r = browser().get(&url).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 400, "{name}");
        assert!(r.headers().get("location").is_none(), "{name}: must not redirect");
        let page = r.text().await.unwrap();
        assert!(
            page.contains("Cannot continue"),
            "{name}: an error page for the person"
        );
    }
}

#[tokio::test]
async fn token_endpoint_rules() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let (id, secret) = app.confidential_client(REDIRECT).await;
    let (other_id, other_secret) = app.confidential_client(REDIRECT).await;
    let (public_id, _) = app
        .add_client(ClientMetadata {
            redirect_uris: vec![REDIRECT.into()],
            token_endpoint_auth_method: Some("none".into()),
            ..Default::default()
        })
        .await;
    let pkce = format!("&code_challenge={CHALLENGE}&code_challenge_method=S256");

    // (name, client for the code, PKCE in the request, how the exchange is made, expected status and error)
    type Exchange<'a> = Box<dyn Fn(&'a str) -> (Option<(&'a str, &'a str)>, Vec<(&'a str, &'a str)>) + 'a>;
    let cases: Vec<(&str, &str, bool, Exchange, u16, &str)> = vec![
        (
            "wrong client secret",
            &id,
            false,
            Box::new(|c| {
                (
                    Some((id.as_str(), "wrong")),
                    vec![
                        ("grant_type", "authorization_code"),
                        ("code", c),
                        ("redirect_uri", REDIRECT),
                    ],
                )
            }),
            401,
            "invalid_client",
        ),
        (
            "no client authentication",
            &id,
            false,
            Box::new(|c| {
                (
                    None,
                    vec![
                        ("grant_type", "authorization_code"),
                        ("code", c),
                        ("redirect_uri", REDIRECT),
                        ("client_id", id.as_str()),
                    ],
                )
            }),
            401,
            "invalid_client",
        ),
        (
            // A client holding a secret may send it either way (what openid-client does by default).
            "secret in the body for a basic client (control case)",
            &id,
            false,
            Box::new(|c| {
                (
                    None,
                    vec![
                        ("grant_type", "authorization_code"),
                        ("code", c),
                        ("redirect_uri", REDIRECT),
                        ("client_id", id.as_str()),
                        ("client_secret", secret.as_str()),
                    ],
                )
            }),
            200,
            "",
        ),
        (
            "secret in the body and in Basic at once",
            &id,
            false,
            Box::new(|c| {
                (
                    Some((id.as_str(), secret.as_str())),
                    vec![
                        ("grant_type", "authorization_code"),
                        ("code", c),
                        ("redirect_uri", REDIRECT),
                        ("client_id", id.as_str()),
                        ("client_secret", secret.as_str()),
                    ],
                )
            }),
            400,
            "invalid_request",
        ),
        (
            "code of another client",
            &id,
            false,
            Box::new(|c| {
                (
                    Some((other_id.as_str(), other_secret.as_str())),
                    vec![
                        ("grant_type", "authorization_code"),
                        ("code", c),
                        ("redirect_uri", REDIRECT),
                    ],
                )
            }),
            400,
            "invalid_grant",
        ),
        (
            "redirect_uri differs from the request",
            &id,
            false,
            Box::new(|c| {
                (
                    Some((id.as_str(), secret.as_str())),
                    vec![
                        ("grant_type", "authorization_code"),
                        ("code", c),
                        ("redirect_uri", "http://localhost:9/other"),
                    ],
                )
            }),
            400,
            "invalid_grant",
        ),
        (
            "redirect_uri missing",
            &id,
            false,
            Box::new(|c| {
                (
                    Some((id.as_str(), secret.as_str())),
                    vec![("grant_type", "authorization_code"), ("code", c)],
                )
            }),
            400,
            "invalid_grant",
        ),
        (
            "PKCE verifier missing",
            &public_id,
            true,
            Box::new(|c| {
                (
                    None,
                    vec![
                        ("grant_type", "authorization_code"),
                        ("code", c),
                        ("redirect_uri", REDIRECT),
                        ("client_id", public_id.as_str()),
                    ],
                )
            }),
            400,
            "invalid_grant",
        ),
        (
            "PKCE verifier wrong",
            &public_id,
            true,
            Box::new(|c| {
                (
                    None,
                    vec![
                        ("grant_type", "authorization_code"),
                        ("code", c),
                        ("redirect_uri", REDIRECT),
                        ("client_id", public_id.as_str()),
                        ("code_verifier", "wrong-verifier-wrong-verifier-wrong-verifier-0"),
                    ],
                )
            }),
            400,
            "invalid_grant",
        ),
        (
            "verifier without a challenge",
            &id,
            false,
            Box::new(|c| {
                (
                    Some((id.as_str(), secret.as_str())),
                    vec![
                        ("grant_type", "authorization_code"),
                        ("code", c),
                        ("redirect_uri", REDIRECT),
                        ("code_verifier", VERIFIER),
                    ],
                )
            }),
            400,
            "invalid_grant",
        ),
        (
            "made-up code",
            &id,
            false,
            Box::new(|_| {
                (
                    Some((id.as_str(), secret.as_str())),
                    vec![
                        ("grant_type", "authorization_code"),
                        ("code", "made-up"),
                        ("redirect_uri", REDIRECT),
                    ],
                )
            }),
            400,
            "invalid_grant",
        ),
        (
            "repeated parameter",
            &id,
            false,
            Box::new(|c| {
                (
                    Some((id.as_str(), secret.as_str())),
                    vec![
                        ("grant_type", "authorization_code"),
                        ("code", c),
                        ("code", c),
                        ("redirect_uri", REDIRECT),
                    ],
                )
            }),
            400,
            "invalid_request",
        ),
        (
            "unsupported grant type",
            &id,
            false,
            Box::new(|_| {
                (
                    Some((id.as_str(), secret.as_str())),
                    vec![
                        ("grant_type", "password"),
                        ("username", "alice"),
                        ("password", "x"),
                    ],
                )
            }),
            400,
            "unsupported_grant_type",
        ),
        (
            "client_credentials not registered",
            &id,
            false,
            Box::new(|_| {
                (
                    Some((id.as_str(), secret.as_str())),
                    vec![("grant_type", "client_credentials")],
                )
            }),
            400,
            "unauthorized_client",
        ),
        (
            "PKCE right (control case)",
            &public_id,
            true,
            Box::new(|c| {
                (
                    None,
                    vec![
                        ("grant_type", "authorization_code"),
                        ("code", c),
                        ("redirect_uri", REDIRECT),
                        ("client_id", public_id.as_str()),
                        ("code_verifier", VERIFIER),
                    ],
                )
            }),
            200,
            "",
        ),
    ];
    for (name, code_client, with_pkce, exchange, status, error) in cases {
        // Leaked so the case's closure may borrow it for as long as the other borrowed values.
        let code: &'static str = Box::leak(
            code_for(&app, code_client, if with_pkce { &pkce } else { "" })
                .await
                .into_boxed_str(),
        );
        let (auth, form) = exchange(code);
        let (got_status, body, headers) = token(&app, auth, &form).await;
        assert_eq!(got_status, status, "{name}: {body}");
        if status == 200 {
            assert!(body["access_token"].is_string(), "{name}");
            continue;
        }
        assert_eq!(body["error"], error, "{name}: {body}");
        assert_eq!(headers.get("cache-control").unwrap(), "no-store", "{name}");
        if status == 401 {
            assert!(headers.get("www-authenticate").is_some(), "{name}");
        }
    }
}

#[tokio::test]
async fn replayed_code_fails_and_revokes_what_it_issued() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let (id, secret) = app.confidential_client(REDIRECT).await;
    let code = code_for(&app, &id, "").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
    ];
    let (s1, first, _) = token(&app, Some((&id, &secret)), &form).await;
    assert_eq!(s1, 200);
    let access = first["access_token"].as_str().unwrap();
    let userinfo = |t: String| {
        let url = app.url("/userinfo");
        async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(t)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(userinfo(access.to_string()).await, 200);
    let (s2, second, _) = token(&app, Some((&id, &secret)), &form).await;
    assert_eq!((s2, second["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(
        userinfo(access.to_string()).await,
        401,
        "the first exchange's access token is revoked"
    );
    let refresh = first["refresh_token"].as_str().unwrap();
    let (s3, _, _) = token(
        &app,
        Some((&id, &secret)),
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    assert_eq!(s3, 400, "and so is its refresh token");
}

/// An attacker who holds a code but not its redirect URI (or PKCE verifier) cannot keep guessing:
/// the failed attempt spends the code, and the rightful exchange after it is a replay.
#[tokio::test]
async fn a_failed_exchange_spends_the_code() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let (id, secret) = app.confidential_client(REDIRECT).await;
    let code = code_for(&app, &id, "").await;
    let (s1, body, _) = token(
        &app,
        Some((&id, &secret)),
        &[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", "http://localhost:3000/elsewhere"),
        ],
    )
    .await;
    assert_eq!(
        (s1, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    let (s2, body, _) = token(
        &app,
        Some((&id, &secret)),
        &[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(
        (s2, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    assert_eq!(
        body["error_description"].as_str(),
        Some("the code was already used")
    );
}

#[tokio::test]
async fn expired_code_is_refused() {
    let app = spawn_with(|s| s.lifetimes.code = 0).await;
    app.add_user("alice").await;
    let (id, secret) = app.confidential_client(REDIRECT).await;
    let code = code_for(&app, &id, "").await;
    let (status, body, _) = token(
        &app,
        Some((&id, &secret)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
}

#[tokio::test]
async fn front_channel_errors_go_back_with_state_exactly() {
    let app = spawn_app().await;
    let (id, _) = app
        .add_client(ClientMetadata {
            redirect_uris: vec![REDIRECT.into()],
            grant_types: Some(vec!["authorization_code".into(), "implicit".into()]),
            ..Default::default()
        })
        .await;
    let state = "a b&c=d/é?#%";
    let cases = [
        ("implicit without nonce", "id_token", "", true, "invalid_request"),
        (
            "implicit in the query (the error itself goes where the client listens)",
            "id_token",
            "&nonce=n&response_mode=query",
            false,
            "invalid_request",
        ),
        (
            "unsupported response type",
            "token",
            "",
            false,
            "unsupported_response_type",
        ),
        (
            "PKCE plain",
            "code",
            "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=plain",
            false,
            "invalid_request",
        ),
        (
            "request object",
            "code",
            "&request=eyJhbGciOiJub25lIn0.e30.",
            false,
            "request_not_supported",
        ),
        (
            "prompt=none without a session",
            "code",
            "&prompt=none",
            false,
            "login_required",
        ),
    ];
    for (name, rt, extra, fragment, error) in cases {
        let url = format!(
            "{}/authorize?client_id={id}&redirect_uri={}&response_type={}&scope=openid&state={}{extra}",
            app.issuer,
            enc(REDIRECT),
            enc(rt),
            enc(state)
        );
        let r = browser().get(&url).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 303, "{name}");
        let loc = location(&r);
        assert!(loc.starts_with(REDIRECT), "{name}: {loc}");
        let p = params(&loc, fragment);
        assert_eq!(p.get("error").map(String::as_str), Some(error), "{name}: {loc}");
        assert_eq!(
            p.get("state").map(String::as_str),
            Some(state),
            "{name}: state must come back exactly"
        );
        assert_eq!(p.get("iss"), Some(&app.issuer), "{name}");
    }
}

/// A compact JWS with the given header and payload and a fake signature.
fn forge(header: &Value, payload: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    )
}

#[tokio::test]
async fn alg_none_and_tampered_tokens_are_not_trusted() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let (id, secret) = app.confidential_client(REDIRECT).await;
    let code = code_for(&app, &id, "&nonce=n1").await;
    let (_, tokens, _) = token(
        &app,
        Some((&id, &secret)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    let id_token = tokens["id_token"].as_str().unwrap().to_string();
    let parts: Vec<&str> = id_token.split('.').collect();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let mut claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(header["alg"], "RS256");
    assert_eq!(claims["nonce"], "n1");

    // The genuine hint works: logout redirects to the registered post-logout URI.
    let logout = |hint: String| {
        let url = format!(
            "{}/logout?id_token_hint={hint}&post_logout_redirect_uri={}&state=bye",
            app.issuer,
            enc("http://localhost:9/after-logout")
        );
        async move { browser().get(url).send().await.unwrap() }
    };
    let r = logout(id_token.clone()).await;
    assert_eq!(location(&r), "http://localhost:9/after-logout?state=bye");

    // alg none, and a payload changed under the original signature: not trusted, no redirect.
    let none = forge(&serde_json::json!({"alg": "none", "typ": "JWT"}), &claims, "");
    claims["sub"] = Value::String("mallory".into());
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    for (name, hint) in [("alg none", none.clone()), ("tampered payload", tampered)] {
        let r = logout(hint).await;
        assert!(location(&r).is_empty(), "{name}: must not redirect");
        assert_eq!(r.status().as_u16(), 400, "{name}");
    }

    // An unsigned client assertion does not authenticate anyone.
    let assertion = forge(
        &serde_json::json!({"alg": "none"}),
        &serde_json::json!({"iss": id, "sub": id, "aud": app.url("/token"), "exp": 4_000_000_000u64, "jti": "j"}),
        "",
    );
    let (status, body, _) = token(
        &app,
        None,
        &[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &assertion),
        ],
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
}

#[tokio::test]
async fn userinfo_and_introspection_refuse_bad_tokens() {
    let app = spawn_app().await;
    let r = reqwest::Client::new()
        .get(app.url("/userinfo"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let r = reqwest::Client::new()
        .get(app.url("/userinfo"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
}
