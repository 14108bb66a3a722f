//! private_key_jwt client authentication (RFC 7523 section 2.2, OIDC Core 9): a JWT signed with a
//! key from the client's registered JWK Set, iss = sub = client_id, aud = the token endpoint or the
//! issuer, short-lived, and each `jti` accepted once.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use facegate_oidc::client::Client;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use super::now;
use super::state::AppState;

/// The `sub` of an assertion, read before verification only to find the client.
pub fn subject(assertion: &str) -> Option<String> {
    let payload = assertion.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("sub")?.as_str().map(String::from)
}

pub async fn verify(state: &AppState, client: &Client, assertion: &str) -> Result<(), String> {
    let header = jsonwebtoken::decode_header(assertion).map_err(|e| e.to_string())?;
    if !matches!(
        header.alg,
        Algorithm::RS256 | Algorithm::ES256 | Algorithm::EdDSA | Algorithm::PS256 | Algorithm::ES384
    ) {
        return Err(format!("algorithm {:?} not accepted", header.alg));
    }
    let jwks: JwkSet = client
        .jwks
        .clone()
        .and_then(|j| serde_json::from_value(j).ok())
        .ok_or("client has no usable jwks")?;
    let jwk = match &header.kid {
        Some(kid) => jwks.find(kid),
        None => jwks.keys.first(),
    }
    .ok_or("no key matches the assertion's kid")?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut v = Validation::new(header.alg);
    let token_endpoint = format!("{}/token", state.settings.issuer);
    v.set_audience(&[token_endpoint.as_str(), state.settings.issuer.as_str()]);
    v.set_issuer(&[client.client_id.as_str()]);
    v.sub = Some(client.client_id.clone());
    v.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    v.leeway = 30;
    let data = jsonwebtoken::decode::<serde_json::Value>(assertion, &key, &v).map_err(|e| e.to_string())?;
    let exp = data.claims.get("exp").and_then(|e| e.as_i64()).unwrap_or(0);
    if exp > now() + 600 {
        return Err("assertion lives longer than ten minutes".into());
    }
    let jti = data
        .claims
        .get("jti")
        .and_then(|j| j.as_str())
        .ok_or("assertion has no jti")?;
    if !state.remember_jti(&format!("{}:{jti}", client.client_id), exp) {
        return Err("assertion replayed".into());
    }
    Ok(())
}
