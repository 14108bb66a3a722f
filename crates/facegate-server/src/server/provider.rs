//! The provider's flows: everything between a validated request and a response, over the store and
//! the protocol types. Handlers call one function here; the CLI and admin API call the same ones.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use facegate_core::secret::{constant_time_eq, random_token, storage_hash};
use facegate_oidc::authorize::AuthRequest;
use facegate_oidc::client::{AuthMethod, Client, ClientMetadata};
use facegate_oidc::id_token::{IdTokenClaims, half_hash, user_claims};
use facegate_oidc::pkce::CodeChallenge;
use facegate_oidc::scope::Scopes;
use facegate_oidc::{ErrorCode, OAuthError};
use facegate_store::{CodeUse, Grant, StoredSession, Token, TokenKind};
use serde::Serialize;

use super::now;
use super::state::AppState;

/// A person's login session, as found from their cookie.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: String,
    pub auth_time: i64,
    pub amr: Vec<String>,
    pub acr: Option<String>,
    pub sid: String,
    /// What the session was made of; the login policy reads these.
    pub factors: Vec<facegate_core::login::Factor>,
}

impl Session {
    pub fn from_stored(s: StoredSession) -> Self {
        let sid = s.id_hash.chars().take(22).collect();
        let factors = if s.factors.is_empty() {
            facegate_core::login::factor::from_legacy_amr(&s.amr, s.acr.as_deref(), s.auth_time)
        } else {
            s.factors
        };
        Self {
            factors,
            user_id: s.user_id,
            auth_time: s.auth_time,
            amr: s.amr,
            acr: s.acr,
            sid,
        }
    }
}

/// The `sub` a client sees for a user: the account id, or for pairwise clients a hash of the client's
/// sector, the account id and a server secret (stable per sector, unlinkable across sectors).
pub fn subject_for(state: &AppState, client: &Client, user_id: &str) -> String {
    if client.pairwise {
        storage_hash(&format!(
            "{}\n{user_id}\n{}",
            client.sector(),
            state.pairwise_salt.expose()
        ))
    } else {
        user_id.to_string()
    }
}

fn server_error<E: std::fmt::Display>(e: E) -> OAuthError {
    tracing::error!("internal error: {e}");
    OAuthError::server_error()
}

// ---------------------------------------------------------------- client authentication

/// How the client presented itself at the token, revocation or introspection endpoint.
#[derive(Debug, Default)]
pub struct ClientCredentials {
    pub basic: Option<(String, String)>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub assertion_type: Option<String>,
    pub assertion: Option<String>,
}

impl ClientCredentials {
    /// From the Authorization header (if Basic) and the form fields.
    pub fn from_request(
        authorization: Option<&str>,
        form: &HashMap<String, String>,
    ) -> Result<Self, OAuthError> {
        let basic = match authorization {
            Some(h) if h.len() > 6 && h[..6].eq_ignore_ascii_case("basic ") => {
                let decoded = STANDARD
                    .decode(h[6..].trim())
                    .map_err(|_| OAuthError::invalid_client("malformed Basic credentials"))?;
                let text = String::from_utf8(decoded)
                    .map_err(|_| OAuthError::invalid_client("malformed Basic credentials"))?;
                let (id, secret) = text
                    .split_once(':')
                    .ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials"))?;
                // RFC 6749 2.3.1: both parts are form-urlencoded.
                let dec = |s: &str| {
                    url::form_urlencoded::parse(format!("x={s}").as_bytes())
                        .next()
                        .map(|(_, v)| v.into_owned())
                        .unwrap_or_default()
                };
                Some((dec(id), dec(secret)))
            }
            _ => None,
        };
        Ok(Self {
            basic,
            client_id: form.get("client_id").cloned(),
            client_secret: form.get("client_secret").cloned(),
            assertion_type: form.get("client_assertion_type").cloned(),
            assertion: form.get("client_assertion").cloned(),
        })
    }
}

