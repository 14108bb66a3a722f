//! The OAuth engine: the token endpoint's grants, introspection, revocation and userinfo, over a
//! [`Storage`] trait (implemented by `facegate-store`) and a [`Context`] of what the server knows
//! (issuer, lifetimes, keys, the pairwise salt, the assertion replay cache). One module per grant;
//! client authentication is in [`crate::client_auth`]. No HTTP framework, no database here.

mod client_credentials;
mod code;
pub mod device;
pub mod logout;
pub mod par;
mod refresh;

use std::future::Future;

use facegate_core::User;
use facegate_core::secret::{random_token, storage_hash};
use serde::Serialize;

use crate::client::Client;
use crate::client_auth::{self, Presented};
use crate::error::{ErrorCode, OAuthError};
use crate::id_token::{IdTokenClaims, half_hash, user_claims};
use crate::keys::KeySet;
use crate::scope::Scopes;
use crate::token::{GrantRequest, TokenQuery, TokenRequest};

/// One authorization: what a person (or a client, for client_credentials) granted, when, how.
#[derive(Debug, Clone)]
pub struct Grant {
    pub id: String,
    pub client_id: String,
    pub user_id: Option<String>,
    pub scope: String,
    pub auth_time: Option<i64>,
    pub amr: Vec<String>,
    pub acr: Option<String>,
    pub nonce: Option<String>,
    pub sid: Option<String>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    /// The `claims` request parameter of the authorization, if any.
    pub claims: Option<crate::claims::ClaimsRequest>,
}

#[derive(Debug, Clone)]
pub struct Code {
    pub grant_id: String,
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub expires_at: i64,
    /// When it was redeemed (or spent by a failed attempt), if it was.
    pub used_at: Option<i64>,
}

/// What became of tokens stored with [`Storage::redeem_code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redeemed {
    /// The code was unused: it is now used and the tokens are stored (durably).
    Stored,
    /// The code had been used meanwhile (a replay racing the first use): nothing was stored.
    CodeUsed,
    /// The client no longer exists: nothing usable was stored.
    ClientGone,
}

#[derive(Debug, Clone)]
pub enum CodeUse {
    Unknown,
    First(Code),
    Reused(Code),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Refresh => "refresh",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Token {
    pub token_hash: String,
    pub kind: TokenKind,
    pub grant_id: String,
    pub client_id: String,
    pub user_id: Option<String>,
    pub scope: String,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    /// Set when the token or its whole grant was revoked.
    pub revoked_at: Option<i64>,
    pub created_at: i64,
}

/// What the engine needs from persistence. Every method is one durable step: when it returns, the
/// change survives a crash of the process.
pub trait Storage: Sync {
    type Error: std::fmt::Display + Send;

