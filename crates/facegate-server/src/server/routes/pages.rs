//! What a person's browser sees: the authorization endpoint, login, consent and logout.
//!
//! A validated authorization request is kept server-side (30 minutes) while the person logs in and
//! consents; the browser carries only its random id. Forms carry a CSRF token equal to a SameSite=Strict
//! cookie, compared in constant time.

use std::net::SocketAddr;
use std::time::Instant;

use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use facegate_core::secret::{constant_time_eq, random_token, storage_hash};
use facegate_oidc::authorize::{self, AuthRequest, AuthorizeError, Delivery};
use facegate_oidc::client::Client;
use facegate_oidc::{ErrorCode, OAuthError};
use facegate_store::StoredSession;
use serde::{Deserialize, Serialize};

use super::page_form;
use crate::server::error::AppError;
use crate::server::provider::{self, Next, Session};
use crate::server::state::AppState;
use crate::server::{cookies, html, now};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Pending {
    pub(crate) req: AuthRequest,
    pub(crate) created_at: i64,
    /// Set when the person signed in for this request (what prompt=login and max_age ask for).
    #[serde(default)]
    pub(crate) logged_in: bool,
    /// The account whose password was right, while its face (second factor) is still to be checked.
    #[serde(default)]
    pub(crate) pwd_user: Option<String>,
}

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

pub(crate) async fn current_session(state: &AppState, headers: &HeaderMap) -> Option<(Session, String)> {
    let raw = cookies::get(
        headers,
        &cookies::name(cookies::SESSION, state.settings.secure_cookies()),
    )?;
    let hash = storage_hash(&raw);
    let s = state.store.session(&hash, now()).await.ok()??;
    Some((Session::from_stored(s), hash))
}

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
    let id = random_token(24);
    let pending = Pending {
        req,
        created_at: now(),
        logged_in: false,
        pwd_user: None,
    };
    let json = serde_json::to_string(&pending).map_err(|e| AppError::Internal(e.to_string()))?;
    state
        .store
        .put_auth_request(&id, &json, now() + state.settings.lifetimes.auth_request)
        .await?;
    proceed(&state, &headers, &id, pending, client).await
}

/// Login, consent, or the response — whichever the request and session call for.
async fn proceed(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    pending: Pending,
    client: Client,
) -> Result<Response, AppError> {
    let session = current_session(state, headers).await.map(|(s, _)| s);
    let fresh = pending.logged_in && session.is_some();
    let req = &pending.req;
    match provider::decide(state, req, &client, session, fresh).await? {
        Next::Login => Ok(Redirect::to(&format!("/login?req={id}")).into_response()),
        Next::Consent => Ok(Redirect::to(&format!("/consent?req={id}")).into_response()),
        Next::Error(e) => {
            state.store.delete_auth_request(id).await?;
            Ok(authorize_error(state, client.dynamic, &req.target, &e))
        }
        Next::Issue(session) => {
            state.store.delete_auth_request(id).await?;
            let params = match provider::issue_authorization(state, req, &client, &session).await {
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

pub(crate) async fn load_pending(state: &AppState, id: &str) -> Result<(Pending, Client), AppError> {
    let expired = || {
        AppError::Page(StatusCode::BAD_REQUEST, "This sign-in request has expired or was already used. Go back to the application and start again.".into())
    };
    let json = state.store.auth_request(id, now()).await?.ok_or_else(expired)?;
    let pending: Pending = serde_json::from_str(&json).map_err(|_| expired())?;
    let client = state
        .store
        .client(&pending.req.client_id)
        .await?
        .ok_or_else(expired)?;
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
    proceed(&state, &headers, &id, pending, client).await
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
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
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

pub async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ReqQuery>,
) -> Result<Response, AppError> {
    let (csrf, cookie) = csrf_token(&state, &headers);
    let (client_name, hint, redirect_uri) = match &q.req {
        Some(id) => {
            let (p, c) = load_pending(&state, id).await?;
            (
                Some(c.name),
                p.req.login_hint.unwrap_or_default(),
                Some(p.req.target.redirect_uri),
            )
        }
        None => (None, String::new(), None),
    };
    Ok(secure_html(
        StatusCode::OK,
        html::login(
            q.req.as_deref(),
            &csrf,
            client_name.as_deref(),
            &hint,
            None,
            state.face.is_some(),
        ),
        page_csp_to(redirect_uri.as_deref()),
        cookie,
    ))
}

pub(crate) fn client_ip(state: &AppState, headers: &HeaderMap, addr: SocketAddr) -> String {
    if state.settings.trust_proxy
        && let Some(last) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
    {
        return last.trim().to_string();
    }
    addr.ip().to_string()
}

pub async fn login_submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let form = page_form(&pairs)?;
    check_csrf(&state, &headers, form.get("csrf"))?;
    let req = form.get("req").filter(|r| !r.is_empty()).cloned();
    let pending = match &req {
        Some(id) => Some(load_pending(&state, id).await?),
        None => None,
    };
    let client_name = pending.as_ref().map(|(_, c)| c.name.clone());
    let csp = page_csp_to(pending.as_ref().map(|(p, _)| p.req.target.redirect_uri.as_str()));
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
                req.as_deref(),
                &csrf,
                client_name.as_deref(),
                &username,
                Some(msg),
                state.face.is_some(),
            ),
            csp.clone(),
            None,
        )
    };

    let ip_key = format!("ip:{}", client_ip(&state, &headers, addr));
    let user_key = format!("user:{username}");
    let t = Instant::now();
    for key in [&ip_key, &user_key] {
        if let Err(wait) = state.login_throttle.check(key, t) {
            let mut r = retry(
                &format!(
                    "Too many attempts. Try again in {} seconds.",
                    wait.as_secs().max(1)
                ),
                StatusCode::TOO_MANY_REQUESTS,
            );
            if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return Ok(r);
        }
    }
    let found = state.store.user_with_password(&username).await?;
    let user = match &found {
        Some((user, Some(hash))) if facegate_core::password::verify(&password, hash) => Some(user.clone()),
        Some(_) => None,
        None => {
            facegate_core::password::verify_dummy(&password);
            None
        }
    };
    let Some(user) = user else {
        state.login_throttle.fail(&ip_key, t);
        state.login_throttle.fail(&user_key, t);
        tracing::info!(event = "login_failed", method = "pwd", "failed password login");
        return Ok(retry(
            "The username or password is not right.",
            StatusCode::UNAUTHORIZED,
        ));
    };
    state.login_throttle.succeed(&user_key);
    tracing::info!(event = "login", method = "pwd", user = %user.id, "password login");

    // Second factor: people with an enrolled face continue with a face check.
    if let (Some(face), Some(id), Some((p, _))) = (&state.face, &req, &pending)
        && face.settings.second_factor
        && !state.store.faces_of(&user.id).await?.is_empty()
    {
        let mut p = p.clone();
        p.pwd_user = Some(user.id.clone());
        let json = serde_json::to_string(&p).map_err(|e| AppError::Internal(e.to_string()))?;
        state.store.update_auth_request(id, &json).await?;
        return Ok(Redirect::to(&format!("/login/face?req={id}")).into_response());
    }
    let pending = req.zip(pending.map(|(p, _)| p));
    let (next, cookie) =
        complete_login(&state, &user.id, vec!["pwd".into()], "urn:facegate:pwd", pending).await?;
    Ok(with_cookie(Redirect::to(&next).into_response(), Some(cookie)))
}

