//! Client authentication at the token, revocation and introspection endpoints, in one place
//! (RFC 6749 2.3, OIDC Core 9, RFC 7523 2.2).
//!
//! - A client holding a secret may present it either way, `client_secret_basic` (the Authorization
//!   header) or `client_secret_post` (form fields), whichever it registered: the method recorded at
//!   registration is the one it prefers, not the only one it may use. One method per request.
//! - A `private_key_jwt` client must sign an assertion with a key of its registered JWK Set:
//!   iss = sub = client_id, aud = the token endpoint or the issuer, short-lived, each `jti` once.
//! - A public client (`none`) presents no credentials, and only where public clients are admitted.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use facegate_core::secret::{constant_time_eq, storage_hash};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::client::{AuthMethod, Client};
use crate::error::OAuthError;

/// The `client_assertion_type` of a JWT client assertion.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The signature algorithms accepted on client assertions; discovery advertises exactly these.
pub const ASSERTION_ALGS: &[(&str, Algorithm)] = &[
    ("RS256", Algorithm::RS256),
    ("PS256", Algorithm::PS256),
    ("ES256", Algorithm::ES256),
    ("ES384", Algorithm::ES384),
    ("EdDSA", Algorithm::EdDSA),
];

/// The names of [`ASSERTION_ALGS`], for discovery.
pub fn assertion_alg_names() -> Vec<&'static str> {
    ASSERTION_ALGS.iter().map(|(n, _)| *n).collect()
}

/// The authentication methods facegate accepts at the token endpoint.
pub const TOKEN_AUTH_METHODS: &[&str] = &[
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "none",
];

/// How the client presented itself, as read from the Authorization header and the form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    /// `Authorization: Basic` (client_secret_basic).
    Basic { client_id: String, secret: String },
    /// `client_id` and `client_secret` form fields (client_secret_post).
    Post { client_id: String, secret: String },
    /// `client_assertion` (private_key_jwt); `client_id` is the assertion's unverified `sub`.
    Assertion { client_id: String, jwt: String },
    /// Only `client_id` (public clients).
    Public { client_id: String },
}

impl Presented {
    pub fn client_id(&self) -> &str {
        match self {
            Self::Basic { client_id, .. }
            | Self::Post { client_id, .. }
            | Self::Assertion { client_id, .. }
            | Self::Public { client_id } => client_id,
        }
    }
}

fn failed() -> OAuthError {
    OAuthError::invalid_client("client authentication failed")
}

/// Reads the presented credentials. `field` looks up a (single-valued) form field.
pub fn presented<'a>(
    authorization: Option<&str>,
    field: impl Fn(&str) -> Option<&'a str>,
) -> Result<Presented, OAuthError> {
    let basic = match authorization {
        Some(h) if h.len() > 6 && h.is_char_boundary(6) && h[..6].eq_ignore_ascii_case("basic ") => {
            Some(parse_basic(&h[6..])?)
        }
        _ => None,
    };
    let form_id = field("client_id");
    let form_secret = field("client_secret");
    let assertion_type = field("client_assertion_type");
    let assertion = field("client_assertion");
    let count = [basic.is_some(), form_secret.is_some(), assertion.is_some()]
        .iter()
        .filter(|m| **m)
        .count();
    if count > 1 {
        return Err(OAuthError::invalid_request(
            "use exactly one client authentication method",
        ));
    }
    // A client_id in the form must name the same client as the credentials (RFC 6749 3.2.1).
    let agree = |id: &str| form_id.is_none_or(|f| f == id);
    if let Some((client_id, secret)) = basic {
        if !agree(&client_id) {
            return Err(failed());
        }
        return Ok(Presented::Basic { client_id, secret });
    }
    if let Some(secret) = form_secret {
        let client_id = form_id.ok_or_else(failed)?;
        return Ok(Presented::Post {
            client_id: client_id.to_string(),
            secret: secret.to_string(),
        });
    }
    match (assertion_type, assertion) {
        (Some(JWT_BEARER), Some(jwt)) => {
            let client_id = unverified_sub(jwt).ok_or_else(failed)?;
            if !agree(&client_id) {
                return Err(failed());
            }
            Ok(Presented::Assertion {
                client_id,
                jwt: jwt.to_string(),
            })
        }
        (None, None) => Ok(Presented::Public {
            client_id: form_id.ok_or_else(failed)?.to_string(),
        }),
        _ => Err(OAuthError::invalid_client("unsupported client_assertion_type")),
    }
}

fn parse_basic(encoded: &str) -> Result<(String, String), OAuthError> {
    let malformed = || OAuthError::invalid_client("malformed Basic credentials");
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let text = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = text.split_once(':').ok_or_else(malformed)?;
    // RFC 6749 2.3.1: both parts are form-urlencoded.
    let dec = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok((dec(id), dec(secret)))
}

/// The `sub` of an assertion, read before verification only to find the client.
fn unverified_sub(assertion: &str) -> Option<String> {
    let payload = assertion.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("sub")?.as_str().map(String::from)
}

/// What verifying an assertion needs from the server.
pub struct AssertionContext<'a> {
    /// The audiences an assertion may name: the token endpoint and the issuer.
    pub audiences: &'a [&'a str],
    pub now: i64,
}

/// A verified client assertion whose `jti` the caller must record until `expires_at`, refusing
/// the request if it was recorded before (a replay): `key` is `client_id:jti`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assertion {
    pub key: String,
    pub expires_at: i64,
}

impl std::fmt::Debug for AssertionContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssertionContext")
            .field("audiences", &self.audiences)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// Checks the presented credentials against the client they name (found by