    /// Records a client assertion's `client_id:jti` until `expires_at`; false when it was
    /// recorded before (a replayed assertion), by any instance.
    fn remember_assertion(
        &self,
        key: &str,
        expires_at: i64,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;
    fn client(&self, client_id: &str) -> impl Future<Output = Result<Option<Client>, Self::Error>> + Send;
    fn user(&self, id: &str) -> impl Future<Output = Result<Option<User>, Self::Error>> + Send;
    fn grant(&self, id: &str) -> impl Future<Output = Result<Option<Grant>, Self::Error>> + Send;
    /// Stores a new grant (if given) and tokens under it, only while their client exists:
    /// `false` if it no longer does (then nothing usable was stored).
    fn issue(
        &self,
        grant: Option<&Grant>,
        tokens: &[Token],
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;
    /// A code and the grant it was issued under, read without using it up (see
    /// [`Storage::redeem_code`]).
    fn code(
        &self,
        code_hash: &str,
    ) -> impl Future<Output = Result<Option<(Code, Grant)>, Self::Error>> + Send;
    /// Marks a code used and stores `tokens` (under the code's existing grant) in one transaction,
    /// only if the code was still unused and the tokens' client exists: the single-use check and
    /// the write are one durable step.
    fn redeem_code(
        &self,
        code_hash: &str,
        now: i64,
        tokens: &[Token],
    ) -> impl Future<Output = Result<Redeemed, Self::Error>> + Send;
    /// Revokes a grant and every token under it.
    fn revoke_grant(&self, id: &str, now: i64) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// Consumes a code: the first call wins, later calls learn it was reused.
    fn use_code(
        &self,
        code_hash: &str,
        now: i64,
    ) -> impl Future<Output = Result<CodeUse, Self::Error>> + Send;
    /// A token by its hash, with its grant's revocation folded in.
    fn token(&self, token_hash: &str) -> impl Future<Output = Result<Option<Token>, Self::Error>> + Send;
    /// Marks a refresh token used; false if it already was (a replay).
    fn use_refresh_token(
        &self,
        token_hash: &str,
        now: i64,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;
    fn revoke_token(
        &self,
        token_hash: &str,
        now: i64,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    // ---- the device authorization grant (RFC 8628), see [`device`]

    /// Stores a new device request; false if its user code is taken by a live one (then retry).
    fn create_device_authorization(
        &self,
        d: &device::DeviceAuthorization,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;
    fn device(
        &self,
        device_code_hash: &str,
    ) -> impl Future<Output = Result<Option<device::DeviceAuthorization>, Self::Error>> + Send;
    fn device_by_user_code(
        &self,
        user_code_hash: &str,
    ) -> impl Future<Output = Result<Option<device::DeviceAuthorization>, Self::Error>> + Send;
    /// Records a poll at `now` and the interval the device must keep from now on.
    fn device_polled(
        &self,
        device_code_hash: &str,
        now: i64,
        interval: i64,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// Approves (storing `grant` with it) or denies (`None`) a pending, unexpired request, in one
    /// transaction; false if it was no longer pending.
    fn decide_device(
        &self,
        user_code_hash: &str,
        grant: Option<&Grant>,
        now: i64,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;
    /// Marks an approved device code used; false if it was not approved or already used.
    fn use_device(
        &self,
        device_code_hash: &str,
        now: i64,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    // ---- pushed authorization requests (RFC 9126), see [`par`]

    /// Stores a pushed request's parameters (JSON) under `key` until `expires_at`.
    fn push_request(
        &self,
        key: &str,
        json: &str,
        expires_at: i64,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// The clients (and the person) that were granted something in login session `sid`.
    fn session_clients(
        &self,
        sid: &str,
    ) -> impl Future<Output = Result<Vec<(String, String)>, Self::Error>> + Send;
    /// Removes and returns a pushed request that has not expired (the first call wins).
    fn take_pushed_request(
        &self,
        key: &str,
        now: i64,
    ) -> impl Future<Output = Result<Option<String>, Self::Error>> + Send;
}

/// How long things live, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    pub code: i64,
    pub access_token: i64,
    pub id_token: i64,
    /// How long one refresh token lives (sliding: each refresh issues a new one).
    pub refresh_token: i64,
    /// How long refreshing may go on after the authorization, however often it is refreshed.
    pub refresh_token_absolute: i64,
    pub session: i64,
    pub auth_request: i64,
    /// How long a device code and its user code live (RFC 8628 3.2 `expires_in`).
    pub device_code: i64,
    /// The polling interval a device is told to keep (RFC 8628 3.2 `interval`).
    pub device_interval: i64,
    /// How long a pushed authorization request's `request_uri` lives (RFC 9126 2.2 `expires_in`).
    pub par: i64,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            code: 60,
            access_token: 3600,
            id_token: 3600,
            refresh_token: 30 * 24 * 3600,
            refresh_token_absolute: 180 * 24 * 3600,
            session: 12 * 3600,
            auth_request: 30 * 60,
            device_code: 600,
            device_interval: 5,
            par: 60,
        }
    }
}

/// What the engine knows of the server for one request.
pub struct Context<'a, S> {
    pub store: &'a S,
    pub issuer: &'a str,
    pub lifetimes: Lifetimes,
    pub keys: &'a KeySet,
    /// Mixed into pairwise subject identifiers.
    pub pairwise_salt: &'a str,
    pub now: i64,
}

impl<S> std::fmt::Debug for Context<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("issuer", &self.issuer)
            .field("lifetimes", &self.lifetimes)
            .finish_non_exhaustive()
    }
}

pub(crate) fn server_error<E: std::fmt::Display>(e: E) -> OAuthError {
    tracing::error!("internal error: {e}");
    OAuthError::server_error()
}

/// The `sub` a client sees for a user: the account id, or for pairwise clients a hash of the
/// client's sector, the account id and a server secret (stable per sector, unlinkable across).
pub fn subject(pairwise_salt: &str, client: &Client, user_id: &str) -> String {
    if client.pairwise {
        storage_hash(&format!("{}\n{user_id}\n{pairwise_salt}", client.sector()))
    } else {
        user_id.to_string()
    }
}

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

impl<S: Storage> Context<'_, S> {
    /// Authenticates a client (rules in [`crate::client_auth`]).
    pub async fn authenticate(
        &self,
        presented: &Presented,
        allow_public: bool,
    ) -> Result<Client, OAuthError> {
        let client = self
            .store
            .client(presented.client_id())
            .await
            .map_err(server_error)?
            .ok_or_else(|| OAuthError::invalid_client("client authentication failed"))?;
        let token_endpoint = format!("{}/token", self.issuer);
        let ctx = client_auth::AssertionContext {
            audiences: &[token_endpoint.as_str(), self.issuer],
            now: self.now,
        };
        if let Some(a) = client_auth::verify(&client, presented, allow_public, &ctx)? {
            // Each assertion once, on every instance: recorded in the store until it expires.
            let first = self
                .store
                .remember_assertion(&a.key, a.expires_at)
                .await
                .map_err(server_error)?;
            if !first {
                tracing::info!(client = %client.client_id, "client assertion replayed");
                return Err(OAuthError::invalid_client("client authentication failed"));
            }
        }
        Ok(client)
    }

    /// A new token of `kind` for `scope` under `grant` (not yet stored): the secret and its row.
    pub fn new_token(&self, grant: &Grant, scope: &str, kind: TokenKind, lifetime: i64) -> (String, Token) {
        let secret = random_token(32);
        self.token_row(secret, grant, scope, kind, lifetime)
    }

    fn token_row(
        &self,
        secret: String,
        grant: &Grant,
        scope: &str,
        kind: TokenKind,
        lifetime: i64,
    ) -> (String, Token) {
        let row = Token {
            token_hash: storage_hash(&secret),
            kind,
            grant_id: grant.id.clone(),
            client_id: grant.client_id.clone(),
            user_id: grant.user_id.clone(),
            scope: scope.to_string(),
            expires_at: self.now + lifetime,
            used_at: None,
            revoked_at: None,
            created_at: self.now,
        };
        (secret, row)
    }

    /// A new access token for `client` (not yet stored): an opaque random secret, or for clients
    /// registered with `jwt_access_tokens` a JWT (RFC 9068) signed with the provider's RS256 key.
    /// Either way only its hash is stored, so userinfo, introspection and revocation treat both
    /// alike; a resource server that checks the JWT's signature alone cannot see a revocation
    /// before `exp` (access tokens live [`Lifetimes::access_token`]).
    pub fn new_access_token(
        &self,
        client: &Client,
        grant: &Grant,
        scope: &str,
    ) -> Result<(String, Token), OAuthError> {
        let lifetime = self.lifetimes.access_token;
        if !client.jwt_access_tokens {
            return Ok(self.new_token(grant, scope, TokenKind::Access, lifetime));
        }
        let sub = match &grant.user_id {
            Some(u) => subject(self.pairwise_salt, client, u),
            None => client.client_id.clone(),
        };
        let mut claims = serde_json::json!({
            "iss": self.issuer,
            "sub": sub,
            // Without resource indicators (RFC 8707) the resource is facegate itself: its userinfo
            // endpoint and face API (RFC 9068 2.2: a default resource).
            "aud": self.issuer,
            "exp": self.now + lifetime,
            "iat": self.now,
            "jti": random_token(16),
            "client_id": client.client_id,
            "scope": scope,
        });
        if let (Some(obj), Some(_)) = (claims.as_object_mut(), &grant.user_id) {
            if let Some(t) = grant.auth_time {
                obj.insert("auth_time".into(), serde_json::json!(t));
            }
            if let Some(a) = &grant.acr {
                obj.insert("acr".into(), serde_json::json!(a));
            }
            obj.insert("amr".into(), serde_json::json!(grant.amr));
        }
        let jwt = self
            .keys
            .signer(crate::keys::SigningAlg::RS256)
            .map_err(server_error)?
            .sign(&claims, Some("at+jwt"))
            .map_err(server_error)?;
        Ok(self.token_row(jwt, grant, scope, TokenKind::Access, lifetime))
    }

    /// Signs an ID token for `grant`; `profile` holds the claims beyond the protocol's.
    pub fn sign_id_token(
        &self,
        grant: &Grant,
        client: &Client,
        profile: serde_json::Map<String, serde_json::Value>,
        access_token: Option<&str>,
        code: Option<&str>,
    ) -> Result<String, OAuthError> {
        let alg = client.id_token_alg;
        let signer = self.keys.signer(alg).map_err(server_error)?;
        let t = self.now;
        let claims = IdTokenClaims {
            iss: self.issuer.to_string(),
            sub: grant
                .user_id
                .as_deref()
                .map(|u| subject(self.pairwise_salt, client, u))
                .unwrap_or_default(),
            aud: client.client_id.clone(),
            azp: client.client_id.clone(),
            exp: t + self.lifetimes.id_token,
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

    /// The access token, and (for offline_access) a refresh token, for `scope` under `grant`,
    /// stored in one transaction together with `new_grant` when the grant is new.
    pub(crate) async fn issue_tokens(
        &self,
        client: &Client,
        grant: &Grant,
        new_grant: bool,
        scope: &str,
        with_id_token: bool,
        code_hash: Option<&str>,
    ) -> Result<TokenResponse, OAuthError> {
        let lt = self.lifetimes;
        let scopes = Scopes::parse(scope);
        let (access, access_row) = self.new_access_token(client, grant, scope)?;
        let mut rows = vec![access_row];
        let mut refresh = None;
        if scopes.contains("offline_access")
            && client.allows_grant("refresh_token")
            && grant.user_id.is_some()
        {
            // Sliding (each refresh token lives `refresh_token`) within an absolute limit counted
            // from the authorization.
            let lifetime = lt
                .refresh_token
                .min(grant.created_at + lt.refresh_token_absolute - self.now);
            if lifetime > 0 {
                let (secret, row) = self.new_token(grant, scope, TokenKind::Refresh, lifetime);
                rows.push(row);
                refresh = Some(secret);
            }
        }
        let id_token = match (&grant.user_id, with_id_token && scopes.contains("openid")) {
            (Some(user_id), true) => {
                // Claims the `claims` parameter asked for in the ID token (OIDC Core 5.5).
                let wanted = grant
                    .claims
                    .as_ref()
                    .map(|c| &c.id_token)
                    .filter(|m| !m.is_empty());
                let profile = match wanted {
                    Some(names) => match self.store.user(user_id).await.map_err(server_error)? {
                        Some(user) => crate::claims::person_claims(&user, names.keys()),
                        None => Default::default(),
                    },
                    None => Default::default(),
                };
                Some(self.sign_id_token(grant, client, profile, Some(&access), None)?)
            }
            _ => None,
        };
        let stored = match code_hash {
            // The code is used up in the same transaction that stores its tokens.
            Some(code_hash) => self
                .store
                .redeem_code(code_hash, self.now, &rows)
                .await
                .map_err(server_error)?,
            None => match self
                .store
                .issue(new_grant.then_some(grant), &rows)
                .await
                .map_err(server_error)?
            {
                true => Redeemed::Stored,
                false => Redeemed::ClientGone,
            },
        };
        match stored {
            Redeemed::Stored => {}
            Redeemed::ClientGone => {
                return Err(OAuthError::invalid_client("client authentication failed"));
            }
            Redeemed::CodeUsed => {
                // Another request redeemed the code first: a replay (see [`code::exchange`]).
                tracing::warn!(client_id = %client.client_id, "authorization code replayed; revoking its grant");
                self.store
                    .revoke_grant(&grant.id, self.now)
                    .await
                    .map_err(server_error)?;
                return Err(OAuthError::invalid_grant("the code was already used"));
            }
        }
        Ok(TokenResponse {
            access_token: access,
            token_type: "Bearer",
            expires_in: lt.access_token,
            refresh_token: refresh,
            id_token,
            scope: scope.to_string(),
        })
    }

    /// The token endpoint (RFC 6749 3.2): authenticate, check the grant type, run the grant.
    pub async fn token(&self, req: TokenRequest) -> Result<TokenResponse, OAuthError> {
        let client = self.authenticate(&req.client, true).await?;
        if !client.allows_grant(req.grant.grant_type()) {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                format!("this client may not use {}", req.grant.grant_type()),
            ));
        }
        match req.grant {
            GrantRequest::AuthorizationCode {
                code,
                redirect_uri,
                code_verifier,
            } => {
                code::exchange(
                    self,
                    &client,
                    &code,
                    redirect_uri.as_deref(),
                    code_verifier.as_deref(),
                )
                .await
            }
            GrantRequest::RefreshToken { refresh_token, scope } => {
                refresh::exchange(self, &client, &refresh_token, scope.as_deref()).await
            }
            GrantRequest::ClientCredentials { scope } => {
                client_credentials::exchange(self, &client, scope.as_deref()).await
            }
            GrantRequest::DeviceCode { device_code } => device::exchange(self, &client, &device_code).await,
        }
    }

    /// A valid access token: not expired, not revoked.
    pub async fn active_access_token(&self, token: &str) -> Option<Token> {
        let t = self.store.token(&storage_hash(token)).await.ok()??;
        (t.kind == TokenKind::Access && t.revoked_at.is_none() && t.expires_at > self.now).then_some(t)
    }

    /// The UserInfo response for a bearer token (OIDC Core 5.3).
    pub async fn userinfo(&self, bearer: &str) -> Result<serde_json::Value, OAuthError> {
        let invalid = |d: &str| OAuthError::new(ErrorCode::InvalidToken, d);
        let token = self
            .active_access_token(bearer)
            .await
            .ok_or_else(|| invalid("the access token is invalid or expired"))?;
        let scopes = Scopes::parse(&token.scope);
        let Some(user_id) = token.user_id.filter(|_| scopes.contains("openid")) else {
            return Err(invalid("this access token is not for userinfo"));
        };
        let user = self
            .store
            .user(&user_id)
            .await
            .map_err(server_error)?
            .ok_or_else(|| invalid("the account no longer exists"))?;
        let client = self
            .store
            .client(&token.client_id)
            .await
            .map_err(server_error)?
            .ok_or_else(|| invalid("the client no longer exists"))?;
        let mut claims = user_claims(&user, &scopes);
        // Claims the `claims` parameter asked for at UserInfo (OIDC Core 5.5).
        if let Some(requested) = self
            .store
            .grant(&token.grant_id)
            .await
            .map_err(server_error)?
            .and_then(|g| g.claims)
            .filter(|c| !c.userinfo.is_empty())
        {
            claims.extend(crate::claims::person_claims(&user, requested.userinfo.keys()));
        }
        claims.insert(
            "sub".into(),
            serde_json::json!(subject(self.pairwise_salt, &client, &user.id)),
        );
        Ok(serde_json::Value::Object(claims))
    }

    /// RFC 7009: revoking a refresh token revokes its grant; an access token, just itself. Unknown
    /// tokens, and tokens of other clients, are answered the same way (success) and left alone.
    pub async fn revoke(&self, q: TokenQuery) -> Result<(), OAuthError> {
        let client = self.authenticate(&q.client, true).await?;
        let hash = storage_hash(&q.token);
        if let Some(t) = self.store.token(&hash).await.map_err(server_error)?
            && t.client_id == client.client_id
        {
            match t.kind {
                TokenKind::Refresh => self.store.revoke_grant(&t.grant_id, self.now).await,
                TokenKind::Access => self.store.revoke_token(&hash, self.now).await,
            }
            .map_err(server_error)?;
        }
        Ok(())
    }

    /// RFC 7662 introspection, for confidential clients. A client learns about its own tokens
    /// only; clients marked as resource servers (by an administrator) about every token. Any other
    /// token is answered `{"active": false}`, as an unknown one would be (RFC 7662 2.2).
    pub async fn introspect(&self, q: TokenQuery) -> Result<serde_json::Value, OAuthError> {
        let caller = self.authenticate(&q.client, false).await?;
        let t = self
            .store
            .token(&storage_hash(&q.token))
            .await
            .map_err(server_error)?;
        let active = t.filter(|t| {
            t.revoked_at.is_none()
                && t.expires_at > self.now
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
            "iss": self.issuer,
        });
        let owner = self.store.client(&t.client_id).await.map_err(server_error)?;
        if let (Some(user), Some(owner), Some(obj)) = (t.user_id, owner, v.as_object_mut()) {
            obj.insert(
                "sub".into(),
                serde_json::json!(subject(self.pairwise_salt, &owner, &user)),
            );
        }
        Ok(v)
    }
}
