//! What a person's browser sees: the authorization endpoint, login, consent and logout.
//!
//! A validated authorization request is kept server-side (30 minutes) while the person logs in and
//! consents; the browser carries only its random id. Forms carry a CSRF token equal to a SameSite=Strict
//! cookie, compared in constant time.

use facegate_core::audit::{Event, Kind, Outcome};
use facegate_core::throttle::AttemptGuard;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use facegate_core::secret::{constant_time_eq, random_token};
use facegate_oidc::authorize::{self, AuthorizeError, Delivery};
use facegate_oidc::client::Client;
use facegate_oidc::{ErrorCode, OAuthError};
use serde::Deserialize;

use super::extract::{ClientAddr, CsrfForm};
use super::page_form;
use crate::server::error::AppError;
use crate::server::login;
pub(crate) use crate::server::login::Pending;
use crate::server::provider;
use crate::server::state::AppState;
use crate::server::{cookies, html, now};
use facegate_core::login::Decision;
use facegate_core::login::{Method, Refusal, Step};

pub(crate) fn deliver(d: Delivery) -> Response {
    match d {
        Delivery::Redirect(url) => Redirect::to(&url).into_response(),
        Delivery::FormPost { action, fields } => {
            let mut r = Html(html::form_post(&action, &fields)).into_response();
            let csp = format!(
                "default-src 'none'; script-src '{}'; {}",
                html::FORM_POST_SCRIPT_HASH,
                page_csp_to(Some(&action)).trim_start_matches("default-src 'none'; ")
            );
            let h = r.headers_mut();
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            if let Ok(v) = HeaderValue::from_str(&csp) {
                h.insert(header::CONTENT_SECURITY_POLICY, v);
            }
            r
        }
    }
}

pub(crate) use crate::server::login::current_session;

pub async fn authorize_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    authorize(state, headers, pairs).await
}

pub async fn authorize_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    authorize(state, headers, pairs).await
}

async fn authorize(
    state: AppState,
    headers: HeaderMap,
    pairs: Vec<(String, String)>,
) -> Result<Response, AppError> {
    // A pushed request (RFC 9126): its parameters replace the browser's.
    let Some((pairs, pushed)) = provider::resolve_pushed(&state, pairs).await? else {
        return Err(AppError::Page(
            StatusCode::BAD_REQUEST,
            format!(
                "The application's request could not be completed ({}).",
                facegate_oidc::engine::par::unusable_request_uri().description
            ),
        ));
    };
    // Look the client up first (async), then validate synchronously against it.
    let client_id = pairs
        .iter()
        .find(|(k, _)| k == "client_id")
        .map(|(_, v)| v.clone());
    let client = match client_id {
        Some(id) => state.store.client(&id).await?,
        None => None,
    };
    let dynamic = client.as_ref().is_some_and(|c| c.dynamic);
    let (req, client) = match authorize::validate(&pairs, |_| client) {
        Ok(ok) => ok,
        Err(AuthorizeError::Fatal(msg)) => return Err(AppError::Page(StatusCode::BAD_REQUEST, msg)),
        Err(AuthorizeError::Redirect(target, e)) => {
            return Ok(authorize_error(&state, dynamic, &target, &e));
        }
    };
    if client.require_par && !pushed {
        let e = OAuthError::invalid_request("this client must use pushed authorization requests");
        return Ok(authorize_error(&state, dynamic, &req.target, &e));
    }
    let pending = Pending::for_request(req);
    let id = login::create(&state, &pending).await?;
    proceed(&state, &headers, &id, pending, client).await
}

