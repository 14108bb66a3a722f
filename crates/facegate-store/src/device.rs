//! Device authorization requests (RFC 8628), for `facegate_oidc::engine::device`. Both codes are
//! stored as hashes only.

use facegate_oidc::engine::Grant;
use facegate_oidc::engine::device::{DeviceAuthorization, DeviceStatus};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{GRANT_INSERT, Result, Store, StoreError, bind_grant};

fn device(r: &AnyRow) -> Result<DeviceAuthorization> {
    let status: String = r.try_get("status")?;
    Ok(DeviceAuthorization {
        device_code_hash: r.try_get("device_code_hash")?,
        user_code_hash: r.try_get("user_code_hash")?,
        client_id: r.try_get("client_id")?,
        scope: r.try_get("scope")?,
        expires_at: r.try_get("expires_at")?,
        interval: r.try_get("interval_secs")?,
        last_poll_at: r.try_get("last_poll_at")?,
        status: DeviceStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("device status {status:?}")))?,
        grant_id: r.try_get("grant_id")?,
        created_at: r.try_get("created_at")?,
    })
}

impl Store {
    /// Stores a new device request; false if its user code is already taken.
    pub async fn create_device_authorization(&self, d: &DeviceAuthorization) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO device_codes (device_code_hash, user_code_hash, client_id, scope, expires_at, \
             interval_secs, last_poll_at, status, grant_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, NULL, $8)",
        )
        .bind(d.device_code_hash.clone())
        .bind(d.user_code_hash.clone())
        .bind(d.client_id.clone())
        .bind(d.scope.clone())
        .bind(d.expires_at)
        .bind(d.interval)
        .bind(d.status.as_str())
        .bind(d.created_at)
        .execute(&self.writer)
        .await;
        match r {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn device(&self, device_code_hash: &str) -> Result<Option<DeviceAuthorization>> {
        let row = sqlx::query("SELECT * FROM device_codes WHERE device_code_hash = $1")
            .bind(device_code_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| device(&r)).transpose()
    }

    pub async fn device_by_user_code(&self, user_code_hash: &str) -> Result<Option<DeviceAuthorization>> {
        let row = sqlx::query("SELECT * FROM device_codes WHERE user_code_hash = $1")
            .bind(user_code_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| device(&r)).transpose()
    }

    pub async fn device_polled(&self, device_code_hash: &str, now: i64, interval: i64) -> Result<()> {
        sqlx::query(
            "UPDATE device_codes SET last_poll_at = $1, interval_secs = $2 WHERE device_code_hash = $3",
        )
        .bind(now)
        .bind(interval)
        .bind(device_code_hash)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Approves (with `grant`, stored in the same transaction) or denies a pending, unexpired request.
    pub async fn decide_device(&self, user_code_hash: &str, grant: Option<&Grant>, now: i64) -> Result<bool> {
        let mut tx = self.writer.begin().await?;
        if let Some(g) = grant {
            let sql = format!("{GRANT_INSERT} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)");
            bind_grant(sqlx::query(sqlx::AssertSqlSafe(sql)), g)
                .execute(&mut *tx)
                .await?;
        }
        let r = sqlx::query(
            "UPDATE device_codes SET status = $1, grant_id = $2 \
             WHERE user_code_hash = $3 AND status = 'pending' AND expires_at > $4",
        )
        .bind(if grant.is_some() { "approved" } else { "denied" })
        .bind(grant.map(|g| g.id.clone()))
        .bind(user_code_hash)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Marks an approved device code used (the first exchange wins).
    pub async fn use_device(&self, device_code_hash: &str, now: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE device_codes SET status = 'used', last_poll_at = $1 \
             WHERE device_code_hash = $2 AND status = 'approved'",
        )
        .bind(now)
        .bind(device_code_hash)
        .execute(&self.writer)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Deletes expired device requests; a used one is kept while its grant's tokens may be live,
    /// so that a replay of it is recognised and revokes them.
    pub(crate) async fn delete_client_devices(&self, client_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM device_codes WHERE client_id = $1")
            .bind(client_id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}
