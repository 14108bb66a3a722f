//! The device authorization grant (RFC 8628): a device without a browser (a CLI, a TV, an SSH
//! session) asks for a code pair at the device authorization endpoint, shows the person the short
//! user code and the verification URI, and polls the token endpoint with the long device code while
//! the person signs in on another device and approves (or denies).
//!
//! - The device code is a 256-bit secret, stored hashed; the user code is eight letters from an
//!   alphabet without vowels or look-alikes (RFC 8628 6.1: 20^8, about 34 bits), stored hashed too.
//!   Its entry on the verification page is throttled per address (the server's job).
//! - Polling faster than the interval is answered `slow_down`, and the interval grows by 5 seconds
//!   (RFC 8628 3.5). A denied request answers `access_denied`, an expired one `expired_token`.
//! - An approved device code is exchanged once. A second exchange is a replay (the code leaked, or
//!   the device is confused): it is refused and the tokens issued from it are revoked, as for a
//!   replayed authorization code.

use facegate_core::secret::{random_token, random_u64, storage_hash};

use super::{Context, Grant, Storage, TokenResponse, server_error};
use crate::client::Client;
use crate::client_auth::Presented;
use crate::error::{ErrorCode, OAuthError};
use crate::scope::Scopes;
use crate::token::{DEVICE_CODE_GRANT, single_valued};

/// The user code's alphabet: consonants only (no words, no 0/O or 1/I look-alikes), RFC 8628 6.1.
pub const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Letters in a user code (shown as two groups of four: `BDFG-HJKL`).
pub const USER_CODE_LEN: usize = 8;
/// How much `slow_down` adds to the interval (RFC 8628 3.5).
pub const SLOW_DOWN_STEP: i64 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    /// Waiting for the person.
    Pending,
    /// The person approved; `grant_id` holds their authorization.
    Approved,
    /// The person declined.
    Denied,
    /// Exchanged for tokens (once).
    Used,
}

impl DeviceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Used => "used",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "approved" => Self::Approved,
            "denied" => Self::Denied,
            "used" => Self::Used,
            _ => return None,
        })
    }
}

/// A device authorization request as stored (secrets as hashes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAuthorization {
    pub device_code_hash: String,
    pub user_code_hash: String,
    pub client_id: String,
    pub scope: String,
    pub expires_at: i64,
    /// The polling interval this device must keep, in seconds (grows with `slow_down`).
    pub interval: i64,
    pub last_poll_at: Option<i64>,
    pub status: DeviceStatus,
    /// The person's authorization, once approved.
    pub grant_id: Option<String>,
    pub created_at: i64,
}

/// The device authorization endpoint's request (RFC 8628 3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRequest {
    pub client: Presented,
    pub scope: Option<String>,
}

impl DeviceRequest {
    /// Parses the form and Authorization header; repeated parameters are refused.
    pub fn parse(authorization: Option<&str>, pairs: &[(String, String)]) -> Result<Self, OAuthError> {
        let form = single_valued(pairs)?;
        let get = |k: &str| form.get(k).copied();
        Ok(DeviceRequest {
            client: crate::client_auth::presented(authorization, get)?,
            scope: get("scope").map(String::from),
        })
    }
}

/// The device authorization response (RFC 8628 3.2).
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeviceResponse {
    pub device_code: String,
    /// For display: `BDFG-HJKL`.
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: i64,
    pub interval: i64,
}

/// A new user code, `XXXX-XXXX`, from the system CSPRNG.
pub fn new_user_code() -> String {
    let mut n = random_u64();
    let mut s = String::with_capacity(USER_CODE_LEN + 1);
    for i in 0..USER_CODE_LEN {
        if i == USER_CODE_LEN / 2 {
            s.push('-');
        }
        let base = USER_CODE_ALPHABET.len() as u64;
        s.push(USER_CODE_ALPHABET[(n % base) as usize] as char);
        n /= base;
    }
    s
}

/// A user code as typed (any case, with or without the dash or spaces) in its canonical form, or
/// `None` if it cannot be one.
pub fn normalize_user_code(typed: &str) -> Option<String> {
    let s: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\t'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (s.len() == USER_CODE_LEN && s.bytes().all(|b| USER_CODE_ALPHABET.contains(&b))).then_some(s)
}

/// The storage hash of a user code as typed; `None` if it cannot be one.
pub fn user_code_hash(typed: &str) -> Option<String> {
    normalize_user_code(typed).map(|c| storage_hash(&format!("user_code:{c}")))
}