/// Login, step-up, consent, or the response — whichever the login policy, the request and the
/// session call for.
async fn proceed(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    mut pending: Pending,
    client: Client,
) -> Result<Response, AppError> {
    let Some(req) = pending.req.clone() else {
        return Err(AppError::Page(
            StatusCode::BAD_REQUEST,
            "This is not a sign-in request of an application.".into(),
        ));
    };
    let session = current_session(state, headers).await.map(|(s, _)| s);
    let target = req.target.clone();
    let dynamic = client.dynamic;
    let fail = |e: OAuthError| async move {
        state.store.delete_auth_request(id).await?;
        Ok::<_, AppError>(authorize_error(state, dynamic, &target, &e))
    };
    match login::evaluate(state, &pending, session.as_ref()).await? {
        Decision::Owed(step) => {
            // A signed-in person who owes more (step-up) continues as themselves.
            if step != Step::FirstFactor
                && pending.txn.user_id.is_none()
                && let Some(s) = &session
            {
                pending
                    .txn
                    .bind_user(&s.user_id)
                    .map_err(|e| AppError::Internal(e.to_string()))?;
                login::save(state, id, &pending).await?;
            }
            Ok(Redirect::to(&login::step_url(step, id)).into_response())
        }
        Decision::Refused(Refusal::LoginRequired) => {
            fail(OAuthError::new(
                ErrorCode::LoginRequired,
                "the person must sign in",
            ))
            .await
        }
        Decision::Refused(Refusal::Unmet(why)) => fail(OAuthError::new(ErrorCode::AccessDenied, why)).await,
        Decision::Satisfied(outcome) => {
            let Some(session) = session else {
                return Ok(Redirect::to(&format!("/login?req={id}")).into_response());
            };
            // An account whose address is not confirmed yet (past the grace) waits here.
            if let Some(user) = state.store.user(&session.user_id).await?
                && crate::server::accounts::must_confirm(state, &user)
                    .await
                    .map_err(|e| AppError::Internal(e.to_string()))?
            {
                if req.prompt_none {
                    return fail(OAuthError::new(
                        ErrorCode::LoginRequired,
                        "the account's email address is not confirmed",
                    ))
                    .await;
                }
                let (csrf, cookie) = csrf_token(state, headers);
                let r = super::account::notice(
                    state,
                    StatusCode::FORBIDDEN,
                    "confirm_first",
                    user.username.as_str(),
                    user.email.as_ref().map(|e| e.as_str()).unwrap_or(""),
                    id,
                    &csrf,
                )?;
                return Ok(with_cookie(r, cookie));
            }
            if !provider::consented(state, &req, &client, &session.user_id).await? {
                return if req.prompt_none {
                    fail(OAuthError::new(ErrorCode::ConsentRequired, "consent is needed")).await
                } else {
                    Ok(Redirect::to(&format!("/consent?req={id}")).into_response())
                };
            }
            state.store.delete_auth_request(id).await?;
            let params = match provider::issue_authorization(state, &req, &client, &session, &outcome).await {
                Ok(p) => p,
                Err(e) => return Ok(authorize_error(state, client.dynamic, &req.target, &e)),
            };
            Ok(deliver(authorize::deliver(
                &req.target,
                &state.settings.issuer,
                params,
            )))
        }
    }
}

/// An authorization error: sent back to the client's redirect URI, except for dynamically
/// registered clients, whose redirect URIs nobody vouched for: the error is shown as a page, so the
/// authorization endpoint cannot serve as an open redirector (RFC 9700 4.11.2).
pub(crate) fn authorize_error(
    state: &AppState,
    dynamic: bool,
    target: &authorize::RedirectTarget,
    e: &OAuthError,
) -> Response {
    if dynamic {
        return AppError::Page(
            StatusCode::BAD_REQUEST,
            format!(
                "The application's request could not be completed ({}: {}).",
                e.error.as_str(),
                e.description
            ),
        )
        .into_response();
    }
    deliver(authorize::deliver_error(target, &state.settings.issuer, e))
}

/// A pending login and, for an authorization request, its client.
pub(crate) async fn load_pending(state: &AppState, id: &str) -> Result<(Pending, Option<Client>), AppError> {
    let pending = login::load(state, id).await?;
    let client = match &pending.req {
        Some(r) => Some(state.store.client(&r.client_id).await?.ok_or_else(|| {
            AppError::Page(
                StatusCode::BAD_REQUEST,
                "The application of this sign-in no longer exists.".into(),
            )
        })?),
        None => None,
    };
    Ok((pending, client))
}

#[derive(Debug, Deserialize)]
pub struct ReqQuery {
    pub(crate) req: Option<String>,
}

pub async fn resume(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ReqQuery>,
) -> Result<Response, AppError> {
    let id = q.req.unwrap_or_default();
    let (pending, client) = load_pending(&state, &id).await?;
    match client {
        Some(client) => proceed(&state, &headers, &id, pending, client).await,
        None => Ok(Redirect::to(pending.return_to.as_deref().unwrap_or("/account")).into_response()),
    }
}

