//! The rest of the provider's surface, end to end: hybrid and implicit responses (fragment and
//! form_post), client_credentials with introspection and revocation, dynamic registration and the
//! admin API, private_key_jwt, key rotation, consent refusal, CSRF, login throttling, logout.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use common::{TestApp, browser, exchange_code, location, params, sign_in, spawn_app};
use facegate_oidc::client::ClientMetadata;
use facegate_oidc::id_token::half_hash;
use facegate_oidc::keys::{SigningAlg, SigningKey, generate};
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{Value, json};

const REDIRECT: &str = "http://localhost:9/cb";

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Verifies an ID token against the server's JWKS and returns its claims.
async fn verify_id_token(app: &TestApp, token: &str, client_id: &str) -> Value {
    let jwks: jsonwebtoken::jwk::JwkSet = reqwest::get(app.url("/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("kid is in the JWKS");
    let mut v = Validation::new(header.alg);
    v.set_audience(&[client_id]);
    v.set_issuer(&[app.issuer.as_str()]);
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &v)
        .unwrap()
        .claims
}

async fn implicit_client(app: &TestApp) -> String {
    app.add_client(ClientMetadata {
        redirect_uris: vec![REDIRECT.into()],
        grant_types: Some(vec![
            "authorization_code".into(),
            "implicit".into(),
            "refresh_token".into(),
        ]),
        ..Default::default()
    })
    .await
    .0
}

#[tokio::test]
async fn hybrid_and_implicit_responses_carry_hashes_and_nonce() {
    let app = spawn_app().await;
    let user = app.add_user("alice").await;
    let id = implicit_client(&app).await;
    let b = browser();
    for (rt, wants_code, wants_token) in [
        ("code id_token", true, false),
        ("id_token token", false, true),
        ("id_token", false, false),
        ("code id_token token", true, true),
    ] {
        let url = format!(
            "{}/authorize?client_id={id}&redirect_uri={}&response_type={}&scope=openid%20email&state=s1&nonce=n-{}",
            app.issuer,
            enc(REDIRECT),
            enc(rt),
            rt.len()
        );
        let back = sign_in(&b, &app, &url, "alice").await;
        let p = params(&back, true);
        assert_eq!(p.contains_key("code"), wants_code, "{rt}: {back}");
        assert_eq!(p.contains_key("access_token"), wants_token, "{rt}");
        let claims = verify_id_token(&app, &p["id_token"], &id).await;
        assert_eq!(claims["sub"], user);
        assert_eq!(claims["nonce"], format!("n-{}", rt.len()), "{rt}");
        if let Some(code) = p.get("code") {
            assert_eq!(claims["c_hash"], half_hash(SigningAlg::RS256, code), "{rt}");
        }
        if let Some(at) = p.get("access_token") {
            assert_eq!(claims["at_hash"], half_hash(SigningAlg::RS256, at), "{rt}");
        }
        if rt == "id_token" {
            assert_eq!(
                claims["email"], "alice@example.com",
                "a bare id_token carries the scope's claims"
            );
        }
    }
}

#[tokio::test]
async fn form_post_response_mode_posts_the_response() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let id = implicit_client(&app).await;
    let url = format!(
        "{}/authorize?client_id={id}&redirect_uri={}&response_type=code&response_mode=form_post&scope=openid&state=%3Cs%3E",
        app.issuer,
        enc(REDIRECT)
    );
    let page = sign_in(&browser(), &app, &url, "alice").await;
    assert!(page.contains(&format!("action=\"{REDIRECT}\"")), "{page}");
    assert!(
        page.contains("name=\"code\"") && page.contains("name=\"state\" value=\"&lt;s&gt;\""),
        "{page}"
    );
}

