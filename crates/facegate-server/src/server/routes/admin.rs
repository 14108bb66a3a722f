//! Admin API (bearer `FACEGATE_ADMIN_TOKEN`): clients, over the same functions as the CLI.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use facegate_core::secret::constant_time_eq;
use facegate_oidc::client::ClientMetadata;
use facegate_oidc::{ErrorCode, OAuthError};

use super::bearer;
use super::oidc::client_json;
use crate::server::error::{AppError, no_store};
use crate::server::provider;
use crate::server::state::AppState;

fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), AppError> {
    let Some(expected) = &state.settings.admin_token else {
        return Err(AppError::Page(
            StatusCode::NOT_FOUND,
            "The admin API is not enabled (set FACEGATE_ADMIN_TOKEN).".into(),
        ));
    };
    if bearer(headers).is_some_and(|t| constant_time_eq(t.as_bytes(), expected.expose().as_bytes())) {
        Ok(())
    } else {
        Err(AppError::Bearer(OAuthError::new(
            ErrorCode::InvalidToken,
            "a valid admin token is required",
        )))
    }
}

pub async fn list_clients(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    authorize(&state, &headers)?;
    let clients = state.store.clients().await?;
    let body: Vec<_> = clients
        .iter()
        .map(|c| client_json(&state, c, None, None))
        .collect();
    Ok(no_store(Json(body).into_response()))
}

pub async fn create_client(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    authorize(&state, &headers)?;
    let meta: ClientMetadata = serde_json::from_slice(&body).map_err(|e| {
        OAuthError::new(
            ErrorCode::InvalidClientMetadata,
            format!("invalid client metadata: {e}"),
        )
    })?;
    let (client, secret) = provider::register_client(&state.store, meta, None).await?;
    Ok(no_store(
        (
            StatusCode::CREATED,
            Json(client_json(&state, &client, secret.as_deref(), None)),
        )
            .into_response(),
    ))
}

pub async fn delete_client(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    authorize(&state, &headers)?;
    if state.store.delete_client(&id).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(AppError::OAuth(OAuthError::new(
            ErrorCode::InvalidRequest,
            "no such client",
        )))
    }
}
