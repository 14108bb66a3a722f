//! Custom extractors: a malformed request is refused in the surface's own shape, decided here once
//! rather than in every handler (the pages answer with an HTML error page).

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Form;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;

use super::page_form;
use super::pages::{check_csrf, client_ip_of};
use crate::server::error::AppError;
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
