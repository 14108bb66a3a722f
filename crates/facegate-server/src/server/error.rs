//! The one mapping from errors to HTTP responses. OAuth endpoints answer RFC 6749 JSON; pages answer
//! HTML. Internal details are logged, never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use facegate_oidc::{ErrorCode, OAuthError};

use super::html;

#[derive(Debug)]
pub enum AppError {
    /// An OAuth JSON error (token, userinfo, revocation, introspection, registration, admin API).
    OAuth(OAuthError),
    /// A bearer-token error (userinfo, admin API): 401 with WWW-Authenticate.
    Bearer(OAuthError),
    /// An error page for a person.
    Page(StatusCode, String),
    Internal(String),
}

impl From<OAuthError> for AppError {
    fn from(e: OAuthError) -> Self {
        AppError::OAuth(e)
    }
}

impl From<anyhow::Error> for AppError {
    fn from(e: anyhow::Error) -> Self {
        AppError::Internal(format!("{e:#}"))
    }
}

impl From<facegate_store::StoreError> for AppError {
    fn from(e: facegate_store::StoreError) -> Self {
        AppError::Internal(e.to_string())
    }
}

pub fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            AppError::OAuth(e) => {
                let status = StatusCode::from_u16(e.error.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
                let mut r = no_store((status, axum::Json(&e)).into_response());
                if e.error == ErrorCode::InvalidClient {
                    r.headers_mut().insert(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static("Basic realm=\"facegate\""),
                    );
                }
                r
            }
            AppError::Bearer(e) => {
                let challenge = format!(
                    "Bearer error=\"{}\", error_description=\"{}\"",
                    e.error.as_str(),
                    e.description.replace('"', "'")
                );
                let mut r = no_store((StatusCode::UNAUTHORIZED, axum::Json(&e)).into_response());
                if let Ok(v) = HeaderValue::from_str(&challenge) {
                    r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
                r
            }
            AppError::Page(status, msg) => (status, Html(html::error(&msg))).into_response(),
            AppError::Internal(detail) => {
                tracing::error!("internal error: {detail}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Html(html::error("Something went wrong on our side. Please try again.")),
                )
                    .into_response()
            }
        }
    }
}
