//! Secret notes: a person's private notes, seen only after signing in with facegate.
//!
//! An ordinary OpenID Connect relying party, written the way any application would be:
//! - discovery of the provider, then the authorization code flow with PKCE, `state` bound to a
//!   short-lived cookie and a `nonce` checked in the ID token (the `openidconnect` crate verifies
//!   signature, issuer, audience, expiry and nonce);
//! - a server-side session (random id in an HttpOnly, SameSite=Lax cookie, Secure over https; only its
//!   SHA-256 is stored), CSRF tokens on every form, every value HTML-escaped;
//! - logout through the provider's `end_session_endpoint` with `id_token_hint` and
//!   `post_logout_redirect_uri`;
//! - notes kept per `sub` in the app's own SQLite file.

mod db;
mod html;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Form, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreUserInfoClaims};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet,
    IssuerUrl, LogoutRequest, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    PostLogoutRedirectUrl, ProviderMetadataWithLogout, RedirectUrl, Scope, TokenResponse,
};
use serde::Deserialize;
use url::Url;

pub use db::Db;

/// How the app is set up (command-line flags or `NOTES_*` environment variables, see main.rs).
#[derive(Debug, Clone)]
pub struct Config {
    /// The provider's issuer URL, e.g. `http://localhost:8080`.
    pub issuer: String,
    pub client_id: String,
    /// `None` for a public client (PKCE alone); facegate registers confidential clients by default.
    pub client_secret: Option<String>,
    /// Where browsers reach this app, e.g. `http://localhost:8081` (no trailing slash needed).
    pub public_url: Url,
    /// The SQLite file holding notes and sessions (created if missing).
    pub database: PathBuf,
    /// `acr_values` sent with every sign-in (e.g. `urn:facegate:face:live` for an app that wants a
    /// face): facegate then asks a person signed in with less for the missing step.
    pub acr_values: Vec<String>,
}

const SESSION_SECONDS: i64 = 8 * 3600;
const LOGIN_SECONDS: i64 = 600;
const MAX_NOTE_CHARS: usize = 2000;

type Oidc = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

#[derive(Clone)]
struct App(Arc<Inner>);

struct Inner {
    oidc: Oidc,
    end_session: Option<Url>,
    http: reqwest::Client,
    db: Db,
    public_url: Url,
    /// The provider's origin, allowed as a form target in the CSP (logout redirects there).
    issuer_origin: String,
    /// The issuer identifier, compared with the `iss` of authorization responses (RFC 9207).
    issuer: String,
    secure: bool,
    acr_values: Vec<String>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("public_url", &self.0.public_url.as_str())
            .finish()
    }
}

/// Seconds since the Unix epoch.
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A failed HTTP exchange with the provider.
#[derive(Debug)]
pub struct HttpError(String);

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HttpError {}

impl From<reqwest::Error> for HttpError {
    fn from(e: reqwest::Error) -> Self {
        HttpError(e.to_string())
    }
}

/// An HTTP client for the `openidconnect` crate over reqwest 0.13. Redirects are not followed (the
/// crate's advice, against SSRF).
fn oidc_http(
    client: &reqwest::Client,
) -> impl Fn(
    openidconnect::HttpRequest,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<openidconnect::HttpResponse, HttpError>> + Send>,
> + use<> {
    let client = client.clone();
    move |req: openidconnect::HttpRequest| {
        let client = client.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let mut rb = client.request(parts.method, parts.uri.to_string()).body(body);
            for (k, v) in parts.headers.iter() {
                rb = rb.header(k, v);
            }
            let resp = rb.send().await.map_err(HttpError::from)?;
            let mut builder = http::Response::builder().status(resp.status());
            for (k, v) in resp.headers() {
                builder = builder.header(k, v);
            }
            let bytes = resp.bytes().await.map_err(HttpError::from)?;
            builder.body(bytes.to_vec()).map_err(|e| HttpError(e.to_string()))
        })
    }
}

