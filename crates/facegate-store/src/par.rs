//! Pushed authorization requests (RFC 9126), for `facegate_oidc::engine::par`: kept in the table
//! of pending requests under a key derived from the client and the request_uri, taken once.

use sqlx::Row;

use crate::{Result, Store};

impl Store {
    pub async fn push_request(&self, key: &str, json: &str, expires_at: i64) -> Result<()> {
        self.put_auth_request(key, json, expires_at).await
    }

    /// Deletes and returns an unexpired pushed request: of concurrent calls, one gets it.
    pub async fn take_pushed_request(&self, key: &str, now: i64) -> Result<Option<String>> {
        let row =
            sqlx::query("DELETE FROM auth_requests WHERE id = $1 AND expires_at > $2 RETURNING request")
                .bind(key)
                .bind(now)
                .fetch_optional(&self.writer)
                .await?;
        Ok(row.map(|r| r.try_get::<String, _>("request")).transpose()?)
    }
}
