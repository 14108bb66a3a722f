//! CORS for the endpoints a browser application calls itself (a single-page app doing code + PKCE).
//!
//! - Discovery and the JWKS are public documents: any origin may read them (`*`).
//! - Token, userinfo and revocation answer only origins that a registered client redirects to (the
//!   scheme, host and port of one of its `redirect_uris`); other origins get no CORS headers, and their
//!   preflight is refused with 403. No credentials (cookies) are ever allowed cross-origin: these
//!   endpoints authenticate with the request itself (code + PKCE verifier, bearer token).
//!
//! Preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered here, before the
//! route's handler; a plain `OPTIONS` without them goes on to the router (405).

use axum::extract::{Request, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::state::AppState;

const ALLOW_HEADERS: &str = "authorization, content-type";
const EXPOSE_HEADERS: &str = "www-authenticate";
const MAX_AGE: &str = "600";

fn is_preflight(req: &Request) -> bool {
    req.method() == Method::OPTIONS
        && req.headers().contains_key(ORIGIN)
        && req.headers().contains_key(ACCESS_CONTROL_REQUEST_METHOD)
}

fn preflight(origin: HeaderValue, methods: &'static str) -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    let h = r.headers_mut();
    h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(methods));
    h.insert(
        ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(ALLOW_HEADERS),
    );
    h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(MAX_AGE));
    h.append(VARY, HeaderValue::from_static("origin"));
    r
}

/// Discovery and JWKS: readable from any origin.
pub async fn public(req: Request, next: Next) -> Response {
    if is_preflight(&req) {
        return preflight(HeaderValue::from_static("*"), "GET");
    }
    let mut r = next.run(req).await;
    r.headers_mut()
        .insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    r
}

/// Token, userinfo, revocation: readable only from origins of registered clients' redirect URIs.
pub async fn registered_origins(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let origin = allowed_origin(&state, req.headers()).await;
    if is_preflight(&req) {
        return match origin {
            Some(o) => preflight(o, "GET, POST"),
            None => (StatusCode::FORBIDDEN, "origin not allowed").into_response(),
        };
    }
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.append(VARY, HeaderValue::from_static("origin"));
    if let Some(o) = origin {
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, o);
        h.insert(
            ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSE_HEADERS),
        );
    }
    r
}

/// The request's `Origin` if some registered client redirects to it.
async fn allowed_origin(state: &AppState, headers: &HeaderMap) -> Option<HeaderValue> {
    let value = headers.get(ORIGIN)?;
    let origin = value.to_str().ok()?;
    // "null" (sandboxed frames, file: pages) and anything that is not a plain origin never match.
    let parsed = url::Url::parse(origin).ok()?;
    if parsed.path() != "/" || origin.ends_with('/') || !matches!(parsed.scheme(), "http" | "https") {
        return None;
    }
    let wanted = parsed.origin().ascii_serialization();
    let clients = match state.store.clients().await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("CORS: listing clients failed: {e}");
            return None;
        }
    };
    clients
        .iter()
        .flat_map(|c| c.redirect_uris.iter())
        .filter_map(|u| url::Url::parse(u).ok())
        .any(|u| u.origin().ascii_serialization() == wanted && wanted == origin)
        .then(|| value.clone())
}
