//! The login core (`facegate_core::login`) over HTTP: a pending login is a `LoginTransaction` bound
//! to what started it (an authorization request, or an account action such as enrolment), kept
//! server-side under a random id that the browser carries as `req`. After every factor the handler
//! calls [`advance`]; every authorization response goes through [`evaluate`]. Nothing else decides
//! whether a login is enough.
//!
//! A session is only ever made of a login that met the site's policy, and it holds its factors. The
//! authorization endpoint reads the session's factors, not the transaction's, so knowing a `req` id
//! without the session cookie gets nobody anywhere.

use axum::http::{HeaderMap, StatusCode};
use facegate_core::login::{
    self, Account, Acr, Decision, FaceRole, Factor, LoginTransaction, Requested, SitePolicy, Step,
};
use facegate_core::secret::{random_token, storage_hash};
use facegate_oidc::authorize::AuthRequest;
use facegate_store::StoredSession;
use serde::{Deserialize, Serialize};

use super::error::AppError;
use super::face::Liveness;
use super::provider::Session;
use super::state::AppState;
use super::{cookies, now};

/// A login in progress, stored as JSON in `auth_requests` under its id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Pending {
    /// The authorization request this login is for; `None` for an account action.
    #[serde(default)]
    pub(crate) req: Option<AuthRequest>,
    #[serde(default)]
    pub(crate) txn: LoginTransaction,
    /// Account actions: the local path to go to when done.
    #[serde(default)]
    pub(crate) return_to: Option<String>,
    /// Account actions that need a fresh login with the account's strongest factor (enrolment).
    #[serde(default)]
    pub(crate) reauth: bool,
    /// A device authorization (RFC 8628) being approved: the client whose login policy applies
    /// (its `facegate client policy`, or by default `urn:facegate:face:live`).
    #[serde(default)]
    pub(crate) device_client: Option<String>,
    pub(crate) created_at: i64,
}

impl Pending {
    pub(crate) fn for_request(req: AuthRequest) -> Pending {
        let t = now();
        Pending {
            req: Some(req),
            txn: LoginTransaction::new(t),
            return_to: None,
            reauth: false,
            device_client: None,
            created_at: t,
        }
    }

    pub(crate) fn for_account(return_to: &str) -> Pending {
        let t = now();
        Pending {
            req: None,
            txn: LoginTransaction::new(t),
            return_to: Some(return_to.to_string()),
            reauth: false,
            device_client: None,
            created_at: t,
        }
    }

    /// Approving a device's request for `client_id`, then back to `return_to` (the device page).
    pub(crate) fn for_device(client_id: &str, return_to: &str) -> Pending {
        Pending {
            device_client: Some(client_id.to_string()),
            ..Pending::for_account(return_to)
        }
    }

    pub(crate) fn redirect_uri(&self) -> Option<&str> {
        self.req.as_ref().map(|r| r.target.redirect_uri.as_str())
    }
}

/// The site's policy, from the settings.
pub(crate) fn site_policy(state: &AppState) -> SitePolicy {
    let f = &state.settings.face;
    SitePolicy {
        face: if state.face.is_none() {
            FaceRole::Off
        } else {
            f.role
        },
        face_second_factor: f.second_factor,
        liveness_required: f.liveness == Liveness::Required,
    }
}

pub(crate) async fn save(state: &AppState, id: &str, p: &Pending) -> Result<(), AppError> {
    let json = serde_json::to_string(p).map_err(|e| AppError::Internal(e.to_string()))?;
    state.store.update_auth_request(id, &json).await?;
    Ok(())
}

pub(crate) async fn create(state: &AppState, p: &Pending) -> Result<String, AppError> {
    let id = random_token(24);
    let json = serde_json::to_string(p).map_err(|e| AppError::Internal(e.to_string()))?;
    state
        .store
        .put_auth_request(&id, &json, now() + state.settings.lifetimes.auth_request)
        .await?;
    Ok(id)
}

async fn account(state: &AppState, user_id: &str) -> Result<Option<Account>, AppError> {
    let facts = state
        .store
        .account_facts(user_id, &state.settings.face.pack)
        .await?;
    Ok(facts.map(|(has_password, faces)| Account {
        has_password,
        has_face: faces > 0 && state.face.is_some(),
    }))
}

/// The strongest class this account can show: what re-authentication for account changes asks.
fn strongest(site: &SitePolicy, account: Account) -> Acr {
    if account.has_face && site.face != FaceRole::Off {
        if site.liveness_required {
            Acr::FaceLive
        } else {
            Acr::Face
        }
    } else {
        Acr::Pwd
    }
}