/// A CSRF token: reuses the browser's cookie if it has one, else makes one and sets it.
pub(crate) fn csrf_token(state: &AppState, headers: &HeaderMap) -> (String, Option<String>) {
    let name = cookies::name(cookies::CSRF, state.settings.secure_cookies());
    match cookies::get(headers, &name).filter(|v| v.len() >= 32) {
        Some(v) => (v, None),
        None => {
            let v = random_token(32);
            let cookie = cookies::set(&name, &v, None, state.settings.secure_cookies(), "Strict");
            (v, Some(cookie))
        }
    }
}

pub(crate) fn check_csrf(
    state: &AppState,
    headers: &HeaderMap,
    form_value: Option<&String>,
) -> Result<(), AppError> {
    let name = cookies::name(cookies::CSRF, state.settings.secure_cookies());
    let cookie = cookies::get(headers, &name).unwrap_or_default();
    let ok =
        form_value.is_some_and(|f| !cookie.is_empty() && constant_time_eq(f.as_bytes(), cookie.as_bytes()));
    // A cross-site form post also shows itself in Origin, which must be exactly ours (not a prefix
    // of the issuer, such as http://localhost:80 for http://localhost:8080, and not "null").
    let origin_ok = headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .is_none_or(|o| o == state.settings.issuer_origin());
    if ok && origin_ok {
        Ok(())
    } else {
        Err(AppError::Page(
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from this site. Reload the page and try again.".into(),
        ))
    }
}

pub(crate) fn with_cookie(mut r: Response, cookie: Option<String>) -> Response {
    if let Some(c) = cookie
        && let Ok(v) = HeaderValue::from_str(&c)
    {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// The content security policy of pages without scripts.
pub(crate) const PAGE_CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'";

/// An HTML page with the headers every page of ours carries (no caching, no framing, a CSP) and the
/// given cookies.
pub(crate) fn secure_html(
    status: StatusCode,
    body: String,
    csp: impl Into<std::borrow::Cow<'static, str>>,
    cookies_to_set: impl IntoIterator<Item = String>,
) -> Response {
    let mut r = (status, Html(body)).into_response();
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    let csp = match csp.into() {
        std::borrow::Cow::Borrowed(c) => HeaderValue::from_static(c),
        std::borrow::Cow::Owned(c) => {
            HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(PAGE_CSP))
        }
    };
    h.insert("content-security-policy", csp);
    cookies_to_set.into_iter().fold(r, |r, c| with_cookie(r, Some(c)))
}

pub(crate) fn html_page(status: StatusCode, body: String, cookie: Option<String>) -> Response {
    secure_html(status, body, PAGE_CSP, cookie)
}

/// The CSP of a page whose form ends, through redirects, at a client's redirect URI (login and consent
/// during an authorization request): browsers apply `form-action` to every redirect that follows a form
/// submission, so the client's origin (or, for a native app's private-use URI, its scheme) is allowed.
pub(crate) fn page_csp_to(redirect_uri: Option<&str>) -> std::borrow::Cow<'static, str> {
    let source = redirect_uri.and_then(|u| url::Url::parse(u).ok()).and_then(|u| {
        let origin = u.origin();
        if origin.is_tuple() {
            Some(origin.ascii_serialization())
        } else if u
            .scheme()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            Some(format!("{}:", u.scheme()))
        } else {
            None
        }
    });
    match source {
        Some(s) => format!(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' {s}; frame-ancestors 'none'"
        )
        .into(),
        None => PAGE_CSP.into(),
    }
}

/// Whether the password page offers face login as a first factor.
fn face_first(state: &AppState) -> bool {
    login::site_policy(state).face == facegate_core::login::FaceRole::Login
}

/// Whether the login page offers the sign-up page (open sign-up only: invitations carry their link).
fn signup_open(state: &AppState) -> bool {
    state.settings.accounts.signup == crate::server::settings::SignupMode::Open
}

