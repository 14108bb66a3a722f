//! Access keys of the Rekognition-compatible API (issue 20): an access key id names an API client;
//! its secret is kept sealed by the server (this crate stores and returns the sealed text as is and
//! never sees the secret).

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Result, Store, conflict_or};

/// One access key.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsAccessKey {
    pub access_key_id: String,
    pub client_id: String,
    /// The secret access key, sealed by the server (opaque here).
    pub secret_sealed: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

impl std::fmt::Debug for AwsAccessKey {
    // The sealed secret is left out of logs all the same.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AwsAccessKey({} of {})", self.access_key_id, self.client_id)
    }
}

fn key(r: &AnyRow) -> Result<AwsAccessKey> {
    Ok(AwsAccessKey {
        access_key_id: r.try_get("access_key_id")?,
        client_id: r.try_get("client_id")?,
        secret_sealed: r.try_get("secret_sealed")?,
        created_at: r.try_get("created_at")?,
        last_used_at: r.try_get("last_used_at")?,
    })
}

const COLUMNS: &str = "access_key_id, client_id, secret_sealed, created_at, last_used_at";

impl Store {
    pub async fn insert_aws_key(&self, k: &AwsAccessKey) -> Result<()> {
        sqlx::query(
            "INSERT INTO aws_access_keys (access_key_id, client_id, secret_sealed, created_at, last_used_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&k.access_key_id)
        .bind(&k.client_id)
        .bind(&k.secret_sealed)
        .bind(k.created_at)
        .bind(k.last_used_at)
        .execute(&self.writer)
        .await
        .map_err(|e| conflict_or(e, "an access key with that id"))?;
        Ok(())
    }

    pub async fn aws_key(&self, access_key_id: &str) -> Result<Option<AwsAccessKey>> {
        let sql = format!("SELECT {COLUMNS} FROM aws_access_keys WHERE access_key_id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(access_key_id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(key)
            .transpose()
    }

    /// Every access key (of one client, when given), oldest first.
    pub async fn aws_keys(&self, client_id: Option<&str>) -> Result<Vec<AwsAccessKey>> {
        let rows = match client_id {
            Some(c) => {
                let sql = format!(
                    "SELECT {COLUMNS} FROM aws_access_keys WHERE client_id = $1 ORDER BY created_at, access_key_id"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(c)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                let sql = format!("SELECT {COLUMNS} FROM aws_access_keys ORDER BY created_at, access_key_id");
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(key).collect()
    }

    /// Deletes an access key; whether it existed.
    pub async fn delete_aws_key(&self, access_key_id: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM aws_access_keys WHERE access_key_id = $1")
            .bind(access_key_id)
            .execute(&self.writer)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Records that a key signed a request at `now` (at most once a minute per key is written).
    pub async fn touch_aws_key(&self, access_key_id: &str, now: i64) -> Result<()> {
        sqlx::query(
            "UPDATE aws_access_keys SET last_used_at = $2 WHERE access_key_id = $1 AND (last_used_at IS NULL OR last_used_at < $3)",
        )
        .bind(access_key_id)
        .bind(now)
        .bind(now - 60)
        .execute(&self.writer)
        .await?;
        Ok(())
    }
}