impl<S: Storage> Context<'_, S> {
    /// The device authorization endpoint (RFC 8628 3.1, 3.2). Clients authenticate as at the token
    /// endpoint; public clients name themselves with `client_id`.
    pub async fn device_authorization(&self, req: DeviceRequest) -> Result<DeviceResponse, OAuthError> {
        let client = self.authenticate(&req.client, true).await?;
        if !client.allows_grant(DEVICE_CODE_GRANT) {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "this client may not use the device authorization grant",
            ));
        }
        let allowed = client.allowed_scopes();
        let scope = match req.scope.as_deref() {
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
        let device_code = random_token(32);
        let lt = self.lifetimes;
        // A user code is unique among live requests; a collision (about 1 in 25 billion per live
        // request) is retried with a fresh code.
        for _ in 0..4 {
            let user_code = new_user_code();
            let Some(user_hash) = user_code_hash(&user_code) else {
                return Err(OAuthError::server_error());
            };
            let row = DeviceAuthorization {
                device_code_hash: storage_hash(&device_code),
                user_code_hash: user_hash,
                client_id: client.client_id.clone(),
                scope: scope.to_string(),
                expires_at: self.now + lt.device_code,
                interval: lt.device_interval,
                last_poll_at: None,
                status: DeviceStatus::Pending,
                grant_id: None,
                created_at: self.now,
            };
            if self
                .store
                .create_device_authorization(&row)
                .await
                .map_err(server_error)?
            {
                let verification_uri = format!("{}/device", self.issuer);
                return Ok(DeviceResponse {
                    verification_uri_complete: format!("{verification_uri}?user_code={user_code}"),
                    verification_uri,
                    device_code,
                    user_code,
                    expires_in: lt.device_code,
                    interval: lt.device_interval,
                });
            }
        }
        Err(OAuthError::server_error())
    }

    /// The live (pending, unexpired) device request a user code names, with its client.
    pub async fn device_for_user_code(
        &self,
        typed: &str,
    ) -> Result<Option<(DeviceAuthorization, Client)>, OAuthError> {
        let Some(hash) = user_code_hash(typed) else {
            return Ok(None);
        };
        let Some(d) = self
            .store
            .device_by_user_code(&hash)
            .await
            .map_err(server_error)?
            .filter(|d| d.status == DeviceStatus::Pending && d.expires_at > self.now)
        else {
            return Ok(None);
        };
        Ok(self
            .store
            .client(&d.client_id)
            .await
            .map_err(server_error)?
            .map(|c| (d, c)))
    }

    /// Records the person's answer to a pending device request: approval with their `grant`
    /// (stored with it), or denial (`None`). False if the request is no longer pending.
    pub async fn device_decide(
        &self,
        d: &DeviceAuthorization,
        grant: Option<&Grant>,
    ) -> Result<bool, OAuthError> {
        self.store
            .decide_device(&d.user_code_hash, grant, self.now)
            .await
            .map_err(server_error)
    }
}

/// The token endpoint's device_code grant (RFC 8628 3.4, 3.5).
pub(super) async fn exchange<S: Storage>(
    ctx: &Context<'_, S>,
    client: &Client,
    device_code: &str,
) -> Result<TokenResponse, OAuthError> {
    let t = ctx.now;
    let hash = storage_hash(device_code);
    let d = ctx
        .store
        .device(&hash)
        .await
        .map_err(server_error)?
        .filter(|d| d.client_id == client.client_id)
        .ok_or_else(|| OAuthError::invalid_grant("the device code is invalid"))?;
    match d.status {
        DeviceStatus::Used => {
            tracing::warn!(client_id = %client.client_id, "device code replayed; revoking its grant");
            if let Some(g) = &d.grant_id {
                ctx.store.revoke_grant(g, t).await.map_err(server_error)?;
            }
            return Err(OAuthError::invalid_grant("the device code was already used"));
        }
        DeviceStatus::Denied => {
            return Err(OAuthError::new(
                ErrorCode::AccessDenied,
                "the person declined the request",
            ));
        }
        _ if d.expires_at <= t => {
            return Err(OAuthError::new(
                ErrorCode::ExpiredToken,
                "the device code has expired: start again",
            ));
        }
        DeviceStatus::Pending => {
            let too_soon = d.last_poll_at.is_some_and(|last| t - last < d.interval);
            let interval = if too_soon {
                d.interval + SLOW_DOWN_STEP
            } else {
                d.interval
            };
            ctx.store
                .device_polled(&hash, t, interval)
                .await
                .map_err(server_error)?;
            return Err(if too_soon {
                OAuthError::new(
                    ErrorCode::SlowDown,
                    format!("polling too fast: wait {interval} seconds between requests"),
                )
            } else {
                OAuthError::new(ErrorCode::AuthorizationPending, "the person has not answered yet")
            });
        }
        DeviceStatus::Approved => {}
    }
    if !ctx.store.use_device(&hash, t).await.map_err(server_error)? {
        return Err(OAuthError::invalid_grant("the device code was already used"));
    }
    let grant = match &d.grant_id {
        Some(g) => ctx.store.grant(g).await.map_err(server_error)?,
        None => None,
    }
    .filter(|g| g.revoked_at.is_none() && g.client_id == client.client_id)
    .ok_or_else(|| OAuthError::invalid_grant("the device code is invalid"))?;
    let scope = grant.scope.clone();
    ctx.issue_tokens(client, &grant, false, &scope, true, None).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_short_unambiguous_and_forgiving_to_type() {
        for _ in 0..200 {
            let c = new_user_code();
            assert_eq!(c.len(), 9, "{c}");
            assert_eq!(&c[4..5], "-");
            let n = normalize_user_code(&c).unwrap();
            assert_eq!(normalize_user_code(&n.to_lowercase()), Some(n.clone()));
            assert_eq!(
                normalize_user_code(&format!(" {} {} ", &n[..4], &n[4..])),
                Some(n)
            );
        }
        for bad in ["", "BCDF", "BCDFGHJKL", "ABCDEFGH", "BCDF-GHJ0", "BCDFGHJ\u{e9}"] {
            assert_eq!(normalize_user_code(bad), None, "{bad}");
        }
        assert_ne!(new_user_code(), new_user_code());
    }
}
