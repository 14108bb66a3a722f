//! Custom extractors: a malformed request is refused in the surface's own shape, decided here once
//! rather than in every handler: the pages answer with an HTML error page, the capture script with
//! its JSON, the /v1 APIs with problem+json (`api_input`).

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Multipart, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde_json::json;

use super::page_form;
use super::pages::check_csrf;
use crate::server::cookies;
use crate::server::error::AppError;
use crate::server::login::DEVICE;
use crate::server::state::AppState;

/// A page form (`application/x-www-form-urlencoded`) whose fields each appear once and whose CSRF
/// token matches the browser's cookie (and whose Origin, if sent, is ours).
#[derive(Debug)]
pub struct CsrfForm(pub HashMap<String, String>);

impl FromRequest<AppState> for CsrfForm {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, AppError> {
        let headers = req.headers().clone();
        let Form(pairs) = Form::<Vec<(String, String)>>::from_request(req, state)
            .await
            .map_err(|e| {
                AppError::Page(
                    StatusCode::BAD_REQUEST,
                    format!("The form could not be read: {}.", e.body_text()),
                )
            })?;
        let form = page_form(&pairs)?;
        check_csrf(state, &headers, form.get("csrf"))?;
        Ok(CsrfForm(form))
    }
}

/// The client's address: the peer's, or behind a trusted proxy the last X-Forwarded-For entry.
#[derive(Debug, Clone)]
pub struct ClientAddr(pub String);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string())
            .ok_or_else(|| AppError::Internal("no peer address".into()))?;
        Ok(ClientAddr(client_ip_of(state, &parts.headers, &peer)))
    }
}

/// A camera capture post (`multipart/form-data`: an `image` file and text fields, each once) from
/// facegate's own face pages, whose CSRF token matches the browser's cookie. Refusals come in the
/// capture script's JSON shape (`{"ok": false, "error": ...}`), which the page shows as it is.
#[derive(Debug)]
pub struct CaptureUpload {
    pub fields: HashMap<String, String>,
    /// The picture, when one was sent (empty files count as none).
    pub image: Option<Vec<u8>>,
}

/// The capture script's error answer.
pub fn capture_refusal(status: StatusCode, message: &str) -> Response {
    let mut r = (status, Json(json!({"ok": false, "error": message}))).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

impl FromRequest<AppState> for CaptureUpload {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let headers = req.headers().clone();
        let mut multipart = Multipart::from_request(req, state).await.map_err(|e| {
            capture_refusal(
                StatusCode::BAD_REQUEST,
                &format!("The upload could not be read: {}.", e.body_text()),
            )
        })?;
        let mut fields = HashMap::new();
        let mut image = None;
        loop {
            let field = match multipart.next_field().await {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    return Err(capture_refusal(
                        StatusCode::BAD_REQUEST,
                        &format!("The upload could not be read: {}.", e.body_text()),
                    ));
                }
            };
            let name = field.name().unwrap_or("").to_string();
            if name == "image" {
                let bytes = field.bytes().await.map_err(|e| {
                    capture_refusal(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        &format!("The picture could not be read: {}.", e.body_text()),
                    )
                })?;
                if image.replace(bytes.to_vec()).is_some() {
                    return Err(capture_refusal(
                        StatusCode::BAD_REQUEST,
                        "Send one picture at a time.",
                    ));
                }
            } else {
                let text = field
                    .text()
                    .await
                    .map_err(|_| capture_refusal(StatusCode::BAD_REQUEST, "The form could not be read."))?;
                if fields.insert(name, text).is_some() {
                    return Err(capture_refusal(
                        StatusCode::BAD_REQUEST,
                        "A form field appears twice.",
                    ));
                }
            }
        }
        if check_csrf(state, &headers, fields.get("csrf")).is_err() {
            return Err(capture_refusal(
                StatusCode::FORBIDDEN,
                "This page has expired. Reload it and try again.",
            ));
        }
        Ok(CaptureUpload {
            fields,
            image: image.filter(|i| !i.is_empty()),
        })
    }
}

/// The browser's device cookie (set by the face and account pages), if it has one: liveness checks
/// belong to it, and it is one of the login throttle's keys.
#[derive(Debug, Clone)]
pub struct Device(pub Option<String>);

impl FromRequestParts<AppState> for Device {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let name = cookies::name(DEVICE, state.settings.secure_cookies());
        Ok(Device(
            cookies::get(&parts.headers, &name).filter(|d| !d.is_empty()),
        ))
    }
}

/// The client address: the peer's, or behind a trusted proxy the last X-Forwarded-For entry.
pub(crate) fn client_ip_of(state: &AppState, headers: &HeaderMap, peer: &str) -> String {
    if state.settings.trust_proxy
        && let Some(last) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
    {
        return last.trim().to_string();
    }
    peer.to_string()
}
