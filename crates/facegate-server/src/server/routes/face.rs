//! Face login, enrolment and the account page.
//!
//! Login modes: with a username, the photo is compared with that person's templates (1:1); without
//! one, with everyone's (1:N, threshold tightened with the gallery size), and an unknown face may open
//! a new account if the operator allows it; after a correct password, people with an enrolled face are
//! asked for it as a second factor. Liveness is required by default: until a liveness check passes,
//! a single photo does not log anyone in (FACEGATE_LIVENESS=off lifts that, for tests and kiosks).

use std::net::SocketAddr;
use std::time::Instant;

use axum::Json;
use axum::extract::{ConnectInfo, Multipart, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use facegate_core::face::score_band;
use facegate_core::secret::random_token;
use serde_json::json;

use super::page_form;
use super::pages::{ReqQuery, secure_html};
use super::pages::{
    check_csrf, client_ip, complete_login, csrf_token, current_session, load_pending, with_cookie,
};
use crate::server::error::AppError;
use crate::server::face::{FaceError, FaceService, Liveness, Probe};
use crate::server::liveness::{LivenessError, Owner};
use crate::server::state::AppState;
use crate::server::{cookies, html, now};
use facegate_core::liveness::FrameRefusal;

const DEVICE: &str = "fg_device";
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

fn face_html(status: StatusCode, body: String, cookies_to_set: Vec<String>) -> Response {
    let mut r = secure_html(status, body, CSP, cookies_to_set);
    r.headers_mut()
        .insert("permissions-policy", HeaderValue::from_static("camera=(self)"));
    r
}

fn service(state: &AppState) -> Result<&FaceService, AppError> {
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
    answer(status, json!({"ok": false, "error": message}))
}

pub async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ReqQuery>,
) -> Result<Response, AppError> {
    let liveness = service(&state)?.settings.liveness == Liveness::Required;
    let (csrf, csrf_cookie) = csrf_token(&state, &headers);
    let mut set = csrf_cookie.into_iter().collect::<Vec<_>>();
    let device_name = cookies::name(DEVICE, state.settings.secure_cookies());
    if cookies::get(&headers, &device_name).is_none() {
        set.push(cookies::set(
            &device_name,
            &random_token(16),
            Some(400 * 24 * 3600),
            state.settings.secure_cookies(),
            "Strict",
        ));
    }
    let req = q.req.unwrap_or_default();
    let (pending, client_name) = if req.is_empty() {
        (None, None)
    } else {
        let (p, c) = load_pending(&state, &req).await?;
        (Some(p), Some(c.name))
    };
    let second_factor = pending.as_ref().is_some_and(|p| p.pwd_user.is_some());
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
            "<label for=\"username\">Username (optional)</label><input id=\"username\" name=\"username\" type=\"text\" autocomplete=\"username\">".to_string(),
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

/// The fields and the image of a capture post.
struct Capture {
    fields: std::collections::HashMap<String, String>,
    image: Option<Vec<u8>>,
}

async fn read_capture(mut multipart: Multipart) -> Result<Capture, Response> {
    let mut fields = std::collections::HashMap::new();
    let mut image = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                return Err(refuse(
                    StatusCode::BAD_REQUEST,
                    &format!("The upload could not be read: {}.", e.body_text()),
                ));
            }
        };
        let name = field.name().unwrap_or("").to_string();
        if name == "image" {
            let bytes = field.bytes().await.map_err(|e| {
                refuse(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("The picture could not be read: {}.", e.body_text()),
                )
            })?;
            image = Some(bytes.to_vec());
        } else {
            let text = field
                .text()
                .await
                .map_err(|_| refuse(StatusCode::BAD_REQUEST, "The form could not be read."))?;
            if fields.insert(name, text).is_some() {
                return Err(refuse(StatusCode::BAD_REQUEST, "A form field appears twice."));
            }
        }
    }
    let image = image.filter(|i| !i.is_empty());
    Ok(Capture { fields, image })
}

/// A capture post whose CSRF token matches the page's cookie.
async fn read_checked_capture(
    state: &AppState,
    headers: &HeaderMap,
    multipart: Multipart,
) -> Result<Capture, Response> {
    let capture = read_capture(multipart).await?;
    if check_csrf(state, headers, capture.fields.get("csrf")).is_err() {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "This page has expired. Reload it and try again.",
        ));
    }
    Ok(capture)
}

