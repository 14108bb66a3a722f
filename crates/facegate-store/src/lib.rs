//! facegate-store: persistence. One implementation over sqlx's `Any` driver, so SQLite (embedded,
//! default) and, later, PostgreSQL run the same queries; per-database migration folders hold the only
//! SQL that differs. Secrets are stored as hashes only.

mod accounts;
mod aws_keys;
mod copy;
mod crypt;
mod device;
mod face_api;
mod guard;
mod migrate;
mod par;
mod ports;
mod rows;
mod shared;
mod sync;
pub mod testing;

/// A number unique within this process (names of temporary test servers).
fn testing_counter() -> u64 {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
}

use facegate_core::User;
use facegate_oidc::client::Client;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row};

pub use accounts::{AuditFilter, AuditRow, EmailLink, SessionInfo, UserRow};
pub use aws_keys::AwsAccessKey;
pub use copy::TableCopy;
pub use crypt::{DataKey, DataKeys};
pub use face_api::{ApiCollection, ApiFace};
pub use facegate_oidc::engine::device::DeviceAuthorization;
pub use guard::{SharedGuard, now_ms};
pub use migrate::Backend;
pub use rows::{Code, CodeUse, Grant, Redeemed, StoredKey, StoredSession, Token, TokenKind};
pub use shared::Bucket;
pub use sync::{CHANNEL, CollectionChange, CollectionWatch, FRAMES_CHANNEL, FrameWatch, SeenFrame};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("{0} does not exist")]
    Missing(&'static str),
    #[error("the store's writer has stopped")]
    Closed,
    #[error("writing failed: {0}")]
    Write(String),
    #[error("migrating the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL {0:?}: use sqlite://PATH?mode=rwc or postgres://USER@HOST/DB")]
    UnsupportedUrl(String),
    #[error("data key: {0}")]
    DataKey(String),
    #[error(
        "wrong data key: the database is encrypted under data key {stored}, the configured key is {given}; \
         set FACEGATE_DATA_KEY or FACEGATE_DATA_KEY_FILE to the key this database was encrypted with"
    )]
    WrongDataKey { stored: String, given: String },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone)]
pub struct Store {
    /// Readers (SQLite: several, in parallel under WAL).
    pool: AnyPool,
    /// The one connection that writes (SQLite serialises writers anyway; queueing them here, not
    /// in SQLite's busy handler, keeps them from sleeping on each other's locks).
    writer: AnyPool,
    /// Clients by id, each for at most [`CLIENT_CACHE_TTL`]: this process's own changes clear
    /// their entry at once; another process's (the CLI) show within the TTL, and tokens are never
    /// stored for a client that no longer exists (see [`Store::issue`]).
    /// Grants and tokens to write, for the group-commit task (see [`Store::issue`]).
    issuer: tokio::sync::mpsc::Sender<IssueJob>,
    backend: Backend,
    /// The URL it was opened with (PostgreSQL: for the listening connection); never printed.
    url: DatabaseUrl,
    clients:
        std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, Client)>>>,
    /// The data keys that seal embeddings, private keys and secret settings at rest (crypt.rs);
    /// `None` only for a store opened without keys (tools, tests).
    data_keys: Option<std::sync::Arc<DataKeys>>,
    /// The database holds sealed values but this store has no keys: reading or writing them fails.
    sealed: bool,
    /// Values [`Store::open_with_keys`] re-sealed (first encryption or a rotation).
    resealed_at_open: u64,
}

/// How long a client read from the database is reused.
pub const CLIENT_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);
const CLIENT_CACHE_MAX: usize = 10_000;

fn conflict_or(e: sqlx::Error, what: &'static str) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(what),
        _ => StoreError::Db(e),
    }
}

/// A database URL, which may hold a password: `Debug` shows it redacted.
#[derive(Clone)]
struct DatabaseUrl(String);

impl DatabaseUrl {
    fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

/// A database URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

impl Store {
    /// Opens (creating if needed) the database at `url` (`sqlite://path?mode=rwc`, or
    /// `postgres://user@host/db` for several instances sharing one database) and migrates it.
    pub async fn open(url: &str) -> Result<Store> {
        Store::open_with_keys(url, None).await
    }

    /// [`Store::open`] with data keys: values that must not be readable from the database file are
    /// sealed under `keys.current()`. The first start with keys seals what was stored in clear; a
    /// start whose first key is new (a rotation, `facegate keys rotate-data-key`) re-seals every
    /// value under it, resuming where an interrupted run stopped. None of the keys opening the
    /// database's check value is [`StoreError::WrongDataKey`].
    pub async fn open_with_keys(url: &str, keys: Option<DataKeys>) -> Result<Store> {
        let mut store = Store::open_plain(url).await?;
        let check = store.raw_setting(crypt::CHECK).await?;
        match keys {
            None => store.sealed = check.is_some(),
            Some(keys) => {
                let keys = std::sync::Arc::new(keys);
                let check = match check {
                    Some(c) => c,
                    None => {
                        // Pending first, so that a crash after the check leaves the sealing to finish.
                        store.raw_set_setting(crypt::PENDING, "1").await?;
                        store
                            .raw_setting_or_insert(crypt::CHECK, &keys.check_value()?)
                            .await?
                    }
                };
                if !keys.opens_check(&check) {
                    return Err(StoreError::WrongDataKey {
                        stored: crypt::text_key_id(&check).unwrap_or_else(|| "?".into()),
                        given: keys.current().id_hex(),
                    });
                }
                store.data_keys = Some(keys.clone());
                if !keys.is_current_text(&check) || store.raw_setting(crypt::PENDING).await?.is_some() {
                    store.resealed_at_open = store.reseal_all(&keys).await?;
                    store.raw_set_setting(crypt::CHECK, &keys.check_value()?).await?;
                    sqlx::query("DELETE FROM settings WHERE key = $1")
                        .bind(crypt::PENDING)
                        .execute(&store.writer)
                        .await?;
                }
            }
        }
        Ok(store)
    }

