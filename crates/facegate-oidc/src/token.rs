//! The token endpoint's request, parsed once into a typed value (RFC 6749 3.2, 4.1.3, 4.4.2, 6;
//! RFC 8628 3.4). Repeated parameters are refused; the client's credentials are read here too.

use std::collections::HashMap;

use crate::client_auth::{self, Presented};
use crate::error::{ErrorCode, OAuthError};

/// The device_code grant type (RFC 8628 3.4).
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantRequest {
    AuthorizationCode {
        code: String,
        redirect_uri: Option<String>,
        code_verifier: Option<String>,
    },
    RefreshToken {
        refresh_token: String,
        scope: Option<String>,
    },
    ClientCredentials {
        scope: Option<String>,
    },
    DeviceCode {
        device_code: String,
    },
}

impl GrantRequest {
    /// The grant type a client must have registered to make this request.
    pub fn grant_type(&self) -> &'static str {
        match self {
            Self::AuthorizationCode { .. } => "authorization_code",
            Self::RefreshToken { .. } => "refresh_token",
            Self::ClientCredentials { .. } => "client_credentials",
            Self::DeviceCode { .. } => DEVICE_CODE_GRANT,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    pub client: Presented,
    pub grant: GrantRequest,
}

/// Form parameters as a map, refusing repeats (RFC 6749 3.1, 3.2) and empty values as absent.
pub fn single_valued(pairs: &[(String, String)]) -> Result<HashMap<&str, &str>, OAuthError> {
    let mut m = HashMap::with_capacity(pairs.len());
    for (k, v) in pairs {
        if m.insert(k.as_str(), v.as_str()).is_some() {
            return Err(OAuthError::invalid_request(format!(
                "parameter {k} appears more than once"
            )));
        }
    }
    m.retain(|_, v| !v.is_empty());
    Ok(m)
}

impl TokenRequest {
    /// Parses the form of a token request and the request's Authorization header.
    pub fn parse(authorization: Option<&str>, pairs: &[(String, String)]) -> Result<Self, OAuthError> {
        let form = single_valued(pairs)?;
        let get = |k: &str| form.get(k).copied();
        let owned = |k: &str| get(k).map(String::from);
        let required =
            |k: &str| owned(k).ok_or_else(|| OAuthError::invalid_request(format!("{k} is required")));
        let grant_type =
            get("grant_type").ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;
        let client = client_auth::presented(authorization, get)?;
        let grant = match grant_type {
            "authorization_code" => GrantRequest::AuthorizationCode {
                code: required("code")?,
                redirect_uri: owned("redirect_uri"),
                code_verifier: owned("code_verifier"),
            },
            "refresh_token" => GrantRequest::RefreshToken {
                refresh_token: required("refresh_token")?,
                scope: owned("scope"),
            },
            "client_credentials" => GrantRequest::ClientCredentials {
                scope: owned("scope"),
            },
            DEVICE_CODE_GRANT => GrantRequest::DeviceCode {
                device_code: required("device_code")?,
            },
            other => {
                return Err(OAuthError::new(
                    ErrorCode::UnsupportedGrantType,
                    format!("grant_type {other:?} is not supported"),
                ));
            }
        };
        Ok(TokenRequest { client, grant })
    }
}

/// A request naming a token (revocation RFC 7009, introspection RFC 7662), with the client's
/// credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenQuery {
    pub client: Presented,
    pub token: String,
    pub token_type_hint: Option<String>,
}

impl TokenQuery {
    pub fn parse(authorization: Option<&str>, pairs: &[(String, String)]) -> Result<Self, OAuthError> {
        let form = single_valued(pairs)?;
        let get = |k: &str| form.get(k).copied();
        Ok(TokenQuery {
            client: client_auth::presented(authorization, get)?,
            token: get("token")
                .map(String::from)
                .ok_or_else(|| OAuthError::invalid_request("token is required"))?,
            token_type_hint: get("token_type_hint").map(String::from),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn table_of_token_request_rules() {
        type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Result<&'a str, ErrorCode>);
        let id = ("client_id", "app");
        let cases: Vec<Case> = vec![
            (
                "code",
                vec![("grant_type", "authorization_code"), ("code", "c"), id],
                Ok("authorization_code"),
            ),
            (
                "code missing",
                vec![("grant_type", "authorization_code"), id],
                Err(ErrorCode::InvalidRequest),
            ),
            (
                "repeated code",
                vec![
                    ("grant_type", "authorization_code"),
                    ("code", "c"),
                    ("code", "d"),
                    id,
                ],
                Err(ErrorCode::InvalidRequest),
            ),
            (
                "repeated client_id",
                vec![("grant_type", "client_credentials"), id, id],
                Err(ErrorCode::InvalidRequest),
            ),
            ("no grant_type", vec![id], Err(ErrorCode::InvalidRequest)),
            (
                "password grant",
                vec![("grant_type", "password"), id],
                Err(ErrorCode::UnsupportedGrantType),
            ),
            (
                "refresh",
                vec![("grant_type", "refresh_token"), ("refresh_token", "r"), id],
                Ok("refresh_token"),
            ),
            (
                "device",
                vec![("grant_type", DEVICE_CODE_GRANT), ("device_code", "d"), id],
                Ok(DEVICE_CODE_GRANT),
            ),
            (
                "no client",
                vec![("grant_type", "client_credentials")],
                Err(ErrorCode::InvalidClient),
            ),
        ];
        for (name, p, want) in cases {
            let got = TokenRequest::parse(None, &pairs(&p));
            match want {
                Ok(g) => assert_eq!(got.map(|r| r.grant.grant_type()).ok(), Some(g), "{name}"),
                Err(code) => assert_eq!(got.err().map(|e| e.error), Some(code), "{name}"),
            }
        }
    }
}
