//! Shared state: settings, the store, the signing keys (reloaded in the background so a rotation by
//! the CLI reaches a running server), throttles, and the assertion replay cache.

use std::ops::Deref;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use facegate_core::throttle::{AttemptGuard, LoginGuard, RateLimiter, WindowCounter};
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
    pub face: Option<Arc<super::face::Faces>>,
    keys: RwLock<Arc<KeySet>>,
    /// Discovery and JWKS, serialised once per key set (they change only when keys do).
    documents: RwLock<Arc<Documents>>,
    /// Failed logins per client address, device, and account at an address or device (locks), and
    /// per account across every address (slows, never locks).
    pub login_guard: Guard,
    /// Argon2 runs here, bounded.
    pub password_pool: super::password_pool::PasswordPool,
    /// Server secret mixed into pairwise subject identifiers; created once, kept in the database.
    pub pairwise_salt: super::settings::Secret,
    /// Live-guidance requests per client address in the current second (a simple rate limit).
    guidance_counts: WindowCounter,
    /// The face API's collections and search indexes.
    pub face_api: super::face_api::FaceApi,
    /// Per-client rate limits of the /v1 APIs.
    pub api_limiter: RateLimiter,
    /// Where account mail goes (SMTP, or the outbox folder).
    pub mailer: Arc<super::mail::Mailer>,
}

/// The login throttle: in this process on SQLite (one instance), in the database on PostgreSQL, so a
/// lockout holds on every instance. `memory` also serves the admin page's own throttle.
#[derive(Debug)]
pub struct Guard {
    pub memory: LoginGuard,
    shared: Option<facegate_store::SharedGuard>,
}

