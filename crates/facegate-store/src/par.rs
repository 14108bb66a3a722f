//! Pushed authorization requests (RFC 9126), for `facegate_oidc::engine::par`: kept in the table
//! of pending requests under a key derived from the client and the request_uri, taken once. And
//! the clients of a login session, for back-channel logout (`facegate_oidc::engine::logout`).

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

    /// The clients granted something in login session `sid`, each with the person: who gets a
    /// back-channel logout token when it ends.
    pub async fn session_clients(&self, sid: &str) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT DISTINCT client_id, user_id FROM grants WHERE sid = $1 AND user_id IS NOT NULL ORDER BY client_id",
        )
        .bind(sid)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("client_id")?, r.try_get("user_id")?)))
            .collect()
    }
}
