//! Accounts (issue 15): email links, invitations, disabled accounts, what the account page lists
//! (sessions, connected applications) and what the admin page searches (users, the audit log).
//! Email links and invitations are stored as hashes of their secret only; using one is a single
//! conditional update, so two uses of one link never both succeed.

use facegate_core::User;
use sqlx::Row;

use crate::{Result, Store, StoreError, json_list, rows};

/// What an email link was sent for, and what it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailLink {
    pub user_id: String,
    /// The address it was sent to (a change of address: the new one).
    pub email: Option<String>,
}

/// A signed-in session as the account page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The session's public handle (its `sid`).
    pub sid: String,
    pub auth_time: i64,
    pub created_at: Option<i64>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub amr: Vec<String>,
}

/// A user as the admin page lists them.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRow {
    pub user: User,
    pub disabled_at: Option<i64>,
    pub has_password: bool,
    pub faces: i64,
}

/// An audit event as the admin page and `facegate admin audit` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub at: i64,
    pub kind: String,
    pub user_id: Option<String>,
    pub username: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub result: String,
    pub detail: Option<String>,
}

/// Which audit events to show; every field narrows.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// A user id or username.
    pub user: Option<String>,
    pub client: Option<String>,
    pub kind: Option<String>,
    pub outcome: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub limit: i64,
}

/// A `users` row with its `face_count`.
fn user_row(r: &sqlx::any::AnyRow) -> Result<UserRow> {
    Ok(UserRow {
        user: rows::user(r)?,
        disabled_at: r.try_get("disabled_at")?,
        has_password: r.try_get::<Option<String>, _>("password_hash")?.is_some(),
        faces: r.try_get("face_count")?,
    })
}

/// The length of a session's public handle (a prefix of its cookie's storage hash).
const SID_LEN: i64 = 22;

impl Store {
    // ---- email links

