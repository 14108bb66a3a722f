//! The authorization endpoint's request: parsed, checked against the client, and answered.
//!
//! Errors come in two kinds (RFC 6749 section 4.1.2.1): with no valid client and redirect URI the
//! request is answered with an error page and never redirected; every other error goes back to the
//! client's redirect URI, in the response mode it asked for, with `state` as it was sent.

use std::collections::HashMap;

use url::Url;

use crate::client::Client;
use crate::error::{ErrorCode, OAuthError};
use crate::pkce::CodeChallenge;
use crate::scope::Scopes;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ResponseType {
    pub code: bool,
    pub id_token: bool,
    pub token: bool,
}

impl ResponseType {
    /// Parses a space-separated response_type in any order; `None` if unsupported.
    pub fn parse(s: &str) -> Option<ResponseType> {
        let mut rt = ResponseType {
            code: false,
            id_token: false,
            token: false,
        };
        for part in s.split(' ').filter(|p| !p.is_empty()) {
            let slot = match part {
                "code" => &mut rt.code,
                "id_token" => &mut rt.id_token,
                "token" => &mut rt.token,
                _ => return None,
            };
            if *slot {
                return None;
            }
            *slot = true;
        }
        // "token" alone is plain OAuth implicit: not offered.
        let supported = rt.code || rt.id_token;
        supported.then_some(rt)
    }

    /// True when tokens travel in the front channel (implicit or hybrid).
    pub fn front_channel_tokens(&self) -> bool {
        self.id_token || self.token
    }

    /// The grant type a client must have registered for this response type.
    pub fn grant(&self) -> &'static str {
        if self.code {
            "authorization_code"
        } else {
            "implicit"
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ResponseMode {
    Query,
    Fragment,
    FormPost,
}

/// Where and how an authorization response (success or error) is delivered.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RedirectTarget {
    pub redirect_uri: String,
    pub mode: ResponseMode,
    pub state: Option<String>,
}

/// A validated authorization request.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AuthRequest {
    pub client_id: String,
    pub target: RedirectTarget,
    pub response_type: ResponseType,
    #[serde(with = "scopes_serde")]
    pub scope: Scopes,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt_none: bool,
    pub prompt_login: bool,
    pub prompt_consent: bool,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    pub acr_values: Option<String>,
    /// The `claims` parameter (OIDC Core 5.5), parsed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<crate::claims::ClaimsRequest>,
}

impl AuthRequest {
    /// The `acr` values the `claims` parameter asks for as essential (see
    /// [`crate::claims::ClaimsRequest::essential_acr`]).
    pub fn essential_acr(&self) -> Option<Vec<String>> {
        self.claims.as_ref()?.essential_acr()
    }
}