/// The username a pending login is about (a step-up or second factor), if it names one.
async fn bound_username(state: &AppState, p: &Pending) -> Result<Option<String>, AppError> {
    Ok(match &p.txn.user_id {
        Some(u) => state
            .store
            .user(u)
            .await?
            .map(|u| u.username.as_str().to_string()),
        None => None,
    })
}

pub async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ReqQuery>,
) -> Result<Response, AppError> {
    let (csrf, cookie) = csrf_token(&state, &headers);
    let req = q.req.filter(|r| !r.is_empty());
    let (client_name, hint, redirect_uri) = match &req {
        Some(id) => {
            let (p, c) = load_pending(&state, id).await?;
            let hint = match bound_username(&state, &p).await? {
                Some(u) => u,
                None => p
                    .req
                    .as_ref()
                    .and_then(|r| r.login_hint.clone())
                    .unwrap_or_default(),
            };
            (c.map(|c| c.name), hint, p.redirect_uri().map(String::from))
        }
        None => (None, String::new(), None),
    };
    Ok(secure_html(
        StatusCode::OK,
        html::login(
            req.as_deref(),
            &csrf,
            client_name.as_deref(),
            &hint,
            None,
            face_first(&state),
            signup_open(&state),
        ),
        page_csp_to(redirect_uri.as_deref()),
        cookie,
    ))
}

pub async fn login_submit(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm,
) -> Result<Response, AppError> {
    // Every password login belongs to a pending login: the request's, or a new one for the account
    // pages. The policy, not this handler, decides whether a password is enough.
    let (id, pending, client_name) = match form.get("req").filter(|r| !r.is_empty()) {
        Some(id) => {
            let (p, c) = load_pending(&state, id).await?;
            (id.clone(), p, c.map(|c| c.name))
        }
        // Stored only once the password is right: failed attempts leave nothing behind.
        None => (String::new(), Pending::for_account("/account"), None),
    };
    let csp = page_csp_to(pending.redirect_uri());
    let username = form
        .get("username")
        .map(|u| u.trim().to_lowercase())
        .unwrap_or_default();
    let password = form.get("password").cloned().unwrap_or_default();
    let (csrf, _) = csrf_token(&state, &headers);
    let retry = |msg: &str, status| {
        secure_html(
            status,
            html::login(
                Some(&id).filter(|i| !i.is_empty()).map(String::as_str),
                &csrf,
                client_name.as_deref(),
                &username,
                Some(msg),
                face_first(&state),
                signup_open(&state),
            ),
            csp.clone(),
            None,
        )
    };

    let keys = facegate_core::throttle::login_keys("pwd", &ip, None, Some(&username));
    // The attempt is counted before the password is checked, so parallel guesses all count.
    if let Err(wait) = state.login_guard.begin(&keys).await {
        let secs = wait.as_secs().max(1);
        let mut r = retry(
            &format!("Too many attempts. Try again in {secs} seconds."),
            StatusCode::TOO_MANY_REQUESTS,
        );
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Ok(r);
    }
    let found = state.store.user_with_password(&username).await?;
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), hash),
        None => (None, None),
    };
    // Unknown accounts and accounts without a password cost the same Argon2 work as real ones.
    let verified = match login::verify_password(&state, password, hash).await {
        Ok(v) => v,
        Err(retry_after) => {
            // A busy server is no guess: the attempt's count is given back.
            state.login_guard.refund(&keys).await;
            let mut r = retry(
                "The server is busy. Try again in a moment.",
                StatusCode::SERVICE_UNAVAILABLE,
            );
            if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return Ok(r);
        }
    };
    let known = user.as_ref().map(|u| u.id.clone());
    let user = user.filter(|_| verified);
    let Some(user) = user else {
        state.login_guard.end(&keys, false).await;
        state
            .audit(
                Event::new(Kind::Login, Outcome::Failed)
                    .user(known.as_deref())
                    .client(pending.req.as_ref().map(|r| r.client_id.as_str()))
                    .ip(Some(&ip))
                    .detail("pwd"),
            )
            .await;
        tracing::info!(event = "login_failed", method = "pwd", "failed password login");
        return Ok(retry(
            "The username or password is not right.",
            StatusCode::UNAUTHORIZED,
        ));
    };
    let mut pending = pending;
    let device = login::device_of(&state, &headers);
    if pending
        .txn
        .record(
            &user.id,
            facegate_core::login::Factor::new(Method::Password, now(), device),
        )
        .is_err()
    {
        // The password of another account than the one this login is about.
        state.login_guard.end(&keys, false).await;
        state
            .audit(
                Event::new(Kind::Login, Outcome::Refused)
                    .user(Some(&user.id))
                    .ip(Some(&ip))
                    .detail("pwd: another account"),
            )
            .await;
        return Ok(retry(
            "This sign-in is for another account. Start again from the application.",
            StatusCode::FORBIDDEN,
        ));
    }
    state.login_guard.end(&keys, true).await;
    state
        .audit(
            Event::new(Kind::Login, Outcome::Ok)
                .user(Some(&user.id))
                .client(pending.req.as_ref().map(|r| r.client_id.as_str()))
                .ip(Some(&ip))
                .detail("pwd"),
        )
        .await;
    tracing::info!(event = "login", method = "pwd", user = %user.id, "password login");
    let id = if id.is_empty() {
        login::create(&state, &pending).await?
    } else {
        id
    };
    let (next, cookie) = login::advance(&state, &headers, &id, pending).await?;
    Ok(with_cookie(Redirect::to(&next).into_response(), cookie))
}

