//! What a load balancer and an orchestrator ask: `/healthz` (the process answers) and `/readyz`
//! (it can serve: the database answers; the face models loaded at start, or it would not be up).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::server::state::AppState;

fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

pub async fn healthz() -> Response {
    no_store((StatusCode::OK, Json(json!({"status": "ok"}))).into_response())
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    let database = match tokio::time::timeout(std::time::Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within 2 s".to_string()),
    };
    let face = if state.settings.face.enabled {
        if state.face.is_some() { "loaded" } else { "missing" }
    } else {
        "off"
    };
    match database {
        Ok(()) if face != "missing" => no_store(
            (
                StatusCode::OK,
                Json(json!({"status": "ready", "database": format!("{:?}", state.store.backend()).to_lowercase(), "face": face})),
            )
                .into_response(),
        ),
        Ok(()) => no_store(
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "not ready", "face": face})),
            )
                .into_response(),
        ),
        Err(e) => {
            tracing::warn!("readiness: database: {e}");
            no_store(
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({"status": "not ready", "database": "unreachable", "face": face})),
                )
                    .into_response(),
            )
        }
    }
}
