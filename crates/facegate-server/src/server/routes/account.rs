//! The account pages: sign-up, email confirmation, forgotten password, and the account page with its
//! actions (profile, password, address, faces, sessions, connected applications, deletion). Pages
//! come from the templates in `templates/`; the work is done by `server::accounts`.
//!
//! Changing the password or the address, adding faces and deleting the account need a recent sign-in
//! with the account's strongest factor (the same rule as enrolment, `/account/confirm`).

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use facegate_core::audit::{Event, Kind, Outcome};
use facegate_core::throttle::AttemptGuard;
use serde::Deserialize;

use super::extract::{ClientAddr, CsrfForm};
use super::face::{ENROL_REAUTH_SECS, date, face_html, new_device_cookie};
use super::pages::{PAGE_CSP, csrf_token, current_session, secure_html};
use crate::server::accounts::{self, AccountError};
use crate::server::error::AppError;
use crate::server::face::Liveness;
use crate::server::settings::SignupMode;
use crate::server::state::AppState;
use crate::server::{cookies, html, now};

fn render(t: &impl Template) -> Result<String, AppError> {
    t.render()
        .map_err(|e| AppError::Internal(format!("template: {e}")))
}

fn page(status: StatusCode, body: String, cookie: Option<String>) -> Response {
    secure_html(status, body, PAGE_CSP, cookie)
}

#[derive(Template)]
#[template(path = "notice.html")]
struct Notice<'a> {
    site: &'a str,
    kind: &'a str,
    username: &'a str,
    detail: &'a str,
    req: &'a str,
    csrf: &'a str,
}

/// A page of `notice.html` (its words are in the template, by `kind`).
pub(crate) fn notice(
    state: &AppState,
    status: StatusCode,
    kind: &str,
    username: &str,
    detail: &str,
    req: &str,
    csrf: &str,
) -> Result<Response, AppError> {
    Ok(page(
        status,
        render(&Notice {
            site: &state.settings.accounts.site_name,
            kind,
            username,
            detail,
            req,
            csrf,
        })?,
        None,
    ))
}

fn throttle_keys(what: &str, ip: &str) -> Vec<String> {
    vec![format!("{what}:ip:{ip}")]
}

/// The answer when an address has used up its budget of a form that sends mail or opens accounts
/// (the login throttle's rules: a few, then waits that grow). Checking spends nothing: see [`spend`].
async fn throttled(state: &AppState, what: &str, ip: &str) -> Option<Response> {
    let wait = state.login_guard.waiting(&throttle_keys(what, ip)).await?;
    let secs = wait.as_secs().max(1);
    let mut r = page(
        StatusCode::TOO_MANY_REQUESTS,
        html::message(
            "Too many attempts",
            &format!("Too many attempts from your address. Try again in {secs} seconds."),
        ),
        None,
    );
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    Some(r)
}

/// Counts one use that cost something (a mail sent, an account opened, a name found taken).
async fn spend(state: &AppState, what: &str, ip: &str) {
    state.login_guard.fail(&throttle_keys(what, ip)).await;
}

// ---------------------------------------------------------------- sign-up

#[derive(Template)]
#[template(path = "signup.html")]
struct Signup<'a> {
    site: &'a str,
    csrf: &'a str,
    invite: &'a str,
    req: &'a str,
    username: &'a str,
    email: &'a str,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct SignupQuery {
    invite: Option<String>,
    req: Option<String>,
}

fn signup_closed(state: &AppState, invite: Option<&str>) -> bool {
    match state.settings.accounts.signup {
        SignupMode::Off => true,
        SignupMode::Open => false,
        SignupMode::Invite => invite.is_none_or(str::is_empty),
    }
}