fn face_error_response(e: &FaceError) -> Response {
    let status = match e {
        FaceError::BadImage(_) => StatusCode::BAD_REQUEST,
        FaceError::NoFace | FaceError::MultipleFaces | FaceError::Quality(_) => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        FaceError::NotEnrolled | FaceError::NoMatch => StatusCode::UNAUTHORIZED,
        FaceError::Unavailable(detail) => {
            tracing::error!("face service: {detail}");
            StatusCode::SERVICE_UNAVAILABLE
        }
        FaceError::Busy { retry_after } => return busy(*retry_after),
    };
    refuse(status, &e.to_string())
}

pub async fn login_submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Result<Response, AppError> {
    let face = service(&state)?;
    let mut capture = match read_checked_capture(&state, &headers, multipart).await {
        Ok(c) => c,
        Err(r) => return Ok(r),
    };
    let req = capture.fields.get("req").filter(|r| !r.is_empty()).cloned();
    let pending = match &req {
        Some(id) => Some(load_pending(&state, id).await?.0),
        None => None,
    };
    let ip = client_ip(&state, &headers, addr);
    let device =
        cookies::get(&headers, &cookies::name(DEVICE, state.settings.secure_cookies())).unwrap_or_default();
    let username = capture
        .fields
        .get("username")
        .map(|u| u.trim().to_lowercase())
        .filter(|u| !u.is_empty());
    let second_factor_user = pending.as_ref().and_then(|p| p.pwd_user.clone());

    // Throttle per address, per device and per account before any work.
    let mut keys = throttle_keys(&state, &headers, addr);
    if let Some(u) = second_factor_user.as_ref().or(username.as_ref()) {
        keys.push(format!("face-user:{u}"));
    }
    let t = Instant::now();
    if let Some(r) = throttled(&state, &keys, t) {
        return Ok(r);
    }

    // The probe: the embedding of a passed liveness check of this browser, or (only with liveness
    // off) the uploaded picture.
    let check_id = capture.fields.get("liveness").filter(|v| !v.is_empty()).cloned();
    let liveness_refusal = |why: &'static str, message: String| {
        let state = state.clone();
        let ip = ip.clone();
        async move {
            state
                .store
                .audit("face_login", None, Some(&ip), "refused", Some(why), now())
                .await?;
            Ok::<_, AppError>(refuse(StatusCode::FORBIDDEN, &message))
        }
    };
    let (probe, live_confidence) = match (&check_id, capture.image.take()) {
        (Some(id), _) => match face.liveness.consume(&Owner::Browser(device.clone()), id) {
            Ok((embedding, confidence)) => (Probe::Embedding(embedding), Some(confidence)),
            Err(e) => {
                let message = format!("The liveness check cannot be used: {e}. Start it again.");
                return liveness_refusal("liveness not passed", message).await;
            }
        },
        (None, _) if face.settings.liveness == Liveness::Required => {
            let message = "Face sign-in needs the liveness check: start it with the button and follow the instructions.";
            return liveness_refusal("liveness required", message.into()).await;
        }
        (None, Some(image)) => (Probe::Image(image), None),
        (None, None) => return Ok(refuse(StatusCode::BAD_REQUEST, "No picture was sent.")),
    };

    let fail = |user: Option<String>, band: &'static str| {
        let state = state.clone();
        let keys = keys.clone();
        let ip = ip.clone();
        async move {
            for key in &keys {
                state.login_throttle.fail(key, t);
            }
            let _ = state
                .store
                .audit(
                    "face_login",
                    user.as_deref(),
                    Some(&ip),
                    "failed",
                    Some(band),
                    now(),
                )
                .await;
        }
    };

    // Who is it? 1:1 against the password's account or the username, else 1:N.
    let (user_id, amr, band) = if let Some(uid) = second_factor_user.clone().or(match &username {
        Some(u) => state.store.user_with_password(u).await?.map(|(user, _)| user.id),
        None => None,
    }) {
        match face.verify(&state.store, &uid, probe).await {
            Ok(m) => {
                let amr = if second_factor_user.is_some() {
                    vec!["pwd".into(), "face".into(), "mfa".into()]
                } else {
                    vec!["face".into()]
                };
                (m.user_id, amr, score_band(m.score, m.threshold))
            }
            Err(e) => {
                if matches!(e, FaceError::NoMatch | FaceError::NotEnrolled) {
                    fail(Some(uid), "no-match").await;
                    return Ok(refuse(
                        StatusCode::UNAUTHORIZED,
                        "That did not work. Try again, or use your password.",
                    ));
                }
                return Ok(face_error_response(&e));
            }
        }
    } else if username.is_some() {
        // An unknown username is answered like a wrong face, after the same work.
        let _ = face.identify(&state.store, probe).await;
        fail(None, "no-match").await;
        return Ok(refuse(
            StatusCode::UNAUTHORIZED,
            "That did not work. Try again, or use your password.",
        ));
    } else {
        let signup_probe = match &probe {
            Probe::Image(i) => Probe::Image(i.clone()),
            Probe::Embedding(e) => Probe::Embedding(e.clone()),
        };
        match face.identify(&state.store, probe).await {
            Ok((Some(best), threshold)) if best.score >= threshold => (
                best.user_id,
                vec!["face".into()],
                score_band(best.score, threshold),
            ),
            Ok(_) if face.settings.signup => match signup(&state, face, signup_probe).await {
                Ok(uid) => (uid, vec!["face".into()], "new-account"),
                Err(e) => return Ok(face_error_response(&e)),
            },
            Ok(_) => {
                fail(None, "no-match").await;
                return Ok(refuse(
                    StatusCode::UNAUTHORIZED,
                    "Your face was not recognised. Try again, or sign in with your password.",
                ));
            }
            Err(e) => return Ok(face_error_response(&e)),
        }
    };
    for key in &keys {
        state.login_throttle.succeed(key);
    }
    state
        .store
        .audit("face_login", Some(&user_id), Some(&ip), "ok", Some(band), now())
        .await?;
    tracing::info!(event = "login", method = "face", user = %user_id, "face login");
    // A passed liveness check is a test of user presence (RFC 8176 "user") and a stronger acr.
    let (amr, acr) = match live_confidence {
        Some(_) => {
            let mut amr = amr;
            amr.push("user".into());
            (amr, ACR_FACE_LIVE)
        }
        None => (amr, ACR_FACE),
    };
    let (next, cookie) = complete_login(&state, &user_id, amr, acr, req.zip(pending)).await?;
    Ok(with_cookie(
        answer(
            StatusCode::OK,
            json!({"ok": true, "message": "Signed in.", "redirect": next}),
        ),
        Some(cookie),
    ))
}