impl AttemptGuard for Guard {
    async fn begin(&self, keys: &[String]) -> Result<(), Duration> {
        match &self.shared {
            Some(s) => s.begin(keys).await,
            None => self.memory.begin(keys),
        }
    }
    async fn end(&self, keys: &[String], ok: bool) {
        match &self.shared {
            Some(s) => s.end(keys, ok).await,
            None => self.memory.end(keys, ok),
        }
    }
    async fn refund(&self, keys: &[String]) {
        match &self.shared {
            Some(s) => s.refund(keys).await,
            None => self.memory.refund(keys),
        }
    }
    async fn waiting(&self, keys: &[String]) -> Option<Duration> {
        match &self.shared {
            Some(s) => s.waiting(keys).await,
            None => self.memory.waiting(keys),
        }
    }
    async fn fail(&self, keys: &[String]) {
        match &self.shared {
            Some(s) => s.fail(keys).await,
            None => self.memory.fail(keys),
        }
    }
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
            match tokio::task::spawn_blocking(move || super::face::Faces::load(face_settings)).await? {
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
        let face_api = super::face_api::load(
            &store,
            &settings.face.pack,
            settings.api.index_exact_max,
            settings.api.index_nprobe,
        )
        .await?;
        let documents = RwLock::new(Arc::new(Documents::new(&settings, &keys)));
        let mailer = Arc::new(super::mail::Mailer::new(&settings)?);
        let shared_guard = (store.backend() == facegate_store::Backend::Postgres)
            .then(|| facegate_store::SharedGuard::new(store.clone()));
        Ok(AppState(Arc::new(Inner {
            mailer,
            documents,
            face_api,
            api_limiter: Default::default(),
            face,
            pairwise_salt: super::settings::Secret::new(salt),
            settings,
            store,
            keys: RwLock::new(Arc::new(keys)),
            login_guard: Guard {
                memory: LoginGuard::default(),
                shared: shared_guard,
            },
            password_pool: super::password_pool::PasswordPool::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
                256,
            ),
            guidance_counts: WindowCounter::default(),
        })))
    }

    /// Records an audit event; a failure to record is logged, not fatal to the request.
    pub async fn audit(&self, event: facegate_core::audit::Event) {
        facegate_core::audit::AuditLog::record(&self.store, event).await
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

    /// At most `per_second` live-guidance checks per address each second.
    pub fn allow_guidance(&self, ip: &str, per_second: u32) -> bool {
        self.0.guidance_counts.allow(ip, per_second, 1, super::now())
    }

    /// Admin page sessions live in the database, so a session opened through one instance holds
    /// on every instance (and a restart does not sign the operator out). Eight hours.
    pub async fn add_admin_session(&self, hash: &str) -> Result<(), facegate_store::StoreError> {
        self.store.add_admin_session(hash, super::now() + 8 * 3600).await
    }

    pub async fn admin_session_valid(&self, hash: &str) -> bool {
        match self.store.admin_session_valid(hash, super::now()).await {
            Ok(v) => v,
            Err(e) => {
                tracing::error!("reading an admin session: {e}");
                false
            }
        }
    }

    pub async fn remove_admin_session(&self, hash: &str) {
        if let Err(e) = self.store.remove_admin_session(hash).await {
            tracing::error!("ending an admin session: {e}");
        }
    }

    /// Takes one request from an API client's per-second bucket: in this process on SQLite (one
    /// instance, no write per request), in the database on PostgreSQL, so a client gets its rate
    /// once however many instances serve it. `Err(seconds)` to wait.
    pub async fn take_api_token(&self, client_id: &str, rate: f64, burst: u32) -> Result<(), u64> {
        if self.store.backend() == facegate_store::Backend::Sqlite {
            return self.api_limiter.take(client_id, rate, burst);
        }
        match self
            .store
            .take_token(&format!("api:{client_id}"), rate, burst, facegate_store::now_ms())
            .await
        {
            Ok(facegate_store::Bucket::Taken) => Ok(()),
            Ok(facegate_store::Bucket::Wait(s)) => Err(s),
            Err(e) => {
                // Fail closed: no request without its count.
                tracing::error!("API rate bucket: {e}");
                Err(1)
            }
        }
    }

    /// On PostgreSQL (several instances): follows the collection changes every instance announces
    /// and applies them to this instance's search indexes; on (re)connecting, rebuilds them from the
    /// database first, so nothing missed while not listening is lost.
    pub fn spawn_index_sync(&self) {
        let state = self.clone();
        tokio::spawn(async move {
            loop {
                let mut watch = match state.store.watch_collections().await {
                    Ok(Some(w)) => w,
                    Ok(None) => return,
                    Err(e) => {
                        tracing::warn!("face API index sync: cannot listen ({e}); retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                state.resync_indexes(None).await;
                loop {
                    match watch.next().await {
                        Ok(change) => state.apply_change(change).await,
                        Err(e) => {
                            tracing::warn!("face API index sync: {e}; reconnecting");
                            break;
                        }
                    }
                }
            }
        });
    }

    /// On PostgreSQL with liveness on: every liveness frame this instance remembers is announced
    /// to the others (batched, through `pg_notify`), and the frames they announce are remembered
    /// here, so a recording replayed to one instance after another saw it is refused. Announcing
    /// never holds up a frame: when the batch queue is full a frame is not announced (counted in
    /// the log). Frames announced while an instance was not listening are not seen by it.
    pub fn spawn_frame_sync(&self) {
        if self.store.backend() != facegate_store::Backend::Postgres {
            return;
        }
        let Some(face) = self.face.clone() else {
            return;
        };
        let instance = facegate_core::secret::random_token(8);
        let (tx, mut rx) = tokio::sync::mpsc::channel::<(u64, [u64; 4])>(4096);
        face.liveness.set_frame_hook(move |tag, hash| {
            if tx.try_send((tag, hash)).is_err() {
                tracing::warn!("liveness frame memory: announcement queue full, a frame not shared");
            }
        });
        let store = self.store.clone();
        let me = instance.clone();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while let Ok(f) = rx.try_recv() {
                    batch.push(f);
                }
                if let Err(e) = store.announce_frames(&me, &batch).await {
                    tracing::warn!("liveness frame memory: announcing: {e}");
                }
            }
        });
        let store = self.store.clone();
        tokio::spawn(async move {
            loop {
                let mut watch = match store.watch_frames().await {
                    Ok(Some(w)) => w,
                    Ok(None) => return,
                    Err(e) => {
                        tracing::warn!("liveness frame memory: cannot listen ({e}); retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                loop {
                    match watch.next().await {
                        Ok(frames) => {
                            for (from, tag, hash) in frames {
                                if from != instance {
                                    face.liveness.remember_remote(tag, hash);
                                }
                            }
                        }
                        Err(e) => {
                            tracing::warn!("liveness frame memory: {e}; reconnecting");
                            break;
                        }
                    }
                }
            }
        });
    }

    async fn resync_indexes(&self, collection: Option<&str>) {
        let result = match collection {
            Some(c) => match self.store.collection(c).await {
                Ok(Some(_)) => self
                    .store
                    .api_faces_in(c)
                    .await
                    .map(|faces| self.face_api.rebuild_collection(c, faces)),
                Ok(None) => {
                    self.face_api.forget_collection(c);
                    Ok(())
                }
                Err(e) => Err(e),
            },
            None => super::face_api::load(
                &self.store,
                &self.settings.face.pack,
                self.settings.api.index_exact_max,
                self.settings.api.index_nprobe,
            )
            .await
            .map(|fresh| self.face_api.replace_with(fresh))
            .map_err(|e| facegate_store::StoreError::Write(e.to_string())),
        };
        if let Err(e) = result {
            tracing::error!("face API index sync: rebuilding: {e}");
        }
    }

    async fn apply_change(&self, change: facegate_store::CollectionChange) {
        use facegate_store::CollectionChange as C;
        match change {
            C::Created(c) => self.face_api.know_collection(&c),
            C::Dropped(c) => self.face_api.forget_collection(&c),
            C::Deleted { collection, ids } => self.face_api.unindex(&collection, &ids),
            C::Added { collection, ids } => {
                let mut rows = Vec::new();
                for id in ids {
                    if self.face_api.embedding_of(&collection, &id).is_some() {
                        continue; // made here, or already applied
                    }
                    match self.store.api_face(&collection, &id).await {
                        Ok(Some(f)) => rows.push(f),
                        Ok(None) => {} // deleted since
                        Err(e) => {
                            tracing::error!("face API index sync: reading a face: {e}");
                            return self.resync_indexes(Some(&collection)).await;
                        }
                    }
                }
                self.face_api.index_stored(&collection, &rows);
            }
            C::Resync(c) => self.resync_indexes(c.as_deref()).await,
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
