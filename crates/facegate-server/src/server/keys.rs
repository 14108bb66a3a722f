//! Signing keys in service: created on first start, loaded into a `KeySet`, rotated on request.
//! A retired key stays in the JWKS until everything it signed has expired.

use facegate_oidc::keys::{KeySet, SigningAlg, SigningKey, generate};
use facegate_store::{Store, StoredKey};

use super::now;

/// Creates one key for every algorithm that has none; returns how many were created.
pub async fn ensure_keys(store: &Store) -> anyhow::Result<usize> {
    let existing = store.keys().await?;
    let mut created = 0;
    for alg in SigningAlg::ALL {
        if !existing
            .iter()
            .any(|k| k.alg == alg.as_str() && k.retired_at.is_none())
        {
            add_key(store, alg).await?;
            created += 1;
        }
    }
    Ok(created)
}

async fn add_key(store: &Store, alg: SigningAlg) -> anyhow::Result<SigningKey> {
    let der = generate(alg)?;
    let key = SigningKey::from_pkcs8(alg, &der)?;
    store
        .insert_key(&StoredKey {
            kid: key.kid.clone(),
            alg: alg.as_str().into(),
            pkcs8: der,
            created_at: now(),
            retired_at: None,
        })
        .await?;
    Ok(key)
}

/// Publishes and starts signing with a new key for `alg`; the previous one is retired but stays
/// published for `keep_for` seconds (the longest lifetime of anything it signed).
pub async fn rotate(store: &Store, alg: SigningAlg, keep_for: i64) -> anyhow::Result<SigningKey> {
    let key = add_key(store, alg).await?;
    let t = now();
    store.retire_keys(alg.as_str(), &key.kid, t).await?;
    store.delete_keys_retired_before(t - keep_for).await?;
    Ok(key)
}

/// Loads the keys: active ones sign (newest first), retired ones younger than `keep_for` are published.
pub async fn load(store: &Store, keep_for: i64) -> anyhow::Result<KeySet> {
    let t = now();
    let mut signing = Vec::new();
    let mut published = Vec::new();
    for k in store.keys().await? {
        let Some(alg) = SigningAlg::parse(&k.alg) else {
            continue;
        };
        let key = SigningKey::from_pkcs8(alg, &k.pkcs8)?;
        match k.retired_at {
            None => {
                signing.push(key.clone());
                published.push(key);
            }
            Some(r) if t - r < keep_for => published.push(key),
            Some(_) => {}
        }
    }
    Ok(KeySet::new(signing, published))
}