/// Authenticates a client by the method it registered; `allow_public` admits `none` clients.
pub async fn authenticate_client(
    state: &AppState,
    creds: &ClientCredentials,
    allow_public: bool,
) -> Result<Client, OAuthError> {
    let fail = || OAuthError::invalid_client("client authentication failed");
    let methods = [
        creds.basic.is_some(),
        creds.client_secret.is_some(),
        creds.assertion.is_some(),
    ];
    if methods.iter().filter(|m| **m).count() > 1 {
        return Err(OAuthError::invalid_request(
            "use exactly one client authentication method",
        ));
    }
    let assertion_sub = match (&creds.assertion_type, &creds.assertion) {
        (Some(t), Some(a)) if t == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" => {
            Some(super::assertion::subject(a).ok_or_else(fail)?)
        }
        (None, None) => None,
        _ => return Err(OAuthError::invalid_client("unsupported client_assertion_type")),
    };
    let id = creds
        .basic
        .as_ref()
        .map(|(id, _)| id.clone())
        .or_else(|| assertion_sub.clone())
        .or_else(|| creds.client_id.clone())
        .ok_or_else(fail)?;
    if creds.client_id.as_ref().is_some_and(|c| *c != id) {
        return Err(fail());
    }
    let client = state
        .store
        .client(&id)
        .await
        .map_err(server_error)?
        .ok_or_else(fail)?;
    let secret_ok = |secret: &str| {
        client
            .secret_hash
            .as_ref()
            .is_some_and(|h| constant_time_eq(storage_hash(secret).as_bytes(), h.as_bytes()))
    };
    let ok = match client.auth_method {
        AuthMethod::ClientSecretBasic => creds.basic.as_ref().is_some_and(|(_, s)| secret_ok(s)),
        AuthMethod::ClientSecretPost => {
            creds.basic.is_none() && creds.client_secret.as_deref().is_some_and(secret_ok)
        }
        AuthMethod::PrivateKeyJwt => match &creds.assertion {
            Some(a) => super::assertion::verify(state, &client, a).await.is_ok(),
            None => false,
        },
        AuthMethod::None => {
            allow_public
                && creds.basic.is_none()
                && creds.client_secret.is_none()
                && creds.assertion.is_none()
        }
    };
    if ok { Ok(client) } else { Err(fail()) }
}

// ---------------------------------------------------------------- authorization

/// Has the person already consented to everything this request asks of this client?
pub async fn consented(
    state: &AppState,
    req: &AuthRequest,
    client: &Client,
    user_id: &str,
) -> Result<bool, OAuthError> {
    if client.skip_consent {
        return Ok(true);
    }
    let stored = state
        .store
        .consent(user_id, &client.client_id)
        .await
        .map_err(server_error)?;
    Ok(stored.is_some_and(|s| req.scope.is_subset(&Scopes::parse(&s))) && !req.prompt_consent)
}

pub async fn record_consent(
    state: &AppState,
    user_id: &str,
    client_id: &str,
    scope: &Scopes,
) -> Result<(), OAuthError> {
    let prior = state
        .store
        .consent(user_id, client_id)
        .await
        .map_err(server_error)?;
    let merged = match prior {
        Some(p) => Scopes::parse(&format!("{p} {scope}")),
        None => scope.clone(),
    };
    state
        .store
        .put_consent(user_id, client_id, &merged.to_string(), now())
        .await
        .map_err(server_error)
}

/// Issues what the response type asks for: a code, an ID token, an access token.
/// `outcome` is the login policy's verdict for this request: its `amr`, `acr` and `auth_time` go
/// into the grant (and so into every token issued under it).
pub async fn issue_authorization(
    state: &AppState,
    req: &AuthRequest,
    client: &Client,
    session: &Session,
    outcome: &facegate_core::login::Outcome,
) -> Result<Vec<(String, String)>, OAuthError> {
    let t = now();
    let lt = state.settings.lifetimes;
    let grant = Grant {
        id: random_token(16),
        client_id: client.client_id.clone(),
        user_id: Some(session.user_id.clone()),
        scope: req.scope.to_string(),
        auth_time: Some(outcome.auth_time),
        amr: outcome.amr.clone(),
        acr: Some(outcome.acr.as_str().to_string()),
        nonce: req.nonce.clone(),
        sid: Some(session.sid.clone()),
        created_at: t,
        revoked_at: None,
    };
    state.store.create_grant(&grant).await.map_err(server_error)?;
    let mut params = Vec::new();
    let mut code = None;
    if req.response_type.code {
        let c = random_token(32);
        state
            .store
            .insert_code(
                &storage_hash(&c),
                &grant.id,
                &req.target.redirect_uri,
                req.code_challenge.as_deref(),
                t + lt.code,
            )
            .await
            .map_err(server_error)?;
        params.push(("code".to_string(), c.clone()));
        code = Some(c);
    }
    let mut access = None;
    if req.response_type.token {
        let a = new_token(state, &grant, TokenKind::Access, lt.access_token).await?;
        params.push(("access_token".into(), a.clone()));
        params.push(("token_type".into(), "Bearer".into()));
        params.push(("expires_in".into(), lt.access_token.to_string()));
        access = Some(a);
    }
    if req.response_type.id_token {
        let user = state
            .store
            .user(&session.user_id)
            .await
            .map_err(server_error)?
            .ok_or_else(OAuthError::server_error)?;
        // With an access token at hand the client fetches profile claims from userinfo; a bare
        // id_token response carries them itself (OIDC Core 5.4).
        let claims = if req.response_type.token || req.response_type.code {
            Default::default()
        } else {
            user_claims(&user, &req.scope)
        };
        let id = sign_id_token(state, &grant, client, claims, access.as_deref(), code.as_deref())?;
        params.push(("id_token".into(), id));
    }
    if req.response_type.front_channel_tokens() {
        params.push(("scope".into(), req.scope.to_string()));
    }
    Ok(params)
}

