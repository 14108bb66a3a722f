//! Small pieces of state that every instance on one database must see (issue 14): admin page
//! sessions, per-second API rate buckets, and the `private_key_jwt` assertion ids already used.
//! Each operation is one statement, atomic under concurrent instances.

use sqlx::Row;

use crate::{Result, Store};

/// The outcome of taking a token from a shared bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bucket {
    Taken,
    /// Empty: retry in this many seconds (at least 1).
    Wait(u64),
}

impl Store {
    /// Records an admin page session (its hash) until `expires_at`.
    pub async fn add_admin_session(&self, hash: &str, expires_at: i64) -> Result<()> {
        sqlx::query("INSERT INTO admin_sessions (session_hash, expires_at) VALUES ($1, $2)")
            .bind(hash)
            .bind(expires_at)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Whether an admin page session (its hash) exists and has not expired at `now`.
    pub async fn admin_session_valid(&self, hash: &str, now: i64) -> Result<bool> {
        Ok(
            sqlx::query("SELECT 1 FROM admin_sessions WHERE session_hash = $1 AND expires_at > $2")
                .bind(hash)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }

    pub async fn remove_admin_session(&self, hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM admin_sessions WHERE session_hash = $1")
            .bind(hash)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Takes one token from the bucket `key` (`rate` tokens a second, holding `burst` at most), in
    /// one atomic statement, so instances sharing the database share the rate. `now_ms`: the
    /// caller's clock in milliseconds (instances' clocks are assumed in step, as for token expiry).
    pub async fn take_token(&self, key: &str, rate: f64, burst: u32, now_ms: i64) -> Result<Bucket> {
        let burst = f64::from(burst.max(1));
        let min = match self.backend() {
            crate::Backend::Postgres => "LEAST",
            crate::Backend::Sqlite => "MIN",
        };
        // The bucket refilled since its last use, capped at the burst; a token is taken when a
        // whole one is there. A refused request takes nothing (no debt), but does record the refill.
        let refill = format!(
            "{min}($3, rate_buckets.tokens + (CAST($2 AS DOUBLE PRECISION) - rate_buckets.updated_ms) * $4 / 1000.0)"
        );
        let sql = format!(
            "INSERT INTO rate_buckets (key, tokens, taken, updated_ms) VALUES ($1, $3 - 1, TRUE, $2) \
             ON CONFLICT (key) DO UPDATE SET \
               taken = ({refill} >= 1), \
               tokens = CASE WHEN {refill} >= 1 THEN {refill} - 1 ELSE {refill} END, \
               updated_ms = $2 \
             RETURNING CAST(CASE WHEN taken THEN 1 ELSE 0 END AS BIGINT), tokens"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(key)
            .bind(now_ms)
            .bind(burst)
            .bind(rate)
            .fetch_one(&self.writer)
            .await?;
        let taken: i64 = row.try_get(0)?;
        if taken == 1 {
            return Ok(Bucket::Taken);
        }
        let tokens: f64 = row.try_get(1)?;
        let wait = ((1.0 - tokens) / rate.max(1e-9)).ceil();
        Ok(Bucket::Wait(if wait.is_finite() {
            (wait as u64).max(1)
        } else {
            1
        }))
    }

    /// Records a client assertion's `key` (`client_id:jti`) until `expires_at`; false when it was
    /// recorded before (a replayed assertion), on any instance.
    pub async fn remember_assertion(&self, key: &str, expires_at: i64) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO client_assertions (assertion_key, expires_at) VALUES ($1, $2) \
             ON CONFLICT (assertion_key) DO NOTHING",
        )
        .bind(key)
        .bind(expires_at)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Stores a liveness check's state when `version` is newer than the stored one; false when
    /// another instance stored a newer (or the same) version first: this instance lost a race.
    pub async fn save_check(&self, id: &str, version: i64, state: &[u8], expires_at: i64) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO liveness_checks (id, version, state, expires_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO UPDATE SET version = excluded.version, state = excluded.state, \
               expires_at = excluded.expires_at \
             WHERE liveness_checks.version < excluded.version",
        )
        .bind(id)
        .bind(version)
        .bind(self.seal(&format!("liveness_checks:{id}"), state)?)
        .bind(expires_at)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A stored liveness check: (version, state), unless it is unknown or expired at `now`.
    pub async fn load_check(&self, id: &str, now: i64) -> Result<Option<(i64, Vec<u8>)>> {
        let row = sqlx::query("SELECT version, state FROM liveness_checks WHERE id = $1 AND expires_at > $2")
            .bind(id)
            .bind(now)
            .fetch_optional(&self.writer)
            .await?;
        row.map(|r| {
            Ok((
                r.try_get(0)?,
                self.open_value(&format!("liveness_checks:{id}"), r.try_get(1)?)?,
            ))
        })
        .transpose()
    }
}
