//! Prometheus metrics at `/metrics`: requests by route and status with latency histograms (a
//! middleware over every route), logins and other audited events by kind, factor and outcome
//! (counted where the store writes the audit event), liveness outcomes, the face pipeline's stage
//! times (recorded by facegate-vision) and the face engine's queue, read at each scrape.
//!
//! The endpoint needs `Authorization: Bearer <FACEGATE_METRICS_TOKEN>`; without a token configured
//! it answers 404 — login counts and queue depths are not for the public, and a proxy in front would
//! make a "loopback only" rule meaningless. Labels are route templates and fixed words, never
//! input (no user names, addresses or ids), so the series stay few.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::server::state::AppState;

/// Latency buckets in seconds: from a cached discovery document (~0.1 ms) to a face upload on a
/// busy machine (seconds).
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process's recorder once (several servers in one test process share it). `None`
/// when another recorder was installed first (metrics are then not served).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
                .ok()?;
            let handle = builder.install_recorder().ok()?;
            describe();
            Some(handle)
        })
        .as_ref()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "facegate_http_requests_total",
        "HTTP requests by route template, method and status"
    );
    describe_histogram!(
        "facegate_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "HTTP request latency by route template and method"
    );
    describe_counter!(
        "facegate_events_total",
        "audited events (logins, sign-ups, liveness checks, face changes) by kind, factor and outcome"
    );
    describe_histogram!(
        "facegate_face_stage_seconds",
        metrics::Unit::Seconds,
        "time of each face pipeline stage (decode, detect, landmarks, align, embed, antispoof)"
    );
    describe_counter!(
        "facegate_liveness_checks_total",
        "liveness checks ended, by surface (login page or API), status and failure reason"
    );
    describe_gauge!("facegate_face_queue_depth", "face jobs waiting for a worker");
    describe_gauge!("facegate_face_running", "face jobs being analysed");
    describe_gauge!("facegate_face_queue_bound", "face jobs the queue holds at most");
    describe_gauge!("facegate_face_workers", "face worker threads");
    describe_counter!("facegate_face_jobs_served_total", "face jobs analysed");
    describe_counter!("facegate_face_jobs_shed_total", "face jobs refused as busy (503)");
}

/// Counts every request by its route template (`/register/{client_id}`, never the id itself).
pub async fn track(matched: Option<MatchedPath>, req: Request, next: Next) -> Response {
    if handle().is_none() {
        return next.run(req).await;
    }
    let route = matched.map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let method = req.method().as_str().to_string();
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("facegate_http_requests_total", "route" => route.clone(), "method" => method.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("facegate_http_request_duration_seconds", "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`: the Prometheus text format, for a scraper holding the metrics token.
pub async fn render(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(expected) = state.settings.metrics_token.as_ref().map(|s| s.expose()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !facegate_core::secret::constant_time_eq(presented.as_bytes(), expected.as_bytes()) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"metrics\"")],
            "metrics need the bearer token set in FACEGATE_METRICS_TOKEN\n",
        )
            .into_response();
    }
    let Some(handle) = handle() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder not installed\n",
        )
            .into_response();
    };
    if let Some(stats) = state.face.as_ref().map(|f| f.engine().stats()) {
        metrics::gauge!("facegate_face_queue_depth").set(stats.queued as f64);
        metrics::gauge!("facegate_face_running").set(stats.running as f64);
        metrics::gauge!("facegate_face_queue_bound").set(stats.bound as f64);
        metrics::gauge!("facegate_face_workers").set(stats.workers as f64);
        metrics::counter!("facegate_face_jobs_served_total").absolute(stats.served);
        metrics::counter!("facegate_face_jobs_shed_total").absolute(stats.shed);
    }
    handle.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        handle.render(),
    )
        .into_response()
}

/// Counts a liveness check that ended with this frame (`surface`: `login` for the login page,
/// `api` for `/v1/liveness/sessions`).
pub fn liveness_outcome(
    surface: &'static str,
    status: facegate_core::liveness::Status,
    reason: Option<facegate_core::liveness::FailReason>,
) {
    if !status.is_final() {
        return;
    }
    let word = |v: serde_json::Value| v.as_str().unwrap_or("").to_lowercase();
    let status = word(serde_json::json!(status));
    let reason = reason.map_or_else(|| "none".to_string(), |r| word(serde_json::json!(r)));
    metrics::counter!("facegate_liveness_checks_total", "surface" => surface, "status" => status, "reason" => reason)
        .increment(1);
}