async fn new_token(
    state: &AppState,
    grant: &Grant,
    kind: TokenKind,
    lifetime: i64,
) -> Result<String, OAuthError> {
    let token = random_token(32);
    let t = now();
    state
        .store
        .insert_token(&Token {
            token_hash: storage_hash(&token),
            kind,
            grant_id: grant.id.clone(),
            client_id: grant.client_id.clone(),
            user_id: grant.user_id.clone(),
            scope: grant.scope.clone(),
            expires_at: t + lifetime,
            used_at: None,
            revoked_at: None,
            created_at: t,
        })
        .await
        .map_err(server_error)?;
    Ok(token)
}

fn sign_id_token(
    state: &AppState,
    grant: &Grant,
    client: &Client,
    profile: serde_json::Map<String, serde_json::Value>,
    access_token: Option<&str>,
    code: Option<&str>,
) -> Result<String, OAuthError> {
    let alg = client.id_token_alg;
    let keys = state.keys();
    let signer = keys.signer(alg).map_err(server_error)?;
    let t = now();
    let claims = IdTokenClaims {
        iss: state.settings.issuer.clone(),
        sub: grant
            .user_id
            .as_deref()
            .map(|u| subject_for(state, client, u))
            .unwrap_or_default(),
        aud: client.client_id.clone(),
        azp: client.client_id.clone(),
        exp: t + state.settings.lifetimes.id_token,
        iat: t,
        auth_time: grant.auth_time.unwrap_or(t),
        nonce: grant.nonce.clone(),
        at_hash: access_token.map(|a| half_hash(alg, a)),
        c_hash: code.map(|c| half_hash(alg, c)),
        amr: grant.amr.clone(),
        acr: grant.acr.clone(),
        sid: grant.sid.clone(),
        profile,
    };
    signer.sign(&claims, None).map_err(server_error)
}

// ---------------------------------------------------------------- token endpoint

#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    pub scope: String,
}

pub async fn token(
    state: &AppState,
    creds: ClientCredentials,
    form: &HashMap<String, String>,
) -> Result<TokenResponse, OAuthError> {
    let grant_type = form
        .get("grant_type")
        .map(String::as_str)
        .ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;
    let client = authenticate_client(state, &creds, true).await?;
    match grant_type {
        "authorization_code" => code_grant(state, &client, form).await,
        "refresh_token" => refresh_grant(state, &client, form).await,
        "client_credentials" => client_credentials_grant(state, &client, form).await,
        other => Err(OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            format!("grant_type {other:?} is not supported"),
        )),
    }
}

fn require_grant(client: &Client, grant: &str) -> Result<(), OAuthError> {
    if client.allows_grant(grant) {
        Ok(())
    } else {
        Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            format!("this client may not use {grant}"),
        ))
    }
}

async fn code_grant(
    state: &AppState,
    client: &Client,
    form: &HashMap<String, String>,
) -> Result<TokenResponse, OAuthError> {
    require_grant(client, "authorization_code")?;
    let code = form
        .get("code")
        .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let t = now();
    let stored = match state
        .store
        .use_code(&storage_hash(code), t)
        .await
        .map_err(server_error)?
    {
        CodeUse::Unknown => return Err(OAuthError::invalid_grant("the code is invalid")),
        CodeUse::Reused(c) => {
            // A replayed code may have been stolen: revoke everything issued from it (RFC 6749 4.1.2).
            tracing::warn!(client_id = %client.client_id, "authorization code replayed; revoking its grant");
            state
                .store
                .revoke_grant(&c.grant_id, t)
                .await
                .map_err(server_error)?;
            return Err(OAuthError::invalid_grant("the code was already used"));
        }
        CodeUse::First(c) => c,
    };
    let grant = state
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
    if form.get("redirect_uri") != Some(&stored.redirect_uri) {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    match (&stored.code_challenge, form.get("code_verifier")) {
        (Some(ch), Some(v)) if CodeChallenge::from_stored(ch.clone()).verify(v) => {}
        (Some(_), _) => return Err(OAuthError::invalid_grant("code_verifier is missing or wrong")),
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier sent but the request had no code_challenge",
            ));
        }
        (None, None) => {}
    }
    issue_tokens(state, client, &grant, true).await
}