    /// Stores a new email link (`token_hash` is the storage hash of the secret sent). Earlier
    /// unused links of the same purpose for the same account stop working: only the newest counts.
    pub async fn put_email_link(
        &self,
        token_hash: &str,
        user_id: &str,
        purpose: &str,
        email: Option<&str>,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE email_tokens SET used_at = $1 WHERE user_id = $2 AND purpose = $3 AND used_at IS NULL",
        )
        .bind(now)
        .bind(user_id)
        .bind(purpose)
        .execute(&self.writer)
        .await?;
        sqlx::query(
            "INSERT INTO email_tokens (token_hash, user_id, purpose, email, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(purpose)
        .bind(email.map(String::from))
        .bind(now)
        .bind(expires_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Uses up an email link: `Some` exactly once, while it has not expired; `None` for an unknown,
    /// used, superseded or expired link, or one of another purpose.
    pub async fn take_email_link(
        &self,
        token_hash: &str,
        purpose: &str,
        now: i64,
    ) -> Result<Option<EmailLink>> {
        let row = sqlx::query(
            "UPDATE email_tokens SET used_at = $1 WHERE token_hash = $2 AND purpose = $3 AND used_at IS NULL AND expires_at > $1 \
             RETURNING user_id, email",
        )
        .bind(now)
        .bind(token_hash)
        .bind(purpose)
        .fetch_optional(&self.writer)
        .await?;
        row.map(|r| {
            Ok(EmailLink {
                user_id: r.try_get("user_id")?,
                email: r.try_get("email")?,
            })
        })
        .transpose()
    }

    /// Whether an email link is still usable (the page that asks for a new password checks
    /// before showing its form; only [`Store::take_email_link`] uses it up).
    pub async fn email_link_usable(&self, token_hash: &str, purpose: &str, now: i64) -> Result<bool> {
        let row = sqlx::query(
            "SELECT 1 FROM email_tokens WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3",
        )
        .bind(token_hash)
        .bind(purpose)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// The account an email link belongs to (used or not).
    pub async fn email_link_owner(&self, token_hash: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT user_id FROM email_tokens WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("user_id")).transpose()?)
    }

    // ---- invitations

    pub async fn put_invite(
        &self,
        token_hash: &str,
        email: Option<&str>,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO invites (token_hash, email, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(email.map(String::from))
        .bind(now)
        .bind(expires_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Whether an invitation can still be used, and the address it was made for.
    pub async fn invite(&self, token_hash: &str, now: i64) -> Result<Option<Option<String>>> {
        let row = sqlx::query(
            "SELECT email FROM invites WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get("email")).transpose()?)
    }

    /// Uses up an invitation (once).
    pub async fn take_invite(&self, token_hash: &str, now: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE invites SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(token_hash)
        .execute(&self.writer)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    // ---- account fields

    /// The account with this email address (compared case-insensitively), if one has it: one that
    /// confirmed it before one that did not (an address is not unique until it is confirmed, so an
    /// account opened with someone else's address cannot catch their reset links).
    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        let row =
            sqlx::query("SELECT * FROM users WHERE lower(email) = lower($1) ORDER BY email_verified DESC, created_at LIMIT 1")
                .bind(email)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| rows::user(&r)).transpose()
    }

    pub async fn set_password_hash(&self, user_id: &str, hash: Option<&str>) -> Result<()> {
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(hash.map(String::from))
            .bind(user_id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub async fn password_hash(&self, user_id: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT password_hash FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.and_then(|r| r.try_get("password_hash").ok()).flatten())
    }

    pub async fn set_email(&self, user_id: &str, email: &str, verified: bool) -> Result<()> {
        sqlx::query("UPDATE users SET email = $1, email_verified = $2 WHERE id = $3")
            .bind(email)
            .bind(i64::from(verified))
            .bind(user_id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub async fn set_name(&self, user_id: &str, name: Option<&str>) -> Result<()> {
        sqlx::query("UPDATE users SET name = $1 WHERE id = $2")
            .bind(name.map(String::from))
            .bind(user_id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Disables (`Some(at)`) or enables (`None`) an account.
    pub async fn set_disabled(&self, user_id: &str, at: Option<i64>) -> Result<bool> {
        let r = sqlx::query("UPDATE users SET disabled_at = $1 WHERE id = $2")
            .bind(at)
            .bind(user_id)
            .execute(&self.writer)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Marks an account as one that must confirm its address before it signs in to applications
    /// (an account opened on the sign-up page).
    pub async fn require_confirmation(&self, user_id: &str) -> Result<()> {
        sqlx::query("UPDATE users SET confirm_required = 1 WHERE id = $1")
            .bind(user_id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Whether the account must confirm its address before it signs in to applications: opened on
    /// the sign-up page, and its address not confirmed yet.
    pub async fn confirmation_pending(&self, user_id: &str) -> Result<bool> {
        let row = sqlx::query("SELECT confirm_required, email_verified FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => {
                r.try_get::<i64, _>("confirm_required")? != 0 && r.try_get::<i64, _>("email_verified")? == 0
            }
            None => false,
        })
    }

    /// When the account was disabled, if it is.
    pub async fn disabled_at(&self, user_id: &str) -> Result<Option<i64>> {
        let row = sqlx::query("SELECT disabled_at FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .and_then(|r| r.try_get::<Option<i64>, _>("disabled_at").ok())
            .flatten())
    }

    /// An account by id, or else by username.
    pub async fn find_user(&self, id_or_username: &str) -> Result<Option<User>> {
        if let Some(u) = self.user(id_or_username).await? {
            return Ok(Some(u));
        }
        Ok(self
            .user_with_password(&id_or_username.trim().to_lowercase())
            .await?
            .map(|(u, _)| u))
    }

    // ---- sessions of an account

    /// Stores a session with what the account page shows of it (when, from where, which browser).
    pub async fn create_session_with(
        &self,
        s: &crate::StoredSession,
        created_at: i64,
        ip: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<()> {
        let factors = serde_json::to_string(&s.factors).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, auth_time, amr, acr, expires_at, factors, created_at, ip, user_agent) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&s.id_hash)
        .bind(&s.user_id)
        .bind(s.auth_time)
        .bind(json_list(&s.amr))
        .bind(s.acr.clone())
        .bind(s.expires_at)
        .bind(factors)
        .bind(created_at)
        .bind(ip.map(String::from))
        .bind(user_agent.map(|u| u.chars().take(200).collect::<String>()))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// The account's live sessions, newest first.
    pub async fn sessions_of(&self, user_id: &str, now: i64) -> Result<Vec<SessionInfo>> {
        let rows = sqlx::query(
            "SELECT id_hash, auth_time, created_at, ip, user_agent, amr FROM sessions WHERE user_id = $1 AND expires_at > $2 \
             ORDER BY auth_time DESC LIMIT 100",
        )
        .bind(user_id)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let hash: String = r.try_get("id_hash")?;
                let amr: String = r.try_get("amr")?;
                Ok(SessionInfo {
                    sid: hash.chars().take(SID_LEN as usize).collect(),
                    auth_time: r.try_get("auth_time")?,
                    created_at: r.try_get("created_at")?,
                    ip: r.try_get("ip")?,
                    user_agent: r.try_get("user_agent")?,
                    amr: serde_json::from_str(&amr).unwrap_or_default(),
                })
            })
            .collect()
    }

    /// Ends the account's sessions, all of them or all but the one with storage hash `keep`.
    /// Returns the handles (`sid`) of the sessions ended.
    pub async fn end_sessions(&self, user_id: &str, keep: Option<&str>) -> Result<Vec<String>> {
        let rows = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id_hash <> $2 RETURNING id_hash")
            .bind(user_id)
            .bind(keep.unwrap_or(""))
            .fetch_all(&self.writer)
            .await?;
        rows.iter()
            .map(|r| {
                let h: String = r.try_get("id_hash")?;
                Ok(h.chars().take(SID_LEN as usize).collect())
            })
            .collect()
    }

    /// Ends one of the account's sessions by its handle; false when it has no such session.
    pub async fn end_session_by_sid(&self, user_id: &str, sid: &str) -> Result<bool> {
        if sid.len() != SID_LEN as usize {
            return Ok(false);
        }
        let r = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND substr(id_hash, 1, 22) = $2")
            .bind(user_id)
            .bind(sid)
            .execute(&self.writer)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Revokes every grant and token of the account (a password reset, a disabled or deleted
    /// account): refresh tokens and access tokens stop working at once.
    pub async fn revoke_user_tokens(&self, user_id: &str, now: i64) -> Result<u64> {
        sqlx::query("UPDATE grants SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(user_id)
            .execute(&self.writer)
            .await?;
        let r = sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(user_id)
            .execute(&self.writer)
            .await?;
        Ok(r.rows_affected())
    }

    /// Revokes the refresh tokens of the account only (a change of password).
    pub async fn revoke_user_refresh_tokens(&self, user_id: &str, now: i64) -> Result<u64> {
        let r = sqlx::query(
            "UPDATE tokens SET revoked_at = $1 WHERE user_id = $2 AND kind = 'refresh' AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(user_id)
        .execute(&self.writer)
        .await?;
        Ok(r.rows_affected())
    }

    // ---- connected applications

    /// The applications the account has allowed or holds live grants with: (client_id, name,
    /// scope, since), by name.
    pub async fn connected_apps(&self, user_id: &str) -> Result<Vec<(String, String, String, i64)>> {
        let rows = sqlx::query(
            "SELECT c.client_id AS client_id, c.name AS name, x.scope AS scope, x.since AS since FROM ( \
               SELECT client_id, scope, created_at AS since FROM consents WHERE user_id = $1 \
               UNION ALL \
               SELECT client_id, MAX(scope) AS scope, MIN(created_at) AS since FROM grants \
                 WHERE user_id = $1 AND revoked_at IS NULL AND client_id NOT IN (SELECT client_id FROM consents WHERE user_id = $1) \
                 GROUP BY client_id \
             ) x JOIN clients c ON c.client_id = x.client_id ORDER BY c.name",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("client_id")?,
                    r.try_get("name")?,
                    r.try_get("scope")?,
                    r.try_get("since")?,
                ))
            })
            .collect()
    }

    /// Takes back an application's access: its consent is forgotten (it must ask again) and its
    /// grants and tokens for this account are revoked.
    pub async fn revoke_app(&self, user_id: &str, client_id: &str, now: i64) -> Result<bool> {
        let consent = sqlx::query("DELETE FROM consents WHERE user_id = $1 AND client_id = $2")
            .bind(user_id)
            .bind(client_id)
            .execute(&self.writer)
            .await?;
        let grants = sqlx::query(
            "UPDATE grants SET revoked_at = $1 WHERE user_id = $2 AND client_id = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(user_id)
        .bind(client_id)
        .execute(&self.writer)
        .await?;
        sqlx::query(
            "UPDATE tokens SET revoked_at = $1 WHERE user_id = $2 AND client_id = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(user_id)
        .bind(client_id)
        .execute(&self.writer)
        .await?;
        Ok(consent.rows_affected() + grants.rows_affected() > 0)
    }

    // ---- deleting an account

    /// Deletes an account: its faces, sessions, consents, email links and the account itself;
    /// its grants and tokens are revoked (kept revoked so that a replayed token is still known and
    /// refused). Audit events stay (they hold no biometric data).
    pub async fn delete_user(&self, user_id: &str, now: i64) -> Result<bool> {
        self.revoke_user_tokens(user_id, now).await?;
        for q in [
            "DELETE FROM face_templates WHERE user_id = $1",
            "DELETE FROM sessions WHERE user_id = $1",
            "DELETE FROM consents WHERE user_id = $1",
            "DELETE FROM email_tokens WHERE user_id = $1",
        ] {
            sqlx::query(q).bind(user_id).execute(&self.writer).await?;
        }
        let r = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(user_id)
            .execute(&self.writer)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    // ---- the admin page

    /// Users whose username, email or name contains `query` (all for an empty one), by username.
    pub async fn users_page(&self, query: &str, limit: i64, offset: i64) -> Result<Vec<UserRow>> {
        let pattern = format!("%{}%", query.trim().to_lowercase().replace(['%', '_'], ""));
        let rows = sqlx::query(
            "SELECT u.*, (SELECT COUNT(*) FROM face_templates f WHERE f.user_id = u.id) AS face_count FROM users u \
             WHERE lower(u.username) LIKE $1 OR lower(COALESCE(u.email, '')) LIKE $1 OR lower(COALESCE(u.name, '')) LIKE $1 \
             ORDER BY u.username LIMIT $2 OFFSET $3",
        )
        .bind(pattern)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(user_row).collect()
    }

    /// One user as the admin page shows them.
    pub async fn user_row(&self, user_id: &str) -> Result<Option<UserRow>> {
        let row = sqlx::query(
            "SELECT u.*, (SELECT COUNT(*) FROM face_templates f WHERE f.user_id = u.id) AS face_count FROM users u WHERE u.id = $1",
        )
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_row).transpose()
    }

    /// Audit events matching `f`, newest first.
    pub async fn audit_search(&self, f: &AuditFilter) -> Result<Vec<AuditRow>> {
        // A username is looked up to its id; an unknown one matches events of that id only.
        let user = match &f.user {
            Some(u) if !u.trim().is_empty() => Some(
                self.find_user(u.trim())
                    .await?
                    .map(|x| x.id)
                    .unwrap_or_else(|| u.trim().to_string()),
            ),
            _ => None,
        };
        let text = |v: &Option<String>| v.as_ref().map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        let rows = sqlx::query(
            "SELECT a.at, a.kind, a.user_id, u.username, a.client_id, a.ip, a.result, a.detail FROM audit_events a \
             LEFT JOIN users u ON u.id = a.user_id \
             WHERE ($1 IS NULL OR a.user_id = $1) AND ($2 IS NULL OR a.client_id = $2) AND ($3 IS NULL OR a.kind = $3) \
               AND ($4 IS NULL OR a.result = $4) AND ($5 IS NULL OR a.at >= $5) AND ($6 IS NULL OR a.at <= $6) \
             ORDER BY a.at DESC, a.id LIMIT $7",
        )
        .bind(user)
        .bind(text(&f.client))
        .bind(text(&f.kind))
        .bind(text(&f.outcome))
        .bind(f.from)
        .bind(f.to)
        .bind(if f.limit > 0 { f.limit } else { 200 })
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditRow {
                    at: r.try_get("at")?,
                    kind: r.try_get("kind")?,
                    user_id: r.try_get("user_id")?,
                    username: r.try_get("username")?,
                    client_id: r.try_get("client_id")?,
                    ip: r.try_get("ip")?,
                    result: r.try_get("result")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }
}
