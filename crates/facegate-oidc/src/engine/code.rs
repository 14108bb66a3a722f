//! The authorization code grant (RFC 6749 4.1.3, RFC 7636 4.6).

use facegate_core::secret::storage_hash;

use super::{CodeUse, Context, Storage, TokenResponse, server_error};
use crate::client::Client;
use crate::error::OAuthError;
use crate::pkce::CodeChallenge;

pub(super) async fn exchange<S: Storage>(
    ctx: &Context<'_, S>,
    client: &Client,
    code: &str,
    redirect_uri: Option<&str>,
    code_verifier: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let t = ctx.now;
    let stored = match ctx
        .store
        .use_code(&storage_hash(code), t)
        .await
        .map_err(server_error)?
    {
        CodeUse::Unknown => return Err(OAuthError::invalid_grant("the code is invalid")),
        CodeUse::Reused(c) => {
            // A replayed code may have been stolen: revoke everything issued from it (RFC 6749
            // 4.1.2). Used codes are kept until the tokens of their grant expire, so this holds for
            // as long as there is anything to revoke.
            tracing::warn!(client_id = %client.client_id, "authorization code replayed; revoking its grant");
            ctx.store
                .revoke_grant(&c.grant_id, t)
                .await
                .map_err(server_error)?;
            return Err(OAuthError::invalid_grant("the code was already used"));
        }
        CodeUse::First(c) => c,
    };
    let grant = ctx
        .store
        .grant(&stored.grant_id)
        .await
        .map_err(server_error)?
        .ok_or_else(|| OAuthError::invalid_grant("the code is invalid"))?;
    if grant.client_id != client.client_id {
        return Err(OAuthError::invalid_grant("the code was issued to another client"));
    }
    if stored.expires_at <= t || grant.revoked_at.is_some() {
        return Err(OAuthError::invalid_grant("the code has expired"));
    }
    if redirect_uri != Some(stored.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    match (&stored.code_challenge, code_verifier) {
        (Some(ch), Some(v)) if CodeChallenge::from_stored(ch.clone()).verify(v) => {}
        (Some(_), _) => return Err(OAuthError::invalid_grant("code_verifier is missing or wrong")),
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier sent but the request had no code_challenge",
            ));
        }
        (None, None) => {}
    }
    let scope = grant.scope.clone();
    ctx.issue_tokens(client, &grant, false, &scope, true).await
}
