//! `facegate db copy --to postgres://...`: moves the embedded database up to PostgreSQL.

use std::collections::HashMap;

use anyhow::{Context, bail};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};

use crate::server::Settings;

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Copy this instance's database (SQLite, FACEGATE_DATABASE_URL or the data folder's) into an
    /// empty PostgreSQL database: keys, clients, users, faces, grants, tokens, collections, the
    /// audit log. Stop facegate first. Resumable: run it again after an interruption; rows already
    /// copied are skipped. Verified: every table's row count must match at the end.
    Copy {
        /// The PostgreSQL database to copy into (created tables are migrated first).
        #[arg(long, value_name = "postgres://USER:PASS@HOST/DB")]
        to: String,
        /// The source, if not the configured database.
        #[arg(long, value_name = "sqlite://PATH")]
        from: Option<String>,
    },
}

pub fn run(cmd: DbCommand) -> anyhow::Result<()> {
    match cmd {
        DbCommand::Copy { to, from } => super::serve::runtime()?.block_on(copy(to, from)),
    }
}

async fn copy(to: String, from: Option<String>) -> anyhow::Result<()> {
    let from = match from {
        Some(f) => f,
        None => Settings::from_env()?.database_url,
    };
    if facegate_store::Backend::of(&from) != Some(facegate_store::Backend::Sqlite) {
        bail!("the source must be an SQLite database (sqlite://PATH), the one facegate embeds");
    }
    if facegate_store::Backend::of(&to) != Some(facegate_store::Backend::Postgres) {
        bail!("--to must be a PostgreSQL URL (postgres://USER:PASS@HOST/DB)");
    }
    let path = from
        .trim_start_matches("sqlite://")
        .split('?')
        .next()
        .unwrap_or("");
    if !std::path::Path::new(path).exists() {
        bail!("no database at {path}");
    }
    let source = facegate_store::Store::open(&from)
        .await
        .context("opening the source")?;
    let target = facegate_store::Store::open(&to)
        .await
        .context("opening the target (PostgreSQL)")?;
    let style = ProgressStyle::with_template("{prefix:>20} [{bar:30}] {pos}/{len} rows")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let mut bars: HashMap<String, ProgressBar> = HashMap::new();
    let report = source
        .copy_into(&target, |table, done, total| {
            let bar = bars.entry(table.to_string()).or_insert_with(|| {
                let b = ProgressBar::new(total).with_style(style.clone());
                b.set_prefix(table.to_string());
                b
            });
            bar.set_length(total);
            bar.set_position(done);
            if done >= total {
                bar.finish();
            }
        })
        .await?;
    let (rows, inserted): (u64, u64) = report
        .iter()
        .fold((0, 0), |(r, i), t| (r + t.source, i + t.inserted));
    println!(
        "copied: {} tables, {rows} rows, all counts match ({inserted} inserted now, {} were already there)",
        report.len(),
        rows - inserted
    );
    println!("next: start facegate with FACEGATE_DATABASE_URL set to the PostgreSQL URL");
    Ok(())
}
