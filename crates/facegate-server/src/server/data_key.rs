//! The data key that seals face embeddings, signing keys and the pairwise salt at rest
//! (facegate-store's crypt.rs): where it comes from, the key file made on first start, and
//! `facegate keys rotate-data-key`.
//!
//! Sources, in order: `FACEGATE_DATA_KEY` (64 hex digits, from the environment or the config file's
//! `data_key`), else the key file `FACEGATE_DATA_KEY_FILE` (default `DATA_DIR/data.key`), created
//! with mode 0600 when neither it nor an encrypted database exists. During a rotation the new key
//! is `FACEGATE_DATA_KEY_NEW` or the file `data.key.next` beside the key file: a server started
//! then seals with the new key and opens values of both.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use facegate_store::{DataKey, DataKeys, Store, StoreError};

use super::settings::{Secret, Settings};

/// Where the data key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataKeySource {
    /// A key file (created on first start); a rotation's new key is `PATH.next`.
    File(PathBuf),
    /// The key itself (64 hex digits), and during a rotation the new one.
    Value { current: Secret, new: Option<Secret> },
}

impl DataKeySource {
    /// From `FACEGATE_DATA_KEY`, `FACEGATE_DATA_KEY_NEW` and `FACEGATE_DATA_KEY_FILE`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>, data_dir: &Path) -> anyhow::Result<Self> {
        match (var("FACEGATE_DATA_KEY"), var("FACEGATE_DATA_KEY_FILE")) {
            (Some(_), Some(_)) => bail!("set FACEGATE_DATA_KEY or FACEGATE_DATA_KEY_FILE, not both"),
            (Some(k), None) => {
                DataKey::from_hex(&k).context("FACEGATE_DATA_KEY")?;
                let new = var("FACEGATE_DATA_KEY_NEW");
                if let Some(n) = &new {
                    DataKey::from_hex(n).context("FACEGATE_DATA_KEY_NEW")?;
                }
                Ok(DataKeySource::Value {
                    current: Secret::new(k),
                    new: new.map(Secret::new),
                })
            }
            (None, file) => {
                if var("FACEGATE_DATA_KEY_NEW").is_some() {
                    bail!(
                        "FACEGATE_DATA_KEY_NEW needs FACEGATE_DATA_KEY (with a key file, the new key is FILE.next)"
                    );
                }
                Ok(DataKeySource::File(
                    file.map(PathBuf::from)
                        .unwrap_or_else(|| data_dir.join("data.key")),
                ))
            }
        }
    }
}

/// `path.next`: a rotation's new key file.
fn next_of(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".next");
    PathBuf::from(s)
}

/// Reads a key file, refusing one that others may read.
fn read_key_file(path: &Path) -> anyhow::Result<DataKey> {
    let meta = std::fs::metadata(path).with_context(|| format!("data key file {}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "data key file {} has mode {mode:o}: others may read it; run chmod 600 {}",
            path.display(),
            path.display()
        );
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    DataKey::from_hex(&text).with_context(|| format!("data key file {}", path.display()))
}

/// Writes a new random key to `path` (which must not exist) with mode 0600, durably.
fn create_key_file(path: &Path) -> anyhow::Result<DataKey> {
    let hex = DataKey::generate_hex()?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating data key file {}", path.display()))?;
    f.write_all(format!("{hex}\n").as_bytes())?;
    f.sync_all()?;
    sync_dir(path);
    Ok(DataKey::from_hex(&hex)?)
}

fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
}