pub async fn signup_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<SignupQuery>,
) -> Result<Response, AppError> {
    if signup_closed(&state, q.invite.as_deref()) {
        let invite = if state.settings.accounts.signup == SignupMode::Invite {
            "invite"
        } else {
            ""
        };
        return notice(&state, StatusCode::NOT_FOUND, "signup_off", "", invite, "", "");
    }
    let (csrf, cookie) = csrf_token(&state, &headers);
    let body = render(&Signup {
        site: &state.settings.accounts.site_name,
        csrf: &csrf,
        invite: q.invite.as_deref().unwrap_or(""),
        req: q.req.as_deref().unwrap_or(""),
        username: "",
        email: "",
        error: None,
    })?;
    Ok(page(StatusCode::OK, body, cookie))
}

pub async fn signup_submit(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm,
) -> Result<Response, AppError> {
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    if signup_closed(&state, Some(get("invite"))) {
        return notice(&state, StatusCode::NOT_FOUND, "signup_off", "", "", "", "");
    }
    if let Some(r) = throttled(&state, "signup", &ip).await {
        return Ok(r);
    }
    let (csrf, _) = csrf_token(&state, &headers);
    let req = get("req");
    let result = accounts::signup(
        &state,
        get("username"),
        get("email"),
        get("password"),
        Some(get("invite")),
        &ip,
    )
    .await;
    if matches!(
        result,
        Ok(_) | Err(AccountError::UsernameTaken | AccountError::BadInvite)
    ) {
        spend(&state, "signup", &ip).await;
    }
    match result {
        Ok(user) => notice(
            &state,
            StatusCode::CREATED,
            "signup_sent",
            user.username.as_str(),
            user.email.as_ref().map(|e| e.as_str()).unwrap_or(""),
            req,
            "",
        ),
        Err(e) => {
            let status = match e {
                AccountError::Internal(_) => return Err(AppError::Internal(e.to_string())),
                AccountError::UsernameTaken => StatusCode::CONFLICT,
                AccountError::Busy => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::BAD_REQUEST,
            };
            let body = render(&Signup {
                site: &state.settings.accounts.site_name,
                csrf: &csrf,
                invite: get("invite"),
                req,
                username: get("username"),
                email: get("email"),
                error: Some(capitalised(&e.to_string())),
            })?;
            Ok(page(status, body, None))
        }
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => format!("{}{}.", f.to_uppercase(), c.as_str().trim_end_matches('.')),
        None => String::new(),
    }
}

// ---------------------------------------------------------------- confirming an address

#[derive(Template)]
#[template(path = "verify.html")]
struct Verify<'a> {
    site: &'a str,
    csrf: &'a str,
    token: &'a str,
    usable: bool,
}

#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

