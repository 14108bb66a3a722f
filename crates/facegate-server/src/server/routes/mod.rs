//! Route groups: the protocol endpoints, the pages people see, and the admin API.

pub mod account;
pub mod admin;
pub mod admin_accounts;
pub mod admin_page;
pub mod api;
pub mod api_input;
pub mod device;
pub mod extract;
pub mod face;
pub mod health;
pub mod liveness_api;
pub mod oidc;
pub mod pages;
pub mod rekognition;

use std::collections::HashMap;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

/// Form or query parameters as a map, refusing repeats (RFC 6749 section 3.1 and 3.2).
pub fn single_valued(
    pairs: &[(String, String)],
) -> Result<HashMap<String, String>, facegate_oidc::OAuthError> {
    let mut m = HashMap::new();
    for (k, v) in pairs {
        if m.insert(k.clone(), v.clone()).is_some() {
            return Err(facegate_oidc::OAuthError::invalid_request(format!(
                "parameter {k} appears more than once"
            )));
        }
    }
    Ok(m)
}

/// A page form's fields; a repeated field is answered with an error page.
pub fn page_form(
    pairs: &[(String, String)],
) -> Result<HashMap<String, String>, crate::server::error::AppError> {
    single_valued(pairs)
        .map_err(|e| crate::server::error::AppError::Page(axum::http::StatusCode::BAD_REQUEST, e.description))
}

pub fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers.get(AUTHORIZATION).and_then(|h| h.to_str().ok())
}

/// The bearer token of an `Authorization: Bearer` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let h = authorization(headers)?;
    (h.len() > 7 && h[..7].eq_ignore_ascii_case("bearer ")).then(|| h[7..].trim())
}

/// The pairs of an `application/x-www-form-urlencoded` body (empty for any other body).
pub fn form_pairs(headers: &HeaderMap, body: &[u8]) -> Vec<(String, String)> {
    let is_form = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Vec::new();
    }
    url::form_urlencoded::parse(body).into_owned().collect()
}
