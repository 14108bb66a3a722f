//! RFC 9457 problem details (`application/problem+json`) for the `/v1` APIs. Every error has a stable
//! `type` URI under [`PROBLEM_BASE`] (documented in docs/face-api.md), a status, a short title and a
//! detail for people. Internal details are logged, never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Base of every problem `type`: `https://facegate.dev/problems/<kind>`.
pub const PROBLEM_BASE: &str = "https://facegate.dev/problems/";

/// A problem answer. Boxed, so `Result<T, Problem>` stays small.
#[derive(Debug, Clone)]
pub struct Problem(Box<ProblemDetails>);

impl std::ops::Deref for Problem {
    type Target = ProblemDetails;
    fn deref(&self) -> &ProblemDetails {
        &self.0
    }
}

impl std::ops::DerefMut for Problem {
    fn deref_mut(&mut self) -> &mut ProblemDetails {
        &mut self.0
    }
}

#[derive(Debug, Clone)]
pub struct ProblemDetails {
    pub status: StatusCode,
    /// The last part of the `type` URI, e.g. `no-face`.
    pub kind: &'static str,
    pub title: &'static str,
    pub detail: String,
    /// Seconds, for 429 and 503 answers.
    pub retry_after: Option<u64>,
    /// A `WWW-Authenticate` challenge, for 401 and 403 answers.
    pub challenge: Option<String>,
    /// Extra members (e.g. the required scope).
    pub extra: Option<serde_json::Value>,
}

impl Problem {
    pub fn new(
        status: StatusCode,
        kind: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self(Box::new(ProblemDetails {
            status,
            kind,
            title,
            detail: detail.into(),
            retry_after: None,
            challenge: None,
            extra: None,
        }))
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    pub fn with_extra(mut self, extra: serde_json::Value) -> Self {
        self.extra = Some(extra);
        self
    }

    pub fn type_uri(&self) -> String {
        format!("{PROBLEM_BASE}{}", self.kind)
    }

    pub fn invalid_request(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid-request",
            "Invalid request",
            detail,
        )
    }

    pub fn invalid_image(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid-image",
            "The image cannot be used",
            detail,
        )
    }

    pub fn too_large(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Request or image too large",
            detail,
        )
    }

    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported content type",
            detail,
        )
    }

    pub fn no_face(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no-face",
            "No face found",
            detail,
        )
    }

    pub fn not_found(kind: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, kind, title, detail)
    }

    pub fn conflict(kind: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, kind, title, detail)
    }

    /// 401: no bearer token, or one that is unknown, expired or revoked.
    pub fn invalid_token(detail: impl Into<String>) -> Self {
        let detail = detail.into();
        let mut p = Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid-token",
            "Missing or invalid access token",
            detail,
        );
        p.challenge = Some("Bearer realm=\"facegate\", error=\"invalid_token\"".into());
        p
    }

    /// 403: a valid token without the scope the endpoint needs.
    pub fn insufficient_scope(scope: &str) -> Self {
        let mut p = Self::new(
            StatusCode::FORBIDDEN,
            "insufficient-scope",
            "The access token lacks a required scope",
            format!("this endpoint needs the scope {scope}"),
        )
        .with_extra(json!({ "requiredScope": scope }));
        p.challenge = Some(format!(
            "Bearer realm=\"facegate\", error=\"insufficient_scope\", scope=\"{scope}\""
        ));
        p
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "face-unavailable",
            "The face pipeline is not available",
            detail,
        )
    }

    /// 503 + Retry-After: the face engine's queue is full (answered at once, nothing was queued).
    pub fn busy(retry_after_secs: u64) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "The face service is busy",
            "every face worker is busy and the queue is full; try again after Retry-After seconds",
        )
        .with_retry_after(retry_after_secs)
    }

    /// 500, with the detail logged and a generic text sent.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!("face API internal error: {detail}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "something went wrong on our side; try again",
        )
    }
}

impl From<facegate_store::StoreError> for Problem {
    fn from(e: facegate_store::StoreError) -> Self {
        Problem::internal(e)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let this = *self.0;
        let mut body = json!({
            "type": format!("{PROBLEM_BASE}{}", this.kind),
            "title": this.title,
            "status": this.status.as_u16(),
            "detail": this.detail,
        });
        if let (Some(obj), Some(serde_json::Value::Object(extra))) = (body.as_object_mut(), this.extra) {
            obj.extend(extra);
        }
        let mut r = (this.status, body.to_string()).into_response();
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(s) = this.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if let Some(c) = this.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            h.insert(header::WWW_AUTHENTICATE, c);
        }
        r
    }
}
