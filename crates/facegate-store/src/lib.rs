//! facegate-store: persistence. One implementation over sqlx's `Any` driver, so SQLite (embedded,
//! default) and, later, PostgreSQL run the same queries; per-database migration folders hold the only
//! SQL that differs. Secrets are stored as hashes only.

mod face_api;
mod migrate;
mod rows;

use facegate_core::User;
use facegate_oidc::client::Client;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row};

pub use face_api::{ApiCollection, ApiFace};
pub use rows::{Code, CodeUse, Grant, StoredKey, StoredSession, Token, TokenKind};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
}

fn conflict_or(e: sqlx::Error, what: &'static str) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(what),
        _ => StoreError::Db(e),
    }
}

fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

impl Store {
    /// Opens (creating if needed) the database at `url` (`sqlite://path?mode=rwc`) and migrates it.
    pub async fn open(url: &str) -> Result<Store> {
        install_default_drivers();
        let pool = AnyPoolOptions::new()
            // Readers run in parallel under WAL; SQLite serialises the writers.
            .max_connections(if url.starts_with("sqlite:") { 4 } else { 16 })
            .after_connect(|conn, _| {
                Box::pin(async move {
                    if conn.backend_name() == "SQLite" {
                        sqlx::query("PRAGMA foreign_keys = ON")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA journal_mode = WAL")
                            .execute(&mut *conn)
                            .await?;
                        // With WAL, NORMAL never corrupts the database; a power cut may lose the last
                        // transactions (SQLite's documented trade-off), and commits skip an fsync each.
                        sqlx::query("PRAGMA synchronous = NORMAL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA busy_timeout = 5000")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        migrate::run(&pool).await?;
        Ok(Store { pool })
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
            .bind(facegate_core::face::to_bytes(&t.embedding))
            .bind(t.quality.to_string())
            .bind(t.created_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A person's templates, oldest first.
    pub async fn faces_of(&self, user_id: &str) -> Result<Vec<facegate_core::face::FaceTemplate>> {
        let rows = sqlx::query("SELECT * FROM face_templates WHERE user_id = $1 ORDER BY created_at, id")
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rows::face).collect()
    }

    /// Every template made by `pack` (the 1:N gallery).
    pub async fn faces_by_pack(&self, pack: &str) -> Result<Vec<facegate_core::face::FaceTemplate>> {
        let rows = sqlx::query("SELECT * FROM face_templates WHERE pack = $1")
            .bind(pack)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rows::face).collect()
    }

    pub async fn delete_face(&self, user_id: &str, id: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM face_templates WHERE user_id = $1 AND id = $2")
            .bind(user_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    pub async fn delete_faces(&self, user_id: &str) -> Result<u64> {
        let r = sqlx::query("DELETE FROM face_templates WHERE user_id = $1")
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    /// Records an audit event (never images or embeddings).
    pub async fn audit(
        &self,
        kind: &str,
        user_id: Option<&str>,
        ip: Option<&str>,
        result: &str,
        detail: Option<&str>,
        at: i64,
    ) -> Result<()> {
        sqlx::query("INSERT INTO audit_events (id, at, kind, user_id, ip, result, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(facegate_core::secret::random_token(12))
            .bind(at)
            .bind(kind)
            .bind(user_id.map(String::from))
            .bind(ip.map(String::from))
            .bind(result)
            .bind(detail.map(String::from))
            .execute(&self.pool)
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

    pub async fn setting(&self, key: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("value")).transpose()?)
    }

    /// Stores `value` under `key` unless a value is already there; returns the value in force.
    pub async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String> {
        sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await?;
        self.setting(key)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("setting {key} vanished")))
    }

    pub async fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = $2",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
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
        .execute(&self.pool)
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
            "INSERT INTO clients (client_id, secret_hash, name, redirect_uris, post_logout_redirect_uris, grant_types, auth_method, scope, jwks, skip_consent, registration_token_hash, created_at, id_token_alg, subject_type, resource_server) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
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
        .execute(&self.pool)
        .await
        .map_err(|e| conflict_or(e, "a client with that id"))?;
        Ok(())
    }

    /// Replaces a client's metadata (and its registration token hash, when given).
    pub async fn update_client(&self, c: &Client, registration_token_hash: Option<&str>) -> Result<()> {
        sqlx::query(
            "UPDATE clients SET secret_hash = $2, name = $3, redirect_uris = $4, post_logout_redirect_uris = $5, grant_types = $6, \
             auth_method = $7, scope = $8, jwks = $9, skip_consent = $10, registration_token_hash = COALESCE($11, registration_token_hash), \
             id_token_alg = $12, subject_type = $13, resource_server = $14 WHERE client_id = $1",
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
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn client(&self, client_id: &str) -> Result<Option<Client>> {
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
        sqlx::query("DELETE FROM tokens WHERE client_id = $1")
            .bind(client_id)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM grants WHERE client_id = $1")
            .bind(client_id)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM consents WHERE client_id = $1")
            .bind(client_id)
            .execute(&self.pool)
            .await?;
        let r = sqlx::query("DELETE FROM clients WHERE client_id = $1")
            .bind(client_id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    // ---- signing keys

    pub async fn insert_key(&self, k: &StoredKey) -> Result<()> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, pkcs8, created_at, retired_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&k.kid)
        .bind(&k.alg)
        .bind(k.pkcs8.clone())
        .bind(k.created_at)
        .bind(k.retired_at)
        .execute(&self.pool)
        .await
        .map_err(|e| conflict_or(e, "a key with that kid"))?;
        Ok(())
    }

    /// Every key, newest first.
    pub async fn keys(&self) -> Result<Vec<StoredKey>> {
        let rows = sqlx::query("SELECT * FROM signing_keys ORDER BY created_at DESC, kid")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rows::key).collect()
    }

    /// Marks every active key of `alg` except `keep` as retired at `at`.
    pub async fn retire_keys(&self, alg: &str, keep: &str, at: i64) -> Result<()> {
        sqlx::query(
            "UPDATE signing_keys SET retired_at = $1 WHERE alg = $2 AND kid <> $3 AND retired_at IS NULL",
        )
        .bind(at)
        .bind(alg)
        .bind(keep)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn delete_keys_retired_before(&self, before: i64) -> Result<u64> {
        let r = sqlx::query("DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    // ---- login sessions

    pub async fn create_session(&self, s: &StoredSession) -> Result<()> {
        sqlx::query("INSERT INTO sessions (id_hash, user_id, auth_time, amr, acr, expires_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&s.id_hash)
            .bind(&s.user_id)
            .bind(s.auth_time)
            .bind(json_list(&s.amr))
            .bind(s.acr.clone())
            .bind(s.expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
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
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ---- pending authorization requests (kept while the person logs in)

    pub async fn put_auth_request(&self, id: &str, json: &str, expires_at: i64) -> Result<()> {
        sqlx::query("INSERT INTO auth_requests (id, request, expires_at) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(json)
            .bind(expires_at)
            .execute(&self.pool)
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
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn delete_auth_request(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM auth_requests WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
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
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    // ---- grants, codes and tokens

    pub async fn create_grant(&self, g: &Grant) -> Result<()> {
        self.issue(Some(g), &[]).await
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
            .execute(&self.pool)
            .await?;
        sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE grant_id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
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
        .execute(&self.pool)
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
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Consumes a code: the first call wins (an atomic update), later calls learn it was reused.
    pub async fn use_code(&self, code_hash: &str, now: i64) -> Result<CodeUse> {
        let first = sqlx::query(
            "UPDATE auth_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL \
             RETURNING grant_id, redirect_uri, code_challenge, expires_at",
        )
        .bind(now)
        .bind(code_hash)
        .fetch_optional(&self.pool)
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
        self.issue(None, std::slice::from_ref(t)).await
    }

    /// Stores a new grant (if given) and tokens under it, in one round trip to the database: the
    /// statements run in order (grant first), each durable when this returns. Should a later one
    /// fail, what is left is a grant or token nobody holds.
    pub async fn issue(&self, grant: Option<&Grant>, tokens: &[Token]) -> Result<()> {
        let mut sql = String::new();
        let mut n = 0;
        let mut params = |count: usize| {
            let list: Vec<String> = (n + 1..=n + count).map(|i| format!("${i}")).collect();
            n += count;
            list.join(", ")
        };
        if grant.is_some() {
            sql.push_str(&format!("{GRANT_INSERT} ({}, NULL, {});", params(10), params(1)));
        }
        for _ in tokens {
            sql.push_str(&format!(
                "{TOKEN_INSERT} ({}, NULL, NULL, {});",
                params(7),
                params(1)
            ));
        }
        // Built from the constants above only: no input reaches the SQL text.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some(g) = grant {
            q = bind_grant(q, g);
        }
        for t in tokens {
            q = bind_token(q, t);
        }
        q.execute(&self.pool).await?;
        Ok(())
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
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn revoke_token(&self, token_hash: &str, now: i64) -> Result<()> {
        sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes expired codes, tokens, sessions and pending requests. A used code is kept while any
    /// token of its grant may still be live, so that a replay of it is recognised and revokes them.
    pub async fn purge_expired(&self, now: i64) -> Result<()> {
        for q in [
            "DELETE FROM auth_codes WHERE expires_at < $1 AND (used_at IS NULL OR NOT EXISTS \
             (SELECT 1 FROM tokens t WHERE t.grant_id = auth_codes.grant_id AND t.expires_at >= $1 AND t.revoked_at IS NULL))",
            "DELETE FROM tokens WHERE expires_at < $1",
            "DELETE FROM sessions WHERE expires_at < $1",
            "DELETE FROM auth_requests WHERE expires_at < $1",
        ] {
            sqlx::query(q).bind(now).execute(&self.pool).await?;
        }
        Ok(())
    }
}

const GRANT_INSERT: &str = "INSERT INTO grants (id, client_id, user_id, scope, auth_time, amr, acr, nonce, sid, created_at, revoked_at, claims) VALUES";
const TOKEN_INSERT: &str = "INSERT INTO tokens (token_hash, kind, grant_id, client_id, user_id, scope, expires_at, used_at, revoked_at, created_at) VALUES";

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

fn bind_grant<'q>(q: AnyQuery<'q>, g: &Grant) -> AnyQuery<'q> {
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

    async fn client(&self, client_id: &str) -> Result<Option<Client>> {
        Store::client(self, client_id).await
    }
    async fn user(&self, id: &str) -> Result<Option<User>> {
        Store::user(self, id).await
    }
    async fn grant(&self, id: &str) -> Result<Option<Grant>> {
        Store::grant(self, id).await
    }
    async fn issue(&self, grant: Option<&Grant>, tokens: &[Token]) -> Result<()> {
        Store::issue(self, grant, tokens).await
    }
    async fn revoke_grant(&self, id: &str, now: i64) -> Result<()> {
        Store::revoke_grant(self, id, now).await
    }
    async fn use_code(&self, code_hash: &str, now: i64) -> Result<CodeUse> {
        Store::use_code(self, code_hash, now).await
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
}
