//! Guessing a bearer secret (the admin token, the registration tokens, the admin page's password
//! form) is throttled per client address like a password: an answer of 401 or 403 counts as a
//! failure, and an address that failed too often waits (429 + Retry-After) before it is heard again.

use facegate_core::throttle::AttemptGuard;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::state::AppState;

pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let addr = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default();
    let ip = super::routes::extract::client_ip_of(&state, req.headers(), &addr);
    let keys = vec![format!("bearer-ip:{ip}")];
    if let Err(wait) = state.login_guard.begin(&keys).await {
        let secs = wait.as_secs().max(1);
        let mut r = (
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many failed attempts. Try again in {secs} seconds.\n"),
        )
            .into_response();
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let r = next.run(req).await;
    let failed = matches!(r.status(), StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN);
    state.login_guard.end(&keys, !failed).await;
    r
}