/// What the policy says about `factors` (one account's) for this pending login.
pub(crate) async fn decide_for(
    state: &AppState,
    pending: &Pending,
    user_id: Option<&str>,
    factors: &[Factor],
) -> Result<Decision, AppError> {
    let site = site_policy(state);
    let account = match user_id {
        Some(u) => account(state, u).await?,
        None => None,
    };
    let (requested, client_acr) = match &pending.req {
        Some(r) => {
            let client_acr = state
                .store
                .client_acr(&r.client_id)
                .await?
                .and_then(|a| Acr::parse(&a));
            (
                Requested {
                    acr_values: r
                        .acr_values
                        .as_deref()
                        .unwrap_or("")
                        .split_whitespace()
                        .map(String::from)
                        .collect(),
                    // Essential with no value named asks for nothing in particular.
                    essential_acr: r.essential_acr().filter(|v| !v.is_empty()),
                    max_age: r.max_age,
                    prompt_login: r.prompt_login,
                    prompt_none: r.prompt_none,
                },
                client_acr,
            )
        }
        None => (
            Requested {
                prompt_login: pending.reauth,
                essential_acr: match (pending.reauth, account) {
                    (true, Some(a)) => Some(vec![strongest(&site, a).as_str().to_string()]),
                    _ => None,
                },
                ..Default::default()
            },
            match &pending.device_client {
                // A device's request is approved with the client's policy, by default face with
                // liveness: whoever approves hands a session on another machine its tokens.
                Some(c) => Some(
                    state
                        .store
                        .client_acr(c)
                        .await?
                        .and_then(|a| Acr::parse(&a))
                        .unwrap_or(Acr::FaceLive),
                ),
                None => None,
            },
        ),
    };
    Ok(login::decide(&login::Context {
        site: &site,
        client_acr,
        requested: &requested,
        account,
        factors,
        this_login: &pending.txn.factors,
        now: now(),
    }))
}

/// The session's view of a pending login: the decision over the session's factors, for the account
/// the login is about.
pub(crate) async fn evaluate(
    state: &AppState,
    pending: &Pending,
    session: Option<&Session>,
) -> Result<Decision, AppError> {
    // A session of another account than the one this login is about does not count.
    let session = session.filter(|s| pending.txn.user_id.as_ref().is_none_or(|u| *u == s.user_id));
    let (user, factors) = match session {
        Some(s) => (Some(s.user_id.as_str()), s.factors.clone()),
        None => (None, Vec::new()),
    };
    decide_for(state, pending, user, &factors).await
}

/// Where the browser goes next after a factor was recorded in `pending` (already saved or not):
/// the next step's page, or, once the policy is met, a new session (its cookie) and the request's
/// resumption or the account action's page.
pub(crate) async fn advance(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    mut pending: Pending,
) -> Result<(String, Option<String>), AppError> {
    let session = current_session(state, headers).await;
    let user = pending.txn.user_id.clone();
    // A disabled account gets no session, whatever factors it showed.
    if let Some(u) = &user
        && state.store.disabled_at(u).await?.is_some()
    {
        state.store.delete_auth_request(id).await?;
        state
            .audit(
                facegate_core::audit::Event::new(
                    facegate_core::audit::Kind::Login,
                    facegate_core::audit::Outcome::Refused,
                )
                .user(Some(u))
                .detail("account disabled"),
            )
            .await;
        return Ok(("/account/disabled".into(), None));
    }
    // The session's factors count when it is the same person's.
    let mut factors: Vec<Factor> = session
        .as_ref()
        .filter(|(s, _)| user.as_ref().is_none_or(|u| *u == s.user_id))
        .map(|(s, _)| s.factors.clone())
        .unwrap_or_default();
    for f in &pending.txn.factors {
        if !factors.contains(f) {
            factors.push(f.clone());
        }
    }
    let decision = decide_for(state, &pending, user.as_deref(), &factors).await?;
    let resume = match &pending.req {
        Some(_) => format!("/authorize/resume?req={id}"),
        None => pending.return_to.clone().unwrap_or_else(|| "/account".into()),
    };
    match decision {
        Decision::Satisfied(outcome) => {
            let user =
                user.ok_or_else(|| AppError::Internal("a satisfied login without an account".into()))?;
            if let Some((_, old)) = &session {
                state.store.delete_session(old).await?;
            }
            let cookie = create_session(state, headers, &user, factors, &outcome).await?;
            if pending.req.is_none() {
                state.store.delete_auth_request(id).await?;
            } else {
                save(state, id, &pending).await?;
            }
            Ok((resume, Some(cookie)))
        }
        Decision::Owed(step) => {
            save(state, id, &pending).await?;
            let _ = &mut pending;
            Ok((step_url(step, id), None))
        }
        // The authorization endpoint tells the client why. The person is still signed in to
        // facegate if the site's own policy is met: only this request cannot be served.
        Decision::Refused(_) => {
            save(state, id, &pending).await?;
            let site_only = Pending::for_account("/account");
            let mut cookie = None;
            if let (Some(user), Decision::Satisfied(outcome)) = (
                &user,
                decide_for(state, &site_only, user.as_deref(), &factors).await?,
            ) {
                if let Some((_, old)) = &session {
                    state.store.delete_session(old).await?;
                }
                cookie = Some(create_session(state, headers, user, factors, &outcome).await?);
            }
            Ok((resume, cookie))
        }
    }
}

