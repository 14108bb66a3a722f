//! Issue 13: client authentication by either secret method, and the holes found in review, each
//! written as the attacker's (or the confused user's) test.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use common::{TestApp, browser, location, params, sign_in, spawn_app, spawn_with};
use facegate_oidc::client::ClientMetadata;
use serde_json::Value;

const REDIRECT: &str = "http://localhost:9/cb";

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn auth_url(app: &TestApp, client_id: &str, scope: &str) -> String {
    format!(
        "{}/authorize?client_id={client_id}&redirect_uri={}&response_type=code&scope={}&state=st",
        app.issuer,
        enc(REDIRECT),
        enc(scope)
    )
}

async fn post(app: &TestApp, path: &str, basic: Option<(&str, &str)>, form: &[(&str, &str)]) -> (u16, Value) {
    let mut rb = reqwest::Client::new().post(app.url(path)).form(form);
    if let Some((id, secret)) = basic {
        rb = rb.basic_auth(id, Some(secret));
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Signs in as alice through `b` and exchanges the code: the token response.
async fn tokens_via(app: &TestApp, b: &reqwest::Client, id: &str, secret: &str, scope: &str) -> Value {
    let back = sign_in(b, app, &auth_url(app, id, scope), "alice").await;
    let code = params(&back, false).remove("code").unwrap();
    let (status, t) = post(
        app,
        "/token",
        Some((id, secret)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(status, 200, "{t}");
    t
}

async fn introspect(app: &TestApp, caller: (&str, &str), token: &str) -> Value {
    post(app, "/introspect", Some(caller), &[("token", token)])
        .await
        .1
}

async fn refresh(app: &TestApp, id: &str, secret: &str, rt: &str, scope: Option<&str>) -> (u16, Value) {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", rt)];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    post(app, "/token", Some((id, secret)), &form).await
}

// ---------------------------------------------------------------- client authentication

#[tokio::test]
async fn a_secret_client_may_use_basic_or_post_but_one_per_request() {
    let app = spawn_app().await;
    for registered in ["client_secret_basic", "client_secret_post"] {
        let (id, secret) = app
            .add_client(ClientMetadata {
                grant_types: Some(vec!["client_credentials".into()]),
                token_endpoint_auth_method: Some(registered.into()),
                scope: Some("openid".into()),
                ..Default::default()
            })
            .await;
        let secret = secret.unwrap();
        let cc = [("grant_type", "client_credentials")];
        let (status, body) = post(&app, "/token", Some((&id, &secret)), &cc).await;
        assert_eq!(status, 200, "{registered} client, basic: {body}");
        let (status, body) = post(
            &app,
            "/token",
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
            ],
        )
        .await;
        assert_eq!(status, 200, "{registered} client, post: {body}");
        let (status, body) = post(
            &app,
            "/token",
            Some((&id, &secret)),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
            ],
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_request")),
            "both at once"
        );
        let (status, body) = post(
            &app,
            "/token",
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", "wrong"),
            ],
        )
        .await;
        assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
        let (status, _) = post(
            &app,
            "/token",
            None,
            &[("grant_type", "client_credentials"), ("client_id", &id)],
        )
        .await;
        assert_eq!(status, 401, "a secret client cannot pass as public");
    }
}

#[tokio::test]
async fn discovery_advertises_exactly_the_accepted_methods_and_algorithms() {
    let app = spawn_app().await;
    let d: Value = reqwest::get(app.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names = |k: &str| -> Vec<String> {
        d[k].as_array()
            .unwrap_or_else(|| panic!("{k} missing"))
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let accepted: Vec<String> = facegate_oidc::client_auth::ASSERTION_ALGS
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    assert_eq!(
        names("token_endpoint_auth_signing_alg_values_supported"),
        accepted
    );
    assert_eq!(
        names("token_endpoint_auth_methods_supported"),
        [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "none"
        ]
    );
}

// ---------------------------------------------------------------- dynamic registration

async fn register(app: &TestApp, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(app.url("/register"))
        .bearer_auth("initial-token")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn dynamic_registration_cannot_claim_what_only_an_administrator_grants() {
    let app = spawn_app().await;
    let attempts = [
        (
            "skip_consent",
            serde_json::json!({"redirect_uris": [REDIRECT], "skip_consent": true}),
        ),
        (
            "face API scope",
            serde_json::json!({"redirect_uris": [REDIRECT], "scope": "openid faces:read"}),
        ),
        (
            "face API client",
            serde_json::json!({"grant_types": ["client_credentials"], "scope": "faces:write liveness"}),
        ),
        (
            "face API by default",
            serde_json::json!({"grant_types": ["client_credentials"]}),
        ),
        (
            "resource server",
            serde_json::json!({"redirect_uris": [REDIRECT], "resource_server": true}),
        ),
    ];
    for (name, body) in attempts {
        let (status, answer) = register(&app, body.clone()).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (400, Some("invalid_client_metadata")),
            "{name}: {answer}"
        );
        // The admin API may.
        let r = reqwest::Client::new()
            .post(app.url("/admin/api/clients"))
            .bearer_auth("admin-token")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201, "{name} through the admin API");
    }
    let (status, _) = register(&app, serde_json::json!({"redirect_uris": [REDIRECT]})).await;
    assert_eq!(status, 201, "an ordinary registration still works");
}

#[tokio::test]
async fn errors_for_dynamically_registered_clients_are_pages_not_redirects() {
    let app = spawn_app().await;
    // The attacker registers their own redirect URI and sends people a link with a bad request:
    // an error redirect would make facegate an open redirector.
    let (status, c) = register(
        &app,
        serde_json::json!({"redirect_uris": ["https://evil.example/landing"]}),
    )
    .await;
    assert_eq!(status, 201);
    let id = c["client_id"].as_str().unwrap();
    for (name, query) in [
        ("unknown scope", "response_type=code&scope=bogus"),
        ("unsupported response_type", "response_type=token&scope=openid"),
        (
            "prompt=none without a session",
            "response_type=code&scope=openid&prompt=none",
        ),
    ] {
        let url = format!(
            "{}/authorize?client_id={id}&redirect_uri={}&{query}&state=s",
            app.issuer,
            enc("https://evil.example/landing")
        );
        let r = browser().get(&url).send().await.unwrap();
        assert!(location(&r).is_empty(), "{name}: redirected to {}", location(&r));
        assert_eq!(r.status().as_u16(), 400, "{name}");
        assert!(r.text().await.unwrap().contains("Cannot continue"), "{name}");
    }
    // An administrator's client still gets its errors at its redirect URI.
    let (admin_id, _) = app.confidential_client(REDIRECT).await;
    let r = browser()
        .get(format!(
            "{}/authorize?client_id={admin_id}&redirect_uri={}&response_type=code&scope=bogus&state=s",
            app.issuer,
            enc(REDIRECT)
        ))
        .send()
        .await
        .unwrap();
    assert!(location(&r).starts_with(REDIRECT), "{}", location(&r));
}

// ---------------------------------------------------------------- introspection

#[tokio::test]
async fn introspection_answers_only_the_tokens_own_client_or_a_resource_server() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let (id, secret) = app.confidential_client(REDIRECT).await;
    let t = tokens_via(&app, &browser(), &id, &secret, "openid offline_access").await;
    let access = t["access_token"].as_str().unwrap();
    let refresh_token = t["refresh_token"].as_str().unwrap();

    let (other, other_secret) = app.confidential_client(REDIRECT).await;
    let (rs, rs_secret) = app
        .add_client(ClientMetadata {
            grant_types: Some(vec!["client_credentials".into()]),
            scope: Some("openid".into()),
            resource_server: true,
            ..Default::default()
        })
        .await;
    let rs_secret = rs_secret.unwrap();
    for token in [access, refresh_token] {
        assert_eq!(
            introspect(&app, (&id, &secret), token).await["active"],
            true,
            "own client"
        );
        let peek = introspect(&app, (&other, &other_secret), token).await;
        assert_eq!(
            peek,
            serde_json::json!({"active": false}),
            "another client learns nothing"
        );
        let rs_view = introspect(&app, (&rs, &rs_secret), token).await;
        assert_eq!(rs_view["active"], true, "a resource server sees it");
        assert_eq!(rs_view["client_id"], id.as_str());
    }
}

// ---------------------------------------------------------------- refresh

#[tokio::test]
async fn a_refused_scope_does_not_burn_the_refresh_token_and_a_narrowed_scope_sticks() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let (id, secret) = app.confidential_client(REDIRECT).await;
    let t = tokens_via(&app, &browser(), &id, &secret, "openid email offline_access").await;
    let rt = t["refresh_token"].as_str().unwrap().to_string();

    // Asking for more than was granted is refused, and the token still works afterwards.
    let (status, body) = refresh(
        &app,
        &id,
        &secret,
        &rt,
        Some("openid email profile offline_access"),
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_scope")));
    let (status, body) = refresh(&app, &id, &secret, &rt, Some("openid offline_access")).await;
    assert_eq!(
        status, 200,
        "the refused request did not use the token up: {body}"
    );
    assert_eq!(body["scope"], "offline_access openid");

    // Narrowed: email is gone for good, with or without a scope parameter.
    let rt2 = body["refresh_token"].as_str().unwrap().to_string();
    let (status, body) = refresh(&app, &id, &secret, &rt2, Some("openid email offline_access")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope")),
        "cannot widen back"
    );
    let (status, body) = refresh(&app, &id, &secret, &rt2, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["scope"], "offline_access openid",
        "no scope = the narrowed scope"
    );
    let intro = introspect(&app, (&id, &secret), body["access_token"].as_str().unwrap()).await;
    assert_eq!(intro["scope"], "offline_access openid");
}

#[tokio::test]
async fn refresh_tokens_have_an_absolute_lifetime() {
    let app = spawn_with(|s| s.lifetimes.refresh_token_absolute = 3).await;
    app.add_user("alice").await;
    let (id, secret) = app.confidential_client(REDIRECT).await;
    let t = tokens_via(&app, &browser(), &id, &secret, "openid offline_access").await;
    let rt = t["refresh_token"].as_str().unwrap().to_string();
    let (status, body) = refresh(&app, &id, &secret, &rt, None).await;
    assert_eq!(status, 200, "{body}");
    let rt = body["refresh_token"].as_str().unwrap().to_string();
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    // Each refresh renewed the sliding lifetime (30 days), but the authorization is too old.
    let (status, body) = refresh(&app, &id, &secret, &rt, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
}

// ---------------------------------------------------------------- code replay

#[tokio::test]
async fn a_code_replayed_after_it_expired_still_revokes_its_tokens() {
    let app = spawn_with(|s| s.lifetimes.code = 1).await;
    app.add_user("alice").await;
    let (id, secret) = app.confidential_client(REDIRECT).await;
    let back = sign_in(
        &browser(),
        &app,
        &auth_url(&app, &id, "openid offline_access"),
        "alice",
    )
    .await;
    let code = params(&back, false).remove("code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
    ];
    let (status, t) = post(&app, "/token", Some((&id, &secret)), &form).await;
    assert_eq!(status, 200, "{t}");
    let access = t["access_token"].as_str().unwrap();
    // Long after the code's own minute (here: second), and after housekeeping ran.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    app.state
        .store
        .purge_expired(facegate_server::server::now())
        .await
        .unwrap();
    let (status, body) = post(&app, "/token", Some((&id, &secret)), &form).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(
        introspect(&app, (&id, &secret), access).await["active"],
        false,
        "the replay revoked the access token"
    );
    let (status, _) = refresh(&app, &id, &secret, t["refresh_token"].as_str().unwrap(), None).await;
    assert_eq!(status, 400, "and the refresh token");
}

// ---------------------------------------------------------------- logout

async fn signed_in(app: &TestApp, id: &str, secret: &str) -> (reqwest::Client, Value) {
    let b = browser();
    let t = tokens_via(app, &b, id, secret, "openid offline_access").await;
    (b, t)
}

async fn still_signed_in(app: &TestApp, b: &reqwest::Client, id: &str) -> bool {
    let r = b.get(auth_url(app, id, "openid")).send().await.unwrap();
    location(&r).starts_with(REDIRECT)
}

#[tokio::test]
async fn logout_without_a_valid_hint_asks_first() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let (id, secret) = app.confidential_client(REDIRECT).await;
    let (b, t) = signed_in(&app, &id, &secret).await;
    // A link on any site (or an <img>) must not sign the person out.
    let after = "http://localhost:9/after-logout";
    let url = format!(
        "{}/logout?client_id={id}&post_logout_redirect_uri={}&state=bye",
        app.issuer,
        enc(after)
    );
    for bad_hint in ["", "&id_token_hint=not.a.jwt"] {
        let r = b.get(format!("{url}{bad_hint}")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert!(location(&r).is_empty());
        let page = r.text().await.unwrap();
        assert!(page.contains("Sign out of facegate?"), "{page}");
        assert!(
            still_signed_in(&app, &b, &id).await,
            "still signed in ({bad_hint:?})"
        );
    }
    // A cross-site POST without our form's CSRF token only gets the question too.
    let r = b
        .post(app.url("/logout"))
        .form(&[("confirm", "1"), ("client_id", id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(still_signed_in(&app, &b, &id).await);
    // Confirming signs out and returns to the client with its state.
    let page = b.get(&url).send().await.unwrap().text().await.unwrap();
    let form = [
        ("csrf", common::field(&page, "csrf")),
        ("confirm", "1".into()),
        ("client_id", common::field(&page, "client_id")),
        (
            "post_logout_redirect_uri",
            common::field(&page, "post_logout_redirect_uri"),
        ),
        ("state", common::field(&page, "state")),
    ];
    let r = b.post(app.url("/logout")).form(&form).send().await.unwrap();
    assert_eq!(location(&r), format!("{after}?state=bye"));
    assert!(!still_signed_in(&app, &b, &id).await, "signed out");
    // And the refresh tokens of that session stopped working.
    let (status, body) = refresh(&app, &id, &secret, t["refresh_token"].as_str().unwrap(), None).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn a_hint_for_someone_else_does_not_sign_this_person_out() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    app.add_user("mallory").await;
    let (id, secret) = app.confidential_client(REDIRECT).await;
    let (alice, _) = signed_in(&app, &id, &secret).await;
    // Mallory's own (genuine) ID token, used against Alice's session.
    let m = browser();
    let back = sign_in(&m, &app, &auth_url(&app, &id, "openid"), "mallory").await;
    let code = params(&back, false).remove("code").unwrap();
    let (_, mt) = post(
        &app,
        "/token",
        Some((&id, &secret)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    let hint = mt["id_token"].as_str().unwrap();
    let r = alice
        .get(format!("{}/logout?id_token_hint={hint}", app.issuer))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(
        still_signed_in(&app, &alice, &id).await,
        "alice is still signed in"
    );
    // Her own hint signs her out at once.
    let (_, at) = {
        let back = sign_in(&alice, &app, &auth_url(&app, &id, "openid"), "alice").await;
        let code = params(&back, false).remove("code").unwrap();
        post(
            &app,
            "/token",
            Some((&id, &secret)),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await
    };
    let r = alice
        .get(format!(
            "{}/logout?id_token_hint={}",
            app.issuer,
            at["id_token"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(!still_signed_in(&app, &alice, &id).await);
}

#[tokio::test]
async fn logout_can_leave_refresh_tokens_alone_when_configured() {
    let app = spawn_with(|s| s.logout_revokes_refresh = false).await;
    app.add_user("alice").await;
    let (id, secret) = app.confidential_client(REDIRECT).await;
    let (b, t) = signed_in(&app, &id, &secret).await;
    let r = b
        .get(format!(
            "{}/logout?id_token_hint={}",
            app.issuer,
            t["id_token"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (status, body) = refresh(&app, &id, &secret, t["refresh_token"].as_str().unwrap(), None).await;
    assert_eq!(status, 200, "{body}");
}

// ---------------------------------------------------------------- CSRF and headers

#[tokio::test]
async fn csrf_checks_compare_exact_origins() {
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
    let csrf = common::field(&page, "csrf");
    // http://127.0.0.1:4 is a prefix of http://127.0.0.1:43210 but another origin.
    let prefix = &app.issuer[..app.issuer.len() - 1];
    for origin in [prefix, "null", "http://127.0.0.1"] {
        let r = b
            .post(app.url("/login"))
            .header("origin", origin)
            .form(&[
                ("csrf", csrf.as_str()),
                ("req", ""),
                ("username", "alice"),
                ("password", common::PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 403, "Origin {origin}");
    }
    let r = b
        .post(app.url("/login"))
        .header("origin", &app.issuer)
        .form(&[
            ("csrf", csrf.as_str()),
            ("req", ""),
            ("username", "alice"),
            ("password", common::PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "our own origin: {}", r.status());
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app().await;
    let c = reqwest::Client::new();
    let responses = [
        (
            "discovery",
            c.get(app.url("/.well-known/openid-configuration"))
                .send()
                .await
                .unwrap(),
        ),
        ("jwks", c.get(app.url("/jwks.json")).send().await.unwrap()),
        ("login page", c.get(app.url("/login")).send().await.unwrap()),
        ("error page", c.get(app.url("/authorize")).send().await.unwrap()),
        (
            "token error",
            c.post(app.url("/token"))
                .form(&[("grant_type", "x")])
                .send()
                .await
                .unwrap(),
        ),
        ("not found", c.get(app.url("/no-such-page")).send().await.unwrap()),
    ];
    for (name, r) in &responses {
        let h = r.headers();
        let get = |k: &str| {
            h.get(k)
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default()
        };
        assert_eq!(get("x-content-type-options"), "nosniff", "{name}");
        assert_eq!(get("referrer-policy"), "same-origin", "{name}");
        assert!(
            get("content-security-policy").contains("frame-ancestors 'none'"),
            "{name}"
        );
        assert!(
            h.get("strict-transport-security").is_none(),
            "{name}: no HSTS over http"
        );
    }
    // Behind https (the issuer says so), HSTS too.
    let app = spawn_with(|s| s.issuer = "https://id.example".into()).await;
    // (app.issuer is the address it listens on; the issuer it announces is https.)
    let r = c
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()
            .get("strict-transport-security")
            .is_some_and(|v| v.to_str().unwrap().starts_with("max-age=")),
        "HSTS"
    );
}

// ---------------------------------------------------------------- consent

#[tokio::test]
async fn the_consent_page_lists_every_scope_granted() {
    let app = spawn_app().await;
    app.add_user("alice").await;
    let (id, _) = app
        .add_client(ClientMetadata {
            redirect_uris: vec![REDIRECT.into()],
            scope: Some("openid email faces:read faces:write liveness".into()),
            ..Default::default()
        })
        .await;
    let b = browser();
    common::face::password_login(&b, &app, "alice").await;
    let r = b
        .get(auth_url(
            &app,
            &id,
            "openid email faces:read faces:write liveness",
        ))
        .send()
        .await
        .unwrap();
    let consent = location(&r);
    assert!(consent.starts_with("/consent"), "{consent}");
    let page = b
        .get(app.url(&consent))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let items = page.matches("<li>").count();
    assert_eq!(items, 5, "one line per scope:\n{page}");
    for words in [
        "email address",
        "Read the face collections",
        "Add and remove faces",
        "liveness checks",
    ] {
        assert!(page.contains(words), "{words}:\n{page}");
    }
}

// ---------------------------------------------------------------- clients removed elsewhere

#[tokio::test]
async fn a_client_removed_by_another_process_gets_no_more_tokens() {
    let app = spawn_app().await;
    let (id, secret) = app
        .add_client(ClientMetadata {
            grant_types: Some(vec!["client_credentials".into()]),
            scope: Some("openid".into()),
            ..Default::default()
        })
        .await;
    let secret = secret.unwrap();
    let cc = [("grant_type", "client_credentials")];
    let (status, _) = post(&app, "/token", Some((&id, &secret)), &cc).await;
    assert_eq!(status, 200, "works (and the server now has the client cached)");
    // `facegate client remove` runs in its own process, with its own connection to the database.
    let cli = facegate_store::Store::open(&app.state.settings.database_url)
        .await
        .unwrap();
    assert!(cli.delete_client(&id).await.unwrap());
    let (status, body) = post(&app, "/token", Some((&id, &secret)), &cc).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{body}"
    );
}
