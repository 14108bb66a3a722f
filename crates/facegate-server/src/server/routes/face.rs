//! Face login, enrolment and the account page.
//!
//! Login modes: with a username, the photo is compared with that person's templates (1:1); without
//! one, with everyone's (1:N, threshold tightened with the gallery size), and an unknown face may open
//! a new account if the operator allows it; after a correct password, people with an enrolled face are
//! asked for it as a second factor. Liveness is required by default: until a liveness check passes,
//! a single photo does not log anyone in (FACEGATE_LIVENESS=off lifts that, for tests and kiosks).

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use facegate_core::audit::{Event, Kind, Outcome};
use facegate_core::face::{Attempt, EnrolRefusal, FaceError, FaceInput, LoginRefusal, TemplateSource};
use facegate_core::liveness::FrameRefusal;
use facegate_core::secret::random_token;
use facegate_core::throttle::AttemptGuard;
use serde_json::json;

use super::extract::{CaptureUpload, ClientAddr, CsrfForm, Device, capture_refusal};
use super::pages::{ReqQuery, secure_html};
use super::pages::{csrf_token, current_session, load_pending, with_cookie};
use crate::server::error::AppError;
use crate::server::face::{Faces, Liveness};
use crate::server::liveness::{LivenessError, Owner};
use crate::server::login::DEVICE;
use crate::server::state::AppState;
use crate::server::{cookies, html, now};
/// `acr` of a face login with a passed liveness check, and of one without (liveness off).
pub const ACR_FACE_LIVE: &str = "urn:facegate:face:live";
pub const ACR_FACE: &str = "urn:facegate:face";
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'";

pub async fn script() -> Response {
    static_file(
        include_str!("../../../static/face-capture.js"),
        "text/javascript; charset=utf-8",
    )
}

pub async fn stylesheet() -> Response {
    static_file(
        include_str!("../../../static/face-capture.css"),
        "text/css; charset=utf-8",
    )
}

fn static_file(body: &'static str, mime: &'static str) -> Response {
    let mut r = body.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    r
}

pub(crate) fn face_html(status: StatusCode, body: String, cookies_to_set: Vec<String>) -> Response {
    let mut r = secure_html(status, body, CSP, cookies_to_set);
    r.headers_mut()
        .insert("permissions-policy", HeaderValue::from_static("camera=(self)"));
    r
}

fn service(state: &AppState) -> Result<&Faces, AppError> {
    state.face.as_deref().ok_or_else(|| {
        AppError::Page(
            StatusCode::NOT_FOUND,
            "Face login is not enabled on this server.".into(),
        )
    })
}

/// A JSON answer for the capture script.
fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    let mut r = (status, Json(body)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// 503 + Retry-After when the face engine is full: the page's script waits and sends again by itself.
fn busy(retry_after: u64) -> Response {
    let mut r = answer(
        StatusCode::SERVICE_UNAVAILABLE,
        json!({"ok": false, "busy": true, "retry_after": retry_after,
               "error": "The server is busy: trying again in a moment."}),
    );
    r.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from(retry_after),
    );
    r
}

fn refuse(status: StatusCode, message: &str) -> Response {
    capture_refusal(status, message)
}

