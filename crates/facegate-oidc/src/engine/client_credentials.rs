//! The client credentials grant (RFC 6749 4.4): a token for the client itself.

use facegate_core::secret::random_token;

use super::{Context, Grant, Storage, TokenResponse};
use crate::client::Client;
use crate::error::{ErrorCode, OAuthError};
use crate::scope::Scopes;

pub(super) async fn exchange<S: Storage>(
    ctx: &Context<'_, S>,
    client: &Client,
    scope: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    if client.is_public() {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "public clients cannot use client_credentials",
        ));
    }
    let allowed = client.allowed_scopes();
    let scope = match scope {
        Some(s) => {
            let asked = Scopes::parse(s);
            if !asked.is_subset(&allowed) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidScope,
                    "a requested scope is not allowed for this client",
                ));
            }
            asked
        }
        None => allowed,
    };
    let grant = Grant {
        id: random_token(16),
        client_id: client.client_id.clone(),
        user_id: None,
        scope: scope.to_string(),
        auth_time: None,
        amr: vec![],
        acr: None,
        nonce: None,
        sid: None,
        created_at: ctx.now,
        revoked_at: None,
        claims: None,
    };
    // The grant and its token are stored in one transaction.
    ctx.issue_tokens(client, &grant, true, &grant.scope, false, None)
        .await
}