    async fn open_plain(url: &str) -> Result<Store> {
        install_default_drivers();
        let backend = Backend::of(url).ok_or_else(|| StoreError::UnsupportedUrl(redact(url)))?;
        let sqlite = backend == Backend::Sqlite;
        let options = || {
            AnyPoolOptions::new().after_connect(|conn, _| {
                Box::pin(async move {
                    if conn.backend_name() == "SQLite" {
                        sqlx::query("PRAGMA foreign_keys = ON")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA journal_mode = WAL")
                            .execute(&mut *conn)
                            .await?;
                        // With WAL, NORMAL never corrupts the database and loses nothing when the
                        // process dies (committed transactions are in the WAL file, which the OS
                        // keeps); only a power cut may lose the last ones (SQLite's documented
                        // trade-off). Commits skip an fsync each.
                        sqlx::query("PRAGMA synchronous = NORMAL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA busy_timeout = 5000")
                            .execute(&mut *conn)
                            .await?;
                        // Checkpoints are mostly run by a connection of their own (see
                        // [`checkpoint`]), so that commits seldom wait for a checkpoint's
                        // fsyncs. The writer still checkpoints once the WAL reaches 16 MiB: then
                        // little is left to copy, and only the writer can restart the WAL from
                        // its beginning (it would grow for as long as writes keep coming).
                        sqlx::query("PRAGMA wal_autocheckpoint = 4096")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
        };
        // SQLite: one writer connection, and readers in parallel under WAL.
        let writer = options()
            .max_connections(if sqlite { 1 } else { 16 })
            .connect(url)
            .await?;
        migrate::run(&writer, backend).await?;
        let pool = if sqlite {
            options().max_connections(3).connect(url).await?
        } else {
            writer.clone()
        };
        let checkpointer = if sqlite {
            Some(options().max_connections(1).connect(url).await?)
        } else {
            None
        };
        let (issuer, jobs) = tokio::sync::mpsc::channel(1024);
        tokio::spawn(group_commit(writer.clone(), backend, jobs, checkpointer));
        Ok(Store {
            pool,
            writer,
            issuer,
            backend,
            url: DatabaseUrl(url.to_string()),
            clients: Default::default(),
            data_keys: None,
            sealed: false,
            resealed_at_open: 0,
        })
    }

    /// Which database this store runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database answers (readiness).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").fetch_one(&self.pool).await?;
        Ok(())
    }

    /// SQLite's journal mode, synchronous level and foreign-key switch on a pooled connection.
    pub async fn pragmas(&self) -> Result<(String, i64, i64)> {
        let mut conn = self.pool.acquire().await?;
        let j: String = sqlx::query("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await?
            .try_get(0)?;
        let s: i64 = sqlx::query("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await?
            .try_get(0)?;
        let f: i64 = sqlx::query("PRAGMA foreign_keys")
            .fetch_one(&mut *conn)
            .await?
            .try_get(0)?;
        Ok((j.to_lowercase(), s, f))
    }

    // ---- face templates and audit events

    pub async fn add_face(&self, t: &facegate_core::face::FaceTemplate) -> Result<()> {
        sqlx::query("INSERT INTO face_templates (id, user_id, pack, dim, embedding, quality, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(&t.id)
            .bind(&t.user_id)
            .bind(&t.pack)
            .bind(t.embedding.len() as i64)
            .bind(self.seal(&format!("face_templates:{}", t.id), &facegate_core::face::to_bytes(&t.embedding))?)
            .bind(t.quality.to_string())
            .bind(t.created_at)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// A person's templates, oldest first.
    pub async fn faces_of(&self, user_id: &str) -> Result<Vec<facegate_core::face::FaceTemplate>> {
        let rows = sqlx::query("SELECT * FROM face_templates WHERE user_id = $1 ORDER BY created_at, id")
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| rows::face(self, r)).collect()
    }

    /// How many templates `pack` has (the size of the 1:N gallery, in comparisons).
    pub async fn face_count_by_pack(&self, pack: &str) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM face_templates WHERE pack = $1")
            .bind(pack)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Whether an account has a password, and how many face templates of `pack`.
    pub async fn account_facts(&self, user_id: &str, pack: &str) -> Result<Option<(bool, i64)>> {
        let row = sqlx::query(
            "SELECT CASE WHEN password_hash IS NOT NULL THEN 1 ELSE 0 END AS has_password, \
             (SELECT COUNT(*) FROM face_templates f WHERE f.user_id = users.id AND f.pack = $2) AS faces \
             FROM users WHERE id = $1",
        )
        .bind(user_id)
        .bind(pack)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((r.try_get::<i64, _>("has_password")? != 0, r.try_get("faces")?)))
            .transpose()
    }

    /// The acr a client requires of every login (`facegate client policy`), if any.
    pub async fn client_acr(&self, client_id: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT acr FROM client_login_policy WHERE client_id = $1")
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("acr")).transpose()?)
    }

    pub async fn set_client_acr(&self, client_id: &str, acr: Option<&str>) -> Result<()> {
        sqlx::query("DELETE FROM client_login_policy WHERE client_id = $1")
            .bind(client_id)
            .execute(&self.pool)
            .await?;
        if let Some(acr) = acr {
            sqlx::query("INSERT INTO client_login_policy (client_id, acr) VALUES ($1, $2)")
                .bind(client_id)
                .bind(acr)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Every template made by `pack` (the 1:N gallery).
    pub async fn faces_by_pack(&self, pack: &str) -> Result<Vec<facegate_core::face::FaceTemplate>> {
        let rows = sqlx::query("SELECT * FROM face_templates WHERE pack = $1")
            .bind(pack)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| rows::face(self, r)).collect()
    }

    pub async fn delete_face(&self, user_id: &str, id: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM face_templates WHERE user_id = $1 AND id = $2")
            .bind(user_id)
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    pub async fn delete_faces(&self, user_id: &str) -> Result<u64> {
        let r = sqlx::query("DELETE FROM face_templates WHERE user_id = $1")
            .bind(user_id)
            .execute(&self.writer)
            .await?;
        Ok(r.rows_affected())
    }

    /// Records an audit event (never images or embeddings: `Event` cannot hold them).
    pub async fn audit(&self, event: &facegate_core::audit::Event, at: i64) -> Result<()> {
        sqlx::query("INSERT INTO audit_events (id, at, kind, user_id, ip, result, detail, client_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(facegate_core::secret::random_token(12))
            .bind(at)
            .bind(event.kind.as_str())
            .bind(event.user.clone())
            .bind(event.ip.clone())
            .bind(event.outcome.as_str())
            .bind(event.detail.clone())
            .bind(event.client.clone())
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// A person's audit events, newest first.
    pub async fn audit_of(
        &self,
        user_id: &str,
        limit: i64,
    ) -> Result<Vec<(i64, String, String, Option<String>)>> {
        let rows = sqlx::query(
            "SELECT at, kind, result, detail FROM audit_events WHERE user_id = $1 ORDER BY at DESC LIMIT $2",
        )
        .bind(user_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("at")?,
                    r.try_get("kind")?,
                    r.try_get("result")?,
                    r.try_get("detail")?,
                ))
            })
            .collect()
    }

    // ---- settings

    /// A setting (secret ones, such as the pairwise salt, are stored sealed and returned opened).
    pub async fn setting(&self, key: &str) -> Result<Option<String>> {
        let v = self.raw_setting(key).await?;
        v.map(|v| self.open_setting(key, v)).transpose()
    }

    pub(crate) async fn raw_setting(&self, key: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("value")).transpose()?)
    }

    /// Stores `value` under `key` unless a value is already there; returns the value in force.
    pub async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String> {
        let sealed = self.seal_setting(key, value)?;
        let v = self.raw_setting_or_insert(key, &sealed).await?;
        self.open_setting(key, v)
    }

    pub async fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        let sealed = self.seal_setting(key, value)?;
        self.raw_set_setting(key, &sealed).await
    }

    pub(crate) async fn raw_setting_or_insert(&self, key: &str, value: &str) -> Result<String> {
        sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(value)
            .execute(&self.writer)
            .await?;
        self.raw_setting(key)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("setting {key} vanished")))
    }

