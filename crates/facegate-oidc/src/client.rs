//! Relying parties (clients): their registered metadata, validated once at registration.

use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::{ErrorCode, OAuthError};
use crate::keys::SigningAlg;
use crate::scope::Scopes;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
    None,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "client_secret_basic" => Self::ClientSecretBasic,
            "client_secret_post" => Self::ClientSecretPost,
            "private_key_jwt" => Self::PrivateKeyJwt,
            "none" => Self::None,
            _ => return None,
        })
    }
}

pub const GRANT_TYPES: &[&str] = &[
    "authorization_code",
    "implicit",
    "refresh_token",
    "client_credentials",
    crate::token::DEVICE_CODE_GRANT,
];

/// A registered client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Client {
    pub client_id: String,
    /// Storage hash of the secret (`facegate_core::secret::storage_hash`); `None` for public clients
    /// and private_key_jwt clients.
    #[serde(skip_serializing)]
    pub secret_hash: Option<String>,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub auth_method: AuthMethod,
    /// Scopes the client may request for itself (client_credentials) or for people.
    pub scope: String,
    /// Public keys for private_key_jwt (a JWK Set).
    pub jwks: Option<serde_json::Value>,
    /// First-party clients skip the consent screen.
    pub skip_consent: bool,
    /// `id_token_signed_response_alg` (RFC 7591); RS256 when not registered.
    pub id_token_alg: SigningAlg,
    /// `subject_type`: pairwise clients see a `sub` of their own (OIDC Core 8.1).
    pub pairwise: bool,
    pub created_at: i64,
    /// Registered through dynamic registration (RFC 7591): its redirect URIs are not vouched for by
    /// an administrator, so authorization errors are shown as a page, never redirected (RFC 9700
    /// 4.11.2).
    #[serde(default)]
    pub dynamic: bool,
    /// A resource server may introspect tokens issued to other clients (RFC 7662 2.1); set only by
    /// the CLI or the admin API.
    #[serde(default)]
    pub resource_server: bool,
    /// `require_pushed_authorization_requests` (RFC 9126 6): `/authorize` accepts this client's
    /// requests only through a `request_uri` from the PAR endpoint.
    #[serde(default)]
    pub require_par: bool,
    /// Access tokens are JWTs (RFC 9068, `typ: at+jwt`) rather than opaque strings.
    #[serde(default)]
    pub jwt_access_tokens: bool,
    /// OpenID Connect Back-Channel Logout 1.0: where logout tokens are POSTed when a session in
    /// which this client got tokens ends.
    #[serde(default)]
    pub backchannel_logout_uri: Option<String>,
    /// The client needs `sid` in logout tokens (facegate always sends it).
    #[serde(default)]
    pub backchannel_logout_session_required: bool,
}

impl Client {
    /// The sector a pairwise `sub` is computed for: the host of the redirect URIs (or the client id
    /// for clients without any).
    pub fn sector(&self) -> String {
        self.redirect_uris
            .first()
            .and_then(|u| Url::parse(u).ok()?.host_str().map(String::from))
            .unwrap_or_else(|| self.client_id.clone())
    }

    pub fn is_public(&self) -> bool {
        self.auth_method == AuthMethod::None
    }

    pub fn allows_grant(&self, grant: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant)
    }

    pub fn allowed_scopes(&self) -> Scopes {
        Scopes::parse(&self.scope)
    }

    /// Exact string comparison against the registered list (RFC 9700 section 4.1.3): no prefix,
    /// path or query leniency, no normalisation.
    pub fn has_redirect_uri(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|r| r == uri)
    }

    pub fn has_post_logout_redirect_uri(&self, uri: &str) -> bool {
        self.post_logout_redirect_uris.iter().any(|r| r == uri)
    }
}

