//! The provider metadata document (OpenID Connect Discovery 1.0, RFC 8414).

use serde_json::{Value, json};

use crate::keys::SigningAlg;

/// Response types, modes and grants facegate implements.
pub const RESPONSE_TYPES: &[&str] = &[
    "code",
    "id_token",
    "id_token token",
    "code id_token",
    "code token",
    "code id_token token",
];
pub const RESPONSE_MODES: &[&str] = &["query", "fragment", "form_post"];

pub fn metadata(issuer: &str, algs: &[SigningAlg], registration: bool) -> Value {
    let e = |path: &str| format!("{issuer}{path}");
    let algs: Vec<&str> = algs.iter().map(|a| a.as_str()).collect();
    let assertion_algs = crate::client_auth::assertion_alg_names();
    let mut m = json!({
        "issuer": issuer,
        "authorization_endpoint": e("/authorize"),
        "token_endpoint": e("/token"),
        "userinfo_endpoint": e("/userinfo"),
        "jwks_uri": e("/jwks.json"),
        "end_session_endpoint": e("/logout"),
        "revocation_endpoint": e("/revoke"),
        "introspection_endpoint": e("/introspect"),
        "device_authorization_endpoint": e("/device_authorization"),
        "pushed_authorization_request_endpoint": e("/par"),
        "require_pushed_authorization_requests": false,
        "scopes_supported": crate::scope::SUPPORTED,
        "response_types_supported": RESPONSE_TYPES,
        "response_modes_supported": RESPONSE_MODES,
        "grant_types_supported": crate::client::GRANT_TYPES,
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": algs,
        "userinfo_signing_alg_values_supported": ["none"],
        "token_endpoint_auth_methods_supported": crate::client_auth::TOKEN_AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "revocation_endpoint_auth_methods_supported": crate::client_auth::TOKEN_AUTH_METHODS,
        "revocation_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "introspection_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "at_hash", "c_hash", "sid", "name", "preferred_username", "email", "email_verified"],
        "claims_parameter_supported": true,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "prompt_values_supported": ["none", "login", "consent"],
        // Every class the login core can issue (facegate_core::login::Acr).
        "acr_values_supported": facegate_core::login::Acr::supported(),
        "authorization_response_iss_parameter_supported": true,
        "frontchannel_logout_supported": false,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
    });
    if registration && let Some(obj) = m.as_object_mut() {
        obj.insert("registration_endpoint".into(), json!(e("/register")));
    }
    m
}
