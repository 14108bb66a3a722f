//! AWS-style access keys of API clients, for the Rekognition-compatible API: made by
//! `facegate faces aws-key add --client ID` (the secret is shown once), listed, removed. The secret
//! is kept sealed under the key-encryption key (server/sigv4.rs); the server opens it to check a
//! signature and never logs it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{Context, bail};
use facegate_store::{AwsAccessKey, Store};

use super::sigv4::Kek;

/// A new key pair: what the client puts in its AWS configuration.
#[derive(Debug)]
pub struct NewKey {
    pub access_key_id: String,
    /// Shown once; only its sealed form is kept.
    pub secret_access_key: String,
}

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn random_bytes(n: usize) -> Vec<u8> {
    use aws_lc_rs::rand::SecureRandom;
    let mut b = vec![0u8; n];
    // Without the system RNG there is nothing safe to hand out.
    #[allow(clippy::expect_used)]
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut b)
        .expect("system random number generator failed");
    b
}

/// `FGAK` + 16 base32 characters (80 random bits): the shape of an AWS access key id.
fn new_access_key_id() -> String {
    let tail: String = random_bytes(16)
        .iter()
        .map(|b| ALPHABET[usize::from(b % 32)] as char)
        .collect();
    format!("FGAK{tail}")
}

/// 40 characters of base64 (240 random bits), like an AWS secret access key.
fn new_secret() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(random_bytes(30))
}

/// Makes a key for `client_id` (which must exist), creating the key-encryption key when needed.
pub async fn add(store: &Store, data_dir: &Path, client_id: &str, now: i64) -> anyhow::Result<NewKey> {
    if store.client(client_id).await?.is_none() {
        bail!("no client {client_id}");
    }
    let kek = Kek::load_or_create(data_dir)?;
    let access_key_id = new_access_key_id();
    let secret_access_key = new_secret();
    store
        .insert_aws_key(&AwsAccessKey {
            secret_sealed: kek.seal(&access_key_id, &secret_access_key)?,
            access_key_id: access_key_id.clone(),
            client_id: client_id.to_string(),
            created_at: now,
            last_used_at: None,
        })
        .await?;
    forget(data_dir);
    Ok(NewKey {
        access_key_id,
        secret_access_key,
    })
}

type Keks = Mutex<HashMap<PathBuf, Arc<Kek>>>;

fn keks() -> &'static Keks {
    static K: OnceLock<Keks> = OnceLock::new();
    K.get_or_init(Default::default)
}

fn forget(data_dir: &Path) {
    if let Ok(mut m) = keks().lock() {
        m.remove(data_dir);
    }
}

/// The server's key-encryption key (read once per data folder, then kept).
fn kek(data_dir: &Path) -> anyhow::Result<Option<Arc<Kek>>> {
    if let Some(k) = keks().lock().ok().and_then(|m| m.get(data_dir).cloned()) {
        return Ok(Some(k));
    }
    let Some(k) = Kek::load(data_dir)? else {
        return Ok(None);
    };
    let k = Arc::new(k);
    if let Ok(mut m) = keks().lock() {
        m.insert(data_dir.to_path_buf(), k.clone());
    }
    Ok(Some(k))
}

/// What looking a key up found.
#[derive(Debug)]
pub enum Lookup {
    Found { key: AwsAccessKey, secret: String },
    Unknown,
}

/// The key and its opened secret. A key that cannot be opened (the key-encryption key is missing
/// or another one) is an error, not an unknown key: the operator has to fix the configuration.
pub async fn lookup(store: &Store, data_dir: &Path, access_key_id: &str) -> anyhow::Result<Lookup> {
    let Some(key) = store.aws_key(access_key_id).await? else {
        return Ok(Lookup::Unknown);
    };
    let Some(kek) = kek(data_dir)? else {
        bail!(
            "access key {access_key_id} exists but there is no key-encryption key (FACEGATE_AWS_KEK or {}/aws-kek)",
            data_dir.display()
        );
    };
    match kek.open(access_key_id, &key.secret_sealed) {
        Some(secret) => Ok(Lookup::Found { key, secret }),
        None => {
            bail!("access key {access_key_id} was sealed under another key-encryption key than this server's")
        }
    }
}

/// Whether this instance should record a key's use now: at most once a minute per key (the store
/// writes at most once a minute too; this spares the writer the query).
pub fn due_for_touch(access_key_id: &str, now: i64) -> bool {
    static LAST: OnceLock<Mutex<HashMap<String, i64>>> = OnceLock::new();
    let Ok(mut m) = LAST.get_or_init(Default::default).lock() else {
        return true;
    };
    if m.len() > 100_000 {
        m.clear();
    }
    match m.get(access_key_id) {
        Some(t) if now - t < 60 => false,
        _ => {
            m.insert(access_key_id.to_string(), now);
            true
        }
    }
}

/// At start: a key-encryption key that is set must be usable, and access keys in the store must
/// open with it. Otherwise the server does not start (a misconfiguration is not a silent outage
/// of every AWS client).
pub async fn check_at_start(store: &Store, data_dir: &Path) -> anyhow::Result<()> {
    let kek = Kek::load(data_dir).context("the key-encryption key of the AWS access keys")?;
    let keys = store.aws_keys(None).await?;
    match (kek, keys.first()) {
        (None, Some(k)) => bail!(
            "AWS access keys exist ({} and others) but there is no key-encryption key to open them: set FACEGATE_AWS_KEK or restore {}/aws-kek (docs/rekognition.md)",
            k.access_key_id,
            data_dir.display()
        ),
        (Some(kek), Some(k)) if kek.open(&k.access_key_id, &k.secret_sealed).is_none() => bail!(
            "AWS access key {} does not open with this server's key-encryption key (FACEGATE_AWS_KEK or {}/aws-kek): another server's key? (docs/rekognition.md)",
            k.access_key_id,
            data_dir.display()
        ),
        _ => Ok(()),
    }
}
