//! The provider's flows: everything between a validated request and a response, over the store and
//! the protocol types. Handlers call one function here; the CLI and admin API call the same ones.

use facegate_core::secret::{random_token, storage_hash};
use facegate_oidc::authorize::AuthRequest;
use facegate_oidc::claims::person_claims;
use facegate_oidc::client::{AuthMethod, Client, ClientMetadata};
pub use facegate_oidc::engine::TokenResponse;
use facegate_oidc::engine::{self, Context};
use facegate_oidc::id_token::user_claims;
use facegate_oidc::keys::KeySet;
use facegate_oidc::scope::Scopes;
use facegate_oidc::token::{TokenQuery, TokenRequest};
use facegate_oidc::{ErrorCode, OAuthError};
use facegate_store::{Grant, Store, StoredSession, Token};

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

/// The `sub` a client sees for a user (see `facegate_oidc::engine::subject`).
pub fn subject_for(state: &AppState, client: &Client, user_id: &str) -> String {
    engine::subject(state.pairwise_salt.expose(), client, user_id)
}

/// The engine's view of the server for one request; `keys` is the caller's local.
pub fn engine_context<'a>(state: &'a AppState, keys: &'a KeySet) -> Context<'a, Store> {
    Context {
        store: &state.store,
        issuer: &state.settings.issuer,
        lifetimes: state.settings.lifetimes,
        keys,
        pairwise_salt: state.pairwise_salt.expose(),
        now: now(),
    }
}

/// Binds `$ctx` to the engine's context for this request.
macro_rules! engine_ctx {
    ($state:expr, $ctx:ident) => {
        let keys = $state.keys();
        let $ctx = engine_context($state, &keys);
    };
}

fn server_error<E: std::fmt::Display>(e: E) -> OAuthError {
    tracing::error!("internal error: {e}");
    OAuthError::server_error()
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
        claims: req.claims.clone(),
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
    engine_ctx!(state, ctx);
    let mut access = None;
    if req.response_type.token {
        let (a, row) = ctx.new_access_token(client, &grant, &grant.scope)?;
        state.store.insert_token(&row).await.map_err(server_error)?;
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
        let mut claims = if req.response_type.token || req.response_type.code {
            Default::default()
        } else {
            user_claims(&user, &req.scope)
        };
        if let Some(c) = &req.claims {
            claims.extend(person_claims(&user, c.id_token.keys()));
        }
        let id = ctx.sign_id_token(&grant, client, claims, access.as_deref(), code.as_deref())?;
        params.push(("id_token".into(), id));
    }
    if req.response_type.front_channel_tokens() {
        params.push(("scope".into(), req.scope.to_string()));
    }
    Ok(params)
}

// ---------------------------------------------------------------- token endpoint and bearer tokens

pub async fn token(state: &AppState, req: TokenRequest) -> Result<TokenResponse, OAuthError> {
    engine_ctx!(state, ctx);
    ctx.token(req).await
}

/// A valid access token: not expired, not revoked.
pub async fn active_access_token(state: &AppState, token: &str) -> Option<Token> {
    engine_ctx!(state, ctx);
    ctx.active_access_token(token).await
}

pub async fn userinfo(state: &AppState, bearer: &str) -> Result<serde_json::Value, OAuthError> {
    engine_ctx!(state, ctx);
    ctx.userinfo(bearer).await
}

pub async fn revoke(state: &AppState, q: TokenQuery) -> Result<(), OAuthError> {
    engine_ctx!(state, ctx);
    ctx.revoke(q).await
}

pub async fn introspect(state: &AppState, q: TokenQuery) -> Result<serde_json::Value, OAuthError> {
    engine_ctx!(state, ctx);
    ctx.introspect(q).await
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
    let (client, secret) = build_client(meta, dynamic, None)?;
    state_store
        .create_client(&client, registration_token_hash)
        .await
        .map_err(server_error)?;
    Ok((client, secret))
}

/// RFC 7592 update: the client's metadata replaced by `meta`, under the same rules as at
/// registration; its id, secret (when it keeps a secret method) and creation time stay. The
/// registration access token is rotated: the new one's hash is stored.
pub async fn update_client(
    store: &facegate_store::Store,
    existing: &Client,
    meta: ClientMetadata,
    registration_token_hash: &str,
) -> Result<(Client, Option<String>), OAuthError> {
    let (client, secret) = build_client(meta, existing.dynamic, Some(existing))?;
    store
        .update_client(&client, Some(registration_token_hash))
        .await
        .map_err(server_error)?;
    Ok((client, secret))
}

