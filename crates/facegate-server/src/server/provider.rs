//! The provider's flows: everything between a validated request and a response, over the store and
//! the protocol types. Handlers call one function here; the CLI and admin API call the same ones.

use facegate_core::secret::{random_token, storage_hash};
use facegate_oidc::authorize::AuthRequest;
use facegate_oidc::client::{AuthMethod, Client, ClientMetadata};
use facegate_oidc::client_auth::{self, Presented};
use facegate_oidc::id_token::{IdTokenClaims, half_hash, user_claims};
use facegate_oidc::pkce::CodeChallenge;
use facegate_oidc::scope::Scopes;
use facegate_oidc::token::{GrantRequest, TokenQuery, TokenRequest};
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
}

impl Session {
    pub fn from_stored(s: StoredSession) -> Self {
        let sid = s.id_hash.chars().take(22).collect();
        Self {
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

/// Authenticates a client (the rules are in `facegate_oidc::client_auth`); `allow_public` admits
/// `none` clients.
pub async fn authenticate_client(
    state: &AppState,
    presented: &Presented,
    allow_public: bool,
) -> Result<Client, OAuthError> {
    let client = state
        .store
        .client(presented.client_id())
        .await
        .map_err(server_error)?
        .ok_or_else(|| OAuthError::invalid_client("client authentication failed"))?;
    let token_endpoint = format!("{}/token", state.settings.issuer);
    let remember = |key: &str, exp: i64| state.remember_jti(key, exp);
    let ctx = client_auth::AssertionContext {
        audiences: &[token_endpoint.as_str(), state.settings.issuer.as_str()],
        now: now(),
        remember_jti: &remember,
    };
    client_auth::verify(&client, presented, allow_public, &ctx)?;
    Ok(client)
}

// ---------------------------------------------------------------- authorization

/// What the authorization endpoint does next for a validated request and the current session.
#[derive(Debug)]
pub enum Next {
    Login,
    Consent,
    Issue(Session),
    Error(OAuthError),
}

/// Decides between login, consent and issuing, following prompt and max_age.
pub async fn decide(
    state: &AppState,
    req: &AuthRequest,
    client: &Client,
    session: Option<Session>,
    fresh_login: bool,
) -> Result<Next, OAuthError> {
    let t = now();
    // A login made for this very request satisfies max_age however long consent then took.
    let session = session.filter(|s| match req.max_age {
        Some(max) => fresh_login || t - s.auth_time <= max,
        None => true,
    });
    let Some(session) = session.filter(|_| fresh_login || !req.prompt_login) else {
        return Ok(if req.prompt_none {
            Next::Error(OAuthError::new(
                ErrorCode::LoginRequired,
                "the person is not logged in",
            ))
        } else {
            Next::Login
        });
    };
    let consented = client.skip_consent || {
        let stored = state
            .store
            .consent(&session.user_id, &client.client_id)
            .await
            .map_err(server_error)?;
        stored.is_some_and(|s| req.scope.is_subset(&Scopes::parse(&s))) && !req.prompt_consent
    };
    if !consented {
        return Ok(if req.prompt_none {
            Next::Error(OAuthError::new(ErrorCode::ConsentRequired, "consent is needed"))
        } else {
            Next::Consent
        });
    }
    Ok(Next::Issue(session))
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
pub async fn issue_authorization(
    state: &AppState,
    req: &AuthRequest,
    client: &Client,
    session: &Session,
) -> Result<Vec<(String, String)>, OAuthError> {
    let t = now();
    let lt = state.settings.lifetimes;
    let grant = Grant {
        id: random_token(16),
        client_id: client.client_id.clone(),
        user_id: Some(session.user_id.clone()),
        scope: req.scope.to_string(),
        auth_time: Some(session.auth_time),
        amr: session.amr.clone(),
        acr: session.acr.clone(),
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
        let a = new_token(state, &grant, &grant.scope, TokenKind::Access, lt.access_token).await?;
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
    scope: &str,
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
            scope: scope.to_string(),
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

pub async fn token(state: &AppState, req: TokenRequest) -> Result<TokenResponse, OAuthError> {
    let client = authenticate_client(state, &req.client, true).await?;
    require_grant(&client, req.grant.grant_type())?;
    match req.grant {
        GrantRequest::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
        } => {
            code_grant(
                state,
                &client,
                &code,
                redirect_uri.as_deref(),
                code_verifier.as_deref(),
            )
            .await
        }
        GrantRequest::RefreshToken { refresh_token, scope } => {
            refresh_grant(state, &client, &refresh_token, scope.as_deref()).await
        }
        GrantRequest::ClientCredentials { scope } => {
            client_credentials_grant(state, &client, scope.as_deref()).await
        }
        GrantRequest::DeviceCode { .. } => Err(OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            "the device_code grant is not enabled",
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
    code: &str,
    redirect_uri: Option<&str>,
    code_verifier: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
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
            // Used codes are kept until the tokens of their grant expire, so this holds for as long
            // as there is anything to revoke.
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
    if redirect_uri != Some(stored.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    match (&stored.code_challenge, code_verifier) {
        (Some(ch), Some(v)) if CodeChallenge::from_stored(ch.clone()).verify(v) => {}
        (Some(_), _) => return Err(OAuthError::invalid_grant("code_verifier is missing or wrong")),
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier sent but the request had no code_challenge",
            ));
        }
        (None, None) => {}
    }
    let scope = grant.scope.clone();
    issue_tokens(state, client, &grant, &scope, true).await
}

/// The access token, and (for offline_access) a refresh token, for `scope` under `grant`.
async fn issue_tokens(
    state: &AppState,
    client: &Client,
    grant: &Grant,
    scope: &str,
    with_id_token: bool,
) -> Result<TokenResponse, OAuthError> {
    let lt = state.settings.lifetimes;
    let scopes = Scopes::parse(scope);
    let access = new_token(state, grant, scope, TokenKind::Access, lt.access_token).await?;
    let refresh = if scopes.contains("offline_access")
        && client.allows_grant("refresh_token")
        && grant.user_id.is_some()
    {
        // Sliding (each refresh token lives `refresh_token`) within an absolute limit counted from
        // the authorization.
        let absolute_end = grant.created_at + lt.refresh_token_absolute;
        let lifetime = lt.refresh_token.min(absolute_end - now());
        if lifetime > 0 {
            Some(new_token(state, grant, scope, TokenKind::Refresh, lifetime).await?)
        } else {
            None
        }
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
        scope: scope.to_string(),
    })
}

async fn refresh_grant(
    state: &AppState,
    client: &Client,
    presented: &str,
    scope: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
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
    // The scope is checked before the token is used up, so a bad request does not burn it. The
    // ceiling is this token's scope: a narrowed scope sticks to every later refresh.
    let ceiling = Scopes::parse(&token.scope);
    let scope = match scope {
        Some(s) => {
            let asked = Scopes::parse(s);
            if !asked.is_subset(&ceiling) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidScope,
                    "a refresh cannot widen the scope",
                ));
            }
            asked
        }
        None => ceiling,
    };
    let mut grant = state
        .store
        .grant(&token.grant_id)
        .await
        .map_err(server_error)?
        .ok_or_else(|| OAuthError::invalid_grant("the refresh token is invalid"))?;
    if grant.created_at + state.settings.lifetimes.refresh_token_absolute <= t {
        return Err(OAuthError::invalid_grant(
            "the authorization is too old: sign in again",
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
    // Later ID tokens carry no nonce (OIDC Core 12.2).
    grant.nonce = None;
    issue_tokens(state, client, &grant, &scope.to_string(), true).await
}

async fn client_credentials_grant(
    state: &AppState,
    client: &Client,
    scope: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    if client.is_public() {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "public clients cannot use client_credentials",
        ));
    }
    let allowed = client.allowed_scopes();
    let scope = match scope {
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
    let scope = grant.scope.clone();
    issue_tokens(state, client, &grant, &scope, false).await
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
pub async fn revoke(state: &AppState, q: TokenQuery) -> Result<(), OAuthError> {
    let client = authenticate_client(state, &q.client, true).await?;
    let hash = storage_hash(&q.token);
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

/// RFC 7662 introspection, for confidential clients. A client learns about its own tokens only;
/// clients marked as resource servers (by an administrator) about every token. Any other token is
/// answered `{"active": false}`, as an unknown one would be (RFC 7662 2.2).
pub async fn introspect(state: &AppState, q: TokenQuery) -> Result<serde_json::Value, OAuthError> {
    let caller = authenticate_client(state, &q.client, false).await?;
    let t = state
        .store
        .token(&storage_hash(&q.token))
        .await
        .map_err(server_error)?;
    let active = t.filter(|t| {
        t.revoked_at.is_none()
            && t.expires_at > now()
            && (t.kind == TokenKind::Access || t.used_at.is_none())
            && (t.client_id == caller.client_id || caller.resource_server)
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
    let dynamic = registration_token_hash.is_some();
    let valid = meta.validate()?;
    if dynamic {
        // Dynamic registration is open to anyone holding the initial access token: what an
        // administrator decides (first-party trust, face API access, introspecting others' tokens)
        // is not on offer there.
        let bad = |d: &str| OAuthError::new(ErrorCode::InvalidClientMetadata, d);
        if valid.skip_consent {
            return Err(bad("skip_consent can be set only by an administrator"));
        }
        if valid.resource_server {
            return Err(bad("resource_server can be set only by an administrator"));
        }
        if Scopes::parse(&valid.scope)
            .iter()
            .any(|s| facegate_oidc::scope::FACE_API.contains(&s))
        {
            return Err(bad("the face API scopes are granted only by an administrator"));
        }
    }
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
        dynamic,
        resource_server: valid.resource_server,
    };
    state_store
        .create_client(&client, registration_token_hash)
        .await
        .map_err(server_error)?;
    Ok((client, secret))
}
