//! The HTTP server: router, limits, start-up.

pub mod accounts;
pub mod api_auth;
pub mod aws_keys;
pub mod backchannel;
pub mod bearer_throttle;
pub mod cookies;
pub mod cors;
pub mod data_key;
pub mod error;
pub mod face;
pub mod face_api;
pub mod face_json;
pub mod html;
pub mod keys;
pub mod liveness;
pub mod liveness_share;
pub mod login;
pub mod mail;
pub mod metrics;
pub mod password_pool;
pub mod problem;
pub mod provider;
pub mod routes;
pub mod security_headers;
pub mod settings;
pub mod sigv4;
pub mod state;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::{delete, get, post};
use jsonwebtoken::{DecodingKey, Validation};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

pub use settings::Settings;
pub use state::AppState;

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub fn router(state: AppState) -> Router {
    use routes::{admin, admin_page, face, oidc, pages};
    Router::new()
        .route("/", get(pages::home))
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .route("/metrics", get(metrics::render))
        .route(
            "/authorize",
            get(pages::authorize_get).post(pages::authorize_post),
        )
        .route("/authorize/resume", get(pages::resume))
        .route("/login", get(pages::login_page).post(pages::login_submit))
        .route("/consent", get(pages::consent_page).post(pages::consent_submit))
        .route("/logout", get(pages::logout).post(pages::logout))
        .route("/device", get(routes::device::page).post(routes::device::submit))
        .route("/introspect", post(oidc::introspect))
        .route("/admin", get(admin_page::index))
        .route("/admin/users", get(routes::admin_accounts::users))
        .route("/admin/users/{id}", get(routes::admin_accounts::user))
        .route("/admin/audit", get(routes::admin_accounts::audit))
        .route("/admin/collections", get(routes::admin_accounts::collections))
        // Where a bearer secret or the admin password is presented: throttled per address.
        .merge(
            Router::new()
                .route("/register", post(oidc::register))
                .route(
                    "/register/{client_id}",
                    get(oidc::registration)
                        .put(oidc::registration_update)
                        .delete(oidc::registration_delete),
                )
                .route("/admin/login", post(admin_page::login))
                .route("/admin/logout", post(admin_page::logout))
                .route("/admin/clients", post(admin_page::create))
                .route("/admin/clients/delete", post(admin_page::remove))
                .route(
                    "/admin/users/{id}/faces/delete",
                    post(routes::admin_accounts::remove_faces),
                )
                .route("/admin/users/{id}/{action}", post(routes::admin_accounts::action))
                .route("/admin/invites", post(routes::admin_accounts::invite))
                .route(
                    "/admin/api/clients",
                    get(admin::list_clients).post(admin::create_client),
                )
                .route("/admin/api/clients/{client_id}", delete(admin::delete_client))
                .layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    bearer_throttle::layer,
                )),
        )
        // What browser applications (single-page apps) call cross-origin: see cors.rs.
        .merge(
            Router::new()
                .route("/.well-known/openid-configuration", get(oidc::discovery))
                .route("/jwks.json", get(oidc::jwks))
                .layer(axum::middleware::from_fn(cors::public)),
        )
        .merge(
            Router::new()
                .route("/token", post(oidc::token))
                .route("/device_authorization", post(oidc::device_authorization))
                .route("/par", post(oidc::par))
                .route("/userinfo", get(oidc::userinfo).post(oidc::userinfo))
                .route("/revoke", post(oidc::revoke))
                .layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    cors::registered_origins,
                )),
        )
        .layer(RequestBodyLimitLayer::new(64 * 1024))
        .merge(
            // Image uploads: up to 12 MB, on these routes only.
            Router::new()
                .route("/login/face", get(face::login_page).post(face::login_submit))
                .route("/account/faces", post(face::enrol))
                .route("/face/check", post(face::check))
                .route("/login/face/liveness", post(face::liveness_start))
                .route("/login/face/liveness/{id}/frame", post(face::liveness_frame))
                .layer(axum::extract::DefaultBodyLimit::max(12 * 1024 * 1024))
                .layer(RequestBodyLimitLayer::new(12 * 1024 * 1024)),
        )
        // The /v1 face API (its own body limits and problem+json errors).
        .merge(routes::api::router(&state))
        .merge(routes::liveness_api::router(&state))
        .merge(routes::rekognition::router(&state))
        .route("/account", get(routes::account::account))
        .route(
            "/signup",
            get(routes::account::signup_page).post(routes::account::signup_submit),
        )
        .route(
            "/account/verify",
            get(routes::account::verify_page).post(routes::account::verify_submit),
        )
        .route("/account/verify/resend", post(routes::account::verify_resend))
        .route(
            "/password/forgot",
            get(routes::account::forgot_page).post(routes::account::forgot_submit),
        )
        .route(
            "/password/reset",
            get(routes::account::reset_page).post(routes::account::reset_submit),
        )
        .route("/account/profile", post(routes::account::profile))
        .route("/account/password", post(routes::account::change_password))
        .route("/account/email", post(routes::account::change_email))
        .route("/account/sessions/end", post(routes::account::end_session))
        .route(
            "/account/sessions/end-others",
            post(routes::account::end_other_sessions),
        )
        .route("/account/apps/revoke", post(routes::account::revoke_app))
        .route("/account/delete", post(routes::account::delete_account))
        .route("/account/disabled", get(routes::account::disabled))
        .route("/account/confirm", get(face::confirm))
        .route("/account/faces/delete", post(face::delete_face))
        .route("/account/faces/delete-all", post(face::delete_all_faces))
        .route("/static/face-capture.js", get(face::script))
        .route("/static/face-capture.css", get(face::stylesheet))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security_headers::add,
        ))
        .route_layer(axum::middleware::from_fn(metrics::track))
        .with_state(state)
}

/// Opens the store (creating the data directory, schema and signing keys on first start).
pub async fn open(settings: Settings) -> anyhow::Result<AppState> {
    std::fs::create_dir_all(&settings.data_dir)?;
    let store = data_key::open_store(&settings).await?;
    aws_keys::check_at_start(&store, &settings.data_dir).await?;
    AppState::new(settings, store).await
}

/// Serves until Ctrl-C or SIGTERM, then stops accepting and lets requests in flight finish (at most
/// 30 s, the request timeout). `listener` is bound by the caller (so tests can use port 0).
pub async fn serve(state: AppState, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    state.spawn_housekeeping();
    state.spawn_index_sync();
    state.spawn_frame_sync();
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}

/// Ctrl-C, or SIGTERM (what an orchestrator or `systemctl stop` sends).
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
    tracing::info!("shutting down: finishing the requests in flight");
}

/// The client (`aud`) and `sub` of an ID token this server signed, accepting expired ones (a logout
/// hint may be old); `None` if the signature or issuer is wrong.
pub fn logout_hint(state: &AppState, token: &str) -> Option<(String, String)> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    let kid = header.kid?;
    let keys = state.keys();
    let jwks = keys.jwks();
    let jwk = jwks.find(&kid)?;
    let key = DecodingKey::from_jwk(jwk).ok()?;
    let mut v = Validation::new(header.alg);
    v.validate_exp = false;
    v.validate_aud = false;
    v.set_issuer(&[state.settings.issuer.as_str()]);
    v.set_required_spec_claims(&["iss", "aud"]);
    let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, &v).ok()?;
    let aud = data.claims.get("aud")?.as_str()?.to_string();
    let sub = data.claims.get("sub")?.as_str()?.to_string();
    Some((aud, sub))
}