/// Discovers the provider (retrying for up to `wait` while it starts), opens the database and
/// returns the app's router.
pub async fn app(config: Config, wait: Duration) -> anyhow::Result<Router> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(15))
        .build()?;
    let issuer = IssuerUrl::new(config.issuer.trim_end_matches('/').to_string())
        .context("the issuer must be a URL")?;
    let deadline = tokio::time::Instant::now() + wait;
    let metadata = loop {
        match ProviderMetadataWithLogout::discover_async(issuer.clone(), &oidc_http(&http)).await {
            Ok(m) => break m,
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::info!("waiting for the provider at {}: {e}", issuer.as_str());
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => {
                return Err(anyhow::anyhow!("discovery at {} failed: {e}", issuer.as_str()));
            }
        }
    };
    let end_session = metadata
        .additional_metadata()
        .end_session_endpoint
        .as_ref()
        .map(|u| u.url().clone());
    let mut public_url = config.public_url.clone();
    if !public_url.path().ends_with('/') {
        let path = format!("{}/", public_url.path());
        public_url.set_path(&path);
    }
    let redirect = public_url.join("callback").context("public URL")?;
    let oidc = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(config.client_id.clone()),
        config.client_secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::from_url(redirect));
    let db = Db::open(&config.database).await?;
    let issuer_origin = Url::parse(issuer.as_str())
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    let secure = public_url.scheme() == "https";
    let app = App(Arc::new(Inner {
        oidc,
        end_session,
        http,
        db,
        public_url,
        issuer_origin,
        issuer: issuer.as_str().to_string(),
        secure,
        acr_values: config.acr_values.clone(),
    }));
    Ok(Router::new()
        .route("/", get(home))
        .route("/style.css", get(stylesheet))
        .route("/login", get(login))
        .route("/callback", get(callback))
        .route("/notes", post(add_note))
        .route("/notes/delete", post(delete_note))
        .route("/logout", post(logout))
        .layer(DefaultBodyLimit::max(16 * 1024))
        .with_state(app))
}

/// Serves `router` until Ctrl-C or SIGTERM.
pub async fn serve(router: Router, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Binds `listen`, discovers the provider (waiting up to 30 s for it to start) and serves until a signal.
pub async fn run(config: Config, listen: SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let router = app(config.clone(), Duration::from_secs(30)).await?;
    tracing::info!("notes on {} (listening on {listen})", config.public_url);
    serve(router, listener).await
}

// ---------------------------------------------------------------------------------------------
// Responses, cookies, sessions

/// An answer the person sees as a page.
#[derive(Debug)]
enum Failure {
    /// Something about the request: shown as is (escaped).
    Page(StatusCode, &'static str, String),
    /// Our fault: logged, shown as a generic page.
    Internal(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Internal(e)
    }
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        Failure::Internal(e.into())
    }
}

impl App {
    fn page(&self, status: StatusCode, body: String) -> Response {
        let mut r = (status, body).into_response();
        let h = r.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        let csp = format!(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self' {}; frame-ancestors 'none'; base-uri 'none'",
            self.0.issuer_origin
        );
        if let Ok(v) = HeaderValue::from_str(&csp) {
            h.insert(HeaderName::from_static("content-security-policy"), v);
        }
        h.insert(
            HeaderName::from_static("x-content-type-options"),
            HeaderValue::from_static("nosniff"),
        );
        h.insert(
            HeaderName::from_static("referrer-policy"),
            // Not `no-referrer`: with it browsers send `Origin: null` on the app's own form posts.
            HeaderValue::from_static("same-origin"),
        );
        r
    }

    fn failure(&self, f: Failure) -> Response {
        match f {
            Failure::Page(status, title, message) => self.page(status, html::message(title, &message)),
            Failure::Internal(e) => {
                tracing::error!("{e:#}");
                self.page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    html::message("Something went wrong", "Please try again in a moment."),
                )
            }
        }
    }

    fn cookie_name(&self, base: &str) -> String {
        // Over https the __Host- prefix pins the cookie to this exact host and path.
        if self.0.secure {
            format!("__Host-{base}")
        } else {
            base.to_string()
        }
    }

    /// A Set-Cookie value: HttpOnly, SameSite=Lax, Path=/, Secure over https; `max_age` 0 deletes.
    fn set_cookie(&self, base: &str, value: &str, max_age: i64) -> HeaderValue {
        let secure = if self.0.secure { "; Secure" } else { "" };
        let v = format!(
            "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
            self.cookie_name(base)
        );
        HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
    }

    fn redirect(&self, to: &str, cookies: &[HeaderValue]) -> Response {
        let mut r = StatusCode::SEE_OTHER.into_response();
        if let Ok(v) = HeaderValue::from_str(to) {
            r.headers_mut().insert(LOCATION, v);
        }
        for c in cookies {
            r.headers_mut().append(SET_COOKIE, c.clone());
        }
        r.headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        r
    }

    async fn session(&self, headers: &HeaderMap) -> Result<Option<db::Session>, Failure> {
        match cookie(headers, &self.cookie_name("notes_session")) {
            Some(id) => Ok(self.0.db.session(&db::hash(&id), now()).await?),
            None => Ok(None),
        }
    }

    /// The session of a form post, after its CSRF token and (when sent) its Origin are checked.
    async fn form_session(&self, headers: &HeaderMap, csrf: &str) -> Result<db::Session, Failure> {
        let forbidden = |m: &str| Failure::Page(StatusCode::FORBIDDEN, "Not allowed", m.to_string());
        if let Some(origin) = headers.get(ORIGIN)
            && origin.as_bytes() != self.0.public_url.origin().ascii_serialization().as_bytes()
        {
            return Err(forbidden("This form was sent from another site."));
        }
        let session = self
            .session(headers)
            .await?
            .ok_or_else(|| forbidden("You are not signed in (or your session has ended)."))?;
        if !constant_time_eq(session.csrf.as_bytes(), csrf.as_bytes()) {
            return Err(forbidden("This form has expired: reload the page and try again."));
        }
        Ok(session)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of cookie `name` (the first one sent).
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}

// ---------------------------------------------------------------------------------------------
// Handlers

async fn stylesheet() -> Response {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "max-age=300"),
        ],
        html::STYLE,
    )
        .into_response()
}