#[tokio::test]
async fn client_credentials_introspection_and_revocation() {
    let app = spawn_app().await;
    let (id, secret) = app
        .add_client(ClientMetadata {
            name: Some("face api user".into()),
            grant_types: Some(vec!["client_credentials".into()]),
            ..Default::default()
        })
        .await;
    let secret = secret.unwrap();
    let http = reqwest::Client::new();
    let t: Value = http
        .post(app.url("/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials"), ("scope", "faces:read")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(t["scope"], "faces:read");
    assert!(t.get("id_token").is_none() && t.get("refresh_token").is_none());
    let access = t["access_token"].as_str().unwrap();
    let bad: Value = http
        .post(app.url("/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials"), ("scope", "openid")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(bad["error"], "invalid_scope");
    let introspect = || async {
        http.post(app.url("/introspect"))
            .basic_auth(&id, Some(&secret))
            .form(&[("token", access)])
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    let i = introspect().await;
    assert_eq!(
        (
            i["active"].as_bool(),
            i["scope"].as_str(),
            i["client_id"].as_str()
        ),
        (Some(true), Some("faces:read"), Some(id.as_str()))
    );
    let r = http
        .post(app.url("/revoke"))
        .basic_auth(&id, Some(&secret))
        .form(&[("token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(introspect().await["active"], false);
    // Introspection needs client authentication.
    let r = http
        .post(app.url("/introspect"))
        .form(&[("token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

#[tokio::test]
async fn dynamic_registration_needs_the_initial_token_and_admin_api_the_admin_token() {
    let app = spawn_app().await;
    let http = reqwest::Client::new();
    let meta = json!({"client_name": "Dyn", "redirect_uris": ["https://rp.example/cb"], "token_endpoint_auth_method": "client_secret_post"});
    let r = http.post(app.url("/register")).json(&meta).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = http
        .post(app.url("/register"))
        .bearer_auth("initial-token")
        .json(&meta)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let reg: Value = r.json().await.unwrap();
    assert!(reg["client_secret"].is_string() && reg["registration_access_token"].is_string());
    assert_eq!(reg["token_endpoint_auth_method"], "client_secret_post");
    let read: Value = http
        .get(reg["registration_client_uri"].as_str().unwrap())
        .bearer_auth(reg["registration_access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["client_id"], reg["client_id"]);
    assert!(read.get("client_secret").is_none(), "the secret is shown once");
    let bad = http
        .post(app.url("/register"))
        .bearer_auth("initial-token")
        .json(&json!({"redirect_uris": ["http://rp.example/cb"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    assert_eq!(
        bad.json::<Value>().await.unwrap()["error"],
        "invalid_redirect_uri"
    );

    let r = http.get(app.url("/admin/api/clients")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let list: Vec<Value> = http
        .get(app.url("/admin/api/clients"))
        .bearer_auth("admin-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    let created: Value = http
        .post(app.url("/admin/api/clients"))
        .bearer_auth("admin-token")
        .json(&json!({"name": "Admin-made", "redirect_uris": ["https://a.example/cb"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let del = http
        .delete(app.url(&format!(
            "/admin/api/clients/{}",
            created["client_id"].as_str().unwrap()
        )))
        .bearer_auth("admin-token")
        .send()
        .await
        .unwrap();
    assert_eq!(del.status().as_u16(), 204);
}

#[tokio::test]
async fn private_key_jwt_authenticates_once_per_assertion() {
    let app = spawn_app().await;
    let der = generate(SigningAlg::ES256).unwrap();
    let key = SigningKey::from_pkcs8(SigningAlg::ES256, &der).unwrap();
    let jwks = json!({"keys": [key.public_jwk()]});
    let (id, secret) = app
        .add_client(ClientMetadata {
            grant_types: Some(vec!["client_credentials".into()]),
            token_endpoint_auth_method: Some("private_key_jwt".into()),
            jwks: Some(jwks),
            ..Default::default()
        })
        .await;
    assert!(secret.is_none());
    let assertion = key
        .sign(&json!({"iss": id, "sub": id, "aud": app.url("/token"), "exp": common_now() + 60, "iat": common_now(), "jti": "once"}), None)
        .unwrap();
    let form = [
        ("grant_type", "client_credentials"),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", assertion.as_str()),
    ];
    let http = reqwest::Client::new();
    let ok: Value = http
        .post(app.url("/token"))
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(ok["access_token"].is_string(), "{ok}");
    let replay = http.post(app.url("/token")).form(&form).send().await.unwrap();
    assert_eq!(replay.status().as_u16(), 401, "a jti is accepted once");
    // Signed by a key the client did not register: refused.
    let stranger = SigningKey::from_pkcs8(SigningAlg::ES256, &generate(SigningAlg::ES256).unwrap()).unwrap();
    let forged = stranger.sign(&json!({"iss": id, "sub": id, "aud": app.url("/token"), "exp": common_now() + 60, "jti": "other"}), None).unwrap();
    let r = http
        .post(app.url("/token"))
        .form(&[form[0], form[1], ("client_assertion", forged.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

fn common_now() -> i64 {
    facegate_server::server::now()
}

#[tokio::test]
async fn key_rotation_publishes_the_new_key_and_keeps_the_old() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let (id, secret) = app.confidential_client(REDIRECT).await;
    let kid_of = |t: &str| jsonwebtoken::decode_header(t).unwrap().kid.unwrap();
    let get_token = || async {
        let url = format!(
            "{}/authorize?client_id={id}&redirect_uri={}&response_type=code&scope=openid&state=s",
            app.issuer,
            enc(REDIRECT)
        );
        let back = sign_in(&browser(), &app, &url, "alice").await;
        let code = params(&back, false)["code"].clone();
        let t: Value = exchange_code(&app, &id, Some(&secret), &code, REDIRECT).await;
        t["id_token"].as_str().unwrap().to_string()
    };
    let before = get_token().await;
    let old_kid = kid_of(&before);
    let new = facegate_server::server::keys::rotate(&app.state.store, SigningAlg::RS256, 3600)
        .await
        .unwrap();
    app.state.reload_keys().await.unwrap();
    let after = get_token().await;
    assert_eq!(kid_of(&after), new.kid);
    assert_ne!(new.kid, old_kid);
    // Both verify against the published JWKS.
    verify_id_token(&app, &before, &id).await;
    verify_id_token(&app, &after, &id).await;
}

#[tokio::test]
async fn consent_can_be_refused() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let (id, _) = app.confidential_client(REDIRECT).await;
    let b = browser();
    let url = format!(
        "{}/authorize?client_id={id}&redirect_uri={}&response_type=code&scope=openid%20email&state=s",
        app.issuer,
        enc(REDIRECT)
    );
    let r = b.get(&url).send().await.unwrap();
    let login = app.url(&location(&r));
    let page = b.get(&login).send().await.unwrap().text().await.unwrap();
    let field = |html: &str, name: &str| {
        let m = format!("name=\"{name}\" value=\"");
        let s = html.find(&m).unwrap() + m.len();
        html[s..s + html[s..].find('"').unwrap()].to_string()
    };
    let r = b
        .post(app.url("/login"))
        .form(&[
            ("csrf", field(&page, "csrf")),
            ("req", field(&page, "req")),
            ("username", "alice".into()),
            ("password", common::PASSWORD.into()),
        ])
        .send()
        .await
        .unwrap();
    let r = b.get(app.url(&location(&r))).send().await.unwrap();
    let consent = b
        .get(app.url(&location(&r)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        consent.contains("Your email address"),
        "the consent page lists what is asked"
    );
    let r = b
        .post(app.url("/consent"))
        .form(&[
            ("csrf", field(&consent, "csrf")),
            ("req", field(&consent, "req")),
            ("decision", "deny".into()),
        ])
        .send()
        .await
        .unwrap();
    let p = params(&location(&r), false);
    assert_eq!(p["error"], "access_denied");
}

#[tokio::test]
async fn login_form_needs_its_csrf_token_and_throttles_guessing() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let b = browser();
    let page = b
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let m = "name=\"csrf\" value=\"";
    let s = page.find(m).unwrap() + m.len();
    let csrf = page[s..s + page[s..].find('"').unwrap()].to_string();
    // Without the token, or from another browser (no cookie): refused.
    let r = b
        .post(app.url("/login"))
        .form(&[("username", "alice"), ("password", common::PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = browser()
        .post(app.url("/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", "alice"),
            ("password", common::PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    // Wrong passwords: the first three are free, then the account waits.
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let r = b
            .post(app.url("/login"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("username", "alice"),
                ("password", "wrong password"),
            ])
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(
        statuses,
        vec![401, 401, 401, 401, 429],
        "growing delay after the free attempts"
    );
    let r = b
        .post(app.url("/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", "alice"),
            ("password", common::PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        429,
        "even the right password waits out the delay"
    );
    assert!(r.headers().get("retry-after").is_some());
}

#[tokio::test]
async fn logout_ends_the_session() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let (id, _) = app.confidential_client(REDIRECT).await;
    let b = browser();
    let url = format!(
        "{}/authorize?client_id={id}&redirect_uri={}&response_type=code&scope=openid&state=s",
        app.issuer,
        enc(REDIRECT)
    );
    sign_in(&b, &app, &url, "alice").await;
    let r = b.get(&url).send().await.unwrap();
    assert!(location(&r).starts_with(REDIRECT), "signed in");
    // Without an id_token_hint the person is asked first; the confirmation form signs out.
    let page = b
        .get(format!(
            "{}/logout?client_id={id}&post_logout_redirect_uri={}",
            app.issuer,
            enc("http://localhost:9/after-logout")
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = b
        .post(app.url("/logout"))
        .form(&[
            ("csrf", common::field(&page, "csrf")),
            ("confirm", "1".into()),
            ("client_id", common::field(&page, "client_id")),
            (
                "post_logout_redirect_uri",
                common::field(&page, "post_logout_redirect_uri"),
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "http://localhost:9/after-logout");
    let r = b.get(&url).send().await.unwrap();
    assert!(location(&r).starts_with("/login"), "signed out");
    let r = b
        .get(format!(
            "{}/logout?client_id={id}&post_logout_redirect_uri={}",
            app.issuer,
            enc("https://evil.example/")
        ))
        .send()
        .await
        .unwrap();
    assert!(
        location(&r).is_empty(),
        "an unregistered post-logout URI is not followed"
    );
}

#[tokio::test]
async fn clients_may_choose_es256_or_eddsa_id_tokens() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    for alg in ["ES256", "EdDSA"] {
        let (id, secret) = app
            .add_client(ClientMetadata {
                redirect_uris: vec![REDIRECT.into()],
                id_token_signed_response_alg: Some(alg.into()),
                ..Default::default()
            })
            .await;
        let url = format!(
            "{}/authorize?client_id={id}&redirect_uri={}&response_type=code&scope=openid&state=s",
            app.issuer,
            enc(REDIRECT)
        );
        let back = sign_in(&browser(), &app, &url, "alice").await;
        let code = params(&back, false)["code"].clone();
        let t: Value = exchange_code(&app, &id, secret.as_deref(), &code, REDIRECT).await;
        let token = t["id_token"].as_str().unwrap();
        assert_eq!(
            format!("{:?}", jsonwebtoken::decode_header(token).unwrap().alg),
            alg
        );
        let claims = verify_id_token(&app, token, &id).await;
        let expected = half_hash(
            SigningAlg::parse(alg).unwrap(),
            t["access_token"].as_str().unwrap(),
        );
        assert_eq!(
            claims["at_hash"], expected,
            "{alg}: at_hash uses the algorithm's hash"
        );
    }
    let bad = facegate_oidc::client::ClientMetadata {
        redirect_uris: vec![REDIRECT.into()],
        id_token_signed_response_alg: Some("HS256".into()),
        ..Default::default()
    };
    assert!(
        bad.validate().is_err(),
        "symmetric and none algorithms are refused"
    );
}

#[tokio::test]
async fn optional_parameters_max_age_client_secret_post_and_userinfo_post() {
    let app = spawn_app().await;
    let user = app.add_user("alice").await;
    let (id, secret) = app
        .add_client(ClientMetadata {
            redirect_uris: vec![REDIRECT.into()],
            token_endpoint_auth_method: Some("client_secret_post".into()),
            ..Default::default()
        })
        .await;
    let secret = secret.unwrap();
    // Parameters facegate does not act on are accepted without error; max_age=0 forces a login that
    // then counts, even though consent follows it.
    let extra = "&display=page&ui_locales=fr-CA%20en&claims_locales=de&login_hint=alice&acr_values=urn%3Afacegate%3Apwd&unknown_parameter=1&max_age=0&claims=%7B%22id_token%22%3A%7B%22email%22%3Anull%7D%7D";
    let url = format!(
        "{}/authorize?client_id={id}&redirect_uri={}&response_type=code&scope=openid%20email&state=s{extra}",
        app.issuer,
        enc(REDIRECT)
    );
    let back = sign_in(&browser(), &app, &url, "alice").await;
    let code = params(&back, false)
        .remove("code")
        .unwrap_or_else(|| panic!("{back}"));
    let http = reqwest::Client::new();
    let t: Value = http
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("client_id", id.as_str()),
            ("client_secret", secret.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let claims = verify_id_token(&app, t["id_token"].as_str().unwrap(), &id).await;
    assert!(
        claims["auth_time"].as_i64().unwrap() >= facegate_server::server::now() - 5,
        "max_age=0 made a fresh login"
    );
    let access = t["access_token"].as_str().unwrap();
    let info: Value = http
        .post(app.url("/userinfo"))
        .form(&[("access_token", access)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (info["sub"].as_str(), info["email"].as_str()),
        (Some(user.as_str()), Some("alice@example.com"))
    );
    let info: Value = http
        .post(app.url("/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["sub"], user);
    // The authorization endpoint also takes POST.
    let r = browser()
        .post(app.url("/authorize"))
        .form(&[
            ("client_id", id.as_str()),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "p"),
        ])
        .send()
        .await
        .unwrap();
    assert!(location(&r).starts_with("/login"), "{}", location(&r));
}

#[tokio::test]
async fn admin_page_signs_in_with_the_token_and_manages_clients() {
    let app = spawn_app().await;
    let b = browser();
    let r = b.get(app.url("/admin")).send().await.unwrap();
    assert!(r.text().await.unwrap().contains("Admin token"));
    let r = b
        .post(app.url("/admin/login"))
        .form(&[("token", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // Without signing in, the forms do nothing.
    let r = browser()
        .post(app.url("/admin/clients"))
        .form(&[
            ("csrf", "x"),
            ("name", "Evil"),
            ("redirect_uri", "https://evil.example/cb"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = b
        .post(app.url("/admin/login"))
        .form(&[("token", "admin-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/admin");
    let page = b
        .get(app.url("/admin"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let m = "name=\"csrf\" value=\"";
    let s = page.find(m).unwrap() + m.len();
    let csrf = page[s..s + page[s..].find('"').unwrap()].to_string();
    let r = b
        .post(app.url("/admin/clients"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", "Shop"),
            ("redirect_uri", "https://shop.example/cb"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let page = r.text().await.unwrap();
    assert!(page.contains("client_secret") && page.contains("Shop"), "{page}");
    let clients = app.state.store.clients().await.unwrap();
    assert_eq!(clients.len(), 1);
    let bad = b
        .post(app.url("/admin/clients"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", "Bad"),
            ("redirect_uri", "http://plain.example/cb"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        bad.status().as_u16(),
        400,
        "invalid metadata is explained, not stored"
    );
    let r = b
        .post(app.url("/admin/clients/delete"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("client_id", clients[0].client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(app.state.store.clients().await.unwrap().is_empty());
}

#[tokio::test]
async fn pairwise_clients_get_their_own_stable_subject() {
    let app = spawn_app().await;
    let user = app.add_user("alice").await;
    let mut subs = Vec::new();
    for host in [
        "http://localhost:9/cb",
        "http://127.0.0.1:9/cb",
        "http://localhost:9/cb",
    ] {
        let (id, secret) = app
            .add_client(ClientMetadata {
                redirect_uris: vec![host.into()],
                subject_type: Some("pairwise".into()),
                ..Default::default()
            })
            .await;
        let url = format!(
            "{}/authorize?client_id={id}&redirect_uri={}&response_type=code&scope=openid&state=s",
            app.issuer,
            enc(host)
        );
        let back = sign_in(&browser(), &app, &url, "alice").await;
        let code = params(&back, false)["code"].clone();
        let http = reqwest::Client::new();
        let t: Value = http
            .post(app.url("/token"))
            .basic_auth(&id, secret.as_deref())
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", host),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let sub = verify_id_token(&app, t["id_token"].as_str().unwrap(), &id).await["sub"]
            .as_str()
            .unwrap()
            .to_string();
        let info: Value = http
            .get(app.url("/userinfo"))
            .bearer_auth(t["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(info["sub"], sub, "userinfo and ID token agree");
        assert_ne!(sub, user, "the account id is not revealed");
        subs.push(sub);
    }
    assert_ne!(subs[0], subs[1], "different sectors see different subjects");
    assert_eq!(subs[0], subs[2], "the same sector sees the same subject");
    let bad = ClientMetadata {
        redirect_uris: vec!["https://a.example/cb".into(), "https://b.example/cb".into()],
        subject_type: Some("pairwise".into()),
        ..Default::default()
    };
    assert!(bad.validate().is_err(), "one sector per pairwise client");
}