/// Face-only sign-up: a new account whose first template is this face.
async fn signup(state: &AppState, face: &FaceService, probe: Probe) -> Result<String, FaceError> {
    let (embedding, quality) = match probe {
        Probe::Image(image) => face.signup_probe(image).await?,
        Probe::Embedding(e) => (e, json!({"source": "liveness check"})),
    };
    let id = random_token(16);
    let username = facegate_core::Username::parse(&format!(
        "face-{}",
        &id[..8].to_lowercase().replace(['_', '-'], "x")
    ))
    .map_err(|e| FaceError::Unavailable(e.to_string()))?;
    let user = facegate_core::User {
        id: id.clone(),
        username,
        email: None,
        email_verified: false,
        name: None,
        created_at: now(),
    };
    state
        .store
        .create_user(&user, None)
        .await
        .map_err(|e| FaceError::Unavailable(e.to_string()))?;
    let t = facegate_core::face::FaceTemplate {
        id: random_token(12),
        user_id: id.clone(),
        pack: face.pack().to_string(),
        embedding,
        quality,
        created_at: now(),
    };
    state
        .store
        .add_face(&t)
        .await
        .map_err(|e| FaceError::Unavailable(e.to_string()))?;
    let _ = state
        .store
        .audit("signup", Some(&id), None, "ok", Some("face"), now())
        .await;
    Ok(id)
}