async fn home(State(app): State<App>, headers: HeaderMap) -> Response {
    match home_page(&app, &headers).await {
        Ok(r) => r,
        Err(f) => app.failure(f),
    }
}

async fn home_page(app: &App, headers: &HeaderMap) -> Result<Response, Failure> {
    let Some(session) = app.session(headers).await? else {
        return Ok(app.page(StatusCode::OK, html::signed_out()));
    };
    let notes = app.0.db.notes(&session.sub).await?;
    Ok(app.page(StatusCode::OK, html::notes_page(&session, &notes)))
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    /// `login` asks the provider to sign the person in again even with a provider session.
    prompt: Option<String>,
}

async fn login(State(app): State<App>, Query(q): Query<LoginQuery>) -> Response {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut req = app
        .0
        .oidc
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge);
    if q.prompt.as_deref() == Some("login") {
        req = req.add_prompt(openidconnect::core::CoreAuthPrompt::Login);
    }
    for acr in &app.0.acr_values {
        req = req.add_auth_context_value(openidconnect::AuthenticationContextClass::new(acr.clone()));
    }
    let (url, state, nonce) = req.url();
    let pending = db::PendingLogin {
        state: state.secret().clone(),
        nonce: nonce.secret().clone(),
        verifier: verifier.secret().clone(),
    };
    if let Err(e) = app.0.db.add_login(&pending, now() + LOGIN_SECONDS).await {
        return app.failure(e.into());
    }
    // The state travels in the URL and in this cookie; the callback accepts it only when both agree,
    // so a code cannot be injected into someone else's browser (login CSRF).
    let c = app.set_cookie("notes_login", state.secret(), LOGIN_SECONDS);
    app.redirect(url.as_str(), &[c])
}

#[derive(Debug, Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    /// RFC 9207: the provider names itself in its answer, so an answer from another one is noticed.
    iss: Option<String>,
}

async fn callback(State(app): State<App>, headers: HeaderMap, Query(q): Query<CallbackQuery>) -> Response {
    match finish_login(&app, &headers, q).await {
        Ok(r) => r,
        Err(f) => {
            let mut r = app.failure(f);
            r.headers_mut()
                .append(SET_COOKIE, app.set_cookie("notes_login", "", 0));
            r
        }
    }
}

async fn finish_login(app: &App, headers: &HeaderMap, q: CallbackQuery) -> Result<Response, Failure> {
    let bad = |m: String| Failure::Page(StatusCode::BAD_REQUEST, "Sign-in did not finish", m);
    let expected = cookie(headers, &app.cookie_name("notes_login"));
    let state = q.state.unwrap_or_default();
    let pending = match expected {
        Some(s) if constant_time_eq(s.as_bytes(), state.as_bytes()) => {
            app.0.db.take_login(&state, now()).await?
        }
        _ => None,
    };
    let Some(pending) = pending else {
        return Err(bad(
            "This sign-in answer does not belong to a sign-in started in this browser, or it has expired."
                .into(),
        ));
    };
    if q.iss.as_deref().is_some_and(|iss| iss != app.0.issuer) {
        return Err(bad(
            "The answer comes from another provider than this app uses.".into()
        ));
    }
    if let Some(e) = q.error {
        let detail = q.error_description.unwrap_or_default();
        return Err(bad(format!("facegate answered: {e} {detail}")));
    }
    let code = q
        .code
        .ok_or_else(|| bad("The answer carries no authorization code.".into()))?;
    let tokens = app
        .0
        .oidc
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| Failure::Internal(anyhow::anyhow!("token endpoint: {e}")))?
        .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier))
        .request_async(&oidc_http(&app.0.http))
        .await
        .map_err(|e| bad(format!("The code could not be exchanged: {e}")))?;
    let id_token = tokens
        .id_token()
        .ok_or_else(|| bad("facegate sent no ID token.".into()))?;
    let verifier = app.0.oidc.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &Nonce::new(pending.nonce))
        .map_err(|e| bad(format!("The ID token did not verify: {e}")))?;
    // Profile claims (name, username, email) come from the userinfo endpoint; the crate checks that
    // its `sub` is the ID token's.
    let info: Option<CoreUserInfoClaims> = match app
        .0
        .oidc
        .user_info(tokens.access_token().clone(), Some(claims.subject().clone()))
    {
        Ok(req) => match req.request_async(&oidc_http(&app.0.http)).await {
            Ok(info) => Some(info),
            Err(e) => {
                tracing::warn!("userinfo failed: {e}");
                None
            }
        },
        Err(_) => None,
    };
    let name = info
        .as_ref()
        .and_then(|i| i.name())
        .or(claims.name())
        .and_then(|n| n.get(None))
        .map(|n| n.as_str().to_string());
    let username = info
        .as_ref()
        .and_then(|i| i.preferred_username())
        .or(claims.preferred_username())
        .map(|u| u.as_str().to_string());
    let email = info
        .as_ref()
        .and_then(|i| i.email())
        .or(claims.email())
        .map(|e| e.as_str().to_string());
    let who = db::Who {
        sub: claims.subject().as_str().to_string(),
        name,
        username,
        email,
        amr: claims
            .auth_method_refs()
            .map(|v| v.iter().map(|a| a.as_str().to_string()).collect())
            .unwrap_or_default(),
        acr: claims.auth_context_ref().map(|a| a.as_str().to_string()),
        auth_time: claims.auth_time().map(|t| t.to_string()),
    };
    let raw_id_token = id_token.to_string();
    let session_id = CsrfToken::new_random_len(32).secret().clone();
    let csrf = CsrfToken::new_random_len(24).secret().clone();
    app.0
        .db
        .add_session(
            &db::hash(&session_id),
            &who,
            &raw_id_token,
            &csrf,
            now() + SESSION_SECONDS,
        )
        .await?;
    let c1 = app.set_cookie("notes_session", &session_id, SESSION_SECONDS);
    let c2 = app.set_cookie("notes_login", "", 0);
    Ok(app.redirect("/", &[c1, c2]))
}