/// GET /account/verify?token=: a page with a button. The link is used up only by the button's
/// POST, so a mail scanner that follows links does not spend it.
pub async fn verify_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
) -> Result<Response, AppError> {
    let token = q.token.unwrap_or_default();
    let h = facegate_core::secret::storage_hash(&token);
    let t = now();
    let usable = !token.is_empty()
        && (state.store.email_link_usable(&h, accounts::CONFIRM, t).await?
            || state
                .store
                .email_link_usable(&h, accounts::CHANGE_EMAIL, t)
                .await?);
    let (csrf, cookie) = csrf_token(&state, &headers);
    let body = render(&Verify {
        site: &state.settings.accounts.site_name,
        csrf: &csrf,
        token: &token,
        usable,
    })?;
    let status = if usable {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let mut r = page(status, body, cookie);
    // The token is in this page's address: it must not leak to other sites.
    r.headers_mut()
        .insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    Ok(r)
}

pub async fn verify_submit(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    CsrfForm(form): CsrfForm,
) -> Result<Response, AppError> {
    let token = form.get("token").cloned().unwrap_or_default();
    match accounts::confirm_email(&state, &token, &ip).await {
        Ok(user) => notice(
            &state,
            StatusCode::OK,
            "confirmed",
            user.username.as_str(),
            user.email.as_ref().map(|e| e.as_str()).unwrap_or(""),
            "",
            "",
        ),
        Err(AccountError::Internal(e)) => Err(AppError::Internal(e)),
        Err(e) => Ok(page(
            StatusCode::BAD_REQUEST,
            html::error(&capitalised(&e.to_string())),
            None,
        )),
    }
}

/// POST /account/verify/resend: the signed-in person asks for the confirmation link again.
pub async fn verify_resend(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm,
) -> Result<Response, AppError> {
    let user = match current_session(&state, &headers).await {
        Some((s, _)) => state.store.user(&s.user_id).await?,
        None => None,
    };
    let Some(user) = user else {
        return Ok(Redirect::to("/login").into_response());
    };
    if let Some(r) = throttled(&state, "mail", &ip).await {
        return Ok(r);
    }
    if !user.email_verified {
        spend(&state, "mail", &ip).await;
        accounts::send_confirmation(&state, &user)
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?;
    }
    match form.get("req").filter(|r| !r.is_empty()) {
        Some(req) => {
            let (csrf, _) = csrf_token(&state, &headers);
            notice(
                &state,
                StatusCode::OK,
                "confirm_first",
                user.username.as_str(),
                user.email.as_ref().map(|e| e.as_str()).unwrap_or(""),
                req,
                &csrf,
            )
        }
        None => Ok(Redirect::to("/account?notice=confirmation_sent").into_response()),
    }
}

// ---------------------------------------------------------------- forgotten password

#[derive(Template)]
#[template(path = "forgot.html")]
struct Forgot<'a> {
    site: &'a str,
    csrf: &'a str,
    error: Option<String>,
}

pub async fn forgot_page(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    let (csrf, cookie) = csrf_token(&state, &headers);
    let body = render(&Forgot {
        site: &state.settings.accounts.site_name,
        csrf: &csrf,
        error: None,
    })?;
    Ok(page(StatusCode::OK, body, cookie))
}

/// POST /password/forgot: the same answer whether or not an account has the address.
pub async fn forgot_submit(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    CsrfForm(form): CsrfForm,
) -> Result<Response, AppError> {
    if let Some(r) = throttled(&state, "mail", &ip).await {
        return Ok(r);
    }
    let email = form.get("email").cloned().unwrap_or_default();
    // Every request counts, whether or not the address has an account (or the count would tell).
    spend(&state, "mail", &ip).await;
    accounts::request_reset(&state, &email, &ip)
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    notice(&state, StatusCode::OK, "reset_sent", "", "", "", "")
}

#[derive(Template)]
#[template(path = "reset.html")]
struct Reset<'a> {
    site: &'a str,
    csrf: &'a str,
    token: &'a str,
    usable: bool,
    error: Option<String>,
}

pub async fn reset_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
) -> Result<Response, AppError> {
    let token = q.token.unwrap_or_default();
    let usable = !token.is_empty()
        && accounts::reset_link_usable(&state, &token)
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?;
    let (csrf, cookie) = csrf_token(&state, &headers);
    let body = render(&Reset {
        site: &state.settings.accounts.site_name,
        csrf: &csrf,
        token: &token,
        usable,
        error: None,
    })?;
    let mut r = page(
        if usable {
            StatusCode::OK
        } else {
            StatusCode::BAD_REQUEST
        },
        body,
        cookie,
    );
    r.headers_mut()
        .insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    Ok(r)
}