mod scopes_serde {
    use super::Scopes;
    pub fn serialize<S: serde::Serializer>(s: &Scopes, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(&s.to_string())
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Scopes, D::Error> {
        let s: String = serde::Deserialize::deserialize(de)?;
        Ok(Scopes::parse(&s))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum AuthorizeError {
    /// Shown to the person on an error page: there is no trustworthy place to redirect to.
    Fatal(String),
    /// Delivered to the client's redirect URI.
    Redirect(RedirectTarget, OAuthError),
}

const MAX_PARAM: usize = 2048;

/// Validates authorization request parameters (query or form, in order, possibly repeated) against
/// the client they name. `lookup` finds a client by id.
pub fn validate(
    params: &[(String, String)],
    lookup: impl FnOnce(&str) -> Option<Client>,
) -> Result<(AuthRequest, Client), AuthorizeError> {
    let mut map: HashMap<&str, &str> = HashMap::new();
    let mut repeated: Option<&str> = None;
    for (k, v) in params {
        if map.insert(k.as_str(), v.as_str()).is_some() {
            repeated.get_or_insert(k.as_str());
        }
    }
    let get = |k: &str| map.get(k).copied().filter(|v| !v.is_empty());
    let fatal = |s: &str| AuthorizeError::Fatal(s.to_string());

    // 1. Client and redirect URI: until both are known good, errors are fatal.
    if matches!(repeated, Some("client_id" | "redirect_uri")) {
        return Err(fatal("The request repeats client_id or redirect_uri."));
    }
    let client_id = get("client_id").ok_or_else(|| fatal("The request has no client_id."))?;
    let client = lookup(client_id).ok_or_else(|| {
        fatal("The application that sent you here is not registered with this sign-in service.")
    })?;
    let redirect_uri = get("redirect_uri").ok_or_else(|| fatal("The request has no redirect_uri."))?;
    if !client.has_redirect_uri(redirect_uri) {
        return Err(fatal(
            "The redirect_uri is not registered for this application, so you will not be sent there.",
        ));
    }

    // 2. From here on errors go back to the client. The response mode is settled first, so the error
    // arrives where the client listens.
    let response_type_raw = get("response_type");
    let response_type = response_type_raw.and_then(ResponseType::parse);
    let state = map.get("state").map(|s| s.to_string());
    let mode = match get("response_mode") {
        Some("query") => ResponseMode::Query,
        Some("fragment") => ResponseMode::Fragment,
        Some("form_post") => ResponseMode::FormPost,
        _ if response_type.is_some_and(|rt| rt.front_channel_tokens()) => ResponseMode::Fragment,
        _ => ResponseMode::Query,
    };
    let target = RedirectTarget {
        redirect_uri: redirect_uri.to_string(),
        mode,
        state,
    };
    let err = |code, d: &str| AuthorizeError::Redirect(target.clone(), OAuthError::new(code, d));

    if let Some(k) = repeated {
        return Err(err(
            ErrorCode::InvalidRequest,
            &format!("parameter {k} appears more than once"),
        ));
    }
    if let Some((k, _)) = map.iter().find(|(_, v)| v.len() > MAX_PARAM) {
        return Err(err(
            ErrorCode::InvalidRequest,
            &format!("parameter {k} is too long"),
        ));
    }
    if get("request").is_some() {
        return Err(err(
            ErrorCode::RequestNotSupported,
            "request objects are not supported",
        ));
    }
    if get("request_uri").is_some() {
        return Err(err(
            ErrorCode::RequestUriNotSupported,
            "request_uri is not supported",
        ));
    }
    let Some(response_type) = response_type else {
        return Err(match response_type_raw {
            None => err(ErrorCode::InvalidRequest, "response_type is required"),
            Some(_) => err(ErrorCode::UnsupportedResponseType, "unsupported response_type"),
        });
    };
    // Hybrid responses put tokens in the front channel too, so they need both grants (RFC 7591 2.1).
    let needs_implicit = response_type.front_channel_tokens() && !client.allows_grant("implicit");
    if !client.allows_grant(response_type.grant()) || needs_implicit {
        return Err(err(
            ErrorCode::UnauthorizedClient,
            &format!("this client may not use the {} grant", response_type.grant()),
        ));
    }
    if mode == ResponseMode::Query && response_type.front_channel_tokens() {
        return Err(err(
            ErrorCode::InvalidRequest,
            "tokens cannot be returned in the query: use fragment or form_post",
        ));
    }

    let requested = Scopes::parse_supported(get("scope").unwrap_or(""));
    let scope = requested.intersect(&client.allowed_scopes());
    if response_type.id_token && !scope.contains("openid") {
        return Err(err(ErrorCode::InvalidScope, "an id_token needs the openid scope"));
    }
    if scope.is_empty() {
        return Err(err(
            ErrorCode::InvalidScope,
            "no requested scope is allowed for this client",
        ));
    }

    let nonce = get("nonce").map(String::from);
    if response_type.id_token && nonce.is_none() {
        return Err(err(
            ErrorCode::InvalidRequest,
            "nonce is required when an id_token is returned from the authorization endpoint",
        ));
    }

    let code_challenge = match get("code_challenge") {
        Some(c) => Some(
            CodeChallenge::parse(c, get("code_challenge_method"))
                .map_err(|e| AuthorizeError::Redirect(target.clone(), e))?
                .as_str()
                .to_string(),
        ),
        None if response_type.code && client.is_public() => {
            return Err(err(
                ErrorCode::InvalidRequest,
                "public clients must use PKCE (code_challenge with S256)",
            ));
        }
        None => None,
    };

    let prompts: Vec<&str> = get("prompt")
        .unwrap_or("")
        .split(' ')
        .filter(|p| !p.is_empty())
        .collect();
    for p in &prompts {
        if !matches!(*p, "none" | "login" | "consent" | "select_account") {
            return Err(err(
                ErrorCode::InvalidRequest,
                &format!("unsupported prompt value {p:?}"),
            ));
        }
    }
    let prompt_none = prompts.contains(&"none");
    if prompt_none && prompts.len() > 1 {
        return Err(err(
            ErrorCode::InvalidRequest,
            "prompt=none cannot be combined with other values",
        ));
    }
    let max_age = match get("max_age") {
        Some(v) => Some(v.parse::<i64>().ok().filter(|v| *v >= 0).ok_or_else(|| {
            err(
                ErrorCode::InvalidRequest,
                "max_age must be a non-negative integer",
            )
        })?),
        None => None,
    };

    let claims = match get("claims") {
        Some(c) => Some(
            crate::claims::ClaimsRequest::parse(c)
                .map_err(|e| AuthorizeError::Redirect(target.clone(), e))?,
        ),
        None => None,
    };

    let req = AuthRequest {
        claims,
        client_id: client.client_id.clone(),
        target,
        response_type,
        scope,
        nonce,
        code_challenge,
        prompt_none,
        prompt_login: prompts.contains(&"login"),
        prompt_consent: prompts.contains(&"consent"),
        max_age,
        login_hint: get("login_hint").map(String::from),
        acr_values: get("acr_values").map(String::from),
    };
    Ok((req, client))
}

/// How to deliver an authorization response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// A 303 to this URL.
    Redirect(String),
    /// An auto-submitting HTML form posting `fields` to `action`.
    FormPost {
        action: String,
        fields: Vec<(String, String)>,
    },
}

/// Builds the response: `params` (code, tokens, or error) plus `state` and `iss` (RFC 9207).
pub fn deliver(target: &RedirectTarget, issuer: &str, mut params: Vec<(String, String)>) -> Delivery {
    if let Some(s) = &target.state {
        params.push(("state".into(), s.clone()));
    }
    params.push(("iss".into(), issuer.to_string()));
    match target.mode {
        ResponseMode::FormPost => Delivery::FormPost {
            action: target.redirect_uri.clone(),
            fields: params,
        },
        ResponseMode::Query => {
            // The registered URI may carry its own query, which is kept (RFC 6749 section 3.1.2).
            let Ok(mut url) = Url::parse(&target.redirect_uri) else {
                return Delivery::Redirect(target.redirect_uri.clone());
            };
            url.query_pairs_mut().extend_pairs(params.iter());
            Delivery::Redirect(url.to_string())
        }
        ResponseMode::Fragment => {
            let encoded = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(params.iter())
                .finish();
            Delivery::Redirect(format!("{}#{encoded}", target.redirect_uri))
        }
    }
}

/// The error response for `e` delivered to `target`.
pub fn deliver_error(target: &RedirectTarget, issuer: &str, e: &OAuthError) -> Delivery {
    deliver(
        target,
        issuer,
        vec![
            ("error".into(), e.error.as_str().into()),
            ("error_description".into(), e.description.clone()),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::AuthMethod;

    fn client(public: bool) -> Client {
        Client {
            client_id: "app".into(),
            secret_hash: None,
            name: "App".into(),
            redirect_uris: vec![
                "https://app.example/cb".into(),
                "https://app.example/cb2?x=1".into(),
            ],
            post_logout_redirect_uris: vec![],
            grant_types: vec![
                "authorization_code".into(),
                "implicit".into(),
                "refresh_token".into(),
            ],
            auth_method: if public {
                AuthMethod::None
            } else {
                AuthMethod::ClientSecretBasic
            },
            scope: "openid profile email offline_access".into(),
            jwks: None,
            skip_consent: false,
            id_token_alg: crate::keys::SigningAlg::RS256,
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

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn run(pairs: &[(&str, &str)], public: bool) -> Result<AuthRequest, AuthorizeError> {
        let params: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        validate(&params, |id| (id == "app").then(|| client(public))).map(|(r, _)| r)
    }

    fn base<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut v = vec![
            ("client_id", "app"),
            ("redirect_uri", "https://app.example/cb"),
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "s t&x"),
        ];
        for (k, val) in extra {
            v.retain(|(kk, _)| kk != k);
            v.push((k, val));
        }
        v
    }

    fn redirect_code(r: Result<AuthRequest, AuthorizeError>) -> Option<ErrorCode> {
        match r {
            Err(AuthorizeError::Redirect(t, e)) => {
                assert_eq!(t.state.as_deref(), Some("s t&x"), "state is preserved exactly");
                Some(e.error)
            }
            _ => None,
        }
    }

    #[test]
    fn table_of_request_rules() {
        use ErrorCode::*;
        type Case<'a> = (
            &'a str,
            Vec<(&'a str, &'a str)>,
            bool,
            Result<(), Option<ErrorCode>>,
        );
        let cases: Vec<Case> = vec![
            ("confidential code flow", base(&[]), false, Ok(())),
            (
                "public client with PKCE",
                base(&[("code_challenge", CHALLENGE), ("code_challenge_method", "S256")]),
                true,
                Ok(()),
            ),
            (
                "public client without PKCE",
                base(&[]),
                true,
                Err(Some(InvalidRequest)),
            ),
            (
                "PKCE plain",
                base(&[("code_challenge", CHALLENGE), ("code_challenge_method", "plain")]),
                true,
                Err(Some(InvalidRequest)),
            ),
            ("unknown client", base(&[("client_id", "evil")]), false, Err(None)),
            (
                "unknown redirect",
                base(&[("redirect_uri", "https://evil.example/cb")]),
                false,
                Err(None),
            ),
            (
                "redirect with extra path",
                base(&[("redirect_uri", "https://app.example/cb/x")]),
                false,
                Err(None),
            ),
            (
                "redirect with extra query",
                base(&[("redirect_uri", "https://app.example/cb?a=1")]),
                false,
                Err(None),
            ),
            (
                "redirect, registered query",
                base(&[("redirect_uri", "https://app.example/cb2?x=1")]),
                false,
                Ok(()),
            ),
            (
                "missing redirect",
                vec![
                    ("client_id", "app"),
                    ("response_type", "code"),
                    ("scope", "openid"),
                ],
                false,
                Err(None),
            ),
            (
                "missing response_type",
                vec![
                    ("client_id", "app"),
                    ("redirect_uri", "https://app.example/cb"),
                    ("scope", "openid"),
                    ("state", "s t&x"),
                ],
                false,
                Err(Some(InvalidRequest)),
            ),
            (
                "unsupported response_type",
                base(&[("response_type", "token")]),
                false,
                Err(Some(UnsupportedResponseType)),
            ),
            (
                "implicit without nonce",
                base(&[("response_type", "id_token")]),
                false,
                Err(Some(InvalidRequest)),
            ),
            (
                "implicit with nonce",
                base(&[("response_type", "id_token token"), ("nonce", "n")]),
                false,
                Ok(()),
            ),
            (
                "hybrid with nonce",
                base(&[("response_type", "code id_token"), ("nonce", "n")]),
                false,
                Ok(()),
            ),
            (
                "implicit in query",
                base(&[
                    ("response_type", "id_token"),
                    ("nonce", "n"),
                    ("response_mode", "query"),
                ]),
                false,
                Err(Some(InvalidRequest)),
            ),
            (
                "id_token without openid",
                base(&[
                    ("response_type", "id_token"),
                    ("nonce", "n"),
                    ("scope", "profile"),
                ]),
                false,
                Err(Some(InvalidScope)),
            ),
            (
                "no allowed scope",
                base(&[("scope", "bogus")]),
                false,
                Err(Some(InvalidScope)),
            ),
            (
                "request object",
                base(&[("request", "eyJ...")]),
                false,
                Err(Some(RequestNotSupported)),
            ),
            (
                "prompt none with login",
                base(&[("prompt", "none login")]),
                false,
                Err(Some(InvalidRequest)),
            ),
            (
                "claims parameter",
                base(&[("claims", r#"{"id_token":{"email":{"essential":true}}}"#)]),
                false,
                Ok(()),
            ),
            (
                "malformed claims parameter",
                base(&[("claims", r#"{"id_token":["email"]}"#)]),
                false,
                Err(Some(InvalidRequest)),
            ),
            (
                "bad max_age",
                base(&[("max_age", "-1")]),
                false,
                Err(Some(InvalidRequest)),
            ),
        ];
        for (name, params, public, want) in cases {
            let got = run(&params, public);
            match want {
                Ok(()) => assert!(got.is_ok(), "{name}: {got:?}"),
                Err(None) => assert!(
                    matches!(got, Err(AuthorizeError::Fatal(_))),
                    "{name}: must not redirect, got {got:?}"
                ),
                Err(Some(code)) => assert_eq!(redirect_code(got), Some(code), "{name}"),
            }
        }
    }

    #[test]
    fn hybrid_needs_the_implicit_grant() {
        let params: Vec<(String, String)> = base(&[("response_type", "code token"), ("nonce", "n")])
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut code_only = client(false);
        code_only.grant_types = vec!["authorization_code".into()];
        let r = validate(&params, |_| Some(code_only)).map(|(r, _)| r);
        assert_eq!(redirect_code(r), Some(ErrorCode::UnauthorizedClient));
    }

    #[test]
    fn repeated_parameters_are_refused() {
        let mut p = base(&[]);
        p.push(("scope", "email"));
        assert_eq!(redirect_code(run(&p, false)), Some(ErrorCode::InvalidRequest));
        let mut p = base(&[]);
        p.push(("redirect_uri", "https://app.example/cb"));
        assert!(matches!(run(&p, false), Err(AuthorizeError::Fatal(_))));
    }

    #[test]
    fn responses_keep_state_exactly_and_use_the_mode() {
        let target = |mode| RedirectTarget {
            redirect_uri: "https://app.example/cb2?x=1".into(),
            mode,
            state: Some("a b&c=d".into()),
        };
        let p = vec![("code".to_string(), "abc".to_string())];
        let Delivery::Redirect(q) = deliver(&target(ResponseMode::Query), "https://id.example", p.clone())
        else {
            panic!()
        };
        let url = Url::parse(&q).unwrap();
        let pairs: HashMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(
            (
                pairs["x"].as_str(),
                pairs["code"].as_str(),
                pairs["state"].as_str()
            ),
            ("1", "abc", "a b&c=d")
        );
        assert_eq!(pairs["iss"], "https://id.example");
        let Delivery::Redirect(f) = deliver(&target(ResponseMode::Fragment), "https://id.example", p.clone())
        else {
            panic!()
        };
        assert!(
            f.starts_with("https://app.example/cb2?x=1#code=abc&state=a+b%26c%3Dd"),
            "{f}"
        );
        assert!(matches!(
            deliver(&target(ResponseMode::FormPost), "i", p),
            Delivery::FormPost { .. }
        ));
    }
}
