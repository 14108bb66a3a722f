//! Pushed Authorization Requests (RFC 9126): a client sends its authorization request straight to
//! the provider, authenticated, and gets a `request_uri` to send the browser with instead.
//!
//! - The request is validated at the push exactly as `/authorize` would validate it (redirect URI,
//!   response type, PKCE, scopes...), so errors reach the client directly, never the browser.
//! - The `request_uri` is a 256-bit secret, `urn:ietf:params:oauth:request_uri:` + random, stored
//!   hashed together with the client it belongs to: another client naming it finds nothing (and
//!   cannot burn it). It is used once and lives [`super::Lifetimes::par`] seconds (60 by default).
//! - At `/authorize` only `client_id` and `request_uri` are read; the pushed parameters replace the
//!   rest (RFC 9126 4).

use facegate_core::secret::{random_token, storage_hash};

use super::{Context, Storage, server_error};
use crate::authorize::{self, AuthorizeError};
use crate::error::{ErrorCode, OAuthError};
use crate::token::single_valued;

/// What every pushed request's `request_uri` starts with (RFC 9126 2.2).
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// Form fields that authenticate the client at the push and are not part of the request.
const CREDENTIALS: &[&str] = &["client_secret", "client_assertion", "client_assertion_type"];

/// The push's answer (RFC 9126 2.2), sent with 201 Created.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ParResponse {
    pub request_uri: String,
    pub expires_in: i64,
}

/// The key a pushed request is stored under: the hash of its client and its request_uri.
fn key(client_id: &str, request_uri: &str) -> String {
    format!("par:{}", storage_hash(&format!("{client_id}\n{request_uri}")))
}

impl<S: Storage> Context<'_, S> {
    /// The pushed authorization request endpoint (RFC 9126 2.1).
    pub async fn push_authorization(
        &self,
        authorization: Option<&str>,
        pairs: &[(String, String)],
    ) -> Result<ParResponse, OAuthError> {
        let form = single_valued(pairs)?;
        let presented = crate::client_auth::presented(authorization, |k| form.get(k).copied())?;
        let client = self.authenticate(&presented, true).await?;
        if form.contains_key("request_uri") {
            return Err(OAuthError::invalid_request(
                "request_uri cannot be part of a pushed request",
            ));
        }
        if form.get("client_id").is_some_and(|c| *c != client.client_id) {
            return Err(OAuthError::invalid_request(
                "client_id does not match the authenticated client",
            ));
        }
        let mut params: Vec<(String, String)> = pairs
            .iter()
            .filter(|(k, v)| !CREDENTIALS.contains(&k.as_str()) && !v.is_empty())
            .cloned()
            .collect();
        if !params.iter().any(|(k, _)| k == "client_id") {
            params.push(("client_id".into(), client.client_id.clone()));
        }
        // The same rules as at /authorize; what would be redirected there is answered here.
        match authorize::validate(&params, |_| Some(client.clone())) {
            Ok(_) => {}
            Err(AuthorizeError::Fatal(m)) => return Err(OAuthError::invalid_request(m)),
            Err(AuthorizeError::Redirect(_, e)) => return Err(e),
        }
        let request_uri = format!("{REQUEST_URI_PREFIX}{}", random_token(32));
        let json = serde_json::to_string(&params).map_err(server_error)?;
        let lifetime = self.lifetimes.par;
        self.store
            .push_request(&key(&client.client_id, &request_uri), &json, self.now + lifetime)
            .await
            .map_err(server_error)?;
        Ok(ParResponse {
            request_uri,
            expires_in: lifetime,
        })
    }

    /// The parameters pushed under `request_uri` by `client_id`, consumed (single use); `None` if
    /// there are none for this client, they expired, or were used.
    pub async fn take_pushed(
        &self,
        client_id: &str,
        request_uri: &str,
    ) -> Result<Option<Vec<(String, String)>>, OAuthError> {
        if !request_uri.starts_with(REQUEST_URI_PREFIX) {
            return Ok(None);
        }
        let Some(json) = self
            .store
            .take_pushed_request(&key(client_id, request_uri), self.now)
            .await
            .map_err(server_error)?
        else {
            return Ok(None);
        };
        serde_json::from_str(&json).map(Some).map_err(server_error)
    }

    /// Whether `client_id` must push its requests (its `require_pushed_authorization_requests`).
    pub async fn requires_par(&self, client_id: &str) -> Result<bool, OAuthError> {
        Ok(self
            .store
            .client(client_id)
            .await
            .map_err(server_error)?
            .is_some_and(|c| c.require_par))
    }
}

/// The error for a request_uri that names nothing usable (RFC 9126 4: `invalid_request_uri` is
/// not in RFC 6749's list, so `invalid_request` with a description).
pub fn unusable_request_uri() -> OAuthError {
    OAuthError::new(
        ErrorCode::InvalidRequest,
        "request_uri is unknown, expired, already used, or belongs to another client",
    )
}
