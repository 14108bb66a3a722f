//! ID token and userinfo claims.

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use facegate_core::User;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::keys::SigningAlg;
use crate::scope::Scopes;

#[derive(Debug, Clone, Serialize)]
pub struct IdTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub azp: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub c_hash: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Profile and email claims, as the granted scopes allow.
    #[serde(flatten)]
    pub profile: Map<String, Value>,
}

/// `at_hash` / `c_hash` (OIDC Core 3.1.3.6, 3.3.2.11): the left half of the hash that goes with the
/// signing algorithm — SHA-256 for RS256 and ES256, SHA-512 for EdDSA over Ed25519 — base64url.
pub fn half_hash(alg: SigningAlg, value: &str) -> String {
    let algorithm = match alg {
        SigningAlg::RS256 | SigningAlg::ES256 => &digest::SHA256,
        SigningAlg::EdDSA => &digest::SHA512,
    };
    let d = digest::digest(algorithm, value.as_bytes());
    let bytes = d.as_ref();
    URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() / 2])
}

/// The claims about a person that `scopes` allow: `profile` gives name and preferred_username,
/// `email` gives email and email_verified. `sub` is always present.
pub fn user_claims(user: &User, scopes: &Scopes) -> Map<String, Value> {
    let mut m = Map::new();
    if scopes.contains("profile") {
        m.insert("preferred_username".into(), json!(user.username.as_str()));
        if let Some(n) = &user.name {
            m.insert("name".into(), json!(n));
        }
    }
    if scopes.contains("email")
        && let Some(e) = &user.email
    {
        m.insert("email".into(), json!(e.as_str()));
        m.insert("email_verified".into(), json!(user.email_verified));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_matches_the_oidc_example() {
        // OIDC Core A.3: access token "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y" -> at_hash "77QmUPtjPfzWtF2AnpK9RQ".
        assert_eq!(
            half_hash(SigningAlg::RS256, "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
        assert_eq!(half_hash(SigningAlg::EdDSA, "x").len(), 43);
    }

    #[test]
    fn claims_follow_scopes() {
        let user = User {
            id: "u1".into(),
            username: facegate_core::Username::parse("alice").unwrap(),
            email: Some(facegate_core::Email::parse("alice@example.com").unwrap()),
            email_verified: true,
            name: Some("Alice".into()),
            created_at: 0,
        };
        assert!(user_claims(&user, &Scopes::parse("openid")).is_empty());
        let c = user_claims(&user, &Scopes::parse("openid email profile"));
        assert_eq!(c["email"], "alice@example.com");
        assert_eq!(c["name"], "Alice");
    }
}
