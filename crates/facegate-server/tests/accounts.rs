//! Issue 15, black-box: sign-up, confirmation by email, password reset, change of address, account
//! deletion, the admin page's users and audit log, and mail through a real SMTP conversation. Every
//! link is read from the mail the server wrote (the outbox) or sent (the SMTP sink), as a person would.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::time::Duration;

use common::{PASSWORD, TestApp, browser, location, params, spawn_with};
use facegate_server::server::settings::SignupMode;
use serde_json::Value;

const REDIRECT: &str = "http://localhost:9/cb";
const NEW_PASSWORD: &str = "a quiet lantern by the river";

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

async fn open_signup() -> TestApp {
    spawn_with(|s| s.accounts.signup = SignupMode::Open).await
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field in page:\n{html}"))
        + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_string()
}

/// The mails in the outbox, oldest first.
fn outbox(app: &TestApp) -> Vec<String> {
    let dir = app.state.settings.data_dir.join("outbox");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

/// Waits (mail goes out in the background) until the outbox holds `n` mails.
async fn wait_for_mails(app: &TestApp, n: usize) -> Vec<String> {
    for _ in 0..100 {
        let m = outbox(app);
        if m.len() >= n {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("expected {n} mails, found {}", outbox(app).len());
}

/// Undoes quoted-printable soft line breaks and `=3D`, as a mail reader would.
fn decoded(mail: &str) -> String {
    mail.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=")
}

/// The first link to `path` in a mail.
fn link_in(mail: &str, issuer: &str, path: &str) -> String {
    let text = decoded(mail);
    let start = text
        .find(&format!("{issuer}{path}?token="))
        .unwrap_or_else(|| panic!("no {path} link in mail:\n{text}"));
    let rest = &text[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || "-_:/.?=&%".contains(c)))
        .unwrap_or(rest.len());
    rest[..end].to_string()
}

fn recipient(mail: &str) -> String {
    mail.lines()
        .find(|l| l.to_ascii_lowercase().starts_with("to:"))
        .unwrap_or("")
        .to_string()
}

async fn page(b: &reqwest::Client, url: &str) -> (u16, String) {
    let r = b.get(url).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Fills in the form of the page at `form_page` (its csrf and hidden fields carried over) and posts
/// it to `action`.
async fn submit(
    b: &reqwest::Client,
    app: &TestApp,
    form_page: &str,
    action: &str,
    hidden_fields: &[&str],
    fields: &[(&str, &str)],
) -> (u16, String, String) {
    let (_, html) = page(b, &app.url(form_page)).await;
    let mut form: Vec<(String, String)> = vec![("csrf".into(), hidden(&html, "csrf"))];
    for h in hidden_fields {
        form.push((h.to_string(), hidden(&html, h)));
    }
    for (k, v) in fields {
        form.push((k.to_string(), v.to_string()));
    }
    let r = b.post(app.url(action)).form(&form).send().await.unwrap();
    let status = r.status().as_u16();
    let loc = location(&r);
    (status, loc, r.text().await.unwrap())
}

async fn sign_up(
    b: &reqwest::Client,
    app: &TestApp,
    username: &str,
    email: &str,
    password: &str,
) -> (u16, String) {
    let (status, _, body) = submit(
        b,
        app,
        "/signup",
        "/signup",
        &[],
        &[("username", username), ("email", email), ("password", password)],
    )
    .await;
    (status, body)
}

/// A password sign-in to the account pages; returns the redirect's target (or "" when refused).
async fn password_login(b: &reqwest::Client, app: &TestApp, username: &str, password: &str) -> (u16, String) {
    let (status, loc, _) = submit(
        b,
        app,
        "/login",
        "/login",
        &[],
        &[("username", username), ("password", password)],
    )
    .await;
    (status, loc)
}

/// Goes through an authorization request as `username` / `password`, allowing consent. Returns the
/// redirect to the client, or the status and page where it stopped.
async fn authorize(
    b: &reqwest::Client,
    app: &TestApp,
    client_id: &str,
    scope: &str,
    username: &str,
    password: &str,
) -> Result<String, (u16, String)> {
    let mut next = auth_url(app, client_id, scope);
    for _ in 0..10 {
        let url = if next.starts_with('/') {
            app.url(&next)
        } else {
            next.clone()
        };
        if !url.starts_with(&app.issuer) {
            return Ok(url);
        }
        let r = b.get(&url).send().await.unwrap();
        if r.status().is_redirection() {
            next = location(&r);
            continue;
        }
        let status = r.status().as_u16();
        let html = r.text().await.unwrap();
        if url.contains("/login") && status == 200 {
            let form = [
                ("csrf", hidden(&html, "csrf")),
                ("req", hidden(&html, "req")),
                ("username", username.into()),
                ("password", password.into()),
            ];
            let r = b.post(app.url("/login")).form(&form).send().await.unwrap();
            if !r.status().is_redirection() {
                let s = r.status().as_u16();
                return Err((s, r.text().await.unwrap()));
            }
            next = location(&r);
        } else if url.contains("/consent") && status == 200 {
            let form = [
                ("csrf", hidden(&html, "csrf")),
                ("req", hidden(&html, "req")),
                ("decision", "allow".into()),
            ];
            let r = b.post(app.url("/consent")).form(&form).send().await.unwrap();
            next = location(&r);
        } else {
            return Err((status, html));
        }
    }
    panic!("too many redirects")
}

async fn token(app: &TestApp, id: &str, secret: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth(id, Some(secret))
        .form(form)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn code_for_tokens(app: &TestApp, id: &str, secret: &str, back: &str) -> Value {
    let code = params(back, false)
        .remove("code")
        .unwrap_or_else(|| panic!("no code in {back}"));
    let (status, t) = token(
        app,
        id,
        secret,
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

#[tokio::test]
async fn sign_up_then_confirm_from_the_mail_then_sign_in_to_a_relying_party() {
    let app = open_signup().await;
    let (client, secret) = app.confidential_client(REDIRECT).await;
    let b = browser();
    let (status, body) = sign_up(&b, &app, "Dana", "dana@example.com", NEW_PASSWORD).await;
    assert_eq!(status, 201, "{body}");
    assert!(body.contains("Check your mail"), "{body}");

    let mails = wait_for_mails(&app, 1).await;
    assert!(recipient(&mails[0]).contains("dana@example.com"), "{}", mails[0]);
    assert!(mails[0].contains("multipart/alternative"), "text and HTML");
    let verify = link_in(&mails[0], &app.issuer, "/account/verify");

    // Before confirming: the relying party does not get the person.
    let refused = authorize(&b, &app, &client, "openid email", "dana", NEW_PASSWORD).await;
    let (status, html) = refused.expect_err("an unconfirmed account reached the client");
    assert_eq!(status, 403);
    assert!(html.contains("confirm your email address"), "{html}");

    // The link: a page with a button (a mail scanner following the link spends nothing).
    let (status, html) = page(&b, &verify).await;
    assert_eq!(status, 200, "{html}");
    let token_value = hidden(&html, "token");
    let form = [("csrf", hidden(&html, "csrf")), ("token", token_value.clone())];
    let r = b
        .post(app.url("/account/verify"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().await.unwrap().contains("Address confirmed"));
    // Used once: a second use is refused.
    let r = b
        .post(app.url("/account/verify"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let (status, _) = page(&b, &verify).await;
    assert_eq!(status, 400, "a used link's page says so");

    // Now the sign-in reaches the client, and the ID token says the address is verified.
    let back = authorize(&b, &app, &client, "openid email", "dana", NEW_PASSWORD)
        .await
        .unwrap_or_else(|(s, h)| panic!("{s}: {h}"));
    let t = code_for_tokens(&app, &client, &secret, &back).await;
    let userinfo: Value = reqwest::Client::new()
        .get(app.url("/userinfo"))
        .bearer_auth(t["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(userinfo["email"], "dana@example.com");
    assert_eq!(userinfo["email_verified"], true);
}

#[tokio::test]
async fn sign_up_refuses_common_passwords_taken_names_and_is_off_by_default() {
    let app = open_signup().await;
    let b = browser();
    for (pw, why) in [
        ("password1", "most common passwords"),
        ("short", "at least 8"),
        ("erin-is-my-name", "username or email"),
        ("aaaaaaaaaaaa", "repeated"),
    ] {
        let (status, body) = sign_up(&b, &app, "erin", "erin@example.com", pw).await;
        assert_eq!(status, 400, "{pw}");
        assert!(body.contains(why), "{pw}: {body}");
        // The form keeps what was typed, except the password.
        assert!(body.contains("value=\"erin@example.com\""), "{body}");
    }
    assert_eq!(
        sign_up(&b, &app, "erin", "erin@example.com", NEW_PASSWORD)
            .await
            .0,
        201
    );
    let (status, body) = sign_up(&b, &app, "erin", "other@example.com", NEW_PASSWORD).await;
    assert_eq!(status, 409);
    assert!(body.contains("taken"), "{body}");

    // The default: no sign-up page at all.
    let closed = spawn_with(|_| {}).await;
    let (status, _) = page(&browser(), &closed.url("/signup")).await;
    assert_eq!(status, 404);
    let r = browser()
        .post(closed.url("/signup"))
        .form(&[
            ("username", "x"),
            ("email", "x@example.com"),
            ("password", NEW_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "no account was opened");
    assert!(
        closed
            .state
            .store
            .user_with_password("x")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn sign_up_by_invitation_takes_one_account_per_invitation() {
    let app = spawn_with(|s| s.accounts.signup = SignupMode::Invite).await;
    let b = browser();
    assert_eq!(
        page(&b, &app.url("/signup")).await.0,
        404,
        "no invitation, no form"
    );
    let link = facegate_server::server::accounts::invite(&app.state, None)
        .await
        .unwrap();
    let path = link.strip_prefix(&app.issuer).unwrap().to_string();
    let (status, _, body) = submit(
        &b,
        &app,
        &path,
        "/signup",
        &["invite"],
        &[
            ("username", "fay"),
            ("email", "fay@example.com"),
            ("password", NEW_PASSWORD),
        ],
    )
    .await;
    assert_eq!(status, 201, "{body}");
    // The same invitation again: refused (the form is shown from an earlier page).
    let invite = path.split("invite=").nth(1).unwrap();
    let (_, html) = page(&b, &app.url("/login")).await;
    let r = b
        .post(app.url("/signup"))
        .form(&[
            ("csrf", hidden(&html, "csrf").as_str()),
            ("invite", invite),
            ("username", "gus"),
            ("email", "gus@example.com"),
            ("password", NEW_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().await.unwrap().contains("invitation"));
    assert!(app.state.store.user_with_password("gus").await.unwrap().is_none());
}

#[tokio::test]
async fn password_reset_by_mail_ends_the_old_password_and_the_old_refresh_tokens() {
    let app = spawn_with(|_| {}).await;
    app.add_user("alice").await;
    let (client, secret) = app.confidential_client(REDIRECT).await;
    let b = browser();
    let back = authorize(&b, &app, &client, "openid offline_access", "alice", PASSWORD)
        .await
        .unwrap_or_else(|(s, h)| panic!("{s}: {h}"));
    let t = code_for_tokens(&app, &client, &secret, &back).await;
    let refresh = t["refresh_token"].as_str().expect("a refresh token").to_string();

    // A known and an unknown address get the same answer.
    let anon = browser();
    let known = submit(
        &anon,
        &app,
        "/password/forgot",
        "/password/forgot",
        &[],
        &[("email", "ALICE@example.com")],
    )
    .await;
    let unknown = submit(
        &anon,
        &app,
        "/password/forgot",
        "/password/forgot",
        &[],
        &[("email", "nobody@example.com")],
    )
    .await;
    assert_eq!(known.0, 200);
    assert_eq!((known.0, &known.2), (unknown.0, &unknown.2), "the answers differ");
    let mails = wait_for_mails(&app, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(outbox(&app).len(), 1, "one mail, to the known address only");
    assert!(recipient(&mails[0]).contains("alice@example.com"));
    let reset = link_in(&mails[0], &app.issuer, "/password/reset");
    let path = reset.strip_prefix(&app.issuer).unwrap().to_string();

    // A weak new password is refused and does not spend the link.
    let (status, _, body) = submit(
        &anon,
        &app,
        &path,
        "/password/reset",
        &["token"],
        &[("password", "iloveyou")],
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("most common"), "{body}");
    let (status, _, body) = submit(
        &anon,
        &app,
        &path,
        "/password/reset",
        &["token"],
        &[("password", NEW_PASSWORD)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Password changed"));
    // The link is used up.
    let (status, html) = page(&anon, &reset).await;
    assert_eq!(status, 400, "{html}");
    let token_value = reset.split("token=").nth(1).unwrap();
    let (_, f) = page(&anon, &app.url("/login")).await;
    let r = anon
        .post(app.url("/password/reset"))
        .form(&[
            ("csrf", hidden(&f, "csrf").as_str()),
            ("token", token_value),
            ("password", "another fine passphrase"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400, "a reused link set a password");

    // The old password is refused, the new one works.
    assert_eq!(password_login(&browser(), &app, "alice", PASSWORD).await.0, 401);
    let (status, loc) = password_login(&browser(), &app, "alice", NEW_PASSWORD).await;
    assert_eq!((status, loc.as_str()), (303, "/account"));
    // The refresh token issued before the reset is dead, and so is the old session.
    let (status, body) = token(
        &app,
        &client,
        &secret,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    let r = b.get(app.url("/account")).send().await.unwrap();
    assert_eq!(
        location(&r),
        "/login",
        "the session from before the reset still works"
    );
    // And the person is told.
    let mails = wait_for_mails(&app, 2).await;
    assert!(
        decoded(&mails[1]).contains("password of your facegate account was reset"),
        "{}",
        mails[1]
    );
}

#[tokio::test]
async fn an_expired_reset_link_is_refused() {
    let app = spawn_with(|_| {}).await;
    let id = app.add_user("bob").await;
    let secret = "expired-link-secret-0123456789abcdef";
    let t = facegate_server::server::now();
    app.state
        .store
        .put_email_link(
            &facegate_core::secret::storage_hash(secret),
            &id,
            "reset",
            Some("bob@example.com"),
            t - 7200,
            t - 3600,
        )
        .await
        .unwrap();
    let b = browser();
    let (status, html) = page(&b, &app.url(&format!("/password/reset?token={secret}"))).await;
    assert_eq!(status, 400);
    assert!(html.contains("not valid"), "{html}");
    let (_, f) = page(&b, &app.url("/login")).await;
    let r = b
        .post(app.url("/password/reset"))
        .form(&[
            ("csrf", hidden(&f, "csrf").as_str()),
            ("token", secret),
            ("password", NEW_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(password_login(&browser(), &app, "bob", NEW_PASSWORD).await.0, 401);
    assert_eq!(password_login(&browser(), &app, "bob", PASSWORD).await.0, 303);
}

#[tokio::test]
async fn changing_the_address_confirms_the_new_one_and_tells_the_old_one() {
    let app = spawn_with(|_| {}).await;
    let id = app.add_user("carol").await;
    let b = browser();
    assert_eq!(password_login(&b, &app, "carol", PASSWORD).await.0, 303);
    let (status, loc, _) = submit(
        &b,
        &app,
        "/account",
        "/account/email",
        &[],
        &[("email", "carol.new@example.org")],
    )
    .await;
    assert_eq!((status, loc.as_str()), (303, "/account?notice=email_sent"));
    let mails = wait_for_mails(&app, 1).await;
    assert!(recipient(&mails[0]).contains("carol.new@example.org"));
    let u = app.state.store.user(&id).await.unwrap().unwrap();
    assert_eq!(
        u.email.unwrap().as_str(),
        "carol@example.com",
        "changed before it was confirmed"
    );

    let link = link_in(&mails[0], &app.issuer, "/account/verify");
    let (_, html) = page(&b, &link).await;
    let r = b
        .post(app.url("/account/verify"))
        .form(&[("csrf", hidden(&html, "csrf")), ("token", hidden(&html, "token"))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let u = app.state.store.user(&id).await.unwrap().unwrap();
    assert_eq!(u.email.unwrap().as_str(), "carol.new@example.org");
    assert!(u.email_verified);
    let mails = wait_for_mails(&app, 2).await;
    assert!(
        recipient(&mails[1]).contains("carol@example.com"),
        "the old address is told"
    );
    assert!(decoded(&mails[1]).contains("c***@example.org"), "{}", mails[1]);

    // A password change needs the current password, and keeps this session.
    let (status, _, body) = submit(
        &b,
        &app,
        "/account",
        "/account/password",
        &[],
        &[("current", "wrong"), ("new", NEW_PASSWORD)],
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("current password is not right"), "{body}");
    let (status, loc, _) = submit(
        &b,
        &app,
        "/account",
        "/account/password",
        &[],
        &[("current", PASSWORD), ("new", NEW_PASSWORD)],
    )
    .await;
    assert_eq!((status, loc.as_str()), (303, "/account?notice=password_changed"));
    assert_eq!(
        password_login(&browser(), &app, "carol", NEW_PASSWORD).await.0,
        303
    );
}

#[tokio::test]
async fn the_account_page_ends_other_sessions_and_revokes_an_application() {
    let app = spawn_with(|_| {}).await;
    app.add_user("dave").await;
    let (client, secret) = app.confidential_client(REDIRECT).await;
    let laptop = browser();
    let phone = browser();
    let back = authorize(&phone, &app, &client, "openid offline_access", "dave", PASSWORD)
        .await
        .unwrap();
    let t = code_for_tokens(&app, &client, &secret, &back).await;
    assert_eq!(password_login(&laptop, &app, "dave", PASSWORD).await.0, 303);
    let (_, html) = page(&laptop, &app.url("/account")).await;
    assert!(
        html.contains("Test RP"),
        "connected applications list the client: {html}"
    );
    assert!(html.contains("This browser"));

    let (status, _, _) = submit(
        &laptop,
        &app,
        "/account",
        "/account/sessions/end-others",
        &[],
        &[],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(
        location(&phone.get(app.url("/account")).send().await.unwrap()),
        "/login",
        "the phone is signed out"
    );
    assert_eq!(
        page(&laptop, &app.url("/account")).await.0,
        200,
        "this browser stays"
    );

    let (status, _, _) = submit(
        &laptop,
        &app,
        "/account",
        "/account/apps/revoke",
        &[],
        &[("client_id", &client)],
    )
    .await;
    assert_eq!(status, 303);
    let (status, body) = token(
        &app,
        &client,
        &secret,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(
        status, 400,
        "the revoked application's refresh token still works: {body}"
    );
    let (_, html) = page(&laptop, &app.url("/account")).await;
    assert!(!html.contains("Test RP"), "{html}");
}

#[tokio::test]
async fn a_deleted_account_cannot_sign_in_and_its_audit_stays() {
    let app = spawn_with(|_| {}).await;
    let id = app.add_user("erin").await;
    let (client, secret) = app.confidential_client(REDIRECT).await;
    let b = browser();
    let back = authorize(&b, &app, &client, "openid offline_access", "erin", PASSWORD)
        .await
        .unwrap();
    let t = code_for_tokens(&app, &client, &secret, &back).await;
    // A wrong confirmation deletes nothing.
    let (status, _, _) = submit(
        &b,
        &app,
        "/account",
        "/account/delete",
        &[],
        &[("confirm", "someone")],
    )
    .await;
    assert_eq!(status, 400);
    let (status, _, body) = submit(
        &b,
        &app,
        "/account",
        "/account/delete",
        &[],
        &[("confirm", "erin")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Account deleted"));
    assert!(app.state.store.user(&id).await.unwrap().is_none());
    assert_eq!(password_login(&browser(), &app, "erin", PASSWORD).await.0, 401);
    let (status, _) = token(
        &app,
        &client,
        &secret,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(status, 400);
    let r = reqwest::Client::new()
        .get(app.url("/userinfo"))
        .bearer_auth(t["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        401,
        "the deleted account's access token still works"
    );
    let events = app
        .state
        .store
        .audit_search(&facegate_store::AuditFilter {
            user: Some(id.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(events.iter().any(|e| e.kind == "account_deleted"), "{events:?}");
    assert!(
        events.iter().any(|e| e.kind == "login"),
        "earlier events are kept"
    );
}

async fn admin_browser(app: &TestApp) -> reqwest::Client {
    let b = browser();
    let r = b
        .post(app.url("/admin/login"))
        .form(&[("token", "admin-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    b
}

#[tokio::test]
async fn an_admin_disables_a_user_whose_next_sign_in_is_refused_clearly() {
    let app = spawn_with(|_| {}).await;
    let id = app.add_user("frank").await;
    app.add_user("grace").await;
    let person = browser();
    assert_eq!(password_login(&person, &app, "frank", PASSWORD).await.0, 303);

    let admin = admin_browser(&app).await;
    let (status, html) = page(&admin, &app.url("/admin/users?q=fra")).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("frank") && !html.contains("grace"),
        "search: {html}"
    );
    // Without the admin session nothing happens.
    let r = browser()
        .post(app.url(&format!("/admin/users/{id}/disable")))
        .form(&[("csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let (_, html) = page(&admin, &app.url(&format!("/admin/users/{id}"))).await;
    let r = admin
        .post(app.url(&format!("/admin/users/{id}/disable")))
        .form(&[("csrf", hidden(&html, "csrf"))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);

    assert_eq!(
        location(&person.get(app.url("/account")).send().await.unwrap()),
        "/login",
        "the session ended"
    );
    let (status, loc) = password_login(&browser(), &app, "frank", PASSWORD).await;
    assert_eq!((status, loc.as_str()), (303, "/account/disabled"));
    let (status, html) = page(&browser(), &app.url("/account/disabled")).await;
    assert_eq!(status, 403);
    assert!(html.contains("disabled by the operator"), "{html}");
    // Through a relying party too.
    let (client, _) = app.confidential_client(REDIRECT).await;
    let stopped = authorize(&browser(), &app, &client, "openid", "frank", PASSWORD).await;
    assert!(
        stopped.is_err(),
        "a disabled account reached the client: {stopped:?}"
    );

    // Enabled again, it signs in.
    let (_, html) = page(&admin, &app.url(&format!("/admin/users/{id}"))).await;
    admin
        .post(app.url(&format!("/admin/users/{id}/enable")))
        .form(&[("csrf", hidden(&html, "csrf"))])
        .send()
        .await
        .unwrap();
    assert_eq!(
        password_login(&browser(), &app, "frank", PASSWORD).await.1,
        "/account"
    );

    // Forced reset: the password stops working and a link goes out.
    let (_, html) = page(&admin, &app.url(&format!("/admin/users/{id}"))).await;
    admin
        .post(app.url(&format!("/admin/users/{id}/reset")))
        .form(&[("csrf", hidden(&html, "csrf"))])
        .send()
        .await
        .unwrap();
    assert_eq!(password_login(&browser(), &app, "frank", PASSWORD).await.0, 401);
    let mails = wait_for_mails(&app, 1).await;
    assert!(recipient(&mails[0]).contains("frank@example.com"));
    link_in(&mails[0], &app.issuer, "/password/reset");
}

#[tokio::test]
async fn the_audit_log_filters_and_exports_csv() {
    let app = spawn_with(|_| {}).await;
    app.add_user("hana").await;
    app.add_user("ivan").await;
    assert_eq!(
        password_login(&browser(), &app, "hana", "wrong password here")
            .await
            .0,
        401
    );
    assert_eq!(password_login(&browser(), &app, "hana", PASSWORD).await.0, 303);
    assert_eq!(password_login(&browser(), &app, "ivan", PASSWORD).await.0, 303);
    let (client, _) = app.confidential_client(REDIRECT).await;
    authorize(&browser(), &app, &client, "openid", "ivan", PASSWORD)
        .await
        .unwrap();
    let admin = admin_browser(&app).await;
    let (_, html) = page(&admin, &app.url(&format!("/admin/audit?client={client}"))).await;
    assert!(
        html.contains("ivan") && html.contains("consent") && !html.contains(">hana<"),
        "by application: {html}"
    );
    let (status, html) = page(&admin, &app.url("/admin/audit?user=hana&outcome=failed")).await;
    assert_eq!(status, 200);
    assert!(html.contains("failed") && !html.contains("ivan"), "{html}");
    let r = admin
        .get(app.url("/admin/audit?user=hana&kind=login&format=csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = r.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("time_utc,unix_time,event,outcome"), "{csv}");
    assert_eq!(lines.len(), 3, "hana's two logins: {csv}");
    assert!(
        lines
            .iter()
            .skip(1)
            .all(|l| l.contains("\"hana\"") && l.contains("\"login\"")),
        "{csv}"
    );
    // Nothing without the admin session.
    let r = browser()
        .get(app.url("/admin/audit?format=csv"))
        .send()
        .await
        .unwrap();
    assert!(!r.text().await.unwrap().contains("time_utc"));
    let (status, html) = page(&admin, &app.url("/admin/audit?from=yesterday")).await;
    assert_eq!(status, 200);
    assert!(html.contains("From must be a date"), "{html}");
    let (status, html) = page(&admin, &app.url("/admin/collections")).await;
    assert_eq!(status, 200, "{html}");
}

/// A minimal SMTP server on loopback (RFC 5321's happy path): it records each message's data.
async fn smtp_sink() -> (u16, tokio::sync::mpsc::UnboundedReceiver<String>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r).lines();
                w.write_all(b"220 sink ESMTP\r\n").await.unwrap();
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(d) = data.as_mut() {
                        if line == "." {
                            tx.send(std::mem::take(d)).unwrap();
                            data = None;
                            w.write_all(b"250 queued\r\n").await.unwrap();
                        } else {
                            d.push_str(line.strip_prefix('.').unwrap_or(&line));
                            d.push_str("\r\n");
                        }
                        continue;
                    }
                    let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
                    let answer: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250-sink\r\n250 8BITMIME\r\n",
                        "DATA" => {
                            data = Some(String::new());
                            b"354 go on\r\n"
                        }
                        "QUIT" => {
                            w.write_all(b"221 bye\r\n").await.unwrap();
                            return;
                        }
                        _ => b"250 ok\r\n",
                    };
                    w.write_all(answer).await.unwrap();
                }
            });
        }
    });
    (port, rx)
}

#[tokio::test]
async fn the_confirmation_mail_goes_through_a_real_smtp_server() {
    let (port, mut received) = smtp_sink().await;
    let app = spawn_with(|s| {
        s.accounts.signup = SignupMode::Open;
        s.accounts.smtp_url = Some(facegate_server::server::settings::Secret::new(format!(
            "smtp://127.0.0.1:{port}"
        )));
    })
    .await;
    let b = browser();
    assert_eq!(
        sign_up(&b, &app, "jules", "jules@example.com", NEW_PASSWORD)
            .await
            .0,
        201
    );
    let mail = tokio::time::timeout(Duration::from_secs(20), received.recv())
        .await
        .expect("no mail reached the SMTP server")
        .unwrap();
    assert!(recipient(&mail).contains("jules@example.com"), "{mail}");
    assert!(
        outbox(&app).is_empty(),
        "with SMTP set, nothing goes to the outbox"
    );
    let link = link_in(&mail, &app.issuer, "/account/verify");
    let (status, html) = page(&b, &link).await;
    assert_eq!(status, 200);
    let r = b
        .post(app.url("/account/verify"))
        .form(&[("csrf", hidden(&html, "csrf")), ("token", hidden(&html, "token"))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let u = app
        .state
        .store
        .user_with_password("jules")
        .await
        .unwrap()
        .unwrap()
        .0;
    assert!(u.email_verified);
}

#[tokio::test]
async fn a_grace_period_lets_an_unconfirmed_account_in_and_mail_settings_fail_closed() {
    let app = spawn_with(|s| {
        s.accounts.signup = SignupMode::Open;
        s.accounts.unconfirmed_grace = 3600;
    })
    .await;
    let (client, _) = app.confidential_client(REDIRECT).await;
    let b = browser();
    assert_eq!(
        sign_up(&b, &app, "kim", "kim@example.com", NEW_PASSWORD).await.0,
        201
    );
    let back = authorize(&b, &app, &client, "openid", "kim", NEW_PASSWORD).await;
    assert!(back.is_ok(), "{back:?}");

    // Mail to another machine without TLS is a start-up error, as is a bad sender.
    let bad = |k: &'static str, v: &'static str| {
        facegate_server::server::Settings::from_vars(move |name| (name == k).then(|| v.to_string()))
    };
    let e = bad("FACEGATE_SMTP_URL", "smtp://mail.example.com:25").unwrap_err();
    assert!(format!("{e:#}").contains("TLS"), "{e:#}");
    assert!(bad("FACEGATE_SMTP_URL", "smtps://user:pw@mail.example.com:465").is_ok());
    assert!(bad("FACEGATE_MAIL_FROM", "not an address").is_err());
    assert!(bad("FACEGATE_SIGNUP", "maybe").is_err());
}

#[tokio::test]
async fn an_unconfirmed_account_approves_no_device() {
    let app = open_signup().await;
    let b = browser();
    assert_eq!(
        sign_up(&b, &app, "lee", "lee@example.com", NEW_PASSWORD).await.0,
        201
    );
    let (client, _) = app
        .add_client(facegate_oidc::client::ClientMetadata {
            name: Some("Terminal CLI".into()),
            grant_types: Some(vec!["urn:ietf:params:oauth:grant-type:device_code".into()]),
            token_endpoint_auth_method: Some("none".into()),
            ..Default::default()
        })
        .await;
    app.state
        .store
        .set_client_acr(&client, Some("urn:facegate:pwd"))
        .await
        .unwrap();
    let start: Value = reqwest::Client::new()
        .post(app.url("/device_authorization"))
        .form(&[("client_id", client.as_str()), ("scope", "openid")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let user_code = start["user_code"].as_str().unwrap();
    assert_eq!(password_login(&b, &app, "lee", NEW_PASSWORD).await.0, 303);
    let (status, html) = page(&b, &app.url(&format!("/device?user_code={user_code}"))).await;
    assert_eq!(status, 200, "{html}");
    let r = b
        .post(app.url("/device"))
        .form(&[
            ("csrf", hidden(&html, "csrf")),
            ("user_code", hidden(&html, "user_code")),
            ("decision", "approve".into()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert!(r.text().await.unwrap().contains("not confirmed"));
    let (_, v) = {
        let r = reqwest::Client::new()
            .post(app.url("/token"))
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", start["device_code"].as_str().unwrap()),
                ("client_id", client.as_str()),
            ])
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(v["error"], "authorization_pending", "the device got tokens: {v}");
}

#[tokio::test]
async fn an_account_the_operator_made_is_not_held_back_by_its_unconfirmed_address() {
    let app = open_signup().await;
    let (client, _) = app.confidential_client(REDIRECT).await;
    let user = facegate_core::User {
        id: "op-made".into(),
        username: facegate_core::Username::parse("olga").unwrap(),
        email: Some(facegate_core::Email::parse("olga@example.com").unwrap()),
        email_verified: false,
        name: None,
        created_at: facegate_server::server::now() - 86_400,
    };
    let hash = facegate_core::password::hash(PASSWORD).unwrap();
    app.state.store.create_user(&user, Some(&hash)).await.unwrap();
    let back = authorize(&browser(), &app, &client, "openid", "olga", PASSWORD).await;
    assert!(back.is_ok(), "{back:?}");
}
