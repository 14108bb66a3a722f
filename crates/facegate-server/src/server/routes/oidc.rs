//! Protocol endpoints: discovery, JWKS, token, userinfo, revocation, introspection, registration.

use axum::Form;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use facegate_core::secret::{constant_time_eq, random_token, storage_hash};
use facegate_oidc::client::{Client, ClientMetadata};
use facegate_oidc::{ErrorCode, OAuthError};
use serde_json::json;

use super::{authorization, bearer};
use crate::server::error::{AppError, no_store};
use crate::server::provider;
use crate::server::state::AppState;
use facegate_oidc::token::{TokenQuery, TokenRequest};

pub async fn discovery(State(state): State<AppState>) -> Response {
    json_bytes(state.documents().discovery.clone())
}

pub async fn jwks(State(state): State<AppState>) -> Response {
    json_bytes(state.documents().jwks.clone())
}

fn json_bytes(body: axum::body::Bytes) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let req = TokenRequest::parse(authorization(&headers), &pairs)?;
    let response = provider::token(&state, req).await?;
    Ok(no_store(Json(response).into_response()))
}

pub async fn userinfo(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let from_form = super::form_pairs(&headers, &body)
        .into_iter()
        .find(|(k, _)| k == "access_token")
        .map(|(_, v)| v);
    let token = match (bearer(&headers), from_form) {
        (Some(t), None) => t.to_string(),
        (None, Some(t)) => t,
        (Some(_), Some(_)) => {
            return Err(AppError::OAuth(OAuthError::invalid_request(
                "send the access token one way only",
            )));
        }
        (None, None) => {
            return Err(AppError::Bearer(OAuthError::new(
                ErrorCode::InvalidToken,
                "an access token is required",
            )));
        }
    };
    let claims = provider::userinfo(&state, &token).await.map_err(|e| {
        if e.error == ErrorCode::InvalidToken {
            AppError::Bearer(e)
        } else {
            AppError::OAuth(e)
        }
    })?;
    Ok(no_store(Json(claims).into_response()))
}

pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let q = TokenQuery::parse(authorization(&headers), &pairs)?;
    provider::revoke(&state, q).await?;
    Ok(no_store(().into_response()))
}

pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let q = TokenQuery::parse(authorization(&headers), &pairs)?;
    Ok(no_store(
        Json(provider::introspect(&state, q).await?).into_response(),
    ))
}

/// The registration response: metadata plus the credentials shown once (RFC 7591 3.2.1).
pub fn client_json(
    state: &AppState,
    c: &Client,
    secret: Option<&str>,
    registration_token: Option<&str>,
) -> serde_json::Value {
    let mut v = json!({
        "client_id": c.client_id,
        "client_name": c.name,
        "redirect_uris": c.redirect_uris,
        "post_logout_redirect_uris": c.post_logout_redirect_uris,
        "grant_types": c.grant_types,
        "response_types": if c.allows_grant("implicit") { json!(["code", "id_token", "id_token token", "code id_token"]) } else { json!(["code"]) },
        "token_endpoint_auth_method": c.auth_method.as_str(),
        "id_token_signed_response_alg": c.id_token_alg.as_str(),
        "subject_type": if c.pairwise { "pairwise" } else { "public" },
        "scope": c.scope,
        "client_id_issued_at": c.created_at,
        "resource_server": c.resource_server,
        "require_pushed_authorization_requests": c.require_par,
        "jwt_access_tokens": c.jwt_access_tokens,
        "backchannel_logout_uri": c.backchannel_logout_uri,
        "backchannel_logout_session_required": c.backchannel_logout_session_required,
    });
    if let Some(obj) = v.as_object_mut() {
        if let Some(s) = secret {
            obj.insert("client_secret".into(), json!(s));
            obj.insert("client_secret_expires_at".into(), json!(0));
        }
        if let Some(t) = registration_token {
            obj.insert("registration_access_token".into(), json!(t));
            obj.insert(
                "registration_client_uri".into(),
                json!(format!("{}/register/{}", state.settings.issuer, c.client_id)),
            );
        }
    }
    v
}

