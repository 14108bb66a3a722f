//! OpenID Connect Back-Channel Logout 1.0: when a login session ends, every client that was
//! granted something in it and registered a `backchannel_logout_uri` gets a logout token — a JWT
//! with `typ: logout+jwt`, the back-channel logout event, the session's `sid` and the person's
//! `sub` (as that client sees it), and never a `nonce` (2.4). Sending them is the server's job; it
//! must never hold up the logout itself.

use facegate_core::secret::random_token;

use super::{Context, Storage, server_error, subject};
use crate::client::Client;
use crate::error::OAuthError;

/// The event a logout token carries (Back-Channel Logout 1.0 2.4).
pub const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// How long a logout token is valid: it is sent at once, so two minutes is plenty.
pub const LOGOUT_TOKEN_LIFETIME: i64 = 120;

/// One logout token to deliver: where, and what.
#[derive(Debug, Clone)]
pub struct LogoutDelivery {
    pub client_id: String,
    pub uri: String,
    pub logout_token: String,
}

impl<S: Storage> Context<'_, S> {
    /// A logout token for `client` about `user_id`'s session `sid`, signed with the client's ID
    /// token algorithm.
    pub fn logout_token(&self, client: &Client, user_id: &str, sid: &str) -> Result<String, OAuthError> {
        let claims = serde_json::json!({
            "iss": self.issuer,
            "aud": client.client_id,
            "iat": self.now,
            "exp": self.now + LOGOUT_TOKEN_LIFETIME,
            "jti": random_token(16),
            "sub": subject(self.pairwise_salt, client, user_id),
            "sid": sid,
            "events": { BACKCHANNEL_EVENT: {} },
        });
        self.keys
            .signer(client.id_token_alg)
            .map_err(server_error)?
            .sign(&claims, Some("logout+jwt"))
            .map_err(server_error)
    }

    /// The logout tokens owed when session `sid` ends: one per client granted something in it that
    /// registered a back-channel logout URI.
    pub async fn backchannel_logouts(&self, sid: &str) -> Result<Vec<LogoutDelivery>, OAuthError> {
        let mut out = Vec::new();
        for (client_id, user_id) in self.store.session_clients(sid).await.map_err(server_error)? {
            let Some(client) = self.store.client(&client_id).await.map_err(server_error)? else {
                continue;
            };
            let Some(uri) = client.backchannel_logout_uri.clone() else {
                continue;
            };
            out.push(LogoutDelivery {
                logout_token: self.logout_token(&client, &user_id, sid)?,
                client_id,
                uri,
            });
        }
        Ok(out)
    }
}