#[derive(Debug, Deserialize)]
struct NoteForm {
    csrf: String,
    text: String,
}

async fn add_note(State(app): State<App>, headers: HeaderMap, Form(f): Form<NoteForm>) -> Response {
    let result = async {
        let session = app.form_session(&headers, &f.csrf).await?;
        let text = f.text.trim();
        if text.is_empty() || text.chars().count() > MAX_NOTE_CHARS {
            return Err(Failure::Page(
                StatusCode::BAD_REQUEST,
                "Note not saved",
                format!("A note has 1 to {MAX_NOTE_CHARS} characters."),
            ));
        }
        app.0.db.add_note(&session.sub, text, now()).await?;
        Ok(app.redirect("/", &[]))
    }
    .await;
    result.unwrap_or_else(|f| app.failure(f))
}

#[derive(Debug, Deserialize)]
struct DeleteForm {
    csrf: String,
    id: i64,
}

async fn delete_note(State(app): State<App>, headers: HeaderMap, Form(f): Form<DeleteForm>) -> Response {
    let result = async {
        let session = app.form_session(&headers, &f.csrf).await?;
        app.0.db.delete_note(&session.sub, f.id).await?;
        Ok(app.redirect("/", &[]))
    }
    .await;
    result.unwrap_or_else(|f| app.failure(f))
}

#[derive(Debug, Deserialize)]
struct LogoutForm {
    csrf: String,
}

/// Ends this app's session, then sends the browser to the provider's end-session endpoint so the
/// facegate session ends too; facegate sends it back to this app's front page.
async fn logout(State(app): State<App>, headers: HeaderMap, Form(f): Form<LogoutForm>) -> Response {
    let result = async {
        let session = app.form_session(&headers, &f.csrf).await?;
        app.0.db.delete_session(&session.id_hash).await?;
        let clear = app.set_cookie("notes_session", "", 0);
        let Some(end) = app.0.end_session.clone() else {
            return Ok(app.redirect("/", &[clear]));
        };
        let back = PostLogoutRedirectUrl::from_url(app.0.public_url.clone());
        let mut req = LogoutRequest::from(openidconnect::EndSessionUrl::from_url(end))
            .set_post_logout_redirect_uri(back)
            .set_client_id(app.0.oidc.client_id().clone());
        if let Ok(token) = session.id_token.parse::<CoreIdToken>() {
            req = req.set_id_token_hint(&token);
        }
        Ok(app.redirect(req.http_get_url().as_str(), &[clear]))
    }
    .await;
    result.unwrap_or_else(|f| app.failure(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_static("a=1; notes_session=abc; x_notes_session=zzz"),
        );
        assert_eq!(cookie(&h, "notes_session").as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "notes"), None);
        h.insert(COOKIE, HeaderValue::from_static("notes_session="));
        assert_eq!(cookie(&h, "notes_session"), None, "an empty cookie is no cookie");
    }

    #[test]
    fn csrf_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}
