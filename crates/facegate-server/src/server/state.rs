//! Shared state: settings, the store, the signing keys (reloaded in the background so a rotation by
//! the CLI reaches a running server), throttles, and the assertion replay cache.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use facegate_core::throttle::{Throttle, ThrottlePolicy};
use facegate_oidc::keys::KeySet;
use facegate_store::Store;

use super::settings::Settings;

#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
pub struct Inner {
    pub settings: Settings,
    pub store: Store,
    /// The face pipeline and match policy; `None` when face login is off or its models are missing.
    pub face: Option<Arc<super::face::FaceService>>,
    keys: RwLock<Arc<KeySet>>,
    /// Discovery and JWKS, serialised once per key set (they change only when keys do).
    documents: RwLock<Arc<Documents>>,
    /// Failed logins per client address, device, and account at an address or device.
    pub login_throttle: Throttle,
    /// Failed logins per account across every address (slows, never locks).
    pub account_throttle: Throttle,
    /// Argon2 runs here, bounded.
    pub password_pool: super::login::PasswordPool,
    jti: Mutex<HashMap<String, i64>>,
    /// Server secret mixed into pairwise subject identifiers; created once, kept in the database.
    pub pairwise_salt: super::settings::Secret,
    /// Live-guidance requests per client address in the current second (a simple rate limit).
    guidance_counts: Mutex<(i64, HashMap<String, u32>)>,
    /// Face sign-ups in the current hour (site-wide).
    signups: Mutex<(i64, u32)>,
    /// Admin page sessions (hashes), with their expiry; in memory, per instance.
    admin_sessions: Mutex<HashMap<String, i64>>,
    /// The face API's collections and search indexes.
    pub face_api: super::face_api::FaceApi,
    /// Per-client rate limits of the /v1 APIs.
    pub api_limiter: super::api_auth::RateLimiter,
}

/// The public documents, ready to send.
#[derive(Debug)]
pub struct Documents {
    pub discovery: axum::body::Bytes,
    pub jwks: axum::body::Bytes,
}