    pub(crate) async fn raw_set_setting(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = $2",
        )
        .bind(key)
        .bind(value)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    // ---- users

    pub async fn create_user(&self, user: &User, password_hash: Option<&str>) -> Result<()> {
        sqlx::query(
            "INSERT INTO users (id, username, email, email_verified, name, password_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&user.id)
        .bind(user.username.as_str())
        .bind(user.email.as_ref().map(|e| e.as_str().to_string()))
        .bind(i64::from(user.email_verified))
        .bind(user.name.clone())
        .bind(password_hash.map(String::from))
        .bind(user.created_at)
        .execute(&self.writer)
        .await
        .map_err(|e| conflict_or(e, "a user with that username"))?;
        Ok(())
    }

    pub async fn user(&self, id: &str) -> Result<Option<User>> {
        let row = sqlx::query("SELECT * FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| rows::user(&r)).transpose()
    }

    /// The user and their password hash, by username.
    pub async fn user_with_password(&self, username: &str) -> Result<Option<(User, Option<String>)>> {
        let row = sqlx::query("SELECT * FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((rows::user(&r)?, r.try_get::<Option<String>, _>("password_hash")?)))
            .transpose()
    }

    // ---- clients

    pub async fn create_client(&self, c: &Client, registration_token_hash: Option<&str>) -> Result<()> {
        sqlx::query(
            "INSERT INTO clients (client_id, secret_hash, name, redirect_uris, post_logout_redirect_uris, grant_types, auth_method, scope, jwks, skip_consent, registration_token_hash, created_at, id_token_alg, subject_type, resource_server, require_par, jwt_access_tokens, backchannel_logout_uri, backchannel_logout_session_required) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
        )
        .bind(&c.client_id)
        .bind(c.secret_hash.clone())
        .bind(&c.name)
        .bind(json_list(&c.redirect_uris))
        .bind(json_list(&c.post_logout_redirect_uris))
        .bind(json_list(&c.grant_types))
        .bind(c.auth_method.as_str())
        .bind(&c.scope)
        .bind(c.jwks.as_ref().map(|j| j.to_string()))
        .bind(i64::from(c.skip_consent))
        .bind(registration_token_hash.map(String::from))
        .bind(c.created_at)
        .bind(c.id_token_alg.as_str())
        .bind(if c.pairwise { "pairwise" } else { "public" })
        .bind(i64::from(c.resource_server))
        .bind(i64::from(c.require_par))
        .bind(i64::from(c.jwt_access_tokens))
        .bind(c.backchannel_logout_uri.clone())
        .bind(i64::from(c.backchannel_logout_session_required))
        .execute(&self.writer)
        .await
        .map_err(|e| conflict_or(e, "a client with that id"))?;
        Ok(())
    }

    /// Replaces a client's metadata (and its registration token hash, when given).
    pub async fn update_client(&self, c: &Client, registration_token_hash: Option<&str>) -> Result<()> {
        self.forget_client(&c.client_id);
        sqlx::query(
            "UPDATE clients SET secret_hash = $2, name = $3, redirect_uris = $4, post_logout_redirect_uris = $5, grant_types = $6, \
             auth_method = $7, scope = $8, jwks = $9, skip_consent = $10, registration_token_hash = COALESCE($11, registration_token_hash), \
             id_token_alg = $12, subject_type = $13, resource_server = $14, require_par = $15, jwt_access_tokens = $16, backchannel_logout_uri = $17, \
             backchannel_logout_session_required = $18 WHERE client_id = $1",
        )
        .bind(&c.client_id)
        .bind(c.secret_hash.clone())
        .bind(&c.name)
        .bind(json_list(&c.redirect_uris))
        .bind(json_list(&c.post_logout_redirect_uris))
        .bind(json_list(&c.grant_types))
        .bind(c.auth_method.as_str())
        .bind(&c.scope)
        .bind(c.jwks.as_ref().map(|j| j.to_string()))
        .bind(i64::from(c.skip_consent))
        .bind(registration_token_hash.map(String::from))
        .bind(c.id_token_alg.as_str())
        .bind(if c.pairwise { "pairwise" } else { "public" })
        .bind(i64::from(c.resource_server))
        .bind(i64::from(c.require_par))
        .bind(i64::from(c.jwt_access_tokens))
        .bind(c.backchannel_logout_uri.clone())
        .bind(i64::from(c.backchannel_logout_session_required))
        .execute(&self.writer)
        .await?;
        self.forget_client(&c.client_id);
        Ok(())
    }

    pub async fn client(&self, client_id: &str) -> Result<Option<Client>> {
        let now = std::time::Instant::now();
        if let Ok(cache) = self.clients.lock()
            && let Some((at, c)) = cache.get(client_id)
            && now.duration_since(*at) < CLIENT_CACHE_TTL
        {
            return Ok(Some(c.clone()));
        }
        let found = self.client_uncached(client_id).await?;
        if let (Some(c), Ok(mut cache)) = (&found, self.clients.lock()) {
            if cache.len() >= CLIENT_CACHE_MAX {
                cache.retain(|_, (at, _)| now.duration_since(*at) < CLIENT_CACHE_TTL);
                if cache.len() >= CLIENT_CACHE_MAX {
                    cache.clear();
                }
            }
            cache.insert(client_id.to_string(), (now, c.clone()));
        }
        Ok(found)
    }

    fn forget_client(&self, client_id: &str) {
        if let Ok(mut cache) = self.clients.lock() {
            cache.remove(client_id);
        }
    }

    async fn client_uncached(&self, client_id: &str) -> Result<Option<Client>> {
        let row = sqlx::query("SELECT * FROM clients WHERE client_id = $1")
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| rows::client(&r)).transpose()
    }

    pub async fn clients(&self) -> Result<Vec<Client>> {
        let rows = sqlx::query("SELECT * FROM clients ORDER BY created_at, client_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rows::client).collect()
    }

    /// The client whose registration access token hashes to `token_hash`.
    pub async fn client_by_registration_token(
        &self,
        client_id: &str,
        token_hash: &str,
    ) -> Result<Option<Client>> {
        let row = sqlx::query("SELECT * FROM clients WHERE client_id = $1 AND registration_token_hash = $2")
            .bind(client_id)
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| rows::client(&r)).transpose()
    }

    pub async fn delete_client(&self, client_id: &str) -> Result<bool> {
        self.forget_client(client_id);
        self.delete_client_devices(client_id).await?;
        sqlx::query("DELETE FROM tokens WHERE client_id = $1")
            .bind(client_id)
            .execute(&self.writer)
            .await?;
        sqlx::query("DELETE FROM grants WHERE client_id = $1")
            .bind(client_id)
            .execute(&self.writer)
            .await?;
        sqlx::query("DELETE FROM consents WHERE client_id = $1")
            .bind(client_id)
            .execute(&self.writer)
            .await?;
        let r = sqlx::query("DELETE FROM clients WHERE client_id = $1")
            .bind(client_id)
            .execute(&self.writer)
            .await?;
        self.forget_client(client_id);
        Ok(r.rows_affected() > 0)
    }

    // ---- signing keys

    pub async fn insert_key(&self, k: &StoredKey) -> Result<()> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, pkcs8, created_at, retired_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&k.kid)
        .bind(&k.alg)
        .bind(self.seal(&format!("signing_keys:{}", k.kid), &k.pkcs8)?)
        .bind(k.created_at)
        .bind(k.retired_at)
        .execute(&self.writer)
        .await
        .map_err(|e| conflict_or(e, "a key with that kid"))?;
        Ok(())
    }