pub async fn consent_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ReqQuery>,
) -> Result<Response, AppError> {
    let id = q.req.unwrap_or_default();
    let (pending, client) = load_pending(&state, &id).await?;
    let (Some(req), Some(client)) = (&pending.req, client) else {
        return Err(AppError::Page(
            StatusCode::BAD_REQUEST,
            "Nothing to consent to.".into(),
        ));
    };
    if current_session(&state, &headers).await.is_none() {
        return Ok(Redirect::to(&format!("/login?req={id}")).into_response());
    }
    let (csrf, cookie) = csrf_token(&state, &headers);
    let scopes: Vec<&str> = req.scope.iter().collect();
    Ok(secure_html(
        StatusCode::OK,
        html::consent(&id, &csrf, &client.name, &scopes),
        page_csp_to(Some(&req.target.redirect_uri)),
        cookie,
    ))
}

pub async fn consent_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm,
) -> Result<Response, AppError> {
    let id = form.get("req").cloned().unwrap_or_default();
    let (mut pending, client) = load_pending(&state, &id).await?;
    let (Some(req), Some(client)) = (pending.req.as_mut(), client) else {
        return Err(AppError::Page(
            StatusCode::BAD_REQUEST,
            "Nothing to consent to.".into(),
        ));
    };
    let Some((session, _)) = current_session(&state, &headers).await else {
        return Ok(Redirect::to(&format!("/login?req={id}")).into_response());
    };
    if form.get("decision").map(String::as_str) != Some("allow") {
        state.store.delete_auth_request(&id).await?;
        let e = OAuthError::new(ErrorCode::AccessDenied, "the person declined");
        return Ok(deliver(authorize::deliver_error(
            &req.target,
            &state.settings.issuer,
            &e,
        )));
    }
    provider::record_consent(&state, &session.user_id, &client.client_id, &req.scope).await?;
    state
        .audit(
            Event::new(Kind::Consent, Outcome::Ok)
                .user(Some(&session.user_id))
                .client(Some(&client.client_id)),
        )
        .await;
    // Consent given now satisfies prompt=consent for this request.
    req.prompt_consent = false;
    proceed(&state, &headers, &id, pending, client).await
}

