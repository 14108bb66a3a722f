//! The authorization code grant (RFC 6749 4.1.3, RFC 7636 4.6).
//!
//! The code and its grant are read first (a read, in parallel with other requests); the code is
//! used up in the same transaction that stores its tokens ([`Storage::redeem_code`]), so a
//! successful exchange costs one durable write. Whichever request redeems a code first wins; any
//! later one, or one that lost the race, revokes what the code issued. A failed attempt (wrong
//! client, redirect URI or verifier, expired) spends the code too.

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
    let hash = storage_hash(code);
    let Some((stored, grant)) = ctx.store.code(&hash).await.map_err(server_error)? else {
        return Err(OAuthError::invalid_grant("the code is invalid"));
    };
    if stored.used_at.is_some() {
        return Err(replayed(ctx, client, &stored.grant_id).await);
    }
    if let Err(e) = check(client, &stored, &grant, t, redirect_uri, code_verifier) {
        // A failed attempt uses the code up as well; if another request redeemed it meanwhile,
        // this one was a replay.
        return match ctx.store.use_code(&hash, t).await.map_err(server_error)? {
            CodeUse::Reused(_) => Err(replayed(ctx, client, &stored.grant_id).await),
            CodeUse::First(_) | CodeUse::Unknown => Err(e),
        };
    }
    let scope = grant.scope.clone();
    ctx.issue_tokens(client, &grant, false, &scope, true, Some(&hash))
        .await
}

/// A replayed code may have been stolen: revoke everything issued from it (RFC 6749 4.1.2). Used
/// codes are kept until the tokens of their grant expire, so this holds for as long as there is
/// anything to revoke.
async fn replayed<S: Storage>(ctx: &Context<'_, S>, client: &Client, grant_id: &str) -> OAuthError {
    tracing::warn!(client_id = %client.client_id, "authorization code replayed; revoking its grant");
    match ctx.store.revoke_grant(grant_id, ctx.now).await {
        Ok(()) => OAuthError::invalid_grant("the code was already used"),
        Err(e) => server_error(e),
    }
}

fn check(
    client: &Client,
    stored: &super::Code,
    grant: &super::Grant,
    t: i64,
    redirect_uri: Option<&str>,
    code_verifier: Option<&str>,
) -> Result<(), OAuthError> {
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
        (Some(ch), Some(v)) if CodeChallenge::from_stored(ch.clone()).verify(v) => Ok(()),
        (Some(_), _) => Err(OAuthError::invalid_grant("code_verifier is missing or wrong")),
        (None, Some(_)) => Err(OAuthError::invalid_grant(
            "code_verifier sent but the request had no code_challenge",
        )),
        (None, None) => Ok(()),
    }
}
