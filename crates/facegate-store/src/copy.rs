//! `facegate db copy`: moving an embedded SQLite database up into PostgreSQL. Every table of the
//! schema (keys, clients, users, faces, grants, tokens, the face API's collections, the audit log,
//! ...) is copied in the order its foreign keys need, in batches by SQLite's rowid, each batch one
//! `INSERT … ON CONFLICT DO NOTHING`: a copy that was interrupted is finished by running it again
//! (rows already there are skipped, nothing is doubled). At the end every table's row count is
//! compared, and any difference is an error.
//!
//! Both databases are migrated to this binary's schema first (so their columns are the same); the
//! target's catalogue says which tables and column types there are, so a table added by a later
//! migration is copied without a change here.

use std::collections::{HashMap, HashSet};

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Backend, Result, Store, StoreError};

/// One table's numbers after a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCopy {
    pub table: String,
    /// Rows in the source.
    pub source: u64,
    /// Rows inserted by this run (0 when an earlier run had copied the table).
    pub inserted: u64,
    /// Rows in the target after the copy (equal to `source`, or the copy failed).
    pub target: u64,
}

/// A column's type in the target, as the copy reads and writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Int,
    Bool,
    Bytes,
    Float,
}

impl Kind {
    fn of(pg_type: &str) -> Option<Kind> {
        Some(match pg_type {
            "text" | "character varying" => Kind::Text,
            "bigint" | "integer" | "smallint" => Kind::Int,
            "boolean" => Kind::Bool,
            "bytea" => Kind::Bytes,
            "double precision" | "real" => Kind::Float,
            _ => return None,
        })
    }
}

enum Value {
    Text(Option<String>),
    Int(Option<i64>),
    Bool(Option<bool>),
    Bytes(Option<Vec<u8>>),
    Float(Option<f64>),
}

fn read(row: &AnyRow, i: usize, kind: Kind) -> Result<Value> {
    Ok(match kind {
        Kind::Text => Value::Text(row.try_get(i)?),
        Kind::Int => Value::Int(row.try_get(i)?),
        // SQLite keeps booleans as integers (selected as such, see `copy_table`).
        Kind::Bool => Value::Bool(row.try_get::<Option<i64>, _>(i)?.map(|v| v != 0)),
        Kind::Bytes => Value::Bytes(row.try_get(i)?),
        Kind::Float => Value::Float(row.try_get(i)?),
    })
}

fn invalid(what: String) -> StoreError {
    StoreError::Write(what)
}

/// Table and column names only ever come from the target's catalogue; still, nothing else
/// reaches the SQL text.
fn ident(name: &str) -> Result<&str> {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        Ok(name)
    } else {
        Err(invalid(format!("unexpected name {name:?} in the schema")))
    }
}

impl Store {
    /// Copies this (SQLite) database into `target` (PostgreSQL). `progress(table, done, total)` is
    /// called as rows are copied. Returns each table's numbers; fails when a count differs at the end.
    pub async fn copy_into(
        &self,
        target: &Store,
        mut progress: impl FnMut(&str, u64, u64),
    ) -> Result<Vec<TableCopy>> {
        if self.backend != Backend::Sqlite || target.backend != Backend::Postgres {
            return Err(invalid("db copy goes from SQLite to PostgreSQL".into()));
        }
        let tables = target_tables(target).await?;
        let mut report = Vec::with_capacity(tables.len());
        for table in &tables {
            let t = ident(table)?;
            let columns = target_columns(target, t).await?;
            let present: HashSet<String> = sqlx::query("SELECT name FROM pragma_table_info($1)")
                .bind(t)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| r.try_get::<String, _>(0))
                .collect::<std::result::Result<_, _>>()?;
            if let Some((missing, _)) = columns.iter().find(|(c, _)| !present.contains(c)) {
                return Err(invalid(format!(
                    "the source has no column {t}.{missing}: is it a facegate database?"
                )));
            }
            let source = count(&self.pool, t).await?;
            let before = count(&target.writer, t).await?;
            if before > source {
                return Err(invalid(format!(
                    "the target's {t} holds {before} rows, the source {source}: it holds data that is not from this database"
                )));
            }
            let mut inserted = 0;
            if before < source {
                inserted = copy_table(self, target, t, &columns, source, &mut progress).await?;
            }
            progress(t, source, source);
            let after = count(&target.writer, t).await?;
            report.push(TableCopy {
                table: t.to_string(),
                source,
                inserted,
                target: after,
            });
        }
        // Verified only once all tables are done: a row deleted by a cascade would show here.
        let wrong: Vec<String> = report
            .iter()
            .filter(|r| r.source != r.target)
            .map(|r| {
                format!(
                    "{}: {} in the source, {} in the target",
                    r.table, r.source, r.target
                )
            })
            .collect();
        if !wrong.is_empty() {
            return Err(invalid(format!(
                "row counts differ after the copy: {}",
                wrong.join("; ")
            )));
        }
        Ok(report)
    }
}