/// The keys in force, and the key file this call created (first start), if any.
fn keys(source: &DataKeySource) -> anyhow::Result<(DataKeys, Option<PathBuf>)> {
    match source {
        DataKeySource::Value { current, new } => {
            let current = DataKey::from_hex(current.expose())?;
            Ok(match new {
                Some(n) => (DataKeys::new(DataKey::from_hex(n.expose())?, vec![current]), None),
                None => (DataKeys::new(current, vec![]), None),
            })
        }
        DataKeySource::File(path) => {
            let next = next_of(path);
            if !path.exists() {
                if next.exists() {
                    bail!(
                        "{} exists but the data key file {} does not: restore the key file",
                        next.display(),
                        path.display()
                    );
                }
                let key = create_key_file(path)?;
                return Ok((DataKeys::new(key, vec![]), Some(path.clone())));
            }
            let current = read_key_file(path)?;
            Ok(if next.exists() {
                (DataKeys::new(read_key_file(&next)?, vec![current]), None)
            } else {
                (DataKeys::new(current, vec![]), None)
            })
        }
    }
}

/// Opens the store with the configured data key (creating the key file on first start). A key
/// that does not open the database is a start-up error that says so.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let (keys, created) = keys(&settings.data_key)?;
    match Store::open_with_keys(&settings.database_url, Some(keys)).await {
        Ok(store) => Ok(store),
        Err(e @ StoreError::WrongDataKey { .. }) => {
            if let Some(path) = created {
                // The key this start made opens nothing: do not leave it for the next start.
                let _ = std::fs::remove_file(&path);
                bail!(
                    "{e}. The data key file {} did not exist: this database was encrypted with a key that is not configured (restore the key file, or set FACEGATE_DATA_KEY)",
                    path.display()
                );
            }
            Err(e.into())
        }
        Err(e) => Err(e.into()),
    }
}

/// What a rotation did.
#[derive(Debug)]
pub struct Rotated {
    pub from: String,
    pub to: String,
    pub resealed: u64,
    /// What the operator does next, if anything.
    pub next_step: Option<String>,
}

/// `facegate keys rotate-data-key`: re-seals every sealed value under a new key, in batches that
/// each commit, so a run that is interrupted (or a server started meanwhile) loses nothing and a
/// second run finishes the job. With a key file the new key is written to `FILE.next` first
/// (reused when it exists: that is a resumed rotation) and replaces the key file at the end.
pub async fn rotate(settings: &Settings) -> anyhow::Result<Rotated> {
    let (old_id, ring, finish) = match &settings.data_key {
        DataKeySource::Value { current, new } => {
            let Some(new) = new else {
                bail!(
                    "the data key comes from FACEGATE_DATA_KEY: generate a new one (e.g. `openssl rand -hex 32`), \
                     set it as FACEGATE_DATA_KEY_NEW and run this again"
                );
            };
            let old = DataKey::from_hex(current.expose())?;
            let id = old.id_hex();
            (
                id,
                DataKeys::new(DataKey::from_hex(new.expose())?, vec![old]),
                None,
            )
        }
        DataKeySource::File(path) => {
            let old = read_key_file(path)?;
            let next = next_of(path);
            let new = if next.exists() {
                read_key_file(&next)?
            } else {
                create_key_file(&next)?
            };
            let id = old.id_hex();
            (id, DataKeys::new(new, vec![old]), Some((next, path.clone())))
        }
    };
    let to = ring.current().id_hex();
    let store = Store::open_with_keys(&settings.database_url, Some(ring)).await?;
    // Opening re-sealed what the database's check said was pending; this pass catches values an
    // instance still on the old key wrote meanwhile.
    let resealed = store.resealed_at_open() + store.reseal().await?;
    let next_step = match finish {
        Some((next, path)) => {
            std::fs::rename(&next, &path)
                .with_context(|| format!("replacing {} with {}", path.display(), next.display()))?;
            sync_dir(&path);
            None
        }
        None => Some(
            "set FACEGATE_DATA_KEY to the value of FACEGATE_DATA_KEY_NEW, remove FACEGATE_DATA_KEY_NEW, and restart every instance"
                .into(),
        ),
    };
    Ok(Rotated {
        from: old_id,
        to,
        resealed,
        next_step,
    })
}