pub async fn reset_submit(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm,
) -> Result<Response, AppError> {
    let token = form.get("token").cloned().unwrap_or_default();
    let pw = form.get("password").cloned().unwrap_or_default();
    match accounts::reset_password(&state, &token, &pw, &ip).await {
        Ok(_) => {
            // Whoever was signed in in this browser is signed out too.
            let secure = state.settings.secure_cookies();
            let clear = cookies::set(
                &cookies::name(cookies::SESSION, secure),
                "",
                Some(0),
                secure,
                "Lax",
            );
            let r = notice(&state, StatusCode::OK, "reset_done", "", "", "", "")?;
            Ok(super::pages::with_cookie(r, Some(clear)))
        }
        Err(AccountError::Internal(e)) => Err(AppError::Internal(e)),
        Err(e) => {
            let (csrf, _) = csrf_token(&state, &headers);
            let usable = !matches!(e, AccountError::BadLink);
            let body = render(&Reset {
                site: &state.settings.accounts.site_name,
                csrf: &csrf,
                token: &token,
                usable,
                error: Some(capitalised(&e.to_string())),
            })?;
            Ok(page(StatusCode::BAD_REQUEST, body, None))
        }
    }
}

// ---------------------------------------------------------------- the account page

struct FaceRow {
    id: String,
    added: String,
    pack: String,
    measured: String,
}

struct SessionRow {
    sid: String,
    current: bool,
    signed_in: String,
    factors: String,
    ip: String,
    agent: String,
}

struct AppRow {
    client_id: String,
    name: String,
    scope: String,
    since: String,
}

struct EventRow {
    at: String,
    kind: String,
    result: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    site: &'a str,
    csrf: &'a str,
    notice: &'a str,
    error: Option<String>,
    username: &'a str,
    name: &'a str,
    email: &'a str,
    email_verified: bool,
    has_password: bool,
    recent: bool,
    face_enabled: bool,
    liveness: bool,
    capture_html: String,
    faces: Vec<FaceRow>,
    sessions: Vec<SessionRow>,
    apps: Vec<AppRow>,
    events: Vec<EventRow>,
}

#[derive(Debug, Deserialize)]
pub struct AccountQuery {
    notice: Option<String>,
}

pub async fn account(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<AccountQuery>,
) -> Result<Response, AppError> {
    account_page(
        &state,
        &headers,
        q.notice.as_deref().unwrap_or(""),
        None,
        StatusCode::OK,
    )
    .await
}