    /// Every key, newest first.
    pub async fn keys(&self) -> Result<Vec<StoredKey>> {
        let rows = sqlx::query("SELECT * FROM signing_keys ORDER BY created_at DESC, kid")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| rows::key(self, r)).collect()
    }

    /// Marks every active key of `alg` except `keep` as retired at `at`.
    pub async fn retire_keys(&self, alg: &str, keep: &str, at: i64) -> Result<()> {
        sqlx::query(
            "UPDATE signing_keys SET retired_at = $1 WHERE alg = $2 AND kid <> $3 AND retired_at IS NULL",
        )
        .bind(at)
        .bind(alg)
        .bind(keep)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub async fn delete_keys_retired_before(&self, before: i64) -> Result<u64> {
        let r = sqlx::query("DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at < $1")
            .bind(before)
            .execute(&self.writer)
            .await?;
        Ok(r.rows_affected())
    }

    // ---- login sessions

    pub async fn create_session(&self, s: &StoredSession) -> Result<()> {
        self.create_session_with(s, s.auth_time, None, None).await
    }

    pub async fn session(&self, id_hash: &str, now: i64) -> Result<Option<StoredSession>> {
        let row = sqlx::query("SELECT * FROM sessions WHERE id_hash = $1 AND expires_at > $2")
            .bind(id_hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| rows::session(&r)).transpose()
    }

    pub async fn delete_session(&self, id_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    // ---- pending authorization requests (kept while the person logs in)

    pub async fn put_auth_request(&self, id: &str, json: &str, expires_at: i64) -> Result<()> {
        sqlx::query("INSERT INTO auth_requests (id, request, expires_at) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(json)
            .bind(expires_at)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub async fn auth_request(&self, id: &str, now: i64) -> Result<Option<String>> {
        let row = sqlx::query("SELECT request FROM auth_requests WHERE id = $1 AND expires_at > $2")
            .bind(id)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("request")).transpose()?)
    }

    pub async fn update_auth_request(&self, id: &str, json: &str) -> Result<()> {
        sqlx::query("UPDATE auth_requests SET request = $1 WHERE id = $2")
            .bind(json)
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub async fn delete_auth_request(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM auth_requests WHERE id = $1")
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    // ---- consents

    pub async fn consent(&self, user_id: &str, client_id: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT scope FROM consents WHERE user_id = $1 AND client_id = $2")
            .bind(user_id)
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("scope")).transpose()?)
    }

    pub async fn put_consent(&self, user_id: &str, client_id: &str, scope: &str, now: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO consents (user_id, client_id, scope, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id, client_id) DO UPDATE SET scope = $3, created_at = $4",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(scope)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    // ---- grants, codes and tokens

    pub async fn create_grant(&self, g: &Grant) -> Result<()> {
        if self.issue(Some(g), &[]).await? {
            Ok(())
        } else {
            Err(StoreError::Missing("the grant's client"))
        }
    }

    pub async fn grant(&self, id: &str) -> Result<Option<Grant>> {
        let row = sqlx::query("SELECT * FROM grants WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| rows::grant(&r)).transpose()
    }

    /// Revokes a grant: every token issued under it stops working.
    pub async fn revoke_grant(&self, id: &str, now: i64) -> Result<()> {
        sqlx::query("UPDATE grants SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&self.writer)
            .await?;
        sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE grant_id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Revokes the refresh tokens of the grants made in login session `sid` (at logout).
    pub async fn revoke_session_refresh_tokens(&self, sid: &str, now: i64) -> Result<u64> {
        let r = sqlx::query(
            "UPDATE tokens SET revoked_at = $1 WHERE kind = 'refresh' AND revoked_at IS NULL \
             AND grant_id IN (SELECT id FROM grants WHERE sid = $2)",
        )
        .bind(now)
        .bind(sid)
        .execute(&self.writer)
        .await?;
        Ok(r.rows_affected())
    }

    pub async fn insert_code(
        &self,
        code_hash: &str,
        grant_id: &str,
        redirect_uri: &str,
        challenge: Option<&str>,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query("INSERT INTO auth_codes (code_hash, grant_id, redirect_uri, code_challenge, expires_at, used_at) VALUES ($1, $2, $3, $4, $5, NULL)")
            .bind(code_hash)
            .bind(grant_id)
            .bind(redirect_uri)
            .bind(challenge.map(String::from))
            .bind(expires_at)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Consumes a code: the first call wins (an atomic update), later calls learn it was reused.
    pub async fn use_code(&self, code_hash: &str, now: i64) -> Result<CodeUse> {
        let first = sqlx::query(
            "UPDATE auth_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL \
             RETURNING grant_id, redirect_uri, code_challenge, expires_at, used_at",
        )
        .bind(now)
        .bind(code_hash)
        .fetch_optional(&self.writer)
        .await?;
        if let Some(row) = first {
            return Ok(CodeUse::First(rows::code(&row)?));
        }
        let row = sqlx::query("SELECT * FROM auth_codes WHERE code_hash = $1")
            .bind(code_hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(row) => CodeUse::Reused(rows::code(&row)?),
            None => CodeUse::Unknown,
        })
    }

    pub async fn insert_token(&self, t: &Token) -> Result<()> {
        if self.issue(None, std::slice::from_ref(t)).await? {
            Ok(())
        } else {
            Err(StoreError::Missing("the token's client"))
        }
    }

    /// Stores a new grant (if given) and tokens under it; durable when this returns. Each row is
    /// written only while its client exists, so a client deleted meanwhile (say, by the CLI) gets
    /// nothing: then the answer is `false`. Concurrent calls are committed together (group
    /// commit: one transaction for all that arrived while the previous one was being written).
    pub async fn issue(&self, grant: Option<&Grant>, tokens: &[Token]) -> Result<bool> {
        let job = |reply| IssueJob {
            grant: grant.cloned(),
            tokens: tokens.to_vec(),
            code: None,
            reply,
        };
        Ok(self.submit(job).await? == Redeemed::Stored)
    }

    /// A code and its grant, read without using the code up.
    pub async fn code(&self, code_hash: &str) -> Result<Option<(Code, Grant)>> {
        let row = sqlx::query(
            "SELECT c.redirect_uri, c.code_challenge, c.expires_at, c.used_at, g.* \
             FROM auth_codes c JOIN grants g ON g.id = c.grant_id WHERE c.code_hash = $1",
        )
        .bind(code_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let grant = rows::grant(&r)?;
        let code = Code {
            grant_id: grant.id.clone(),
            redirect_uri: r.try_get("redirect_uri")?,
            code_challenge: r.try_get("code_challenge")?,
            expires_at: r.try_get("expires_at")?,
            used_at: r.try_get("used_at")?,
        };
        Ok(Some((code, grant)))
    }

    /// Uses up a code and stores tokens under its grant, in one transaction (through the group
    /// commit): nothing is stored unless the code was unused and the tokens' client exists.
    pub async fn redeem_code(&self, code_hash: &str, now: i64, tokens: &[Token]) -> Result<Redeemed> {
        self.submit(|reply| IssueJob {
            grant: None,
            tokens: tokens.to_vec(),
            code: Some((code_hash.to_string(), now)),
            reply,
        })
        .await
    }

    async fn submit(
        &self,
        job: impl FnOnce(tokio::sync::oneshot::Sender<Result<Redeemed>>) -> IssueJob,
    ) -> Result<Redeemed> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.issuer
            .send(job(reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// A token by its hash, with its grant's revocation folded in.
    pub async fn token(&self, token_hash: &str) -> Result<Option<Token>> {
        let row = sqlx::query(
            "SELECT t.*, g.revoked_at AS grant_revoked_at FROM tokens t JOIN grants g ON g.id = t.grant_id WHERE t.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| rows::token(&r)).transpose()
    }

    /// Marks a refresh token used; false if it already was (a replay).
    pub async fn use_refresh_token(&self, token_hash: &str, now: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE tokens SET used_at = $1 WHERE token_hash = $2 AND kind = 'refresh' AND used_at IS NULL",
        )
        .bind(now)
        .bind(token_hash)
        .execute(&self.writer)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn revoke_token(&self, token_hash: &str, now: i64) -> Result<()> {
        sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(token_hash)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Deletes expired codes, tokens, sessions and pending requests. A used code is kept while any
    /// token of its grant may still be live, so that a replay of it is recognised and revokes them.
    /// Deletes expired rows in batches of [`PURGE_BATCH`], each its own short statement, so a
    /// large backlog never holds the writer (SQLite) or long row locks (PostgreSQL) for long:
    /// requests' writes go in between. Several instances may purge at once (the batches just
    /// find fewer rows).
    pub async fn purge_expired(&self, now: i64) -> Result<()> {
        // Codes stay while the tokens they issued live (a replayed code revokes them).
        let code_kept = "(used_at IS NULL OR NOT EXISTS (SELECT 1 FROM tokens t WHERE t.grant_id = auth_codes.grant_id \
                         AND t.expires_at >= $1 AND t.revoked_at IS NULL))";
        let device_kept = "(grant_id IS NULL OR NOT EXISTS (SELECT 1 FROM tokens t WHERE t.grant_id = device_codes.grant_id \
                           AND t.expires_at >= $1 AND t.revoked_at IS NULL))";
        let hour_ago_ms = now.saturating_sub(3600).saturating_mul(1000);
        let day_ago_ms = now.saturating_sub(86_400).saturating_mul(1000);
        let tables: [(&str, &str, String, i64); 12] = [
            (
                "auth_codes",
                "code_hash",
                format!("expires_at < $1 AND {code_kept}"),
                now,
            ),
            (
                "device_codes",
                "device_code_hash",
                format!("expires_at < $1 AND {device_kept}"),
                now,
            ),
            ("tokens", "token_hash", "expires_at < $1".into(), now),
            ("sessions", "id_hash", "expires_at < $1".into(), now),
            ("auth_requests", "id", "expires_at < $1".into(), now),
            ("admin_sessions", "session_hash", "expires_at < $1".into(), now),
            (
                "client_assertions",
                "assertion_key",
                "expires_at < $1".into(),
                now,
            ),
            ("liveness_checks", "id", "expires_at < $1".into(), now),
            ("email_tokens", "token_hash", "expires_at < $1".into(), now),
            ("invites", "token_hash", "expires_at < $1".into(), now),
            // Throttle rows an hour past their last lock (the longest window is an hour).
            (
                "login_attempts",
                "key",
                "blocked_until < $1 AND first_at < $1".into(),
                hour_ago_ms,
            ),
            // A bucket untouched for a day is full again: the row says nothing.
            ("rate_buckets", "key", "updated_ms < $1".into(), day_ago_ms),
        ];
        for (table, key, condition, bound) in tables {
            // Only these constant names reach the SQL text.
            let sql = format!(
                "DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} WHERE {condition} LIMIT {PURGE_BATCH})"
            );
            loop {
                let done = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                    .bind(bound)
                    .execute(&self.writer)
                    .await?;
                if done.rows_affected() < PURGE_BATCH {
                    break;
                }
                tokio::task::yield_now().await;
            }
        }
        Ok(())
    }
}

/// Rows one purge statement deletes at most.
pub const PURGE_BATCH: u64 = 500;

pub(crate) const GRANT_INSERT: &str =
    "INSERT INTO grants (id, client_id, user_id, scope, auth_time, amr, acr, nonce, sid, created_at, claims)";
const TOKEN_INSERT: &str =
    "INSERT INTO tokens (token_hash, kind, grant_id, client_id, user_id, scope, expires_at, created_at)";

pub(crate) type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

pub(crate) fn bind_grant<'q>(q: AnyQuery<'q>, g: &Grant) -> AnyQuery<'q> {
    q.bind(g.id.clone())
        .bind(g.client_id.clone())
        .bind(g.user_id.clone())
        .bind(g.scope.clone())
        .bind(g.auth_time)
        .bind(json_list(&g.amr))
        .bind(g.acr.clone())
        .bind(g.nonce.clone())
        .bind(g.sid.clone())
        .bind(g.created_at)
        .bind(g.claims.as_ref().and_then(|c| serde_json::to_string(c).ok()))
}

fn bind_token<'q>(q: AnyQuery<'q>, t: &Token) -> AnyQuery<'q> {
    q.bind(t.token_hash.clone())
        .bind(t.kind.as_str())
        .bind(t.grant_id.clone())
        .bind(t.client_id.clone())
        .bind(t.user_id.clone())
        .bind(t.scope.clone())
        .bind(t.expires_at)
        .bind(t.created_at)
}

impl facegate_oidc::engine::Storage for Store {
    type Error = StoreError;

    async fn remember_assertion(&self, key: &str, expires_at: i64) -> Result<bool> {
        Store::remember_assertion(self, key, expires_at).await
    }

    async fn client(&self, client_id: &str) -> Result<Option<Client>> {
        Store::client(self, client_id).await
    }
    async fn user(&self, id: &str) -> Result<Option<User>> {
        Store::user(self, id).await
    }
    async fn grant(&self, id: &str) -> Result<Option<Grant>> {
        Store::grant(self, id).await
    }
    async fn issue(&self, grant: Option<&Grant>, tokens: &[Token]) -> Result<bool> {
        Store::issue(self, grant, tokens).await
    }
    async fn revoke_grant(&self, id: &str, now: i64) -> Result<()> {
        Store::revoke_grant(self, id, now).await
    }
    async fn use_code(&self, code_hash: &str, now: i64) -> Result<CodeUse> {
        Store::use_code(self, code_hash, now).await
    }
    async fn code(&self, code_hash: &str) -> Result<Option<(Code, Grant)>> {
        Store::code(self, code_hash).await
    }
    async fn redeem_code(&self, code_hash: &str, now: i64, tokens: &[Token]) -> Result<Redeemed> {
        Store::redeem_code(self, code_hash, now, tokens).await
    }
    async fn token(&self, token_hash: &str) -> Result<Option<Token>> {
        Store::token(self, token_hash).await
    }
    async fn use_refresh_token(&self, token_hash: &str, now: i64) -> Result<bool> {
        Store::use_refresh_token(self, token_hash, now).await
    }
    async fn revoke_token(&self, token_hash: &str, now: i64) -> Result<()> {
        Store::revoke_token(self, token_hash, now).await
    }
    async fn create_device_authorization(&self, d: &DeviceAuthorization) -> Result<bool> {
        Store::create_device_authorization(self, d).await
    }
    async fn device(&self, device_code_hash: &str) -> Result<Option<DeviceAuthorization>> {
        Store::device(self, device_code_hash).await
    }
    async fn device_by_user_code(&self, user_code_hash: &str) -> Result<Option<DeviceAuthorization>> {
        Store::device_by_user_code(self, user_code_hash).await
    }
    async fn device_polled(&self, device_code_hash: &str, now: i64, interval: i64) -> Result<()> {
        Store::device_polled(self, device_code_hash, now, interval).await
    }
    async fn decide_device(&self, user_code_hash: &str, grant: Option<&Grant>, now: i64) -> Result<bool> {
        Store::decide_device(self, user_code_hash, grant, now).await
    }
    async fn use_device(&self, device_code_hash: &str, now: i64) -> Result<bool> {
        Store::use_device(self, device_code_hash, now).await
    }
    async fn push_request(&self, key: &str, json: &str, expires_at: i64) -> Result<()> {
        Store::push_request(self, key, json, expires_at).await
    }
    async fn take_pushed_request(&self, key: &str, now: i64) -> Result<Option<String>> {
        Store::take_pushed_request(self, key, now).await
    }
    async fn session_clients(&self, sid: &str) -> Result<Vec<(String, String)>> {
        Store::session_clients(self, sid).await
    }
}

#[derive(Debug)]
struct IssueJob {
    grant: Option<Grant>,
    tokens: Vec<Token>,
    /// A code to use up first (at the given time): the job stores nothing unless it was unused.
    code: Option<(String, i64)>,
    reply: tokio::sync::oneshot::Sender<Result<Redeemed>>,
}

/// At most this many jobs share a transaction.
const GROUP_MAX: usize = 128;

/// Writes issued grants and tokens: each job that arrives while a transaction is being written
/// waits for the next, so under load one commit serves many requests. A job is answered only
/// after its transaction committed.
async fn group_commit(
    writer: AnyPool,
    backend: Backend,
    mut jobs: tokio::sync::mpsc::Receiver<IssueJob>,
    checkpointer: Option<AnyPool>,
) {
    let checkpointing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut last_checkpoint: Option<std::time::Instant> = None;
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while batch.len() < GROUP_MAX {
            match jobs.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let results = match backend {
            Backend::Postgres => write_batch_pg(&writer, &batch).await,
            Backend::Sqlite => write_batch_sqlite(&writer, &batch).await.unwrap_or_else(|e| {
                let msg = e.to_string();
                batch
                    .iter()
                    .map(|_| Err(StoreError::Write(msg.clone())))
                    .collect()
            }),
        };
        for (job, result) in batch.into_iter().zip(results) {
            let _ = job.reply.send(result);
        }
        if let Some(pool) = &checkpointer
            && last_checkpoint.is_none_or(|t| t.elapsed() >= CHECKPOINT_EVERY)
            && !checkpointing.swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            last_checkpoint = Some(std::time::Instant::now());
            tokio::spawn(checkpoint(pool.clone(), checkpointing.clone()));
        }
    }
}

/// How often, at most, the WAL is checkpointed while tokens are being issued.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// SQLite: copies the WAL's committed pages into the database file (PASSIVE: it waits for no reader
/// or writer), on a connection of its own so that its fsyncs keep no commit waiting. The writer's
/// own checkpoint at 16 MiB then has little left to do before it restarts the WAL.
async fn checkpoint(pool: AnyPool, running: std::sync::Arc<std::sync::atomic::AtomicBool>) {
    if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await {
        tracing::warn!("checkpointing the WAL: {e}");
    }
    running.store(false, std::sync::atomic::Ordering::Release);
}

/// `($1, …, $n), ($n+1, …)`: `rows` groups of `width` parameters, numbered from `first`.
fn value_rows(rows: usize, width: usize, first: usize) -> String {
    let mut out = String::new();
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..width {
            if c > 0 {
                out.push_str(", ");
            }
            out.push_str(&format!("${}", first + r * width + c));
        }
        out.push(')');
    }
    out
}

/// SQLite: the whole group is one transaction sent as one query, whatever its size (each query is
/// a hand-off to SQLite's worker thread, and under load each hand-off waits for the scheduler):
/// `BEGIN IMMEDIATE`, use up the codes being redeemed (those still unused, noted in a temporary
/// table), insert the grants, then the tokens (each row only while its client exists, a code's
/// tokens only if that code was just used up), `COMMIT`. What was written comes back as rows
/// (`RETURNING`), so each job learns its own outcome.
async fn write_batch_sqlite(
    writer: &AnyPool,
    batch: &[IssueJob],
) -> Result<Vec<Result<Redeemed>>, sqlx::Error> {
    use std::collections::HashSet;
    let mut conn = writer.acquire().await?;
    // Built from constants and numbered placeholders only: no input reaches the SQL text.
    let mut sql = String::from("BEGIN IMMEDIATE;");
    let mut n = 0;
    let mut next = |count: usize| {
        n += count;
        n + 1 - count
    };
    // Two jobs redeeming one code in the same group: only the first may (the others lost the race).
    let mut seen = HashSet::new();
    let lost: Vec<bool> = batch
        .iter()
        .map(|j| j.code.as_ref().is_some_and(|(c, _)| !seen.insert(c.as_str())))
        .collect();
    let jobs = || {
        batch
            .iter()
            .zip(&lost)
            .filter(|(_, lost)| !**lost)
            .map(|(j, _)| j)
    };
    let codes: Vec<&(String, i64)> = jobs().filter_map(|j| j.code.as_ref()).collect();
    let mut now_param = 0;
    let mut codes_param = 0;
    if !codes.is_empty() {
        now_param = next(1);
        codes_param = next(codes.len());
        let list: Vec<String> = (codes_param..codes_param + codes.len())
            .map(|i| format!("${i}"))
            .collect();
        sql.push_str(&format!(
            "CREATE TEMP TABLE IF NOT EXISTS redeemed (code_hash TEXT PRIMARY KEY); DELETE FROM temp.redeemed; \
             INSERT INTO temp.redeemed SELECT code_hash FROM auth_codes WHERE used_at IS NULL AND code_hash IN ({}); \
             UPDATE auth_codes SET used_at = ${now_param} WHERE code_hash IN (SELECT code_hash FROM temp.redeemed); \
             SELECT code_hash FROM temp.redeemed;",
            list.join(", ")
        ));
    }
    let grants: Vec<&Grant> = jobs().filter_map(|j| j.grant.as_ref()).collect();
    let mut grants_param = 0;
    if !grants.is_empty() {
        grants_param = next(grants.len() * 11);
        sql.push_str(&format!(
            "{GRANT_INSERT} SELECT * FROM (VALUES {}) AS v \
             WHERE EXISTS (SELECT 1 FROM clients WHERE client_id = v.column2) RETURNING id;",
            value_rows(grants.len(), 11, grants_param)
        ));
    }
    let tokens: Vec<(&Token, Option<&String>)> = jobs()
        .flat_map(|j| j.tokens.iter().map(|t| (t, j.code.as_ref().map(|(c, _)| c))))
        .collect();
    let width = if codes.is_empty() { 8 } else { 9 };
    let mut tokens_param = 0;
    if !tokens.is_empty() {
        tokens_param = next(tokens.len() * width);
        let only_redeemed = if codes.is_empty() {
            ""
        } else {
            " AND (v.column9 IS NULL OR v.column9 IN (SELECT code_hash FROM temp.redeemed))"
        };
        sql.push_str(&format!(
            "{TOKEN_INSERT} SELECT column1, column2, column3, column4, column5, column6, column7, column8 \
             FROM (VALUES {}) AS v WHERE EXISTS (SELECT 1 FROM clients WHERE client_id = v.column4){only_redeemed} \
             RETURNING token_hash;",
            value_rows(tokens.len(), width, tokens_param)
        ));
    }
    sql.push_str("COMMIT;");
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    // Bound in the order the placeholders were numbered.
    debug_assert!(codes.is_empty() || (now_param == 1 && codes_param == 2));
    debug_assert!(grants.is_empty() || grants_param > 0);
    debug_assert!(tokens.is_empty() || tokens_param > 0);
    if !codes.is_empty() {
        // One time for the group: the latest of its requests' (they are milliseconds apart).
        q = q.bind(codes.iter().map(|(_, t)| *t).max().unwrap_or_default());
        for (c, _) in &codes {
            q = q.bind(c.clone());
        }
    }
    for g in &grants {
        q = bind_grant(q, g);
    }
    for (t, code) in &tokens {
        q = bind_token(q, t);
        if width == 9 {
            q = q.bind(code.cloned());
        }
    }
    let rows = match q.fetch_all(&mut *conn).await {
        Ok(rows) => rows,
        Err(e) => {
            // The transaction may be open still: nothing of it is kept.
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            return Err(e);
        }
    };
    // Code hashes, grant ids and token hashes are random: one set tells them apart.
    let mut written = HashSet::new();
    for row in rows {
        written.insert(row.try_get::<String, _>(0)?);
    }
    Ok(batch
        .iter()
        .zip(&lost)
        .map(|(j, lost)| {
            let live = !lost && j.code.as_ref().is_none_or(|(c, _)| written.contains(c));
            let all_written = j.grant.iter().all(|g| written.contains(&g.id))
                && j.tokens.iter().all(|t| written.contains(&t.token_hash));
            Ok(match (live, all_written) {
                (false, _) => Redeemed::CodeUsed,
                (true, true) => Redeemed::Stored,
                (true, false) => Redeemed::ClientGone,
            })
        })
        .collect())
}

/// PostgreSQL prepares one statement at a time: each job's statements run one by one, all the jobs in
/// one transaction (one commit, one WAL flush, for the whole group).
async fn write_batch_pg(writer: &AnyPool, batch: &[IssueJob]) -> Vec<Result<Redeemed>> {
    let failed = |e: &sqlx::Error| {
        let msg = e.to_string();
        batch
            .iter()
            .map(|_| Err(StoreError::Write(msg.clone())))
            .collect::<Vec<_>>()
    };
    let mut tx = match writer.begin().await {
        Ok(tx) => tx,
        Err(e) => return failed(&e),
    };
    let mut results = Vec::with_capacity(batch.len());
    for job in batch {
        if let Some((code, now)) = &job.code {
            let used =
                sqlx::query("UPDATE auth_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL")
                    .bind(*now)
                    .bind(code.clone())
                    .execute(&mut *tx)
                    .await;
            match used {
                Ok(r) if r.rows_affected() == 1 => {}
                Ok(_) => {
                    results.push(Ok(Redeemed::CodeUsed));
                    continue;
                }
                Err(e) => return failed(&e),
            }
        }
        let mut rows = 0;
        let mut error = None;
        for q in issue_statements(job) {
            match q.execute(&mut *tx).await {
                Ok(r) => rows += r.rows_affected(),
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        match error {
            // A failed statement aborts a PostgreSQL transaction: the whole group fails alike.
            Some(e) => return failed(&e),
            None if written(job, rows) => results.push(Ok(Redeemed::Stored)),
            None => results.push(Ok(Redeemed::ClientGone)),
        }
    }
    match tx.commit().await {
        Ok(()) => results,
        Err(e) => failed(&e),
    }
}

/// One job's statements one by one (for PostgreSQL), each guarded by its client still existing.
fn issue_statements(job: &IssueJob) -> Vec<AnyQuery<'static>> {
    let guard = |client_param: usize| {
        format!("WHERE EXISTS (SELECT 1 FROM clients WHERE client_id = ${client_param})")
    };
    let list = |count: usize| {
        (1..=count)
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = Vec::new();
    if let Some(g) = &job.grant {
        // Built from the constants above only: no input reaches the SQL text.
        let sql = format!("{GRANT_INSERT} SELECT {} {}", list(11), guard(2));
        out.push(bind_grant(sqlx::query(sqlx::AssertSqlSafe(sql)), g));
    }
    for t in &job.tokens {
        let sql = format!("{TOKEN_INSERT} SELECT {} {}", list(8), guard(4));
        out.push(bind_token(sqlx::query(sqlx::AssertSqlSafe(sql)), t));
    }
    out
}

fn written(job: &IssueJob, rows: u64) -> bool {
    rows == (usize::from(job.grant.is_some()) + job.tokens.len()) as u64
}