impl Documents {
    fn new(settings: &Settings, keys: &KeySet) -> Documents {
        let discovery = facegate_oidc::discovery::metadata(
            &settings.issuer,
            &keys.algorithms(),
            settings.registration_token.is_some(),
        );
        Documents {
            discovery: serde_json::to_vec(&discovery).unwrap_or_default().into(),
            jwks: serde_json::to_vec(&keys.jwks()).unwrap_or_default().into(),
        }
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// How long a retired signing key stays published: the longest lifetime of anything it signed.
pub fn key_grace(settings: &Settings) -> i64 {
    settings.lifetimes.id_token.max(settings.lifetimes.access_token) + 300
}

impl AppState {
    pub async fn new(settings: Settings, store: Store) -> anyhow::Result<AppState> {
        super::keys::ensure_keys(&store).await?;
        let keys = super::keys::load(&store, key_grace(&settings)).await?;
        let salt = store
            .setting_or_insert("pairwise_salt", &facegate_core::secret::random_token(32))
            .await?;
        // Fail closed: with face login on, its models must load; a server that silently ran without
        // them would skip the second factor or the liveness check the operator asked for.
        let face = if settings.face.enabled {
            let face_settings = settings.face.clone();
            match tokio::task::spawn_blocking(move || super::face::FaceService::load(face_settings)).await? {
                Ok(f) => Some(Arc::new(f)),
                Err(e) => anyhow::bail!(
                    "face login cannot start: {e}. Run `facegate models fetch`, or set FACEGATE_FACE=off to run without face login"
                ),
            }
        } else {
            if settings.face.second_factor {
                anyhow::bail!("FACEGATE_FACE_2FA needs face login, but FACEGATE_FACE=off");
            }
            None
        };
        let face_api = super::face_api::FaceApi::load(
            &store,
            &settings.face.pack,
            settings.api.index_exact_max,
            settings.api.index_nprobe,
        )
        .await?;
        let documents = RwLock::new(Arc::new(Documents::new(&settings, &keys)));
        Ok(AppState(Arc::new(Inner {
            documents,
            face_api,
            api_limiter: Default::default(),
            face,
            pairwise_salt: super::settings::Secret::new(salt),
            settings,
            store,
            keys: RwLock::new(Arc::new(keys)),
            login_throttle: Throttle::new(ThrottlePolicy::default()),
            account_throttle: Throttle::new(ThrottlePolicy::account_wide()),
            password_pool: super::login::PasswordPool::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
                256,
            ),
            jti: Mutex::new(HashMap::new()),
            admin_sessions: Mutex::new(HashMap::new()),
            signups: Mutex::new((0, 0)),
            guidance_counts: Mutex::new((0, HashMap::new())),
        })))
    }

    /// One more face sign-up this hour, if fewer than `per_hour` were made.
    pub fn allow_signup(&self, per_hour: u32) -> bool {
        let Ok(mut s) = self.0.signups.lock() else {
            return false;
        };
        let hour = super::now() / 3600;
        if s.0 != hour {
            *s = (hour, 0);
        }
        if s.1 >= per_hour {
            return false;
        }
        s.1 += 1;
        true
    }

    /// Counts a login attempt on every key before it is verified (see `Throttle::begin`).
    pub fn begin_attempt(&self, keys: &[String]) -> Result<(), Duration> {
        let now = std::time::Instant::now();
        let (account, other): (Vec<String>, Vec<String>) =
            keys.iter().cloned().partition(|k| k.starts_with("acct:"));
        self.login_throttle.begin(&other, now)?;
        if let Err(w) = self.account_throttle.begin(&account, now) {
            for k in &other {
                self.login_throttle.refund(k, now);
            }
            return Err(w);
        }
        Ok(())
    }

    /// Settles an attempt begun with `begin_attempt`: a success clears the account's count at this
    /// address or device and gives back the others'; a failure keeps what was counted.
    pub fn end_attempt(&self, keys: &[String], ok: bool) {
        if !ok {
            return;
        }
        let now = std::time::Instant::now();
        for k in keys {
            if k.starts_with("acct:") {
                self.account_throttle.refund(k, now);
            } else if k.contains('|') {
                self.login_throttle.succeed(k);
            } else {
                self.login_throttle.refund(k, now);
            }
        }
    }

    /// Gives back what `begin_attempt` counted, without clearing anything (an attempt refused for a
    /// reason already counted elsewhere, such as a failed liveness check).
    pub fn refund_attempt(&self, keys: &[String]) {
        let now = std::time::Instant::now();
        for k in keys {
            if k.starts_with("acct:") {
                self.account_throttle.refund(k, now);
            } else {
                self.login_throttle.refund(k, now);
            }
        }
    }

    /// Records an audit event; a failure to record is logged, not fatal to the request.
    pub async fn audit(
        &self,
        kind: &str,
        user: Option<&str>,
        ip: Option<&str>,
        result: &str,
        detail: Option<&str>,
    ) {
        if let Err(e) = self
            .store
            .audit(kind, user, ip, result, detail, super::now())
            .await
        {
            tracing::error!("audit event {kind} not recorded: {e}");
        }
    }

    pub fn keys(&self) -> Arc<KeySet> {
        self.0.keys.read().map(|k| k.clone()).unwrap_or_default()
    }

    /// Discovery and JWKS as served.
    pub fn documents(&self) -> Arc<Documents> {
        self.0
            .documents
            .read()
            .map(|d| d.clone())
            .unwrap_or_else(|_| Arc::new(Documents::new(&self.settings, &self.keys())))
    }

    pub async fn reload_keys(&self) -> anyhow::Result<()> {
        let keys = super::keys::load(&self.store, key_grace(&self.settings)).await?;
        let documents = Arc::new(Documents::new(&self.settings, &keys));
        if let Ok(mut k) = self.0.keys.write() {
            *k = Arc::new(keys);
        }
        if let Ok(mut d) = self.0.documents.write() {
            *d = documents;
        }
        Ok(())
    }

    /// Records a client assertion id; false if it was seen before (a replay).
    pub fn remember_jti(&self, jti: &str, exp: i64) -> bool {
        let Ok(mut seen) = self.0.jti.lock() else {
            return false;
        };
        let t = super::now();
        seen.retain(|_, e| *e + 60 > t);
        seen.insert(jti.to_string(), exp).is_none()
    }

    /// At most `per_second` live-guidance checks per address each second.
    pub fn allow_guidance(&self, ip: &str, per_second: u32) -> bool {
        let Ok(mut g) = self.0.guidance_counts.lock() else {
            return false;
        };
        let t = super::now();
        if g.0 != t {
            *g = (t, HashMap::new());
        }
        let n = g.1.entry(ip.to_string()).or_insert(0);
        *n += 1;
        *n <= per_second
    }

    pub fn add_admin_session(&self, hash: String) {
        if let Ok(mut m) = self.0.admin_sessions.lock() {
            let t = super::now();
            m.retain(|_, exp| *exp > t);
            m.insert(hash, t + 8 * 3600);
        }
    }

    pub fn admin_session_valid(&self, hash: &str) -> bool {
        self.0
            .admin_sessions
            .lock()
            .is_ok_and(|m| m.get(hash).is_some_and(|exp| *exp > super::now()))
    }

    pub fn remove_admin_session(&self, hash: &str) {
        if let Ok(mut m) = self.0.admin_sessions.lock() {
            m.remove(hash);
        }
    }

    /// Every 30 s: reload keys (rotation by the CLI), purge expired codes, tokens and sessions.
    pub fn spawn_housekeeping(&self) {
        let state = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            loop {
                tick.tick().await;
                if let Err(e) = state.reload_keys().await {
                    tracing::error!("reloading signing keys: {e:#}");
                }
                if let Err(e) = state.store.purge_expired(super::now()).await {
                    tracing::error!("purging expired rows: {e}");
                }
            }
        });
    }
}