/// RFC 7591 dynamic registration, gated by the initial access token.
pub async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let Some(expected) = &state.settings.registration_token else {
        return Err(AppError::Page(
            axum::http::StatusCode::NOT_FOUND,
            "Registration is not enabled.".into(),
        ));
    };
    let presented = bearer(&headers).unwrap_or("");
    if !constant_time_eq(presented.as_bytes(), expected.expose().as_bytes()) {
        return Err(AppError::Bearer(OAuthError::new(
            ErrorCode::InvalidToken,
            "a valid initial access token is required",
        )));
    }
    let meta: ClientMetadata = serde_json::from_slice(&body).map_err(|e| {
        OAuthError::new(
            ErrorCode::InvalidClientMetadata,
            format!("body is not valid client metadata: {e}"),
        )
    })?;
    let registration_token = random_token(32);
    let (client, secret) =
        provider::register_client(&state.store, meta, Some(&storage_hash(&registration_token))).await?;
    let body = client_json(&state, &client, secret.as_deref(), Some(&registration_token));
    Ok(no_store(
        (axum::http::StatusCode::CREATED, Json(body)).into_response(),
    ))
}

/// The client a registration access token opens (RFC 7592 2), or a 401.
async fn registered_client(
    state: &AppState,
    client_id: &str,
    headers: &HeaderMap,
) -> Result<Client, AppError> {
    let token = bearer(headers).unwrap_or("");
    let client = state
        .store
        .client_by_registration_token(client_id, &storage_hash(token))
        .await?;
    client.ok_or_else(|| {
        AppError::Bearer(OAuthError::new(
            ErrorCode::InvalidToken,
            "invalid registration access token",
        ))
    })
}

/// RFC 7592 read: a client's current registration.
pub async fn registration(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let client = registered_client(&state, &client_id, &headers).await?;
    Ok(no_store(
        Json(client_json(&state, &client, None, None)).into_response(),
    ))
}

/// RFC 7592 update: the metadata sent replaces the registration (same rules as registering); the
/// answer carries a new registration access token (the old one stops working).
pub async fn registration_update(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let existing = registered_client(&state, &client_id, &headers).await?;
    let raw: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
        OAuthError::new(
            ErrorCode::InvalidClientMetadata,
            format!("body is not valid client metadata: {e}"),
        )
    })?;
    if raw.get("client_id").and_then(|v| v.as_str()) != Some(client_id.as_str()) {
        return Err(AppError::OAuth(OAuthError::invalid_request(
            "the body must name the client_id being updated (RFC 7592 2.2)",
        )));
    }
    let meta: ClientMetadata = serde_json::from_value(raw).map_err(|e| {
        OAuthError::new(
            ErrorCode::InvalidClientMetadata,
            format!("body is not valid client metadata: {e}"),
        )
    })?;
    let registration_token = random_token(32);
    let (client, secret) =
        provider::update_client(&state.store, &existing, meta, &storage_hash(&registration_token)).await?;
    Ok(no_store(
        Json(client_json(
            &state,
            &client,
            secret.as_deref(),
            Some(&registration_token),
        ))
        .into_response(),
    ))
}

/// RFC 7592 delete: the client and everything issued to it are gone.
pub async fn registration_delete(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let client = registered_client(&state, &client_id, &headers).await?;
    state.store.delete_client(&client.client_id).await?;
    Ok(no_store(axum::http::StatusCode::NO_CONTENT.into_response()))
}

/// RFC 8628 3.1: the device authorization endpoint.
pub async fn device_authorization(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let req = facegate_oidc::engine::device::DeviceRequest::parse(authorization(&headers), &pairs)?;
    let response = provider::device_authorization(&state, req).await?;
    Ok(no_store(Json(response).into_response()))
}

/// RFC 9126 2.1: the pushed authorization request endpoint (201 with a request_uri).
pub async fn par(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let response = provider::push_authorization(&state, authorization(&headers), &pairs).await?;
    Ok(no_store(
        (axum::http::StatusCode::CREATED, Json(response)).into_response(),
    ))
}