/// Starts a login session for `user_id` and marks the pending request (if any) as logged in.
/// Returns where the browser goes next and the session cookie.
pub(crate) async fn complete_login(
    state: &AppState,
    user_id: &str,
    amr: Vec<String>,
    acr: &str,
    pending: Option<(String, Pending)>,
) -> Result<(String, String), AppError> {
    let raw = random_token(32);
    let auth_time = now();
    state
        .store
        .create_session(&StoredSession {
            id_hash: storage_hash(&raw),
            user_id: user_id.to_string(),
            auth_time,
            amr,
            acr: Some(acr.to_string()),
            expires_at: auth_time + state.settings.lifetimes.session,
        })
        .await?;
    let secure = state.settings.secure_cookies();
    let cookie = cookies::set(
        &cookies::name(cookies::SESSION, secure),
        &raw,
        None,
        secure,
        "Lax",
    );
    let next = match pending {
        Some((id, mut p)) => {
            p.logged_in = true;
            let json = serde_json::to_string(&p).map_err(|e| AppError::Internal(e.to_string()))?;
            state.store.update_auth_request(&id, &json).await?;
            format!("/authorize/resume?req={id}")
        }
        None => "/account".to_string(),
    };
    Ok((next, cookie))
}

pub async fn consent_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ReqQuery>,
) -> Result<Response, AppError> {
    let id = q.req.unwrap_or_default();
    let (pending, client) = load_pending(&state, &id).await?;
    if current_session(&state, &headers).await.is_none() {
        return Ok(Redirect::to(&format!("/login?req={id}")).into_response());
    }
    let (csrf, cookie) = csrf_token(&state, &headers);
    let scopes: Vec<&str> = pending.req.scope.iter().collect();
    Ok(secure_html(
        StatusCode::OK,
        html::consent(&id, &csrf, &client.name, &scopes),
        page_csp_to(Some(&pending.req.target.redirect_uri)),
        cookie,
    ))
}

pub async fn consent_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let form = page_form(&pairs)?;
    check_csrf(&state, &headers, form.get("csrf"))?;
    let id = form.get("req").cloned().unwrap_or_default();
    let (pending, client) = load_pending(&state, &id).await?;
    let Some((session, _)) = current_session(&state, &headers).await else {
        return Ok(Redirect::to(&format!("/login?req={id}")).into_response());
    };
    if form.get("decision").map(String::as_str) != Some("allow") {
        state.store.delete_auth_request(&id).await?;
        let e = OAuthError::new(ErrorCode::AccessDenied, "the person declined");
        return Ok(deliver(authorize::deliver_error(
            &pending.req.target,
            &state.settings.issuer,
            &e,
        )));
    }
    provider::record_consent(&state, &session.user_id, &client.client_id, &pending.req.scope).await?;
    // Consent given now satisfies prompt=consent for this request.
    let mut pending = pending;
    pending.req.prompt_consent = false;
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