/// Live guidance while the camera is on: a small preview frame in, advice out. Needs the page's CSRF
/// token; nothing is stored; at most 3 checks a second per address.
pub async fn check(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Result<Response, AppError> {
    let face = service(&state)?;
    let ip = client_ip(&state, &headers, addr);
    if !state.allow_guidance(&ip, 3) {
        return Ok(answer(
            StatusCode::TOO_MANY_REQUESTS,
            json!({"ok": false, "error": "Slow down.", "retry_after": 1}),
        ));
    }
    let mut capture = match read_checked_capture(&state, &headers, multipart).await {
        Ok(c) => c,
        Err(r) => return Ok(r),
    };
    let Some(image) = capture.image.take() else {
        return Ok(refuse(StatusCode::BAD_REQUEST, "No picture was sent."));
    };
    let bar = if capture.fields.get("purpose").map(String::as_str) == Some("enrol") {
        facegate_vision::quality::QualityBar::ENROL
    } else {
        facegate_vision::quality::QualityBar::LOGIN
    };
    match face.guidance(image, bar).await {
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

pub async fn account(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    let Some((session, _)) = current_session(&state, &headers).await else {
        return Ok(Redirect::to("/login").into_response());
    };
    let user = state
        .store
        .user(&session.user_id)
        .await?
        .ok_or_else(|| AppError::Internal("session of a deleted account".into()))?;
    let (csrf, csrf_cookie) = csrf_token(&state, &headers);
    let faces = state.store.faces_of(&user.id).await?;
    let rows: String = faces
        .iter()
        .map(|f| {
            format!(
                "<li>Added {} · pack {} · eyes {} px apart, sharpness {}<form method=\"post\" action=\"/account/faces/delete\" class=\"inline\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"id\" value=\"{}\"><button class=\"secondary\" type=\"submit\">Delete</button></form></li>",
                date(f.created_at),
                html::escape(&f.pack),
                f.quality["eye_distance_px"],
                f.quality["sharpness"],
                html::escape(&csrf),
                html::escape(&f.id)
            )
        })
        .collect();
    let faces_html = if faces.is_empty() {
        "<p>No face is enrolled.</p>".to_string()
    } else {
        format!("<ul>{rows}</ul>")
    };
    let events: String = state
        .store
        .audit_of(&user.id, 10)
        .await?
        .iter()
        .map(|(at, kind, result, detail)| {
            format!(
                "<li>{} — {} {} {}</li>",
                date(*at),
                html::escape(kind),
                html::escape(result),
                html::escape(detail.as_deref().unwrap_or(""))
            )
        })
        .collect();
    let capture = match &state.face {
        Some(_) => format!(
            "<h2>Add your face</h2><p>Three pictures are taken a moment apart. Only measurements of your face are kept, never the pictures.</p>{}",
            html::CaptureForm {
                endpoint: "/account/faces",
                check: Some("/face/check"),
                shots: 3,
                auto: false,
                hidden: &[("csrf", &csrf), ("purpose", "enrol")],
                extra: "",
                button: "Take 3 pictures",
                liveness: None,
            }
            .render()
        ),
        None => "<p class=\"muted\">Face login is not enabled on this server.</p>".into(),
    };
    let body = format!(
        "<h1>Your account</h1><p>Signed in as <strong>{}</strong>{}</p><h2>Your faces</h2>{faces_html}{capture}\
         <h2>Delete all biometric data</h2><form method=\"post\" action=\"/account/faces/delete-all\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <button class=\"secondary\" type=\"submit\">Delete every face of mine</button></form><h2>Recent sign-ins</h2><ul>{events}</ul>\
         <form method=\"post\" action=\"/logout\"><button class=\"secondary\" type=\"submit\">Sign out</button></form>",
        html::escape(user.username.as_str()),
        user.email
            .as_ref()
            .map(|e| format!(" ({})", html::escape(e.as_str())))
            .unwrap_or_default(),
        html::escape(&csrf)
    );
    Ok(face_html(
        StatusCode::OK,
        html::face_page("Your account", &body),
        csrf_cookie.into_iter().collect(),
    ))
}

fn date(epoch: i64) -> String {
    let (y, m, d) = crate::server::api_auth::civil_from_days(epoch.div_euclid(86_400));
    let secs = epoch.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        secs / 3600,
        (secs % 3600) / 60
    )
}

pub async fn enrol(
    State(state): State<AppState>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Result<Response, AppError> {
    let face = service(&state)?;
    let Some((session, _)) = current_session(&state, &headers).await else {
        return Ok(refuse(
            StatusCode::UNAUTHORIZED,
            "Your session has ended. Sign in again.",
        ));
    };
    let mut capture = match read_checked_capture(&state, &headers, multipart).await {
        Ok(c) => c,
        Err(r) => return Ok(r),
    };
    let Some(image) = capture.image.take() else {
        return Ok(refuse(StatusCode::BAD_REQUEST, "No picture was sent."));
    };
    let existing = state.store.faces_of(&session.user_id).await?.len();
    if existing >= 20 {
        return Ok(refuse(
            StatusCode::CONFLICT,
            "You have 20 faces enrolled already: delete some first.",
        ));
    }
    match face.enrol(&state.store, &session.user_id, image).await {
        Ok(t) => {
            state
                .store
                .audit("enrol", Some(&session.user_id), None, "ok", Some(&t.pack), now())
                .await?;
            Ok(answer(
                StatusCode::CREATED,
                json!({"ok": true, "message": format!("Saved. You have {} face picture(s) enrolled.", existing + 1), "redirect": "/account"}),
            ))
        }
        Err(e) => Ok(face_error_response(&e)),
    }
}

async fn form_action(
    state: &AppState,
    headers: &HeaderMap,
    pairs: &[(String, String)],
) -> Result<(String, std::collections::HashMap<String, String>), AppError> {
    let form = page_form(pairs)?;
    check_csrf(state, headers, form.get("csrf"))?;
    let (session, _) = current_session(state, headers)
        .await
        .ok_or_else(|| AppError::Page(StatusCode::UNAUTHORIZED, "Sign in first.".into()))?;
    Ok((session.user_id, form))
}

pub async fn delete_face(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let (user_id, form) = form_action(&state, &headers, &pairs).await?;
    let id = form.get("id").cloned().unwrap_or_default();
    if state.store.delete_face(&user_id, &id).await? {
        state
            .store
            .audit("face_deleted", Some(&user_id), None, "ok", None, now())
            .await?;
    }
    Ok(Redirect::to("/account").into_response())
}

pub async fn delete_all_faces(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let (user_id, _) = form_action(&state, &headers, &pairs).await?;
    let n = state.store.delete_faces(&user_id).await?;
    state
        .store
        .audit(
            "faces_deleted",
            Some(&user_id),
            None,
            "ok",
            Some(&format!("{n} templates")),
            now(),
        )
        .await?;
    Ok(Redirect::to("/account").into_response())
}

/// The device cookie's value: liveness checks started from the login page belong to it.
fn device_owner(state: &AppState, headers: &HeaderMap) -> Option<Owner> {
    cookies::get(headers, &cookies::name(DEVICE, state.settings.secure_cookies()))
        .filter(|d| !d.is_empty())
        .map(Owner::Browser)
}

/// The 429 answer when any of `keys` is held back by the login throttle.
fn throttled(state: &AppState, keys: &[String], t: Instant) -> Option<Response> {
    let wait = keys.iter().find_map(|k| state.login_throttle.check(k, t).err())?;
    let secs = wait.as_secs().max(1);
    let mut r = answer(
        StatusCode::TOO_MANY_REQUESTS,
        json!({"ok": false, "error": format!("Too many attempts. Try again in {secs} seconds."), "retry_after": secs}),
    );
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    Some(r)
}

/// Throttle keys of a face login attempt: the address and, when it has one, the browser.
fn throttle_keys(state: &AppState, headers: &HeaderMap, addr: SocketAddr) -> Vec<String> {
    let mut keys = vec![format!("face-ip:{}", client_ip(state, headers, addr))];
    if let Some(Owner::Browser(d)) = device_owner(state, headers) {
        keys.push(format!("face-device:{d}"));
    }
    keys
}

/// POST /login/face/liveness: starts a liveness check for this browser (the login page's form
/// fields, CSRF-checked). Answers the challenge and the first frame's token.
pub async fn liveness_start(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Result<Response, AppError> {
    let face = service(&state)?;
    // The form carries nothing the check needs; it is read for its CSRF token.
    if let Err(r) = read_checked_capture(&state, &headers, multipart).await {
        return Ok(r);
    }
    let Some(owner) = device_owner(&state, &headers) else {
        return Ok(refuse(
            StatusCode::FORBIDDEN,
            "This page has expired. Reload it and try again.",
        ));
    };
    if let Some(r) = throttled(&state, &throttle_keys(&state, &headers, addr), Instant::now()) {
        return Ok(r);
    }
    // Starting checks is cheap for a client and not for us: a few a second per address at most.
    if !state.allow_guidance(&format!("liveness:{}", client_ip(&state, &headers, addr)), 2) {
        return Ok(answer(
            StatusCode::TOO_MANY_REQUESTS,
            json!({"ok": false, "error": "Slow down.", "retry_after": 1}),
        ));
    }
    let started = match face.liveness.start(owner, None, false) {
        Ok(s) => s,
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
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    axum::extract::Path(id): axum::extract::Path<String>,
    Query(q): Query<FrameQuery>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let face = service(&state)?;
    let Some(owner) = device_owner(&state, &headers) else {
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
    match face.liveness.frame(&owner, &id, &token, body.to_vec()).await {
        Ok(out) => {
            if matches!(
                out.status,
                facegate_core::liveness::Status::Failed | facegate_core::liveness::Status::Expired
            ) {
                let t = Instant::now();
                for key in throttle_keys(&state, &headers, addr) {
                    state.login_throttle.fail(&key, t);
                }
                let reason = out.reason.map(|r| format!("{r:?}"));
                state
                    .store
                    .audit(
                        "liveness",
                        None,
                        Some(&client_ip(&state, &headers, addr)),
                        "failed",
                        reason.as_deref(),
                        now(),
                    )
                    .await?;
            }
            Ok(answer(
                StatusCode::OK,
                json!({
                    "ok": true,
                    "status": out.status,
                    "token": out.next_token,
                    "progress": out.progress,
                    "prompt": out.prompt,
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