/// What a caller asks to register: the same shape for the CLI, the admin API and RFC 7591.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ClientMetadata {
    #[serde(default, alias = "client_name")]
    pub name: Option<String>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    #[serde(default)]
    pub grant_types: Option<Vec<String>>,
    #[serde(default)]
    pub token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub jwks: Option<serde_json::Value>,
    #[serde(default)]
    pub skip_consent: bool,
    #[serde(default)]
    pub id_token_signed_response_alg: Option<String>,
    /// `public` (default) or `pairwise`.
    #[serde(default)]
    pub subject_type: Option<String>,
    /// May introspect every client's tokens (administrators only; refused at RFC 7591 registration).
    #[serde(default)]
    pub resource_server: bool,
    /// RFC 9126 6: accept authorization requests from this client only when pushed.
    #[serde(default)]
    pub require_pushed_authorization_requests: bool,
    /// Issue this client's access tokens as JWTs (RFC 9068); opaque by default.
    #[serde(default)]
    pub jwt_access_tokens: bool,
    /// Back-Channel Logout 1.0 (`backchannel_logout_uri`, `backchannel_logout_session_required`).
    #[serde(default)]
    pub backchannel_logout_uri: Option<String>,
    #[serde(default)]
    pub backchannel_logout_session_required: bool,
}

/// The validated metadata, ready to be stored with a new id and secret.
#[derive(Debug, Clone)]
pub struct ValidClientMetadata {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub auth_method: AuthMethod,
    pub scope: String,
    pub jwks: Option<serde_json::Value>,
    pub skip_consent: bool,
    pub id_token_alg: SigningAlg,
    pub pairwise: bool,
    pub resource_server: bool,
    pub require_par: bool,
    pub jwt_access_tokens: bool,
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: bool,
}

impl ClientMetadata {
    /// Validates metadata. Redirect URIs must be absolute, without fragments, and https except for
    /// loopback hosts (RFC 8252) and private-use schemes of native apps.
    pub fn validate(self) -> Result<ValidClientMetadata, OAuthError> {
        let bad = |code, d: String| OAuthError::new(code, d);
        let auth_method = match self.token_endpoint_auth_method.as_deref() {
            None => AuthMethod::ClientSecretBasic,
            Some(m) => AuthMethod::parse(m).ok_or_else(|| {
                bad(
                    ErrorCode::InvalidClientMetadata,
                    format!("unsupported token_endpoint_auth_method {m:?}"),
                )
            })?,
        };
        let grant_types = self
            .grant_types
            .unwrap_or_else(|| vec!["authorization_code".to_string(), "refresh_token".to_string()]);
        for g in &grant_types {
            if !GRANT_TYPES.contains(&g.as_str()) {
                return Err(bad(
                    ErrorCode::InvalidClientMetadata,
                    format!("unsupported grant type {g:?}"),
                ));
            }
        }
        if auth_method == AuthMethod::None && grant_types.iter().any(|g| g == "client_credentials") {
            return Err(bad(
                ErrorCode::InvalidClientMetadata,
                "a public client cannot use client_credentials".into(),
            ));
        }
        if auth_method == AuthMethod::PrivateKeyJwt
            && self.jwks.as_ref().and_then(|j| j.get("keys")).is_none()
        {
            return Err(bad(
                ErrorCode::InvalidClientMetadata,
                "private_key_jwt needs a jwks with keys".into(),
            ));
        }
        let needs_redirect = grant_types
            .iter()
            .any(|g| g == "authorization_code" || g == "implicit");
        if needs_redirect && self.redirect_uris.is_empty() {
            return Err(bad(
                ErrorCode::InvalidRedirectUri,
                "at least one redirect_uri is required".into(),
            ));
        }
        for uri in &self.redirect_uris {
            check_redirect_uri(uri).map_err(|d| bad(ErrorCode::InvalidRedirectUri, d))?;
        }
        for uri in &self.post_logout_redirect_uris {
            check_redirect_uri(uri).map_err(|d| {
                bad(
                    ErrorCode::InvalidClientMetadata,
                    format!("post_logout_redirect_uris: {d}"),
                )
            })?;
        }
        if let Some(uri) = &self.backchannel_logout_uri {
            check_backchannel_uri(uri).map_err(|d| {
                bad(
                    ErrorCode::InvalidClientMetadata,
                    format!("backchannel_logout_uri: {d}"),
                )
            })?;
        }
        let default_scope = if grant_types.iter().any(|g| g == "client_credentials") && !needs_redirect {
            "faces:read faces:write liveness"
        } else {
            "openid profile email offline_access"
        };
        let scope = Scopes::parse(self.scope.as_deref().unwrap_or(default_scope));
        for s in scope.iter() {
            if !crate::scope::SUPPORTED.contains(&s) {
                return Err(bad(
                    ErrorCode::InvalidClientMetadata,
                    format!("unknown scope {s:?}"),
                ));
            }
        }
        let name = self
            .name
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "unnamed client".into());
        if name.chars().count() > 200 {
            return Err(bad(
                ErrorCode::InvalidClientMetadata,
                "client name over 200 characters".into(),
            ));
        }
        let id_token_alg = match self.id_token_signed_response_alg.as_deref() {
            None => SigningAlg::RS256,
            Some(a) => SigningAlg::parse(a).ok_or_else(|| {
                bad(
                    ErrorCode::InvalidClientMetadata,
                    format!("id_token_signed_response_alg {a:?} is not one of RS256, ES256, EdDSA"),
                )
            })?,
        };
        let pairwise = match self.subject_type.as_deref() {
            None | Some("public") => false,
            Some("pairwise") => true,
            Some(other) => {
                return Err(bad(
                    ErrorCode::InvalidClientMetadata,
                    format!("subject_type {other:?} is not public or pairwise"),
                ));
            }
        };
        if pairwise {
            // Without a sector_identifier_uri (not supported) every redirect URI must share one host.
            let hosts: std::collections::BTreeSet<String> = self
                .redirect_uris
                .iter()
                .filter_map(|u| Url::parse(u).ok()?.host_str().map(String::from))
                .collect();
            if hosts.len() > 1 {
                return Err(bad(
                    ErrorCode::InvalidClientMetadata,
                    "pairwise clients need all redirect URIs on one host".into(),
                ));
            }
        }
        Ok(ValidClientMetadata {
            pairwise,
            id_token_alg,
            name,
            redirect_uris: self.redirect_uris,
            post_logout_redirect_uris: self.post_logout_redirect_uris,
            grant_types,
            auth_method,
            scope: scope.to_string(),
            jwks: self.jwks,
            skip_consent: self.skip_consent,
            resource_server: self.resource_server,
            require_par: self.require_pushed_authorization_requests,
            jwt_access_tokens: self.jwt_access_tokens,
            backchannel_logout_uri: self.backchannel_logout_uri,
            backchannel_logout_session_required: self.backchannel_logout_session_required,
        })
    }
}

