//! The refresh token grant (RFC 6749 6), with rotation and reuse detection (RFC 9700 4.14.2).

use facegate_core::secret::storage_hash;

use super::{Context, Storage, TokenKind, TokenResponse, server_error};
use crate::client::Client;
use crate::error::{ErrorCode, OAuthError};
use crate::scope::Scopes;

pub(super) async fn exchange<S: Storage>(
    ctx: &Context<'_, S>,
    client: &Client,
    presented: &str,
    scope: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let hash = storage_hash(presented);
    let t = ctx.now;
    let token = ctx
        .store
        .token(&hash)
        .await
        .map_err(server_error)?
        .filter(|tk| tk.kind == TokenKind::Refresh)
        .ok_or_else(|| OAuthError::invalid_grant("the refresh token is invalid"))?;
    if token.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    if token.revoked_at.is_some() || token.expires_at <= t {
        return Err(OAuthError::invalid_grant(
            "the refresh token has expired or was revoked",
        ));
    }
    // The scope is checked before the token is used up, so a bad request does not burn it. The
    // ceiling is this token's scope: a narrowed scope sticks to every later refresh.
    let ceiling = Scopes::parse(&token.scope);
    let scope = match scope {
        Some(s) => {
            let asked = Scopes::parse(s);
            if !asked.is_subset(&ceiling) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidScope,
                    "a refresh cannot widen the scope",
                ));
            }
            asked
        }
        None => ceiling,
    };
    let mut grant = ctx
        .store
        .grant(&token.grant_id)
        .await
        .map_err(server_error)?
        .ok_or_else(|| OAuthError::invalid_grant("the refresh token is invalid"))?;
    if grant.created_at + ctx.lifetimes.refresh_token_absolute <= t {
        return Err(OAuthError::invalid_grant(
            "the authorization is too old: sign in again",
        ));
    }
    if !ctx
        .store
        .use_refresh_token(&hash, t)
        .await
        .map_err(server_error)?
    {
        // Rotation means each refresh token is used once; a second use means it leaked.
        tracing::warn!(client_id = %client.client_id, "refresh token reused; revoking its grant");
        ctx.store
            .revoke_grant(&token.grant_id, t)
            .await
            .map_err(server_error)?;
        return Err(OAuthError::invalid_grant("the refresh token was already used"));
    }
    // Later ID tokens carry no nonce (OIDC Core 12.2).
    grant.nonce = None;
    ctx.issue_tokens(client, &grant, false, &scope.to_string(), true, None)
        .await
}