/// The page of a step.
pub(crate) fn step_url(step: Step, id: &str) -> String {
    match step {
        Step::FirstFactor | Step::Password => format!("/login?req={id}"),
        Step::Face { .. } => format!("/login/face?req={id}"),
    }
}

async fn create_session(
    state: &AppState,
    headers: &HeaderMap,
    user_id: &str,
    factors: Vec<Factor>,
    outcome: &login::Outcome,
) -> Result<String, AppError> {
    let raw = random_token(32);
    let t = now();
    let agent = headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    state
        .store
        .create_session_with(
            &StoredSession {
                id_hash: storage_hash(&raw),
                user_id: user_id.to_string(),
                auth_time: outcome.auth_time,
                amr: outcome.amr.clone(),
                acr: Some(outcome.acr.as_str().to_string()),
                expires_at: t + state.settings.lifetimes.session,
                factors,
            },
            t,
            None,
            agent,
        )
        .await?;
    let secure = state.settings.secure_cookies();
    Ok(cookies::set(
        &cookies::name(cookies::SESSION, secure),
        &raw,
        None,
        secure,
        "Lax",
    ))
}

/// Loads a pending login, or an error page when it is gone.
pub(crate) async fn load(state: &AppState, id: &str) -> Result<Pending, AppError> {
    let expired = || {
        AppError::Page(StatusCode::BAD_REQUEST, "This sign-in request has expired or was already used. Go back to the application and start again.".into())
    };
    let json = state.store.auth_request(id, now()).await?.ok_or_else(expired)?;
    serde_json::from_str(&json).map_err(|_| expired())
}

/// Has this session signed in recently enough, with the account's strongest factor, to change
/// what signs it in (enrolment)? `window` in seconds. The strongest factor is judged by the faces the
/// account had when the session signed in: the faces a person adds right after signing in (three
/// shots in a row) do not make them sign in again, while a session older than the faces must.
pub(crate) async fn recently_strong(
    state: &AppState,
    session: &Session,
    window: i64,
) -> Result<bool, AppError> {
    let site = site_policy(state);
    let Some(account) = account(state, &session.user_id).await? else {
        return Ok(false);
    };
    let t = now();
    let fresh: Vec<&Factor> = session.factors.iter().filter(|f| t - f.at <= window).collect();
    let Some(signed_in) = fresh.iter().map(|f| f.at).max() else {
        return Ok(false);
    };
    let pack = &state.settings.face.pack;
    let faces_then = state
        .store
        .faces_of(&session.user_id)
        .await?
        .iter()
        .filter(|f| &f.pack == pack && f.created_at < signed_in)
        .count();
    let then = Account {
        has_face: account.has_face && faces_then > 0,
        ..account
    };
    Ok(strongest(&site, then).satisfied_by(&fresh))
}

/// The login page's device cookie, as recorded with a factor (hashed, shortened).
pub(crate) fn device_of(state: &AppState, headers: &HeaderMap) -> Option<String> {
    cookies::get(headers, &cookies::name(DEVICE, state.settings.secure_cookies()))
        .filter(|d| !d.is_empty())
        .map(|d| storage_hash(&d).chars().take(16).collect())
}

/// The device cookie's name (set by the login pages).
pub(crate) const DEVICE: &str = "fg_device";

/// Argon2 verification on the server's bounded pool (`password_pool.rs`).
pub(crate) async fn verify_password(
    state: &AppState,
    password: String,
    hash: Option<String>,
) -> Result<bool, u64> {
    state.password_pool.verify(password, hash).await
}

/// The signed-in session of this browser (its cookie), with the cookie's storage hash.
pub(crate) async fn current_session(state: &AppState, headers: &HeaderMap) -> Option<(Session, String)> {
    let raw = cookies::get(
        headers,
        &cookies::name(cookies::SESSION, state.settings.secure_cookies()),
    )?;
    let hash = storage_hash(&raw);
    let s = state.store.session(&hash, now()).await.ok()??;
    Some((Session::from_stored(s), hash))
}