/// Validates metadata into a client. Dynamically registered clients cannot claim what only an
/// administrator grants. `existing` keeps the id, creation time and secret of a client updated.
fn build_client(
    meta: ClientMetadata,
    dynamic: bool,
    existing: Option<&Client>,
) -> Result<(Client, Option<String>), OAuthError> {
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
        // facegate POSTs to this URI: a client registered by anyone holding the initial token may
        // not point it at this machine's own loopback services.
        if valid
            .backchannel_logout_uri
            .as_deref()
            .is_some_and(|u| !u.starts_with("https://"))
        {
            return Err(bad(
                "a dynamically registered backchannel_logout_uri must use https",
            ));
        }
    }
    let uses_secret = matches!(
        valid.auth_method,
        AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost
    );
    let kept = existing
        .and_then(|c| c.secret_hash.clone())
        .filter(|_| uses_secret);
    let secret = (uses_secret && kept.is_none()).then(|| random_token(32));
    let client = Client {
        client_id: existing.map_or_else(|| random_token(16), |c| c.client_id.clone()),
        secret_hash: kept.or_else(|| secret.as_deref().map(storage_hash)),
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
        created_at: existing.map_or_else(now, |c| c.created_at),
        dynamic,
        resource_server: valid.resource_server,
        require_par: valid.require_par,
        jwt_access_tokens: valid.jwt_access_tokens,
        backchannel_logout_uri: valid.backchannel_logout_uri,
        backchannel_logout_session_required: valid.backchannel_logout_session_required,
    };
    Ok((client, secret))
}

// ---------------------------------------------------------------- device authorization (RFC 8628)

pub async fn device_authorization(
    state: &AppState,
    req: engine::device::DeviceRequest,
) -> Result<engine::device::DeviceResponse, OAuthError> {
    engine_ctx!(state, ctx);
    ctx.device_authorization(req).await
}

/// The live device request a typed user code names, and its client.
pub async fn device_for_user_code(
    state: &AppState,
    typed: &str,
) -> Result<Option<(engine::device::DeviceAuthorization, Client)>, OAuthError> {
    engine_ctx!(state, ctx);
    ctx.device_for_user_code(typed).await
}

/// The person's answer to a device request: approval under their session and the login policy's
/// outcome, or denial. False if the request was no longer pending.
pub async fn device_decide(
    state: &AppState,
    d: &engine::device::DeviceAuthorization,
    approval: Option<(&Session, &facegate_core::login::Outcome)>,
) -> Result<bool, OAuthError> {
    engine_ctx!(state, ctx);
    let grant = approval.map(|(session, outcome)| Grant {
        id: random_token(16),
        client_id: d.client_id.clone(),
        user_id: Some(session.user_id.clone()),
        scope: d.scope.clone(),
        auth_time: Some(outcome.auth_time),
        amr: outcome.amr.clone(),
        acr: Some(outcome.acr.as_str().to_string()),
        nonce: None,
        sid: Some(session.sid.clone()),
        created_at: ctx.now,
        revoked_at: None,
        claims: None,
    });
    ctx.device_decide(d, grant.as_ref()).await
}

// ---------------------------------------------------------------- pushed authorization requests (RFC 9126)

pub async fn push_authorization(
    state: &AppState,
    authorization: Option<&str>,
    pairs: &[(String, String)],
) -> Result<engine::par::ParResponse, OAuthError> {
    engine_ctx!(state, ctx);
    ctx.push_authorization(authorization, pairs).await
}

/// The parameters of an authorization request as `/authorize` should read them: a `request_uri`
/// from the PAR endpoint is replaced by what was pushed (consumed: single use), for the client it
/// was pushed by only. `Ok(None)` means the request names nothing usable. The flag says whether
/// the request was pushed.
pub async fn resolve_pushed(
    state: &AppState,
    pairs: Vec<(String, String)>,
) -> Result<Option<(Vec<(String, String)>, bool)>, OAuthError> {
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let Some(uri) = get("request_uri").filter(|u| u.starts_with(engine::par::REQUEST_URI_PREFIX)) else {
        return Ok(Some((pairs, false)));
    };
    let Some(client_id) = get("client_id") else {
        return Ok(None);
    };
    engine_ctx!(state, ctx);
    Ok(ctx
        .take_pushed(&client_id, &uri)
        .await?
        .map(|pushed| (pushed, true)))
}

/// The back-channel logout tokens owed when session `sid` ends (see server/backchannel.rs).
pub async fn backchannel_logouts(
    state: &AppState,
    sid: &str,
) -> Result<Vec<engine::logout::LogoutDelivery>, OAuthError> {
    engine_ctx!(state, ctx);
    ctx.backchannel_logouts(sid).await
}