/// RP-initiated logout (OIDC RP-Initiated Logout 1.0). Redirects only to a post_logout_redirect_uri
/// registered for the client named by a valid id_token_hint or client_id.
///
/// A logout is carried out at once only when it is evidently wanted: with a valid `id_token_hint`
/// for the person signed in, or as a POST of our own confirmation form (CSRF-checked). Anything else
/// (a bare link, which any site can make a browser follow) gets a page asking the person to confirm.
/// A hint for someone other than the person signed in is refused and the session is left alone.
/// Ending a session also revokes the refresh tokens issued in it, unless
/// `FACEGATE_LOGOUT_REVOKES_REFRESH=0`.
pub async fn logout(
    State(state): State<AppState>,
    method: axum::http::Method,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let mut all = pairs;
    all.extend(super::form_pairs(&headers, &body));
    let params = page_form(&all)?;
    let hinted = params
        .get("id_token_hint")
        .and_then(|h| crate::server::logout_hint(&state, h));
    let client_id = match (&hinted, params.get("client_id")) {
        (Some((h, _)), Some(c)) if h != c => {
            return Err(AppError::Page(
                StatusCode::BAD_REQUEST,
                "id_token_hint and client_id disagree.".into(),
            ));
        }
        (Some((h, _)), _) => Some(h.clone()),
        (None, c) => c.cloned(),
    };
    let client = match &client_id {
        Some(id) => state.store.client(id).await?,
        None => None,
    };
    let session = current_session(&state, &headers).await;
    if let Some((session, hash)) = &session {
        if let Some((_, sub)) = &hinted {
            let same = client
                .as_ref()
                .is_some_and(|c| provider::subject_for(&state, c, &session.user_id) == *sub);
            if !same {
                return Err(AppError::Page(
                    StatusCode::BAD_REQUEST,
                    "This sign-out request is for a different account than the one signed in here, so nobody was signed out.".into(),
                ));
            }
        }
        let confirmed = hinted.is_some()
            || (method == axum::http::Method::POST
                && params.contains_key("confirm")
                && check_csrf(&state, &headers, params.get("csrf")).is_ok());
        if !confirmed {
            let (csrf, cookie) = csrf_token(&state, &headers);
            let carry: Vec<(&str, &str)> = ["post_logout_redirect_uri", "client_id", "state"]
                .iter()
                .filter_map(|k| params.get(*k).map(|v| (*k, v.as_str())))
                .collect();
            return Ok(html_page(
                StatusCode::OK,
                html::logout_confirm(&csrf, client.as_ref().map(|c| c.name.as_str()), &carry),
                cookie,
            ));
        }
        state.store.delete_session(hash).await?;
        // Back-Channel Logout 1.0: the clients of this session are told, in the background.
        crate::server::backchannel::notify(&state, &session.sid);
        if state.settings.logout_revokes_refresh {
            state
                .store
                .revoke_session_refresh_tokens(&session.sid, now())
                .await?;
        }
    }
    let secure = state.settings.secure_cookies();
    let clear = cookies::set(
        &cookies::name(cookies::SESSION, secure),
        "",
        Some(0),
        secure,
        "Lax",
    );
    if let Some(uri) = params.get("post_logout_redirect_uri") {
        if client.is_some_and(|c| c.has_post_logout_redirect_uri(uri)) {
            let mut url = url::Url::parse(uri).map_err(|_| {
                AppError::Page(StatusCode::BAD_REQUEST, "bad post_logout_redirect_uri".into())
            })?;
            if let Some(s) = params.get("state") {
                url.query_pairs_mut().append_pair("state", s);
            }
            return Ok(with_cookie(
                Redirect::to(url.as_str()).into_response(),
                Some(clear),
            ));
        }
        return Ok(html_page(
            StatusCode::BAD_REQUEST,
            html::message(
                "Signed out",
                "You are signed out. The address to return to is not registered, so you were not sent back.",
            ),
            Some(clear),
        ));
    }
    Ok(html_page(
        StatusCode::OK,
        html::message("Signed out", "You are signed out of facegate."),
        Some(clear),
    ))
}

pub async fn home(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    let (csrf, cookie) = csrf_token(&state, &headers);
    let body = match current_session(&state, &headers).await {
        Some((s, _)) => {
            let user = state.store.user(&s.user_id).await?;
            let name = user.map(|u| u.username.as_str().to_string()).unwrap_or_default();
            html::page(
                "facegate",
                &format!(
                    "<h1>facegate</h1><p>You are signed in as <strong>{}</strong>.</p><form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"confirm\" value=\"1\"><button type=\"submit\">Sign out</button></form>",
                    html::escape(&name),
                    html::escape(&csrf)
                ),
            )
        }
        None => html::page(
            "facegate",
            "<h1>facegate</h1><p>Self-hosted sign-in. Applications send you here to sign in.</p><p><a href=\"/login\">Sign in</a></p>",
        ),
    };
    Ok(html_page(StatusCode::OK, body, cookie))
}
