//! A small migration runner: numbered SQL files compiled in, applied in order inside transactions,
//! recorded in `schema_migrations`. (sqlx's own migrator needs its macros crate; this is 30 lines.)

use sqlx::{AnyPool, Row};

const SQLITE: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../migrations/sqlite/0002_id_token_alg.sql")),
    (3, include_str!("../migrations/sqlite/0003_subject_type.sql")),
    (4, include_str!("../migrations/sqlite/0004_faces.sql")),
    (6, include_str!("../migrations/sqlite/0006_face_api.sql")),
    (7, include_str!("../migrations/sqlite/0007_login_core.sql")),
    (8, include_str!("../migrations/sqlite/0008_oauth_clients.sql")),
    (9, include_str!("../migrations/sqlite/0009_grant_claims.sql")),
    (13, include_str!("../migrations/sqlite/0013_device_codes.sql")),
    (15, include_str!("../migrations/sqlite/0015_client_options.sql")),
];

pub(crate) async fn run(pool: &AnyPool) -> Result<(), sqlx::Error> {
    sqlx::query("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")
        .execute(pool)
        .await?;
    let applied: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations")
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| r.try_get::<i64, _>("version"))
        .collect::<Result<_, _>>()?;
    for (version, sql) in SQLITE {
        if applied.contains(version) {
            continue;
        }
        let mut tx = pool.begin().await?;
        for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            sqlx::query(statement).execute(&mut *tx).await?;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
            .bind(version)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    Ok(())
}
