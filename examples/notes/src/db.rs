//! The app's own SQLite file: notes (per `sub`), sessions, and sign-ins in progress.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

/// Who is signed in, and how: what the ID token said.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Who {
    pub sub: String,
    pub name: Option<String>,
    pub username: Option<String>,
    pub email: Option<String>,
    pub amr: Vec<String>,
    pub acr: Option<String>,
    /// When the person authenticated at facegate, as text (UTC).
    pub auth_time: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Session {
    pub id_hash: String,
    pub sub: String,
    pub who: Who,
    pub id_token: String,
    pub csrf: String,
}

#[derive(Debug, Clone)]
pub struct Note {
    pub id: i64,
    pub text: String,
    pub created_at: i64,
}

#[derive(Debug)]
pub struct PendingLogin {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
}

/// SHA-256, hex: session ids are stored only as this.
pub fn hash(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[derive(Debug, Clone)]
pub struct Db {
    pool: SqlitePool,
}

const SCHEMA: [&str; 4] = [
    "CREATE TABLE IF NOT EXISTS notes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        sub TEXT NOT NULL,
        text TEXT NOT NULL,
        created_at INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS notes_by_sub ON notes (sub, id)",
    "CREATE TABLE IF NOT EXISTS sessions (
        id_hash TEXT PRIMARY KEY,
        sub TEXT NOT NULL,
        who TEXT NOT NULL,
        id_token TEXT NOT NULL,
        csrf TEXT NOT NULL,
        expires_at INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS logins (
        state TEXT PRIMARY KEY,
        nonce TEXT NOT NULL,
        verifier TEXT NOT NULL,
        expires_at INTEGER NOT NULL)",
];

impl Db {
    pub async fn open(path: &Path) -> anyhow::Result<Db> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .busy_timeout(std::time::Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        for stmt in SCHEMA {
            sqlx::query(stmt).execute(&pool).await?;
        }
        Ok(Db { pool })
    }

    pub async fn add_login(&self, p: &PendingLogin, expires_at: i64) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM logins WHERE expires_at < $1")
            .bind(expires_at - 2 * 600)
            .execute(&self.pool)
            .await?;
        sqlx::query("INSERT INTO logins (state, nonce, verifier, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(&p.state)
            .bind(&p.nonce)
            .bind(&p.verifier)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The sign-in started with `state`, removed (a state works once); `None` if unknown or expired.
    pub async fn take_login(&self, state: &str, now: i64) -> sqlx::Result<Option<PendingLogin>> {
        let row = sqlx::query("DELETE FROM logins WHERE state = $1 RETURNING nonce, verifier, expires_at")
            .bind(state)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .filter(|r| r.get::<i64, _>("expires_at") >= now)
            .map(|r| PendingLogin {
                state: state.to_string(),
                nonce: r.get("nonce"),
                verifier: r.get("verifier"),
            }))
    }

    pub async fn add_session(
        &self,
        id_hash: &str,
        who: &Who,
        id_token: &str,
        csrf: &str,
        expires_at: i64,
    ) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM sessions WHERE expires_at < CAST(strftime('%s', 'now') AS INTEGER)")
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO sessions (id_hash, sub, who, id_token, csrf, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id_hash)
        .bind(&who.sub)
        .bind(serde_json::to_string(who)?)
        .bind(id_token)
        .bind(csrf)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn session(&self, id_hash: &str, now: i64) -> anyhow::Result<Option<Session>> {
        let row = sqlx::query(
            "SELECT id_hash, sub, who, id_token, csrf FROM sessions WHERE id_hash = $1 AND expires_at >= $2",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let who: Who = serde_json::from_str(r.get("who"))?;
        Ok(Some(Session {
            id_hash: r.get("id_hash"),
            sub: r.get("sub"),
            who,
            id_token: r.get("id_token"),
            csrf: r.get("csrf"),
        }))
    }

    pub async fn delete_session(&self, id_hash: &str) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn notes(&self, sub: &str) -> sqlx::Result<Vec<Note>> {
        let rows = sqlx::query("SELECT id, text, created_at FROM notes WHERE sub = $1 ORDER BY id DESC")
            .bind(sub)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| Note {
                id: r.get("id"),
                text: r.get("text"),
                created_at: r.get("created_at"),
            })
            .collect())
    }

    pub async fn add_note(&self, sub: &str, text: &str, now: i64) -> sqlx::Result<()> {
        sqlx::query("INSERT INTO notes (sub, text, created_at) VALUES ($1, $2, $3)")
            .bind(sub)
            .bind(text)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes one of `sub`'s notes (someone else's note id does nothing).
    pub async fn delete_note(&self, sub: &str, id: i64) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM notes WHERE id = $1 AND sub = $2")
            .bind(id)
            .bind(sub)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