async fn account_page(
    state: &AppState,
    headers: &HeaderMap,
    notice: &str,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, AppError> {
    let Some((session, session_hash)) = current_session(state, headers).await else {
        return Ok(Redirect::to("/login").into_response());
    };
    let user = state
        .store
        .user(&session.user_id)
        .await?
        .ok_or_else(|| AppError::Internal("session of a deleted account".into()))?;
    let (csrf, csrf_cookie) = csrf_token(state, headers);
    let faces = state
        .store
        .faces_of(&user.id)
        .await?
        .iter()
        .map(|f| FaceRow {
            id: f.id.clone(),
            added: date(f.created_at),
            pack: f.pack.clone(),
            measured: match f.quality.get("eye_distance_px") {
                Some(eyes) => format!("eyes {} px apart, sharpness {}", eyes, f.quality["sharpness"]),
                None => f
                    .quality
                    .get("source")
                    .and_then(|s| s.as_str())
                    .unwrap_or("")
                    .to_string(),
            },
        })
        .collect();
    let recent = crate::server::login::recently_strong(state, &session, ENROL_REAUTH_SECS).await?;
    let liveness = state
        .face
        .as_ref()
        .is_some_and(|f| f.settings.liveness == Liveness::Required);
    let capture_html = if recent && state.face.is_some() {
        html::CaptureForm {
            endpoint: "/account/faces",
            check: Some("/face/check"),
            shots: if liveness { 1 } else { 3 },
            auto: false,
            hidden: &[("csrf", &csrf), ("purpose", "enrol")],
            extra: "",
            button: if liveness {
                "Start the check and add my face"
            } else {
                "Take 3 pictures"
            },
            liveness: liveness.then_some("/login/face/liveness"),
        }
        .render()
    } else {
        String::new()
    };
    let this_sid: String = session_hash.chars().take(22).collect();
    let sessions = state
        .store
        .sessions_of(&user.id, now())
        .await?
        .into_iter()
        .map(|s| SessionRow {
            current: s.sid == this_sid,
            signed_in: date(s.auth_time),
            factors: if s.amr.is_empty() {
                "—".into()
            } else {
                s.amr.join(" + ")
            },
            ip: s.ip.unwrap_or_default(),
            agent: s.user_agent.unwrap_or_default(),
            sid: s.sid,
        })
        .collect();
    let apps = state
        .store
        .connected_apps(&user.id)
        .await?
        .into_iter()
        .map(|(client_id, name, scope, since)| AppRow {
            client_id,
            name,
            scope: scope
                .split_whitespace()
                .map(|s| html::describe_scope(s).unwrap_or(s))
                .collect::<Vec<_>>()
                .join(" · "),
            since: date(since),
        })
        .collect();
    let events = state
        .store
        .audit_of(&user.id, 15)
        .await?
        .into_iter()
        .map(|(at, kind, result, detail)| EventRow {
            at: date(at),
            kind,
            result,
            detail: detail.unwrap_or_default(),
        })
        .collect();
    let has_password = state.store.password_hash(&user.id).await?.is_some();
    let body = render(&AccountPage {
        site: &state.settings.accounts.site_name,
        csrf: &csrf,
        notice,
        error,
        username: user.username.as_str(),
        name: user.name.as_deref().unwrap_or(""),
        email: user.email.as_ref().map(|e| e.as_str()).unwrap_or(""),
        email_verified: user.email_verified,
        has_password,
        recent,
        face_enabled: state.face.is_some(),
        liveness,
        capture_html,
        faces,
        sessions,
        apps,
        events,
    })?;
    // The enrolment's liveness check belongs to this browser, like a login's.
    let set: Vec<String> = csrf_cookie
        .into_iter()
        .chain(new_device_cookie(state, headers))
        .collect();
    Ok(face_html(status, body, set))
}

/// The signed-in person of an account form, with their session's storage hash and whether they
/// signed in recently with their strongest factor.
async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<(facegate_core::User, String, bool)>, AppError> {
    let Some((session, hash)) = current_session(state, headers).await else {
        return Ok(None);
    };
    let Some(user) = state.store.user(&session.user_id).await? else {
        return Ok(None);
    };
    let recent = crate::server::login::recently_strong(state, &session, ENROL_REAUTH_SECS).await?;
    Ok(Some((user, hash, recent)))
}

fn to_login() -> Response {
    Redirect::to("/login").into_response()
}

fn reauth() -> Response {
    Redirect::to("/account?notice=reauth").into_response()
}

fn account_error(e: AccountError) -> Result<String, AppError> {
    match e {
        AccountError::Internal(m) => Err(AppError::Internal(m)),
        e => Ok(capitalised(&e.to_string())),
    }
}

pub async fn profile(
    State(state): State<AppState>,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm,
) -> Result<Response, AppError> {
    let Some((user, _, _)) = signed_in(&state, &headers).await? else {
        return Ok(to_login());
    };
    let name: String = form
        .get("name")
        .map(|n| n.trim().chars().filter(|c| !c.is_control()).take(100).collect())
        .unwrap_or_default();
    state
        .store
        .set_name(&user.id, Some(name.as_str()).filter(|n| !n.is_empty()))
        .await?;
    Ok(Redirect::to("/account?notice=saved").into_response())
}

pub async fn change_password(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm,
) -> Result<Response, AppError> {
    let Some((user, hash, recent)) = signed_in(&state, &headers).await? else {
        return Ok(to_login());
    };
    if !recent {
        return Ok(reauth());
    }
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    match accounts::change_password(&state, &user, get("current"), get("new"), &hash, &ip).await {
        Ok(()) => Ok(Redirect::to("/account?notice=password_changed").into_response()),
        Err(e) => {
            let msg = account_error(e)?;
            account_page(&state, &headers, "", Some(msg), StatusCode::BAD_REQUEST).await
        }
    }
}

pub async fn change_email(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm,
) -> Result<Response, AppError> {
    let Some((user, _, recent)) = signed_in(&state, &headers).await? else {
        return Ok(to_login());
    };
    if !recent {
        return Ok(reauth());
    }
    if let Some(r) = throttled(&state, "mail", &ip).await {
        return Ok(r);
    }
    spend(&state, "mail", &ip).await;
    match accounts::change_email(&state, &user, form.get("email").map(String::as_str).unwrap_or("")).await {
        Ok(()) => Ok(Redirect::to("/account?notice=email_sent").into_response()),
        Err(e) => {
            let msg = account_error(e)?;
            account_page(&state, &headers, "", Some(msg), StatusCode::BAD_REQUEST).await
        }
    }
}

pub async fn end_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm,
) -> Result<Response, AppError> {
    let Some((user, _, _)) = signed_in(&state, &headers).await? else {
        return Ok(to_login());
    };
    let sid = form.get("sid").cloned().unwrap_or_default();
    if state.store.end_session_by_sid(&user.id, &sid).await? {
        crate::server::backchannel::notify(&state, &sid);
        state
            .audit(
                Event::new(Kind::SessionsEnded, Outcome::Ok)
                    .user(Some(&user.id))
                    .detail("one"),
            )
            .await;
    }
    Ok(Redirect::to("/account?notice=sessions_ended").into_response())
}