async fn count(pool: &sqlx::AnyPool, table: &str) -> Result<u64> {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    let n: i64 = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_one(pool)
        .await?
        .try_get(0)?;
    Ok(n.max(0) as u64)
}

/// The target's tables (but the migrator's), parents before the tables that refer to them.
async fn target_tables(target: &Store) -> Result<Vec<String>> {
    let names: Vec<String> = sqlx::query(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name <> '_sqlx_migrations' \
         ORDER BY table_name",
    )
    .fetch_all(&target.writer)
    .await?
    .iter()
    .map(|r| r.try_get::<String, _>(0))
    .collect::<std::result::Result<_, _>>()?;
    let edges = sqlx::query(
        "SELECT tc.table_name::text, ccu.table_name::text FROM information_schema.table_constraints tc \
         JOIN information_schema.constraint_column_usage ccu \
           ON tc.constraint_name = ccu.constraint_name AND tc.constraint_schema = ccu.constraint_schema \
         WHERE tc.constraint_type = 'FOREIGN KEY' AND tc.table_schema = current_schema()",
    )
    .fetch_all(&target.writer)
    .await?;
    let mut parents: HashMap<String, HashSet<String>> = HashMap::new();
    for e in &edges {
        let (child, parent): (String, String) = (e.try_get(0)?, e.try_get(1)?);
        if child != parent {
            parents.entry(child).or_default().insert(parent);
        }
    }
    let mut order = Vec::with_capacity(names.len());
    let mut done = HashSet::new();
    while order.len() < names.len() {
        let before = order.len();
        for n in &names {
            if !done.contains(n)
                && parents
                    .get(n)
                    .is_none_or(|ps| ps.iter().all(|p| done.contains(p)))
            {
                done.insert(n.clone());
                order.push(n.clone());
            }
        }
        if order.len() == before {
            return Err(invalid("the schema's foreign keys form a cycle".into()));
        }
    }
    Ok(order)
}

async fn target_columns(target: &Store, table: &str) -> Result<Vec<(String, Kind)>> {
    let rows = sqlx::query(
        "SELECT column_name::text, data_type::text FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(&target.writer)
    .await?;
    rows.iter()
        .map(|r| {
            let (name, ty): (String, String) = (r.try_get(0)?, r.try_get(1)?);
            let kind =
                Kind::of(&ty).ok_or_else(|| invalid(format!("{table}.{name}: type {ty} is not copied")))?;
            Ok((ident(&name)?.to_string(), kind))
        })
        .collect()
}

async fn copy_table(
    source: &Store,
    target: &Store,
    table: &str,
    columns: &[(String, Kind)],
    total: u64,
    progress: &mut impl FnMut(&str, u64, u64),
) -> Result<u64> {
    // PostgreSQL takes at most 65535 parameters a statement.
    let batch = (60_000 / columns.len().max(1)).clamp(1, 500);
    let list = columns
        .iter()
        .map(|(c, _)| c.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    // sqlx's Any driver cannot read SQLite's BOOLEAN declared type: read it as the integer it is.
    let read_list = columns
        .iter()
        .map(|(c, k)| match k {
            Kind::Bool => format!("CAST({c} AS INTEGER)"),
            _ => c.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let select =
        format!("SELECT rowid, {read_list} FROM {table} WHERE rowid > $1 ORDER BY rowid LIMIT {batch}");
    let (mut last, mut read_rows, mut inserted) = (i64::MIN, 0u64, 0u64);
    loop {
        let rows = sqlx::query(sqlx::AssertSqlSafe(select.clone()))
            .bind(last)
            .fetch_all(&source.pool)
            .await?;
        let Some(tail) = rows.last() else {
            break;
        };
        last = tail.try_get(0)?;
        let mut values = Vec::with_capacity(rows.len() * columns.len());
        for row in &rows {
            for (i, (_, kind)) in columns.iter().enumerate() {
                values.push(read(row, i + 1, *kind)?);
            }
        }
        let tuples: Vec<String> = (0..rows.len())
            .map(|r| {
                let ps: Vec<String> = (0..columns.len())
                    .map(|c| format!("${}", r * columns.len() + c + 1))
                    .collect();
                format!("({})", ps.join(", "))
            })
            .collect();
        let insert = format!(
            "INSERT INTO {table} ({list}) VALUES {} ON CONFLICT DO NOTHING",
            tuples.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(insert));
        for v in values {
            q = match v {
                Value::Text(v) => q.bind(v),
                Value::Int(v) => q.bind(v),
                Value::Bool(v) => q.bind(v),
                Value::Bytes(v) => q.bind(v),
                Value::Float(v) => q.bind(v),
            };
        }
        inserted += q.execute(&target.writer).await?.rows_affected();
        read_rows += rows.len() as u64;
        progress(table, read_rows.min(total), total);
    }
    Ok(inserted)
}