/// [`Presented::client_id`]). `allow_public` admits public clients (token, revocation), not
/// introspection. A `private_key_jwt` client gets its [`Assertion`] back: the caller records its
/// `jti` (shared by every instance) before accepting it.
pub fn verify(
    client: &Client,
    presented: &Presented,
    allow_public: bool,
    ctx: &AssertionContext<'_>,
) -> Result<Option<Assertion>, OAuthError> {
    if client.client_id != presented.client_id() {
        return Err(failed());
    }
    let secret_ok = |secret: &str| {
        client
            .secret_hash
            .as_ref()
            .is_some_and(|h| constant_time_eq(storage_hash(secret).as_bytes(), h.as_bytes()))
    };
    let ok = match (client.auth_method, presented) {
        (
            AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost,
            Presented::Basic { secret, .. } | Presented::Post { secret, .. },
        ) => secret_ok(secret),
        (AuthMethod::PrivateKeyJwt, Presented::Assertion { jwt, .. }) => {
            return verify_assertion(client, jwt, ctx).map(Some).map_err(|why| {
                tracing::info!(client = %client.client_id, "client assertion refused: {why}");
                failed()
            });
        }
        (AuthMethod::None, Presented::Public { .. }) => allow_public,
        _ => false,
    };
    if ok { Ok(None) } else { Err(failed()) }
}

/// Verifies a private_key_jwt assertion; the error says why (for logs, never for the client).
pub fn verify_assertion(
    client: &Client,
    assertion: &str,
    ctx: &AssertionContext<'_>,
) -> Result<Assertion, String> {
    let header = jsonwebtoken::decode_header(assertion).map_err(|e| e.to_string())?;
    if !ASSERTION_ALGS.iter().any(|(_, a)| *a == header.alg) {
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
    v.set_audience(ctx.audiences);
    v.set_issuer(&[client.client_id.as_str()]);
    v.sub = Some(client.client_id.clone());
    v.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    v.leeway = 30;
    let data = jsonwebtoken::decode::<serde_json::Value>(assertion, &key, &v).map_err(|e| e.to_string())?;
    let exp = data.claims.get("exp").and_then(|e| e.as_i64()).unwrap_or(0);
    if exp > ctx.now + 600 {
        return Err("assertion lives longer than ten minutes".into());
    }
    let jti = data
        .claims
        .get("jti")
        .and_then(|j| j.as_str())
        .ok_or("assertion has no jti")?;
    Ok(Assertion {
        key: format!("{}:{jti}", client.client_id),
        expires_at: exp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SigningAlg;

    fn client(method: AuthMethod) -> Client {
        Client {
            client_id: "app".into(),
            secret_hash: Some(storage_hash("s3cret")),
            name: "App".into(),
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            grant_types: vec!["client_credentials".into()],
            auth_method: method,
            scope: String::new(),
            jwks: None,
            skip_consent: false,
            id_token_alg: SigningAlg::RS256,
            pairwise: false,
            created_at: 0,
            dynamic: false,
            resource_server: false,
            require_par: false,
            jwt_access_tokens: false,
            backchannel_logout_uri: None,
            backchannel_logout_session_required: false,
        }
    }

    fn basic(id: &str, secret: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
    }

    fn run(method: AuthMethod, auth: Option<&str>, form: &[(&str, &str)]) -> Result<(), OAuthError> {
        let p = presented(auth, |k| form.iter().find(|(f, _)| *f == k).map(|(_, v)| *v))?;
        let ctx = AssertionContext {
            audiences: &["https://id.example/token"],
            now: 0,
        };
        verify(&client(method), &p, true, &ctx).map(|_| ())
    }

    #[test]
    fn a_secret_may_be_sent_either_way_but_only_one_way() {
        use AuthMethod::{ClientSecretBasic, ClientSecretPost};
        for m in [ClientSecretBasic, ClientSecretPost] {
            assert!(run(m, Some(&basic("app", "s3cret")), &[]).is_ok(), "{m:?} basic");
            assert!(
                run(m, None, &[("client_id", "app"), ("client_secret", "s3cret")]).is_ok(),
                "{m:?} post"
            );
            assert!(run(m, Some(&basic("app", "wrong")), &[]).is_err());
            assert!(run(m, None, &[("client_id", "app"), ("client_secret", "wrong")]).is_err());
            assert!(run(m, None, &[("client_id", "app")]).is_err(), "no secret at all");
            let both = run(
                m,
                Some(&basic("app", "s3cret")),
                &[("client_id", "app"), ("client_secret", "s3cret")],
            );
            assert_eq!(both.unwrap_err().error, crate::ErrorCode::InvalidRequest);
            assert!(
                run(m, Some(&basic("app", "s3cret")), &[("client_id", "other")]).is_err(),
                "client_id must agree"
            );
        }
    }

    #[test]
    fn other_methods_do_not_accept_secrets() {
        use AuthMethod::{ClientSecretBasic, PrivateKeyJwt};
        assert!(run(PrivateKeyJwt, Some(&basic("app", "s3cret")), &[]).is_err());
        assert!(
            run(
                PrivateKeyJwt,
                None,
                &[("client_id", "app"), ("client_secret", "s3cret")]
            )
            .is_err()
        );
        assert!(run(AuthMethod::None, Some(&basic("app", "s3cret")), &[]).is_err());
        assert!(run(AuthMethod::None, None, &[("client_id", "app")]).is_ok());
        assert!(run(ClientSecretBasic, None, &[("client_id", "app")]).is_err());
    }
}
