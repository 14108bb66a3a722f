//! The notes app against a real facegate (in-process, port 0, password login): sign in through the
//! provider, write notes, sign out through facegate's end-session endpoint, sign in again and find
//! them; another person never sees them; forms need their CSRF token; notes are escaped.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::net::SocketAddr;
use std::time::Duration;

use facegate_oidc::client::ClientMetadata;
use facegate_server::server::{self, Settings};

const PASSWORD: &str = "correct horse battery staple";

struct World {
    issuer: String,
    notes: String,
    state: server::AppState,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

async fn world() -> World {
    let fg_dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let issuer = format!("http://localhost:{}", addr.port());
    let mut settings = Settings::new(addr, issuer.clone(), fg_dir.path().to_path_buf(), None).unwrap();
    settings.face.enabled = false;
    let state = server::open(settings).await.unwrap();
    tokio::spawn(server::serve(state.clone(), listener));

    let notes_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let notes = format!("http://localhost:{}", notes_listener.local_addr().unwrap().port());
    let (client, secret) = server::provider::register_client(
        &state.store,
        ClientMetadata {
            name: Some("Secret notes".into()),
            redirect_uris: vec![format!("{notes}/callback")],
            post_logout_redirect_uris: vec![format!("{notes}/")],
            skip_consent: true,
            ..Default::default()
        },
        None,
    )
    .await
    .unwrap();
    let notes_dir = tempfile::tempdir().unwrap();
    let config = notes::Config {
        issuer: issuer.clone(),
        client_id: client.client_id,
        client_secret: secret,
        public_url: url::Url::parse(&notes).unwrap(),
        database: notes_dir.path().join("notes.db"),
        acr_values: Vec::new(),
    };
    let router = notes::app(config, Duration::from_secs(5)).await.unwrap();
    tokio::spawn(notes::serve(router, notes_listener));
    for name in ["alice", "bob"] {
        add_user(&state, name).await;
    }
    World {
        issuer,
        notes,
        state,
        _dirs: (fg_dir, notes_dir),
    }
}

async fn add_user(state: &server::AppState, username: &str) -> String {
    let user = facegate_core::User {
        id: facegate_core::secret::random_token(16),
        username: facegate_core::Username::parse(username).unwrap(),
        email: Some(facegate_core::Email::parse(&format!("{username}@example.com")).unwrap()),
        email_verified: true,
        name: Some(format!("{username} Example")),
        created_at: server::now(),
    };
    let hash = facegate_core::password::hash(PASSWORD).unwrap();
    state.store.create_user(&user, Some(&hash)).await.unwrap();
    user.id
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
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

fn absolute(base: &str, to: &str) -> String {
    url::Url::parse(base).unwrap().join(to).unwrap().to_string()
}

impl World {
    /// Clicks "Sign in" on the notes app and signs in at facegate with a password (if facegate asks);
    /// returns the notes front page's HTML.
    async fn sign_in(&self, b: &reqwest::Client, username: &str) -> String {
        let mut next = format!("{}/login", self.notes);
        for _ in 0..10 {
            let r = b.get(&next).send().await.unwrap();
            if r.status().is_redirection() {
                next = absolute(&next, &location(&r));
                continue;
            }
            let page = r.text().await.unwrap();
            if next.starts_with(&self.issuer) && next.contains("/login") {
                let form = [
                    ("csrf", hidden(&page, "csrf")),
                    ("req", hidden(&page, "req")),
                    ("username", username.into()),
                    ("password", PASSWORD.into()),
                ];
                let r = b
                    .post(format!("{}/login", self.issuer))
                    .form(&form)
                    .send()
                    .await
                    .unwrap();
                assert!(
                    r.status().is_redirection(),
                    "login failed: {}",
                    r.text().await.unwrap()
                );
                next = absolute(&self.issuer, &location(&r));
                continue;
            }
            assert_eq!(
                next,
                format!("{}/", self.notes),
                "ends on the notes page:\n{page}"
            );
            return page;
        }
        panic!("too many redirects")
    }

    async fn home(&self, b: &reqwest::Client) -> String {
        b.get(format!("{}/", self.notes))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn add_note(&self, b: &reqwest::Client, csrf: &str, text: &str) -> reqwest::Response {
        b.post(format!("{}/notes", self.notes))
            .form(&[("csrf", csrf), ("text", text)])
            .send()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn notes_are_private_and_survive_logout() {
    let w = world().await;
    let alice = browser();

    let page = w.home(&alice).await;
    assert!(page.contains("Sign in with facegate"), "{page}");
    let page = w.sign_in(&alice, "alice").await;
    assert!(
        page.contains("Signed in as <strong id=\"who\">alice Example</strong>"),
        "{page}"
    );
    assert!(page.contains("[&quot;pwd&quot;]"), "amr shown: {page}");
    assert!(page.contains("urn:facegate:pwd"), "acr shown: {page}");
    assert!(page.contains("No notes yet"));

    let csrf = hidden(&page, "csrf");
    // As a browser posts it: with the app's own Origin.
    let r = alice
        .post(format!("{}/notes", w.notes))
        .header("origin", &w.notes)
        .form(&[
            ("csrf", csrf.as_str()),
            ("text", "The safe's code is 4-8-15 <b>16</b>"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let page = w.home(&alice).await;
    assert!(
        page.contains("The safe&#39;s code is 4-8-15 &lt;b&gt;16&lt;/b&gt;"),
        "escaped: {page}"
    );
    assert!(!page.contains("<b>16</b>"));

    // Forms need the session's CSRF token, and a post from another site is refused.
    let r = w.add_note(&alice, "wrong", "forged").await;
    assert_eq!(r.status(), 403);
    let r = alice
        .post(format!("{}/notes", w.notes))
        .header("origin", "https://evil.example")
        .form(&[("csrf", csrf.as_str()), ("text", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(!w.home(&alice).await.contains("forged"));

    // Logout ends both sessions: the app's, then facegate's through its end-session endpoint, which
    // sends the browser back to the notes app.
    let r = alice
        .post(format!("{}/logout", w.notes))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let end_session = location(&r);
    assert!(
        end_session.starts_with(&format!("{}/logout?", w.issuer)),
        "{end_session}"
    );
    assert!(end_session.contains("id_token_hint="), "{end_session}");
    let r = alice.get(&end_session).send().await.unwrap();
    assert_eq!(
        location(&r),
        format!("{}/", w.notes),
        "facegate sends the browser back"
    );
    let page = w.home(&alice).await;
    assert!(
        page.contains("Sign in with facegate"),
        "signed out of notes: {page}"
    );
    // facegate's session is gone too: signing in asks for the password again.
    let r = alice.get(format!("{}/login", w.notes)).send().await.unwrap();
    let r = alice.get(location(&r)).send().await.unwrap();
    assert!(
        location(&r).starts_with("/login"),
        "facegate asks again: {}",
        location(&r)
    );

    // Alice again: her note is there.
    let alice2 = browser();
    let page = w.sign_in(&alice2, "alice").await;
    assert!(page.contains("The safe&#39;s code"), "{page}");

    // Bob never sees it, and cannot delete it.
    let bob = browser();
    let page = w.sign_in(&bob, "bob").await;
    assert!(page.contains("bob Example"));
    assert!(!page.contains("safe"), "bob sees alice's note: {page}");
    let note_id = hidden(&w.home(&alice2).await, "id");
    let r = bob
        .post(format!("{}/notes/delete", w.notes))
        .form(&[("csrf", hidden(&page, "csrf")), ("id", note_id.clone())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(
        w.home(&alice2).await.contains("The safe&#39;s code"),
        "still there"
    );
    // Alice can.
    let csrf2 = hidden(&w.home(&alice2).await, "csrf");
    alice2
        .post(format!("{}/notes/delete", w.notes))
        .form(&[("csrf", csrf2), ("id", note_id)])
        .send()
        .await
        .unwrap();
    assert!(w.home(&alice2).await.contains("No notes yet"));
    let _ = &w.state;
}

#[tokio::test]
async fn callbacks_not_started_here_are_refused() {
    let w = world().await;
    let b = browser();
    // A callback with a state this browser never started (login CSRF / code injection).
    let r = b
        .get(format!("{}/callback?code=abc&state=xyz", w.notes))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("does not belong to a sign-in started in this browser")
    );
    // Started here, but the state in the answer differs from the cookie's.
    let r = b.get(format!("{}/login", w.notes)).send().await.unwrap();
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("notes_login="))
        .unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "http: not Secure");
    let r = b
        .get(format!("{}/callback?code=abc&state=other", w.notes))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // An answer naming another issuer (RFC 9207 mix-up defence) is refused.
    let r = b.get(format!("{}/login", w.notes)).send().await.unwrap();
    let state = url::Url::parse(&location(&r))
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .to_string();
    let r = b
        .get(format!(
            "{}/callback?state={state}&code=abc&iss=https%3A%2F%2Fevil.example",
            w.notes
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("another provider"));
    // An error answer from the provider is shown, escaped.
    let r = b.get(format!("{}/login", w.notes)).send().await.unwrap();
    let state = url::Url::parse(&location(&r))
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .to_string();
    let r = b
        .get(format!(
            "{}/callback?state={state}&error=access_denied&error_description=%3Cscript%3E",
            w.notes
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers().get("referrer-policy").unwrap(), "same-origin");
    let csp = r
        .headers()
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let page = r.text().await.unwrap();
    assert!(page.contains("access_denied &lt;script&gt;"), "{page}");
    // Forms without a session are refused.
    let r = b
        .post(format!("{}/notes", w.notes))
        .form(&[("csrf", "x"), ("text", "y")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}