pub async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ReqQuery>,
) -> Result<Response, AppError> {
    let liveness = service(&state)?.settings.liveness == Liveness::Required;
    let (csrf, csrf_cookie) = csrf_token(&state, &headers);
    let mut set = csrf_cookie.into_iter().collect::<Vec<_>>();
    set.extend(new_device_cookie(&state, &headers));
    let req = q.req.unwrap_or_default();
    let (pending, client_name) = if req.is_empty() {
        (None, None)
    } else {
        let (p, c) = load_pending(&state, &req).await?;
        (Some(p), c.map(|c| c.name))
    };
    // A login that already names its account (after a password, or a signed-in person stepping
    // up) compares the face with that account only.
    let second_factor = pending.as_ref().is_some_and(|p| p.txn.user_id.is_some());
    if !second_factor
        && crate::server::login::site_policy(&state).face != facegate_core::login::FaceRole::Login
    {
        return Err(AppError::Page(
            StatusCode::FORBIDDEN,
            "On this site a face only confirms a sign-in: sign in with your password first.".into(),
        ));
    }
    let signup_box = if face_signup_offered(&state) && !second_factor {
        "<label class=\"check\"><input type=\"checkbox\" name=\"signup\" value=\"1\"> I am new here: create an account with my face</label>"
    } else {
        ""
    };
    let to = client_name
        .map(|n| {
            format!(
                "<p class=\"muted\">to continue to <strong>{}</strong></p>",
                html::escape(&n)
            )
        })
        .unwrap_or_default();
    let (title, intro, extra) = if second_factor {
        (
            "Confirm it is you",
            if liveness {
                "Your password was right. Now look at the camera and follow the instructions to confirm it is you."
            } else {
                "Your password was right. Now look at the camera to confirm it is you."
            },
            String::new(),
        )
    } else {
        (
            "Sign in with your face",
            if liveness {
                "Look at the camera and follow the instructions: a short check shows that you are really there. If you enter your username, you are compared with your own face only."
            } else {
                "Look at the camera. If you enter your username the picture is compared with your face only."
            },
            format!(
                "<label for=\"username\">Username (optional)</label><input id=\"username\" name=\"username\" type=\"text\" autocomplete=\"username\">{signup_box}"
            ),
        )
    };
    let body = format!(
        "<h1>{title}</h1>{to}<p>{intro}</p>{}<p class=\"muted\"><a href=\"/login?req={}\">Use a password instead</a></p>",
        html::CaptureForm {
            endpoint: "/login/face",
            check: Some("/face/check"),
            shots: 1,
            auto: false,
            hidden: &[("csrf", &csrf), ("req", &req), ("purpose", "login")],
            extra: &extra,
            button: if liveness {
                "Start the check and sign in"
            } else {
                "Take picture and sign in"
            },
            liveness: liveness.then_some("/login/face/liveness"),
        }
        .render(),
        html::escape(&req)
    );
    Ok(face_html(StatusCode::OK, html::face_page(title, &body), set))
}

