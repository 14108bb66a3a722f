//! Sends OpenID Connect Back-Channel Logout tokens (built by `facegate_oidc::engine::logout`) when
//! a session ends. Delivery runs in the background: the person's logout never waits for a relying
//! party. Each POST has a bounded time (5 s), follows no redirects, and is tried once; a failure
//! is logged (without the token) and otherwise ignored, as Back-Channel Logout 1.0 2.7 allows.

use std::sync::OnceLock;
use std::time::Duration;

use super::provider;
use super::state::AppState;

/// How long one relying party may take to answer a logout token.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

fn http() -> Option<&'static reqwest::Client> {
    static CLIENT: OnceLock<Option<reqwest::Client>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .timeout(DELIVERY_TIMEOUT)
                .connect_timeout(DELIVERY_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| tracing::error!("back-channel logout: no HTTP client: {e}"))
                .ok()
        })
        .as_ref()
}

/// Sends the logout tokens for session `sid` in the background and returns at once.
pub fn notify(state: &AppState, sid: &str) {
    let state = state.clone();
    let sid = sid.to_string();
    tokio::spawn(async move {
        let deliveries = match provider::backchannel_logouts(&state, &sid).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!("back-channel logout: {}", e.description);
                return;
            }
        };
        let Some(http) = http() else { return };
        for d in deliveries {
            // Each delivery on its own task, bounded by DELIVERY_TIMEOUT: a slow party delays nobody.
            tokio::spawn(async move {
                let r = http
                    .post(&d.uri)
                    .form(&[("logout_token", d.logout_token.as_str())])
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().is_success() => {
                        tracing::info!(event = "backchannel_logout", client_id = %d.client_id, "delivered");
                    }
                    Ok(r) => {
                        tracing::warn!(event = "backchannel_logout", client_id = %d.client_id, status = %r.status(), "refused");
                    }
                    Err(e) => {
                        tracing::warn!(event = "backchannel_logout", client_id = %d.client_id, "failed: {e}");
                    }
                }
            });
        }
    });
}