async fn issue_tokens(
    state: &AppState,
    client: &Client,
    grant: &Grant,
    with_id_token: bool,
) -> Result<TokenResponse, OAuthError> {
    let lt = state.settings.lifetimes;
    let scopes = Scopes::parse(&grant.scope);
    let access = new_token(state, grant, TokenKind::Access, lt.access_token).await?;
    let refresh = if scopes.contains("offline_access")
        && client.allows_grant("refresh_token")
        && grant.user_id.is_some()
    {
        Some(new_token(state, grant, TokenKind::Refresh, lt.refresh_token).await?)
    } else {
        None
    };
    let id_token = if with_id_token && scopes.contains("openid") && grant.user_id.is_some() {
        Some(sign_id_token(
            state,
            grant,
            client,
            Default::default(),
            Some(&access),
            None,
        )?)
    } else {
        None
    };
    Ok(TokenResponse {
        access_token: access,
        token_type: "Bearer",
        expires_in: lt.access_token,
        refresh_token: refresh,
        id_token,
        scope: grant.scope.clone(),
    })
}

async fn refresh_grant(
    state: &AppState,
    client: &Client,
    form: &HashMap<String, String>,
) -> Result<TokenResponse, OAuthError> {
    require_grant(client, "refresh_token")?;
    let presented = form
        .get("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    let hash = storage_hash(presented);
    let t = now();
    let token = state
        .store
        .token(&hash)
        .await
        .map_err(server_error)?
        .filter(|tk| tk.kind == TokenKind::Refresh);
    let token = token.ok_or_else(|| OAuthError::invalid_grant("the refresh token is invalid"))?;
    if token.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    if token.revoked_at.is_some() || token.expires_at <= t {
        return Err(OAuthError::invalid_grant(
            "the refresh token has expired or was revoked",
        ));
    }
    if !state
        .store
        .use_refresh_token(&hash, t)
        .await
        .map_err(server_error)?
    {
        // Rotation means each refresh token is used once; a second use means it leaked.
        tracing::warn!(client_id = %client.client_id, "refresh token reused; revoking its grant");
        state
            .store
            .revoke_grant(&token.grant_id, t)
            .await
            .map_err(server_error)?;
        return Err(OAuthError::invalid_grant("the refresh token was already used"));
    }
    let mut grant = state
        .store
        .grant(&token.grant_id)
        .await
        .map_err(server_error)?
        .ok_or_else(|| OAuthError::invalid_grant("the refresh token is invalid"))?;
    if let Some(s) = form.get("scope") {
        let asked = Scopes::parse(s);
        if !asked.is_subset(&Scopes::parse(&grant.scope)) {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                "a refresh cannot widen the scope",
            ));
        }
        grant.scope = asked.to_string();
    }
    // Later ID tokens carry no nonce (OIDC Core 12.2).
    grant.nonce = None;
    issue_tokens(state, client, &grant, true).await
}

async fn client_credentials_grant(
    state: &AppState,
    client: &Client,
    form: &HashMap<String, String>,
) -> Result<TokenResponse, OAuthError> {
    require_grant(client, "client_credentials")?;
    if client.is_public() {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "public clients cannot use client_credentials",
        ));
    }
    let allowed = client.allowed_scopes();
    let scope = match form.get("scope") {
        Some(s) => {
            let asked = Scopes::parse(s);
            if !asked.is_subset(&allowed) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidScope,
                    "a requested scope is not allowed for this client",
                ));
            }
            asked
        }
        None => allowed,
    };
    let grant = Grant {
        id: random_token(16),
        client_id: client.client_id.clone(),
        user_id: None,
        scope: scope.to_string(),
        auth_time: None,
        amr: vec![],
        acr: None,
        nonce: None,
        sid: None,
        created_at: now(),
        revoked_at: None,
    };
    state.store.create_grant(&grant).await.map_err(server_error)?;
    issue_tokens(state, client, &grant, false).await
}

// ---------------------------------------------------------------- bearer tokens

/// A valid access token: not expired, not revoked.
pub async fn active_access_token(state: &AppState, token: &str) -> Option<Token> {
    let t = state.store.token(&storage_hash(token)).await.ok()??;
    (t.kind == TokenKind::Access && t.revoked_at.is_none() && t.expires_at > now()).then_some(t)
}