fn face_error_response(e: &FaceError) -> Response {
    let status = match e {
        FaceError::BadImage(_) => StatusCode::BAD_REQUEST,
        FaceError::NoFace | FaceError::MultipleFaces | FaceError::Quality(_) => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        FaceError::NotEnrolled | FaceError::NoMatch | FaceError::Ambiguous => StatusCode::UNAUTHORIZED,
        FaceError::GalleryTooLarge { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        FaceError::Unavailable(detail) => {
            tracing::error!("face service: {detail}");
            StatusCode::SERVICE_UNAVAILABLE
        }
        FaceError::Busy { retry_after } => return busy(*retry_after),
    };
    refuse(status, &e.to_string())
}

/// The long-lived device cookie (liveness checks belong to it), when the browser has none yet.
pub(crate) fn new_device_cookie(state: &AppState, headers: &HeaderMap) -> Option<String> {
    let device_name = cookies::name(DEVICE, state.settings.secure_cookies());
    cookies::get(headers, &device_name).is_none().then(|| {
        cookies::set(
            &device_name,
            &random_token(16),
            Some(400 * 24 * 3600),
            state.settings.secure_cookies(),
            "Strict",
        )
    })
}

fn face_signup_offered(state: &AppState) -> bool {
    state.face.as_ref().is_some_and(|f| f.settings.signup)
}

/// What a liveness check on the login page is bound to: the pending login, or (a face page opened
/// without one) this browser.
pub(crate) fn login_binding(req: Option<&str>, device: &str) -> String {
    match req.filter(|r| !r.is_empty()) {
        Some(r) => format!("login:{r}"),
        None => format!("device:{device}"),
    }
}

pub async fn login_submit(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    Device(device): Device,
    headers: HeaderMap,
    mut capture: CaptureUpload,
) -> Result<Response, AppError> {
    let faces = service(&state)?;
    let req = capture.fields.get("req").filter(|r| !r.is_empty()).cloned();
    let device = device.unwrap_or_default();
    // Every face login belongs to a pending login: the request's, or a new one for the account pages.
    let (id, mut pending) = match &req {
        Some(id) => (id.clone(), load_pending(&state, id).await?.0),
        // Stored only once a factor succeeds: failed attempts leave nothing behind.
        None => (
            String::new(),
            crate::server::login::Pending::for_account("/account"),
        ),
    };
    // The probe: the embedding of a passed liveness check made for this login (used up now), or
    // a photo (which the core accepts only with liveness off).
    let input = match capture.fields.get("liveness").filter(|v| !v.is_empty()) {
        Some(cid) => match crate::server::liveness_share::consume(
            &state,
            &faces.liveness,
            &Owner::Browser(device.clone()),
            cid,
            &login_binding(req.as_deref(), &device),
        )
        .await
        {
            Ok((embedding, _confidence)) => FaceInput::Live(embedding),
            Err(e) => FaceInput::Unusable(e.to_string()),
        },
        None => capture.image.take().map_or(FaceInput::Nothing, FaceInput::Photo),
    };
    let attempt = Attempt {
        txn: &mut pending.txn,
        username: capture
            .fields
            .get("username")
            .map(|u| u.trim().to_lowercase())
            .filter(|u| !u.is_empty()),
        signup: capture.fields.get("signup").is_some_and(|v| v == "1"),
        input,
        ip,
        device: (!device.is_empty()).then_some(device),
        device_id: crate::server::login::device_of(&state, &headers),
        now: now(),
    };
    let signed = match faces
        .service
        .login(&state.store, &state.login_guard, attempt)
        .await
    {
        Ok(s) => s,
        Err(refusal) => return Ok(login_refusal(&refusal)),
    };
    tracing::info!(event = "login", method = signed.method.name(), user = %signed.user_id, "face login");
    let id = if id.is_empty() {
        crate::server::login::create(&state, &pending).await?
    } else {
        id
    };
    let (next, cookie) = crate::server::login::advance(&state, &headers, &id, pending).await?;
    Ok(with_cookie(
        answer(
            StatusCode::OK,
            json!({"ok": true, "message": "Signed in.", "redirect": next}),
        ),
        cookie,
    ))
}

/// A refused face login, as the capture script expects it.
fn login_refusal(r: &LoginRefusal) -> Response {
    let status = match r {
        LoginRefusal::Throttled(wait) => return too_many(*wait),
        LoginRefusal::SignupsExhausted => {
            return answer(
                StatusCode::TOO_MANY_REQUESTS,
                json!({"ok": false, "error": r.to_string(), "retry_after": 600}),
            );
        }
        LoginRefusal::Face(e) => return face_error_response(e),
        LoginRefusal::NothingSent => StatusCode::BAD_REQUEST,
        LoginRefusal::SecondFactorOnly
        | LoginRefusal::LivenessRequired
        | LoginRefusal::LivenessUnusable(_)
        | LoginRefusal::OtherAccount => StatusCode::FORBIDDEN,
        LoginRefusal::NoMatch | LoginRefusal::NotRecognised | LoginRefusal::Ambiguous => {
            StatusCode::UNAUTHORIZED
        }
        LoginRefusal::PossibleExisting => StatusCode::CONFLICT,
    };
    refuse(status, &r.to_string())
}

fn too_many(wait: std::time::Duration) -> Response {
    let secs = wait.as_secs().max(1);
    let mut r = answer(
        StatusCode::TOO_MANY_REQUESTS,
        json!({"ok": false, "error": format!("Too many attempts. Try again in {secs} seconds."), "retry_after": secs}),
    );
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// Live guidance while the camera is on: a small preview frame in, advice out. Needs the page's CSRF
/// token; nothing is stored; at most 3 checks a second per address.
pub async fn check(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    mut capture: CaptureUpload,
) -> Result<Response, AppError> {
    let faces = service(&state)?;
    if !state.allow_guidance(&ip, 3) {
        return Ok(answer(
            StatusCode::TOO_MANY_REQUESTS,
            json!({"ok": false, "error": "Slow down.", "retry_after": 1}),
        ));
    }
    let Some(image) = capture.image.take() else {
        return Ok(refuse(StatusCode::BAD_REQUEST, "No picture was sent."));
    };
    let enrol = capture.fields.get("purpose").map(String::as_str) == Some("enrol");
    match faces.service.guidance(image, enrol).await {
        Ok(advice) if advice.is_empty() => Ok(answer(
            StatusCode::OK,
            json!({"ok": true, "good": true, "message": "Looks good: take the picture."}),
        )),
        Ok(advice) => Ok(answer(
            StatusCode::OK,
            json!({"ok": true, "good": false, "message": advice.join(" ")}),
        )),
        Err(e) => Ok(face_error_response(&e)),
    }
}

// ---------------------------------------------------------------- the account page

pub(crate) fn date(epoch: i64) -> String {
    let (y, m, d) = crate::server::api_auth::civil_from_days(epoch.div_euclid(86_400));
    let secs = epoch.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        secs / 3600,
        (secs % 3600) / 60
    )
}

/// How recent the sign-in that changes a person's faces must be.
pub const ENROL_REAUTH_SECS: i64 = 10 * 60;

/// POST /account/faces: adds a face. Needs a sign-in with the account's strongest factor in the
/// last ten minutes; with liveness required, a passed liveness check made for this enrolment (its
/// frames are the template); and, when the account has faces already, a match with them.
pub async fn enrol(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    Device(device): Device,
    headers: HeaderMap,
    mut capture: CaptureUpload,
) -> Result<Response, AppError> {
    let faces = service(&state)?;
    let Some((session, session_hash)) = current_session(&state, &headers).await else {
        return Ok(refuse(
            StatusCode::UNAUTHORIZED,
            "Your session has ended. Sign in again.",
        ));
    };
    let recent = crate::server::login::recently_strong(&state, &session, ENROL_REAUTH_SECS).await?;
    let source = match capture.fields.get("liveness").filter(|v| !v.is_empty()) {
        Some(cid) => match crate::server::liveness_share::consume(
            &state,
            &faces.liveness,
            &Owner::Browser(device.unwrap_or_default()),
            cid,
            &enrol_binding(&session_hash),
        )
        .await
        {
            Ok((embedding, confidence)) => TemplateSource::Live {
                embedding,
                confidence,
            },
            Err(e) => TemplateSource::Unusable(e.to_string()),
        },
        None => match capture.image.take() {
            Some(image) => TemplateSource::Photo(image),
            None if recent => return Ok(refuse(StatusCode::BAD_REQUEST, "No picture was sent.")),
            None => TemplateSource::Unusable("none was sent".into()),
        },
    };
    match faces
        .service
        .enrol(&state.store, &session.user_id, Some(&ip), recent, source, now())
        .await
    {
        Ok((_, count)) => Ok(answer(
            StatusCode::CREATED,
            json!({"ok": true, "message": format!("Saved. You have {count} face picture(s) enrolled."), "redirect": "/account"}),
        )),
        Err(EnrolRefusal::NoRecentSignIn) => {
            let mut r = answer(
                StatusCode::FORBIDDEN,
                json!({"ok": false, "error": EnrolRefusal::NoRecentSignIn.to_string(), "reauth": "/account/confirm"}),
            );
            r.headers_mut()
                .insert("x-reauth", HeaderValue::from_static("/account/confirm"));
            Ok(r)
        }
        Err(e @ EnrolRefusal::Full(_)) => Ok(refuse(StatusCode::CONFLICT, &e.to_string())),
        Err(
            e @ (EnrolRefusal::LivenessRequired
            | EnrolRefusal::LivenessUnusable(_)
            | EnrolRefusal::NotTheSamePerson),
        ) => Ok(refuse(StatusCode::FORBIDDEN, &e.to_string())),
        Err(EnrolRefusal::Face(e)) => Ok(face_error_response(&e)),
    }
}

/// GET /account/confirm: sign in again with the account's strongest factor, then back to the
/// account page (what changing faces needs).
pub async fn confirm(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    let Some((session, _)) = current_session(&state, &headers).await else {
        return Ok(Redirect::to("/login").into_response());
    };
    let mut p = crate::server::login::Pending::for_account("/account");
    p.reauth = true;
    p.txn
        .bind_user(&session.user_id)
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let id = crate::server::login::create(&state, &p).await?;
    let has_face = !state.store.faces_of(&session.user_id).await?.is_empty() && state.face.is_some();
    Ok(Redirect::to(&if has_face {
        format!("/login/face?req={id}")
    } else {
        format!("/login?req={id}")
    })
    .into_response())
}

/// The signed-in account of a CSRF-checked account page form.
async fn signed_in(state: &AppState, headers: &HeaderMap) -> Result<String, AppError> {
    let (session, _) = current_session(state, headers)
        .await
        .ok_or_else(|| AppError::Page(StatusCode::UNAUTHORIZED, "Sign in first.".into()))?;
    Ok(session.user_id)
}

pub async fn delete_face(
    State(state): State<AppState>,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm,
) -> Result<Response, AppError> {
    let user_id = signed_in(&state, &headers).await?;
    let id = form.get("id").cloned().unwrap_or_default();
    facegate_core::face::delete_face(&state.store, &user_id, &id)
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(Redirect::to("/account").into_response())
}

pub async fn delete_all_faces(
    State(state): State<AppState>,
    headers: HeaderMap,
    CsrfForm(_): CsrfForm,
) -> Result<Response, AppError> {
    let user_id = signed_in(&state, &headers).await?;
    facegate_core::face::delete_all_faces(&state.store, &user_id)
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(Redirect::to("/account").into_response())
}

/// The 429 answer when any of `keys` is held back by the login throttle.
async fn throttled(state: &AppState, keys: &[String]) -> Option<Response> {
    state.login_guard.waiting(keys).await.map(too_many)
}

/// Throttle keys of a face attempt without an account yet: the address and, when it has one, the
/// browser (the same keys a face login counts).
fn throttle_keys(ip: &str, device: Option<&str>) -> Vec<String> {
    facegate_core::throttle::login_keys("face", ip, device, None)
}

/// What an enrolment's liveness check is bound to: the session doing it.
fn enrol_binding(session_hash: &str) -> String {
    format!("enrol:{session_hash}")
}

/// POST /login/face/liveness: starts a liveness check for this browser (the login page's form
/// fields, CSRF-checked). Answers the challenge and the first frame's token.
pub async fn liveness_start(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    Device(device): Device,
    headers: HeaderMap,
    // The form's CSRF token, and what the check is for: the pending login (`req`) or an enrolment.
    capture: CaptureUpload,
) -> Result<Response, AppError> {
    let face = service(&state)?;
    let Some(owner) = device.clone().map(Owner::Browser) else {
        return Ok(refuse(
            StatusCode::FORBIDDEN,
            "This page has expired. Reload it and try again.",
        ));
    };
    if let Some(r) = throttled(&state, &throttle_keys(&ip, device.as_deref())).await {
        return Ok(r);
    }
    // Starting checks is cheap for a client and not for us: a few a second per address at most.
    if !state.allow_guidance(&format!("liveness:{ip}"), 2) {
        return Ok(answer(
            StatusCode::TOO_MANY_REQUESTS,
            json!({"ok": false, "error": "Slow down.", "retry_after": 1}),
        ));
    }
    let binding = if capture.fields.get("purpose").map(String::as_str) == Some("enrol") {
        match current_session(&state, &headers).await {
            Some((_, hash)) => enrol_binding(&hash),
            None => {
                return Ok(refuse(
                    StatusCode::UNAUTHORIZED,
                    "Your session has ended. Sign in again.",
                ));
            }
        }
    } else {
        let device = match &owner {
            Owner::Browser(d) => d.clone(),
            Owner::Client(c) => c.clone(),
        };
        login_binding(capture.fields.get("req").map(String::as_str), &device)
    };
    let started = match face
        .liveness
        .start_bound(owner, None, false, Some(binding), Some(ip))
    {
        Ok(s) if crate::server::liveness_share::push(&state, &face.liveness, &s.id, None).await => s,
        Ok(_) => {
            return Ok(refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "The check could not be started right now; please try again in a minute.",
            ));
        }
        Err(LivenessError::TooMany) => {
            return Ok(answer(
                StatusCode::TOO_MANY_REQUESTS,
                json!({"ok": false, "error": "Too many checks are running from your network. Finish or wait for them first.", "retry_after": 10}),
            ));
        }
        Err(e) => {
            tracing::warn!("liveness: {e}");
            return Ok(refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "The check could not be started right now; please try again in a minute.",
            ));
        }
    };
    Ok(answer(
        StatusCode::OK,
        json!({
            "ok": true,
            "id": started.id,
            "kind": started.kind,
            "params": started.params,
            "prompt": started.prompt,
            "token": started.frame_token,
            "expires_in": started.expires_in,
        }),
    ))
}

