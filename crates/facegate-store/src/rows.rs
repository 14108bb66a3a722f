//! Row types and their mapping from database rows.

use facegate_core::{Email, User, Username};
use facegate_oidc::client::{AuthMethod, Client};
pub use facegate_oidc::engine::{Code, CodeUse, Grant, Redeemed, Token, TokenKind};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Result, StoreError};

#[derive(Debug, Clone)]
pub struct StoredKey {
    pub kid: String,
    pub alg: String,
    pub pkcs8: Vec<u8>,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct StoredSession {
    pub id_hash: String,
    pub user_id: String,
    pub auth_time: i64,
    pub amr: Vec<String>,
    pub acr: Option<String>,
    pub expires_at: i64,
    /// The factors the session was made of (the login core's record); older sessions have only `amr`.
    pub factors: Vec<facegate_core::login::Factor>,
}

fn list(s: &str) -> Result<Vec<String>> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("list column: {e}")))
}

pub(crate) fn face(s: &crate::Store, r: &AnyRow) -> Result<facegate_core::face::FaceTemplate> {
    let id: String = r.try_get("id")?;
    let bytes = s.open_value(&format!("face_templates:{id}"), r.try_get("embedding")?)?;
    let quality: String = r.try_get("quality")?;
    Ok(facegate_core::face::FaceTemplate {
        id,
        user_id: r.try_get("user_id")?,
        pack: r.try_get("pack")?,
        embedding: facegate_core::face::from_bytes(&bytes)
            .ok_or_else(|| StoreError::Corrupt("embedding length".into()))?,
        quality: serde_json::from_str(&quality).unwrap_or(serde_json::Value::Null),
        created_at: r.try_get("created_at")?,
    })
}

pub(crate) fn user(r: &AnyRow) -> Result<User> {
    let username: String = r.try_get("username")?;
    let email: Option<String> = r.try_get("email")?;
    Ok(User {
        id: r.try_get("id")?,
        username: Username::parse(&username).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        email: email
            .map(|e| Email::parse(&e))
            .transpose()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        email_verified: r.try_get::<i64, _>("email_verified")? != 0,
        name: r.try_get("name")?,
        created_at: r.try_get("created_at")?,
    })
}

pub(crate) fn client(r: &AnyRow) -> Result<Client> {
    let method: String = r.try_get("auth_method")?;
    let jwks: Option<String> = r.try_get("jwks")?;
    Ok(Client {
        client_id: r.try_get("client_id")?,
        secret_hash: r.try_get("secret_hash")?,
        name: r.try_get("name")?,
        redirect_uris: list(&r.try_get::<String, _>("redirect_uris")?)?,
        post_logout_redirect_uris: list(&r.try_get::<String, _>("post_logout_redirect_uris")?)?,
        grant_types: list(&r.try_get::<String, _>("grant_types")?)?,
        auth_method: AuthMethod::parse(&method)
            .ok_or_else(|| StoreError::Corrupt(format!("auth method {method}")))?,
        scope: r.try_get("scope")?,
        jwks: jwks
            .map(|j| serde_json::from_str(&j))
            .transpose()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        skip_consent: r.try_get::<i64, _>("skip_consent")? != 0,
        id_token_alg: r
            .try_get::<Option<String>, _>("id_token_alg")?
            .and_then(|a| facegate_oidc::keys::SigningAlg::parse(&a))
            .unwrap_or(facegate_oidc::keys::SigningAlg::RS256),
        pairwise: r.try_get::<Option<String>, _>("subject_type")?.as_deref() == Some("pairwise"),
        created_at: r.try_get("created_at")?,
        dynamic: r
            .try_get::<Option<String>, _>("registration_token_hash")?
            .is_some(),
        resource_server: r.try_get::<i64, _>("resource_server")? != 0,
        require_par: r.try_get::<i64, _>("require_par")? != 0,
        jwt_access_tokens: r.try_get::<i64, _>("jwt_access_tokens")? != 0,
        backchannel_logout_uri: r.try_get("backchannel_logout_uri")?,
        backchannel_logout_session_required: r.try_get::<i64, _>("backchannel_logout_session_required")? != 0,
    })
}

pub(crate) fn key(s: &crate::Store, r: &AnyRow) -> Result<StoredKey> {
    let kid: String = r.try_get("kid")?;
    Ok(StoredKey {
        pkcs8: s.open_value(&format!("signing_keys:{kid}"), r.try_get("pkcs8")?)?,
        kid,
        alg: r.try_get("alg")?,
        created_at: r.try_get("created_at")?,
        retired_at: r.try_get("retired_at")?,
    })
}

pub(crate) fn session(r: &AnyRow) -> Result<StoredSession> {
    Ok(StoredSession {
        id_hash: r.try_get("id_hash")?,
        user_id: r.try_get("user_id")?,
        auth_time: r.try_get("auth_time")?,
        amr: list(&r.try_get::<String, _>("amr")?)?,
        acr: r.try_get("acr")?,
        expires_at: r.try_get("expires_at")?,
        factors: serde_json::from_str(&r.try_get::<String, _>("factors")?)
            .map_err(|e| StoreError::Corrupt(format!("session factors: {e}")))?,
    })
}

pub(crate) fn grant(r: &AnyRow) -> Result<Grant> {
    Ok(Grant {
        id: r.try_get("id")?,
        client_id: r.try_get("client_id")?,
        user_id: r.try_get("user_id")?,
        scope: r.try_get("scope")?,
        auth_time: r.try_get("auth_time")?,
        amr: list(&r.try_get::<String, _>("amr")?)?,
        acr: r.try_get("acr")?,
        nonce: r.try_get("nonce")?,
        sid: r.try_get("sid")?,
        claims: r
            .try_get::<Option<String>, _>("claims")?
            .map(|c| serde_json::from_str(&c))
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("grant claims: {e}")))?,
        created_at: r.try_get("created_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

pub(crate) fn code(r: &AnyRow) -> Result<Code> {
    Ok(Code {
        grant_id: r.try_get("grant_id")?,
        redirect_uri: r.try_get("redirect_uri")?,
        code_challenge: r.try_get("code_challenge")?,
        expires_at: r.try_get("expires_at")?,
        used_at: r.try_get("used_at")?,
    })
}

pub(crate) fn token(r: &AnyRow) -> Result<Token> {
    let kind: String = r.try_get("kind")?;
    let own: Option<i64> = r.try_get("revoked_at")?;
    let grant: Option<i64> = r.try_get("grant_revoked_at")?;
    Ok(Token {
        token_hash: r.try_get("token_hash")?,
        kind: if kind == "refresh" {
            TokenKind::Refresh
        } else {
            TokenKind::Access
        },
        grant_id: r.try_get("grant_id")?,
        client_id: r.try_get("client_id")?,
        user_id: r.try_get("user_id")?,
        scope: r.try_get("scope")?,
        expires_at: r.try_get("expires_at")?,
        used_at: r.try_get("used_at")?,
        revoked_at: own.or(grant),
        created_at: r.try_get("created_at")?,
    })
}
