//! Black-box test harness: the real server on port 0 with a fresh database, and a browser-like HTTP
//! client that keeps cookies, does not follow redirects, and can fill in the login and consent forms.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)] // tests fail loudly by design

pub mod face;

use std::net::SocketAddr;

use facegate_oidc::client::ClientMetadata;
use facegate_server::server::{self, AppState, Settings};

pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub issuer: String,
    pub state: AppState,
    _dir: tempfile::TempDir,
}

/// The data key every instance of a test cluster shares (as an operator's config gives them one).
pub const SHARED_DATA_KEY: &str = "5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed";

pub fn shared_data_key() -> facegate_server::server::data_key::DataKeySource {
    facegate_server::server::data_key::DataKeySource::Value {
        current: facegate_server::server::settings::Secret::new(SHARED_DATA_KEY),
        new: None,
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let issuer = format!("http://127.0.0.1:{}", addr.port());
    let mut settings = Settings::new(addr, issuer.clone(), dir.path().to_path_buf(), None).unwrap();
    settings.registration_token = Some(facegate_server::server::settings::Secret::new("initial-token"));
    settings.admin_token = Some(facegate_server::server::settings::Secret::new("admin-token"));
    // Face login loads the models; tests that want it turn it on (face_login.rs).
    settings.face.enabled = false;
    adjust(&mut settings);
    let state = server::open(settings).await.unwrap();
    tokio::spawn(server::serve(state.clone(), listener));
    TestApp {
        issuer,
        state,
        _dir: dir,
    }
}

/// One instance of a cluster: its own listener and data folder, a shared `issuer` (the proxy's URL)
/// and a shared database.
pub async fn spawn_instance(listener: tokio::net::TcpListener, issuer: &str, database_url: &str) -> TestApp {
    spawn_instance_with(listener, issuer, database_url, |_| {}).await
}

/// [`spawn_instance`] with settings adjusted (the same on every instance, as an operator's config).
pub async fn spawn_instance_with(
    listener: tokio::net::TcpListener,
    issuer: &str,
    database_url: &str,
    adjust: impl FnOnce(&mut Settings),
) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let mut settings = Settings::new(
        addr,
        issuer.to_string(),
        dir.path().to_path_buf(),
        Some(database_url.to_string()),
    )
    .unwrap();
    settings.face.enabled = false;
    settings.data_key = shared_data_key();
    adjust(&mut settings);
    let state = server::open(settings).await.unwrap();
    tokio::spawn(server::serve(state.clone(), listener));
    TestApp {
        issuer: issuer.to_string(),
        state,
        _dir: dir,
    }
}

impl TestApp {
    pub async fn add_user(&self, username: &str) -> String {
        let user = facegate_core::User {
            id: facegate_core::secret::random_token(16),
            username: facegate_core::Username::parse(username).unwrap(),
            email: Some(facegate_core::Email::parse(&format!("{username}@example.com")).unwrap()),
            email_verified: true,
            name: Some(format!("{username} Example")),
            created_at: server::now(),
        };
        let hash = facegate_core::password::hash(PASSWORD).unwrap();
        self.state.store.create_user(&user, Some(&hash)).await.unwrap();
        user.id
    }

    /// Registers a client; returns (client_id, secret).
    pub async fn add_client(&self, meta: ClientMetadata) -> (String, Option<String>) {
        let (c, s) = server::provider::register_client(&self.state.store, meta, None)
            .await
            .unwrap();
        (c.client_id, s)
    }

    pub async fn confidential_client(&self, redirect: &str) -> (String, String) {
        let (id, secret) = self
            .add_client(ClientMetadata {
                name: Some("Test RP".into()),
                redirect_uris: vec![redirect.into()],
                post_logout_redirect_uris: vec!["http://localhost:9/after-logout".into()],
                ..Default::default()
            })
            .await;
        (id, secret.unwrap())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }
}

/// A browser: cookies, no automatic redirects.
/// GET a page and its text.
pub async fn get_text(b: &reqwest::Client, url: &str) -> String {
    b.get(url).send().await.unwrap().text().await.unwrap()
}

pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// The value of a hidden form field in a page.
pub fn field(html: &str, name: &str) -> String {
    hidden(html, name)
}

/// Exchanges a code at the token endpoint with client_secret_basic; returns the JSON answer.
pub async fn exchange_code(
    app: &TestApp,
    client_id: &str,
    secret: Option<&str>,
    code: &str,
    redirect_uri: &str,
) -> serde_json::Value {
    reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth(client_id, secret)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
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

/// Opens an authorization URL and signs in as `username`, allowing consent; returns the final
/// redirect (to the client) — or the first response that is not part of the login dance.
pub async fn sign_in(browser: &reqwest::Client, app: &TestApp, auth_url: &str, username: &str) -> String {
    let mut next = auth_url.to_string();
    for _ in 0..8 {
        let url = if next.starts_with('/') {
            app.url(&next)
        } else {
            next.clone()
        };
        if !url.starts_with(&app.issuer) {
            return url;
        }
        let r = browser.get(&url).send().await.unwrap();
        if r.status().is_redirection() {
            next = location(&r);
            continue;
        }
        let status = r.status();
        let page = r.text().await.unwrap();
        if url.contains("/login") {
            let form = [
                ("csrf", hidden(&page, "csrf")),
                ("req", hidden(&page, "req")),
                ("username", username.into()),
                ("password", PASSWORD.into()),
            ];
            let r = browser.post(app.url("/login")).form(&form).send().await.unwrap();
            assert!(
                r.status().is_redirection(),
                "login failed: {}",
                r.text().await.unwrap()
            );
            next = location(&r);
        } else if url.contains("/consent") {
            let form = [
                ("csrf", hidden(&page, "csrf")),
                ("req", hidden(&page, "req")),
                ("decision", "allow".into()),
            ];
            let r = browser
                .post(app.url("/consent"))
                .form(&form)
                .send()
                .await
                .unwrap();
            if !r.status().is_redirection() {
                // form_post delivery: return the page itself.
                return r.text().await.unwrap();
            }
            next = location(&r);
        } else {
            panic!("unexpected page {url} ({status}):\n{page}");
        }
    }
    panic!("too many redirects")
}

/// The query (or fragment) parameters of a redirect.
pub fn params(url: &str, fragment: bool) -> std::collections::HashMap<String, String> {
    let u = url::Url::parse(url).unwrap();
    let raw = if fragment {
        u.fragment().unwrap_or("").to_string()
    } else {
        u.query().unwrap_or("").to_string()
    };
    url::form_urlencoded::parse(raw.as_bytes()).into_owned().collect()
}

/// An HTTP client closure for the `openidconnect` crate, over reqwest 0.13.
pub fn oidc_http() -> impl Fn(
    openidconnect::HttpRequest,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<openidconnect::HttpResponse, reqwest::Error>> + Send>,
> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    move |req: openidconnect::HttpRequest| {
        let client = client.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let mut rb = client.request(parts.method, parts.uri.to_string()).body(body);
            for (k, v) in parts.headers.iter() {
                rb = rb.header(k, v);
            }
            let resp = rb.send().await?;
            let mut builder = http::Response::builder().status(resp.status());
            for (k, v) in resp.headers() {
                builder = builder.header(k, v);
            }
            let bytes = resp.bytes().await?;
            Ok(builder.body(bytes.to_vec()).unwrap())
        })
    }
}

/// A new client_credentials client and a token for it: (client_id, token).
pub async fn client_token(issuer: &str, state: &AppState, scope: &str) -> (String, String) {
    let (client, secret) = server::provider::register_client(
        &state.store,
        ClientMetadata {
            name: Some("face api".into()),
            grant_types: Some(vec!["client_credentials".into()]),
            ..Default::default()
        },
        None,
    )
    .await
    .unwrap();
    let id = client.client_id;
    let t: serde_json::Value = reqwest::Client::new()
        .post(format!("{issuer}/token"))
        .basic_auth(&id, secret.as_deref())
        .form(&[("grant_type", "client_credentials"), ("scope", scope)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (id, t["access_token"].as_str().unwrap().to_string())
}