pub async fn end_other_sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
    CsrfForm(_): CsrfForm,
) -> Result<Response, AppError> {
    let Some((user, hash, _)) = signed_in(&state, &headers).await? else {
        return Ok(to_login());
    };
    let ended = state.store.end_sessions(&user.id, Some(&hash)).await?;
    for sid in &ended {
        crate::server::backchannel::notify(&state, sid);
    }
    state
        .audit(
            Event::new(Kind::SessionsEnded, Outcome::Ok)
                .user(Some(&user.id))
                .detail("others"),
        )
        .await;
    Ok(Redirect::to("/account?notice=sessions_ended").into_response())
}

pub async fn revoke_app(
    State(state): State<AppState>,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm,
) -> Result<Response, AppError> {
    let Some((user, _, _)) = signed_in(&state, &headers).await? else {
        return Ok(to_login());
    };
    let client_id = form.get("client_id").cloned().unwrap_or_default();
    if state.store.revoke_app(&user.id, &client_id, now()).await? {
        state
            .audit(
                Event::new(Kind::AppRevoked, Outcome::Ok)
                    .user(Some(&user.id))
                    .client(Some(&client_id)),
            )
            .await;
    }
    Ok(Redirect::to("/account?notice=app_revoked").into_response())
}

pub async fn delete_account(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm,
) -> Result<Response, AppError> {
    let Some((user, _, recent)) = signed_in(&state, &headers).await? else {
        return Ok(to_login());
    };
    if !recent {
        return Ok(reauth());
    }
    let typed = form
        .get("confirm")
        .map(|c| c.trim().to_lowercase())
        .unwrap_or_default();
    if typed != user.username.as_str() {
        return account_page(
            &state,
            &headers,
            "",
            Some("Type your username exactly to delete your account.".into()),
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    accounts::delete_account(&state, &user.id, "by the person", Some(&ip))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let secure = state.settings.secure_cookies();
    let clear = cookies::set(
        &cookies::name(cookies::SESSION, secure),
        "",
        Some(0),
        secure,
        "Lax",
    );
    let r = notice(&state, StatusCode::OK, "deleted", "", "", "", "")?;
    Ok(super::pages::with_cookie(r, Some(clear)))
}

/// Where a disabled account's sign-in ends.
pub async fn disabled(State(state): State<AppState>) -> Result<Response, AppError> {
    notice(&state, StatusCode::FORBIDDEN, "disabled", "", "", "", "")
}
