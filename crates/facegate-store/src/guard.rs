//! Login throttles in the database, so a lockout holds on every instance (PostgreSQL). The same rules
//! as the in-memory `LoginGuard` (facegate_core::throttle): an attempt counts on every key before it
//! is verified (an atomic increment, so parallel attempts through several instances all count).

use std::time::Duration;

use facegate_core::throttle::{AttemptGuard, policy_for};
use sqlx::Row;

use crate::{Result, Store};

/// The throttle shared by every instance on this database.
#[derive(Debug, Clone)]
pub struct SharedGuard {
    store: Store,
}

/// The wall clock in milliseconds (throttle and rate-bucket times).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

impl SharedGuard {
    pub fn new(store: Store) -> SharedGuard {
        SharedGuard { store }
    }

    /// The latest lock among `keys` (0: none), in one query.
    async fn blocked_until(&self, keys: &[String]) -> Result<i64> {
        if keys.is_empty() {
            return Ok(0);
        }
        let list: Vec<String> = (1..=keys.len()).map(|i| format!("${i}")).collect();
        // Only placeholders reach the SQL text.
        let sql = format!(
            "SELECT COALESCE(MAX(blocked_until), 0) FROM login_attempts WHERE key IN ({})",
            list.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for k in keys {
            q = q.bind(k);
        }
        Ok(q.fetch_one(&self.store.writer).await?.try_get(0)?)
    }

    /// One more failure on `key` (reset first when its window has passed), atomically.
    async fn count(&self, key: &str, now: i64) -> Result<()> {
        let p = policy_for(key);
        let window = ms(p.window);
        let failures: i64 = sqlx::query(
            "INSERT INTO login_attempts (key, failures, first_at, blocked_until) VALUES ($1, 1, $2, $2) \
             ON CONFLICT (key) DO UPDATE SET \
               failures = CASE WHEN login_attempts.first_at < $3 AND login_attempts.blocked_until <= $2 THEN 1 ELSE login_attempts.failures + 1 END, \
               first_at = CASE WHEN login_attempts.first_at < $3 AND login_attempts.blocked_until <= $2 THEN $2 ELSE login_attempts.first_at END \
             RETURNING failures",
        )
        .bind(key)
        .bind(now)
        .bind(now - window)
        .fetch_one(&self.store.writer)
        .await?
        .try_get(0)?;
        self.set_wait(key, failures, now).await
    }

    async fn set_wait(&self, key: &str, failures: i64, now: i64) -> Result<()> {
        let wait = policy_for(key).wait_after(u32::try_from(failures).unwrap_or(u32::MAX));
        // Never shorten a lock another attempt set meanwhile.
        sqlx::query(
            "UPDATE login_attempts SET blocked_until = CASE WHEN blocked_until > $2 AND failures > $3 THEN blocked_until ELSE $2 END WHERE key = $1",
        )
        .bind(key)
        .bind(now.saturating_add(ms(wait)))
        .bind(failures)
        .execute(&self.store.writer)
        .await?;
        Ok(())
    }

    async fn give_back(&self, key: &str, now: i64) -> Result<()> {
        let row = sqlx::query(
            "UPDATE login_attempts SET failures = CASE WHEN failures > 0 THEN failures - 1 ELSE 0 END WHERE key = $1 RETURNING failures",
        )
        .bind(key)
        .fetch_optional(&self.store.writer)
        .await?;
        match row {
            Some(r) => {
                let failures: i64 = r.try_get(0)?;
                if failures == 0 {
                    self.clear(key).await
                } else {
                    self.set_wait(key, failures, now).await
                }
            }
            None => Ok(()),
        }
    }

    async fn clear(&self, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM login_attempts WHERE key = $1")
            .bind(key)
            .execute(&self.store.writer)
            .await?;
        Ok(())
    }

    async fn try_begin(&self, keys: &[String]) -> Result<std::result::Result<(), Duration>> {
        let now = now_ms();
        let until = self.blocked_until(keys).await?;
        if until > now {
            return Ok(Err(Duration::from_millis((until - now) as u64)));
        }
        for k in keys {
            self.count(k, now).await?;
        }
        Ok(Ok(()))
    }
}

/// A database that cannot answer holds attempts back (fail closed), for a second.
fn held(e: &crate::StoreError) -> Duration {
    tracing::error!("login throttle: {e}");
    Duration::from_secs(1)
}

impl AttemptGuard for SharedGuard {
    async fn begin(&self, keys: &[String]) -> std::result::Result<(), Duration> {
        match self.try_begin(keys).await {
            Ok(r) => r,
            Err(e) => Err(held(&e)),
        }
    }

    async fn end(&self, keys: &[String], ok: bool) {
        if !ok {
            return;
        }
        let now = now_ms();
        for k in keys {
            let r = if k.contains('|') && !k.starts_with("acct:") {
                self.clear(k).await
            } else {
                self.give_back(k, now).await
            };
            if let Err(e) = r {
                held(&e);
            }
        }
    }

    async fn refund(&self, keys: &[String]) {
        let now = now_ms();
        for k in keys {
            if let Err(e) = self.give_back(k, now).await {
                held(&e);
            }
        }
    }

    async fn waiting(&self, keys: &[String]) -> Option<Duration> {
        let now = now_ms();
        match self.blocked_until(keys).await {
            Ok(until) if until > now => Some(Duration::from_millis((until - now) as u64)),
            Ok(_) => None,
            Err(e) => Some(held(&e)),
        }
    }

    async fn fail(&self, keys: &[String]) {
        let now = now_ms();
        for k in keys {
            if let Err(e) = self.count(k, now).await {
                held(&e);
            }
        }
    }
}
