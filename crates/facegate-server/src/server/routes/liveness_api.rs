//! The `/v1/liveness/sessions` API: liveness checks for other applications, in the shape users of
//! cloud liveness services know. Create a session (scope `liveness`, counted against the client's
//! rate limit and quota; idempotent on `clientRequestToken`), send camera frames each with its
//! one-time frame token, then read the status, confidence and (if asked for) a reference image. The
//! checks are the same as the login page's (docs/liveness.md); a session belongs to the client that
//! created it, is single use and expires.

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value, json};

use super::api_input::{ApiInput, OneImage, OptionalParams};
use crate::server::api_auth::{Bearer, LivenessScope, Scoped};
use crate::server::problem::Problem;
use crate::server::state::AppState;

pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/v1/liveness/sessions", post(create_liveness_session))
        .route("/v1/liveness/sessions/{id}", get(get_liveness_session))
        .route("/v1/liveness/sessions/{id}/frames", post(liveness_frame))
        .method_not_allowed_fallback(super::api::method_not_allowed)
        .layer(DefaultBodyLimit::max(state.settings.api.max_body))
}

type ApiResult = Result<Response, Problem>;

fn ok(v: Value) -> ApiResult {
    Ok((StatusCode::OK, axum::Json(v)).into_response())
}

fn liveness_service(state: &AppState) -> Result<&crate::server::liveness::LivenessService, Problem> {
    state.face.as_ref().map(|f| &f.liveness).ok_or_else(|| {
        Problem::unavailable("liveness is off on this server (models missing or FACEGATE_FACE=off)")
            .with_retry_after(60)
    })
}

fn session_json(r: &crate::server::liveness::Report, want_image: bool) -> Value {
    let mut v = json!({
        "sessionId": r.id,
        "status": r.status,
        "challenge": r.kind.as_str(),
    });
    if let Some(d) = &r.decision {
        v["confidence"] = json!(d.confidence);
        if let Some(reason) = d.reason {
            v["reason"] = json!(reason);
        }
    }
    if want_image && let Some(img) = &r.reference {
        v["referenceImage"] = json!({
            "bytes": base64::engine::general_purpose::STANDARD.encode(img),
            "contentType": "image/jpeg",
        });
    }
    v
}

/// POST /v1/liveness/sessions: a new check with a server-chosen challenge. Idempotent on
/// `clientRequestToken` (the same token returns the same session while it is known).
async fn create_liveness_session(
    State(state): State<AppState>,
    Bearer(caller, _): Bearer<LivenessScope>,
    ApiInput(input, _): ApiInput<OptionalParams>,
) -> ApiResult {
    input.only(&["clientRequestToken", "returnReferenceImage"])?;
    let crt = input.string("clientRequestToken")?;
    if let Some(t) = &crt
        && (t.is_empty() || t.len() > 128 || !t.chars().all(|c| c.is_ascii_graphic()))
    {
        return Err(Problem::invalid_request(
            "clientRequestToken must be 1-128 printable ASCII characters",
        ));
    }
    let want_reference = match input.params.get("returnReferenceImage") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) if s == "true" || s == "false" => s == "true",
        Some(_) => {
            return Err(Problem::invalid_request(
                "returnReferenceImage must be true or false",
            ));
        }
    };
    let live = liveness_service(&state)?;
    let started = live
        .start(
            crate::server::liveness::Owner::Client(caller.client_id),
            crt,
            want_reference,
        )
        .map_err(|e| Problem::unavailable(e.to_string()).with_retry_after(60))?;
    if !started.existing && !crate::server::liveness_share::push(&state, live, &started.id, None).await {
        return Err(Problem::unavailable("the session could not be stored").with_retry_after(5));
    }
    let mut body = json!({
        "sessionId": started.id,
        "status": started.status,
        "challenge": {"kind": started.kind, "params": started.params, "prompt": started.prompt},
        "expiresIn": started.expires_in,
    });
    if let Some(t) = started.frame_token {
        body["frameToken"] = json!(t);
    }
    let status = if started.existing {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, axum::Json(body)).into_response())
}

/// POST /v1/liveness/sessions/{id}/frames: one camera frame with the current frame token.
async fn liveness_frame(
    State(state): State<AppState>,
    // Frames are part of a session already counted against the quota: token and scope only.
    Scoped(caller, _): Scoped<LivenessScope>,
    Path(id): Path<String>,
    ApiInput(mut input, _): ApiInput<OneImage>,
) -> ApiResult {
    input.only(&["frameToken"])?;
    let token = input
        .string("frameToken")?
        .ok_or_else(|| Problem::invalid_request("the request has no frameToken"))?;
    let image = input.image("image")?;
    if image.len() > state.settings.api.max_image {
        return Err(Problem::too_large("the frame is larger than the image limit"));
    }
    let live = liveness_service(&state)?;
    let owner = crate::server::liveness::Owner::Client(caller.client_id);
    crate::server::liveness_share::pull(&state, live, &id).await;
    let before = live.version(&id);
    let result = live.frame(&owner, &id, &token, image).await;
    if !crate::server::liveness_share::push(&state, live, &id, before).await {
        // Another instance took a frame of this session at the same time: its answer stands.
        return Err(
            Problem::conflict("frame-refused", "Frame refused", "the session moved on elsewhere")
                .with_extra(json!({"refusal": "bad-token"})),
        );
    }
    match result {
        Ok(out) => {
            crate::server::metrics::liveness_outcome("api", out.status, out.reason);
            ok(json!({
                "status": out.status,
                "nextFrameToken": out.next_token,
                "prompt": out.prompt,
                "move": out.current_move,
                "frameIssue": out.frame_issue,
                "reason": out.reason,
            }))
        }
        Err(crate::server::liveness::LivenessError::NotFound) => Err(Problem::not_found(
            "session-not-found",
            "No such liveness session",
            "no liveness session with this id belongs to this client",
        )),
        Err(crate::server::liveness::LivenessError::Busy { retry_after }) => Err(Problem::busy(retry_after)),
        Err(crate::server::liveness::LivenessError::Refused(r)) => {
            use facegate_core::liveness::FrameRefusal::*;
            let kind = match r {
                BadToken => "bad-token",
                Replayed => "replayed",
                Late => "late",
                Finished => "finished",
                Busy => "busy",
            };
            Err(Problem::conflict("frame-refused", "Frame refused", r.to_string())
                .with_extra(json!({"refusal": kind})))
        }
        Err(e) => Err(Problem::internal(e)),
    }
}

/// GET /v1/liveness/sessions/{id}: status, confidence and (when asked for at creation and the check
/// succeeded) the reference image.
async fn get_liveness_session(
    State(state): State<AppState>,
    Scoped(caller, _): Scoped<LivenessScope>,
    Path(id): Path<String>,
) -> ApiResult {
    let live = liveness_service(&state)?;
    let owner = crate::server::liveness::Owner::Client(caller.client_id);
    crate::server::liveness_share::pull(&state, live, &id).await;
    let r = live.report(&owner, &id).map_err(|_| {
        Problem::not_found(
            "session-not-found",
            "No such liveness session",
            "no liveness session with this id belongs to this client (or it expired long ago)",
        )
    })?;
    ok(session_json(&r, true))
}
