//! Migrations through sqlx's migrator: numbered SQL files compiled in, one list per database, each
//! applied once in its own transaction and recorded with its checksum in `_sqlx_migrations` (a
//! changed file stops start-up). On PostgreSQL the migrator holds an advisory lock, so several
//! instances starting at once migrate once. SQLite databases made by the hand-written runner of
//! earlier versions (`schema_migrations`) are bridged once into sqlx's table.

use std::borrow::Cow;

use sqlx::migrate::{MigrateError, Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Row, SqlSafeStr};

/// (version, description, SQL).
type Source = (i64, &'static str, &'static str);

const SQLITE: &[Source] = &[
    (1, "init", include_str!("../migrations/sqlite/0001_init.sql")),
    (
        2,
        "id token alg",
        include_str!("../migrations/sqlite/0002_id_token_alg.sql"),
    ),
    (
        3,
        "subject type",
        include_str!("../migrations/sqlite/0003_subject_type.sql"),
    ),
    (4, "faces", include_str!("../migrations/sqlite/0004_faces.sql")),
    (
        6,
        "face api",
        include_str!("../migrations/sqlite/0006_face_api.sql"),
    ),
    (
        7,
        "login core",
        include_str!("../migrations/sqlite/0007_login_core.sql"),
    ),
    (
        8,
        "oauth clients",
        include_str!("../migrations/sqlite/0008_oauth_clients.sql"),
    ),
    (
        9,
        "grant claims",
        include_str!("../migrations/sqlite/0009_grant_claims.sql"),
    ),
    (
        13,
        "device codes",
        include_str!("../migrations/sqlite/0013_device_codes.sql"),
    ),
    (
        14,
        "login attempts",
        include_str!("../migrations/sqlite/0014_login_attempts.sql"),
    ),
    (
        15,
        "client options",
        include_str!("../migrations/sqlite/0015_client_options.sql"),
    ),
    (
        16,
        "shared state",
        include_str!("../migrations/sqlite/0016_shared_state.sql"),
    ),
    (
        19,
        "liveness checks",
        include_str!("../migrations/sqlite/0019_liveness_checks.sql"),
    ),
    (
        20,
        "aws access keys",
        include_str!("../migrations/sqlite/0020_aws_access_keys.sql"),
    ),
    (
        21,
        "accounts",
        include_str!("../migrations/sqlite/0021_accounts.sql"),
    ),
];

/// PostgreSQL starts at the schema of SQLite's 0009 (one file); later versions go in both lists.
const POSTGRES: &[Source] = &[
    (1, "init", include_str!("../migrations/postgres/0001_init.sql")),
    (
        13,
        "device codes",
        include_str!("../migrations/postgres/0013_device_codes.sql"),
    ),
    (
        14,
        "login attempts",
        include_str!("../migrations/postgres/0014_login_attempts.sql"),
    ),
    (
        15,
        "client options",
        include_str!("../migrations/postgres/0015_client_options.sql"),
    ),
    (
        16,
        "shared state",
        include_str!("../migrations/postgres/0016_shared_state.sql"),
    ),
    (
        19,
        "liveness checks",
        include_str!("../migrations/postgres/0019_liveness_checks.sql"),
    ),
    (
        20,
        "aws access keys",
        include_str!("../migrations/postgres/0020_aws_access_keys.sql"),
    ),
    (
        21,
        "accounts",
        include_str!("../migrations/postgres/0021_accounts.sql"),
    ),
];

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }
}

fn migrator(backend: Backend) -> Migrator {
    let sources = match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    };
    Migrator::with_migrations(
        sources
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(*description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

pub(crate) async fn run(pool: &AnyPool, backend: Backend) -> Result<(), MigrateError> {
    let migrator = migrator(backend);
    if backend == Backend::Sqlite {
        bridge(pool, &migrator).await?;
    }
    migrator.run(pool).await
}

/// A database migrated by the old runner has `schema_migrations` and no `_sqlx_migrations`: the
/// versions it applied are recorded in sqlx's table with the checksums of the same (unchanged) files.
async fn bridge(pool: &AnyPool, migrator: &Migrator) -> Result<(), MigrateError> {
    let has = |table: &'static str| async move {
        sqlx::query("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1")
            .bind(table)
            .fetch_one(pool)
            .await
            .and_then(|r| r.try_get::<i64, _>(0))
            .map(|n| n > 0)
    };
    if !has("schema_migrations").await? || has("_sqlx_migrations").await? {
        return Ok(());
    }
    let applied: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations")
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| r.try_get::<i64, _>("version"))
        .collect::<Result<_, _>>()?;
    let mut tx = pool.begin().await?;
    // sqlx's own table, as its SQLite migrator creates it.
    sqlx::query(
        "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL, checksum BLOB NOT NULL, execution_time BIGINT NOT NULL)",
    )
    .execute(&mut *tx)
    .await?;
    for m in migrator.iter().filter(|m| applied.contains(&m.version)) {
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES ($1, $2, TRUE, $3, 0)",
        )
        .bind(m.version)
        .bind(m.description.to_string())
        .bind(m.checksum.to_vec())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