pub async fn userinfo(state: &AppState, bearer: &str) -> Result<serde_json::Value, OAuthError> {
    let token = active_access_token(state, bearer)
        .await
        .ok_or_else(|| OAuthError::new(ErrorCode::InvalidToken, "the access token is invalid or expired"))?;
    let scopes = Scopes::parse(&token.scope);
    let Some(user_id) = token.user_id.filter(|_| scopes.contains("openid")) else {
        return Err(OAuthError::new(
            ErrorCode::InvalidToken,
            "this access token is not for userinfo",
        ));
    };
    let user = state
        .store
        .user(&user_id)
        .await
        .map_err(server_error)?
        .ok_or_else(|| OAuthError::new(ErrorCode::InvalidToken, "the account no longer exists"))?;
    let client = state
        .store
        .client(&token.client_id)
        .await
        .map_err(server_error)?
        .ok_or_else(|| OAuthError::new(ErrorCode::InvalidToken, "the client no longer exists"))?;
    let mut claims = user_claims(&user, &scopes);
    claims.insert(
        "sub".into(),
        serde_json::json!(subject_for(state, &client, &user.id)),
    );
    Ok(serde_json::Value::Object(claims))
}

/// RFC 7009: revoking a refresh token revokes its grant; an access token, just itself. Unknown
/// tokens, and tokens of other clients, are answered the same way (success) and left alone.
pub async fn revoke(
    state: &AppState,
    creds: ClientCredentials,
    form: &HashMap<String, String>,
) -> Result<(), OAuthError> {
    let client = authenticate_client(state, &creds, true).await?;
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let hash = storage_hash(token);
    if let Some(t) = state.store.token(&hash).await.map_err(server_error)?
        && t.client_id == client.client_id
    {
        match t.kind {
            TokenKind::Refresh => state
                .store
                .revoke_grant(&t.grant_id, now())
                .await
                .map_err(server_error)?,
            TokenKind::Access => state
                .store
                .revoke_token(&hash, now())
                .await
                .map_err(server_error)?,
        }
    }
    Ok(())
}

/// RFC 7662 introspection, for confidential clients.
pub async fn introspect(
    state: &AppState,
    creds: ClientCredentials,
    form: &HashMap<String, String>,
) -> Result<serde_json::Value, OAuthError> {
    authenticate_client(state, &creds, false).await?;
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let t = state
        .store
        .token(&storage_hash(token))
        .await
        .map_err(server_error)?;
    let active = t.filter(|t| {
        t.revoked_at.is_none() && t.expires_at > now() && (t.kind == TokenKind::Access || t.used_at.is_none())
    });
    let Some(t) = active else {
        return Ok(serde_json::json!({"active": false}));
    };
    let mut v = serde_json::json!({
        "active": true,
        "scope": t.scope,
        "client_id": t.client_id,
        "token_type": if t.kind == TokenKind::Access { "Bearer" } else { "refresh_token" },
        "exp": t.expires_at,
        "iat": t.created_at,
        "iss": state.settings.issuer,
    });
    let owner = state.store.client(&t.client_id).await.map_err(server_error)?;
    if let (Some(user), Some(owner), Some(obj)) = (t.user_id, owner, v.as_object_mut()) {
        obj.insert("sub".into(), serde_json::json!(subject_for(state, &owner, &user)));
    }
    Ok(v)
}

// ---------------------------------------------------------------- clients

/// Registers a client: the one path for the CLI, the admin API and dynamic registration.
/// Returns the client and its secret (shown once; only a hash is kept).
pub async fn register_client(
    state_store: &facegate_store::Store,
    meta: ClientMetadata,
    registration_token_hash: Option<&str>,
) -> Result<(Client, Option<String>), OAuthError> {
    let valid = meta.validate()?;
    let secret = matches!(
        valid.auth_method,
        AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost
    )
    .then(|| random_token(32));
    let client = Client {
        client_id: random_token(16),
        secret_hash: secret.as_deref().map(storage_hash),
        name: valid.name,
        redirect_uris: valid.redirect_uris,
        post_logout_redirect_uris: valid.post_logout_redirect_uris,
        grant_types: valid.grant_types,
        auth_method: valid.auth_method,
        scope: valid.scope,
        jwks: valid.jwks,
        skip_consent: valid.skip_consent,
        id_token_alg: valid.id_token_alg,
        pairwise: valid.pairwise,
        created_at: now(),
    };
    state_store
        .create_client(&client, registration_token_hash)
        .await
        .map_err(server_error)?;
    Ok((client, secret))
}