#[derive(Debug, serde::Deserialize)]
pub struct FrameQuery {
    token: Option<String>,
}

/// POST /login/face/liveness/{id}/frame?token=...: one camera frame (a JPEG body) of a check.
pub async fn liveness_frame(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    Device(device): Device,
    axum::extract::Path(id): axum::extract::Path<String>,
    Query(q): Query<FrameQuery>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let face = service(&state)?;
    let Some(owner) = device.clone().map(Owner::Browser) else {
        return Ok(refuse(
            StatusCode::FORBIDDEN,
            "This page has expired. Reload it and try again.",
        ));
    };
    let is_image = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("image/"));
    if !is_image || body.is_empty() {
        return Ok(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "A frame must be sent as an image (image/jpeg).",
        ));
    }
    let token = q.token.unwrap_or_default();
    crate::server::liveness_share::pull(&state, &face.liveness, &id).await;
    let before = face.liveness.version(&id);
    let result = face.liveness.frame(&owner, &id, &token, body.to_vec()).await;
    if !crate::server::liveness_share::push(&state, &face.liveness, &id, before).await {
        // Another instance took a frame of this check at the same time: its answer stands.
        return Ok(answer(
            StatusCode::CONFLICT,
            json!({"ok": false, "error": "This frame was not used: the check moved on elsewhere.", "refusal": "bad-token"}),
        ));
    }
    match result {
        Ok(out) => {
            crate::server::metrics::liveness_outcome("login", out.status, out.reason);
            if matches!(
                out.status,
                facegate_core::liveness::Status::Failed | facegate_core::liveness::Status::Expired
            ) {
                // A failed check counts as a failed face attempt from this address and browser.
                state
                    .login_guard
                    .fail(&throttle_keys(&ip, device.as_deref()))
                    .await;
                let mut event = Event::new(Kind::Liveness, Outcome::Failed).ip(Some(&ip));
                if let Some(r) = out.reason {
                    event = event.detail(format!("{r:?}"));
                }
                state.audit(event).await;
            }
            Ok(answer(
                StatusCode::OK,
                json!({
                    "ok": true,
                    "status": out.status,
                    "token": out.next_token,
                    "prompt": out.prompt,
                    "move": out.current_move,
                    "issue": out.frame_issue,
                    "reason": out.reason,
                }),
            ))
        }
        Err(LivenessError::NotFound) => Ok(refuse(StatusCode::NOT_FOUND, "No such check: start it again.")),
        Err(LivenessError::Busy { retry_after }) => Ok(busy(retry_after)),
        Err(LivenessError::Refused(r)) => {
            let error = match r {
                FrameRefusal::Late => "The time for the check ran out. You can try again.".to_string(),
                FrameRefusal::Finished => "This check is over. You can start a new one.".to_string(),
                _ => format!("The frame was refused: {r}."),
            };
            Ok(answer(
                StatusCode::CONFLICT,
                json!({"ok": false, "error": error, "refusal": format!("{r:?}")}),
            ))
        }
        Err(e) => {
            tracing::error!("liveness frame: {e}");
            Ok(refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "The check could not be run right now; please try again.",
            ))
        }
    }
}