/// A back-channel logout URI (Back-Channel Logout 1.0 2.2): absolute http(s) without a fragment,
/// https except for loopback hosts; facegate POSTs to it, so nothing else is accepted.
fn check_backchannel_uri(uri: &str) -> Result<(), String> {
    let u = Url::parse(uri).map_err(|e| format!("{uri:?} is not an absolute URI ({e})"))?;
    let loopback = matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match u.scheme() {
        _ if u.fragment().is_some() => Err(format!("{uri:?} has a fragment")),
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(format!("{uri:?} must use https (http only for localhost)")),
    }
}

fn check_redirect_uri(uri: &str) -> Result<(), String> {
    let u = Url::parse(uri).map_err(|e| format!("{uri:?} is not an absolute URI ({e})"))?;
    if u.fragment().is_some() {
        return Err(format!("{uri:?} has a fragment"));
    }
    let loopback = matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match u.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(format!(
            "{uri:?} must use https (http is allowed only for localhost)"
        )),
        // Native apps' private-use schemes (RFC 8252 7.1) contain a dot, e.g. com.example.app:/cb.
        s if s.contains('.') => Ok(()),
        s => Err(format!("{uri:?}: scheme {s:?} is not allowed")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(uris: &[&str]) -> ClientMetadata {
        ClientMetadata {
            redirect_uris: uris.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn redirect_uris_are_checked() {
        assert!(meta(&["https://app.example/cb"]).validate().is_ok());
        assert!(meta(&["http://localhost:3000/cb"]).validate().is_ok());
        assert!(meta(&["com.example.app:/cb"]).validate().is_ok());
        for bad in [
            "http://app.example/cb",
            "https://app.example/cb#x",
            "/relative",
            "javascript:alert(1)",
        ] {
            assert!(meta(&[bad]).validate().is_err(), "{bad}");
        }
        assert!(meta(&[]).validate().is_err());
    }

    #[test]
    fn public_clients_cannot_use_client_credentials() {
        let m = ClientMetadata {
            token_endpoint_auth_method: Some("none".into()),
            grant_types: Some(vec!["client_credentials".into()]),
            ..Default::default()
        };
        assert!(m.validate().is_err());
    }
}
