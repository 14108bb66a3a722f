//! Encryption at rest of what a stolen database file must not give away: face embeddings (the
//! login templates and the face API's indexed faces), the signing keys' private halves and the
//! pairwise-subject salt. AES-256-GCM (aws-lc-rs) under a 32-byte data key that lives outside the
//! database (config, environment or a key file). Each value is sealed with a fresh random nonce and
//! bound to its row (`table:id` as associated data), so a sealed value copied into another row
//! does not open.
//!
//! A sealed blob is `FGE1 | key id (8) | nonce (12) | ciphertext | tag (16)`; a sealed text value
//! (settings) is `enc1:` and the blob in hex. The key id (a hash of the key) says which key of the
//! ring opens a value, which is what lets `facegate keys rotate-data-key` re-encrypt row by row
//! and resume after an interruption. The settings row [`CHECK`] holds a sealed constant: a store
//! opened with keys none of which opens it refuses to start ([`crate::StoreError::WrongDataKey`]).

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use crate::{Result, StoreError};

const MAGIC: &[u8; 4] = b"FGE1";
const TEXT_PREFIX: &str = "enc1:";
const ID_LEN: usize = 8;
const TAG_LEN: usize = 16;
const HEADER: usize = MAGIC.len() + ID_LEN + NONCE_LEN;

/// The settings row whose sealed constant proves the data key.
pub(crate) const CHECK: &str = "data_key_check";
/// Set while values not under the current key may remain (first encryption, or a rotation).
pub(crate) const PENDING: &str = "data_key_pending";
const CHECK_PLAIN: &[u8] = b"facegate data key check v1";

/// Settings that hold secrets, stored sealed.
pub(crate) const SECRET_SETTINGS: &[&str] = &["pairwise_salt"];

/// One 256-bit data key.
pub struct DataKey {
    id: [u8; ID_LEN],
    key: LessSafeKey,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataKey({})", self.id_hex())
    }
}

impl DataKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<DataKey> {
        if bytes.len() != 32 {
            return Err(StoreError::DataKey(format!(
                "a data key is 32 bytes (64 hex digits), got {} bytes",
                bytes.len()
            )));
        }
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        ctx.update(b"facegate data key id\0");
        ctx.update(bytes);
        let digest = ctx.finish();
        let mut id = [0u8; ID_LEN];
        id.copy_from_slice(&digest.as_ref()[..ID_LEN]);
        let unbound = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| StoreError::DataKey("the data key is not a valid AES-256 key".into()))?;
        Ok(DataKey {
            id,
            key: LessSafeKey::new(unbound),
        })
    }

    /// A key from 64 hex digits (surrounding white space ignored).
    pub fn from_hex(hex: &str) -> Result<DataKey> {
        let bytes =
            from_hex(hex.trim()).ok_or_else(|| StoreError::DataKey("a data key is 64 hex digits".into()))?;
        DataKey::from_bytes(&bytes)
    }

    /// A new random key, as 64 hex digits (to write to a key file or a secret store).
    pub fn generate_hex() -> Result<String> {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| StoreError::DataKey("the system random generator failed".into()))?;
        Ok(to_hex(&bytes))
    }

    /// The key's public id (a hash prefix, 16 hex digits): safe to print.
    pub fn id_hex(&self) -> String {
        to_hex(&self.id)
    }
}

/// The keys a store opens values with: the first seals new values, the others only open (during a
/// rotation).
#[derive(Debug)]
pub struct DataKeys {
    keys: Vec<DataKey>,
}

impl DataKeys {
    pub fn new(current: DataKey, others: Vec<DataKey>) -> DataKeys {
        let mut keys = vec![current];
        for k in others {
            if !keys.iter().any(|have| have.id == k.id) {
                keys.push(k);
            }
        }
        DataKeys { keys }
    }

    pub fn current(&self) -> &DataKey {
        &self.keys[0]
    }

    /// `plain` sealed under the current key, bound to `aad` (the row: `table:id`).
    pub fn seal(&self, aad: &str, plain: &[u8]) -> Result<Vec<u8>> {
        let key = self.current();
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| StoreError::DataKey("the system random generator failed".into()))?;
        let mut out = Vec::with_capacity(HEADER + plain.len() + TAG_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&key.id);
        out.extend_from_slice(&nonce);
        let mut body = plain.to_vec();
        key.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut body,
            )
            .map_err(|_| StoreError::DataKey("sealing failed".into()))?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// A sealed value opened with whichever key of the ring sealed it.
    pub fn open(&self, aad: &str, blob: &[u8]) -> Result<Vec<u8>> {
        let id = key_id(blob).ok_or_else(|| StoreError::Corrupt(format!("{aad} is stored in clear")))?;
        let key = self.keys.iter().find(|k| k.id == id).ok_or_else(|| {
            StoreError::DataKey(format!(
                "{aad} is sealed with data key {}, which is not configured",
                to_hex(&id)
            ))
        })?;
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&blob[MAGIC.len() + ID_LEN..HEADER]);
        let mut body = blob[HEADER..].to_vec();
        let plain = key
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut body,
            )
            .map_err(|_| StoreError::Corrupt(format!("{aad} does not decrypt (altered or moved)")))?;
        let n = plain.len();
        body.truncate(n);
        Ok(body)
    }

    pub(crate) fn seal_text(&self, aad: &str, plain: &str) -> Result<String> {
        Ok(format!(
            "{TEXT_PREFIX}{}",
            to_hex(&self.seal(aad, plain.as_bytes())?)
        ))
    }

    pub(crate) fn open_text(&self, aad: &str, text: &str) -> Result<String> {
        let blob = text
            .strip_prefix(TEXT_PREFIX)
            .and_then(from_hex)
            .ok_or_else(|| StoreError::Corrupt(format!("{aad} is stored in clear")))?;
        String::from_utf8(self.open(aad, &blob)?)
            .map_err(|_| StoreError::Corrupt(format!("{aad} is not text")))
    }

    /// Whether `blob` is sealed under the current key (nothing to re-encrypt).
    pub(crate) fn is_current(&self, blob: &[u8]) -> bool {
        key_id(blob) == Some(self.current().id)
    }

    pub(crate) fn is_current_text(&self, text: &str) -> bool {
        text.strip_prefix(TEXT_PREFIX)
            .and_then(from_hex)
            .is_some_and(|b| self.is_current(&b))
    }

    pub(crate) fn check_value(&self) -> Result<String> {
        self.seal_text(CHECK, std::str::from_utf8(CHECK_PLAIN).unwrap_or_default())
    }

    /// Whether one of the keys opens the stored check value.
    pub(crate) fn opens_check(&self, stored: &str) -> bool {
        self.open_text(CHECK, stored)
            .is_ok_and(|p| p.as_bytes() == CHECK_PLAIN)
    }
}

/// The key id of a sealed blob, or `None` for a value stored in clear.
pub(crate) fn key_id(blob: &[u8]) -> Option<[u8; ID_LEN]> {
    if blob.len() < HEADER + TAG_LEN || &blob[..MAGIC.len()] != MAGIC {
        return None;
    }
    let mut id = [0u8; ID_LEN];
    id.copy_from_slice(&blob[MAGIC.len()..MAGIC.len() + ID_LEN]);
    Some(id)
}

/// The id of the key that sealed a stored text value (hex), if sealed.
pub(crate) fn text_key_id(text: &str) -> Option<String> {
    text.strip_prefix(TEXT_PREFIX)
        .and_then(from_hex)
        .and_then(|b| key_id(&b))
        .map(|id| to_hex(&id))
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// The sealed columns: (table, primary key, value column).
const SEALED_COLUMNS: &[(&str, &str, &str)] = &[
    ("face_templates", "id", "embedding"),
    ("api_faces", "id", "embedding"),
    ("signing_keys", "kid", "pkcs8"),
    ("liveness_checks", "id", "state"),
];

/// Rows re-sealed per transaction by [`crate::Store::reseal_all`].
const RESEAL_BATCH: i64 = 256;

impl crate::Store {
    /// The id of the data key new values are sealed with (16 hex digits), if the store has keys.
    pub fn data_key_id(&self) -> Option<String> {
        self.data_keys.as_ref().map(|k| k.current().id_hex())
    }

    /// Re-seals every value not under the current key (see [`crate::Store::open_with_keys`]);
    /// returns how many.
    pub async fn reseal(&self) -> Result<u64> {
        match &self.data_keys {
            Some(k) => self.reseal_all(k).await,
            None => Err(self.keyless()),
        }
    }

    /// How many values opening this store re-sealed (first start with a key, or a rotation).
    pub fn resealed_at_open(&self) -> u64 {
        self.resealed_at_open
    }

    /// Whether the database holds sealed values (it has a data-key check).
    pub fn is_sealed(&self) -> bool {
        self.data_keys.is_some() || self.sealed
    }

    fn keyless(&self) -> StoreError {
        StoreError::DataKey(
            "the database is encrypted at rest and this store was opened without its data key".into(),
        )
    }

    /// `plain` as stored in `aad` (`table:id`): sealed when the store has keys.
    pub(crate) fn seal(&self, aad: &str, plain: &[u8]) -> Result<Vec<u8>> {
        match &self.data_keys {
            Some(k) => k.seal(aad, plain),
            None if self.sealed => Err(self.keyless()),
            None => Ok(plain.to_vec()),
        }
    }

    /// A stored value of `aad` opened.
    pub(crate) fn open_value(&self, aad: &str, stored: Vec<u8>) -> Result<Vec<u8>> {
        match &self.data_keys {
            Some(k) => k.open(aad, &stored),
            None if key_id(&stored).is_some() => Err(self.keyless()),
            None => Ok(stored),
        }
    }

    pub(crate) fn seal_setting(&self, key: &str, value: &str) -> Result<String> {
        if !SECRET_SETTINGS.contains(&key) {
            return Ok(value.to_string());
        }
        match &self.data_keys {
            Some(k) => k.seal_text(&format!("settings:{key}"), value),
            None if self.sealed => Err(self.keyless()),
            None => Ok(value.to_string()),
        }
    }

    pub(crate) fn open_setting(&self, key: &str, stored: String) -> Result<String> {
        if !SECRET_SETTINGS.contains(&key) {
            return Ok(stored);
        }
        match &self.data_keys {
            Some(k) => k.open_text(&format!("settings:{key}"), &stored),
            None if text_key_id(&stored).is_some() => Err(self.keyless()),
            None => Ok(stored),
        }
    }

    /// Seals every sealed column's value under the current key: values in clear (a database from
    /// before encryption at rest) and values under another key of the ring (a rotation). Works in
    /// batches, each its own transaction, so an interrupted run loses nothing and the next resumes.
    /// Returns how many values it re-sealed.
    pub(crate) async fn reseal_all(&self, keys: &DataKeys) -> Result<u64> {
        use sqlx::Row;
        let mut done = 0u64;
        for (table, pk, col) in SEALED_COLUMNS {
            let mut after = String::new();
            loop {
                let select = format!(
                    "SELECT {pk} AS pk, {col} AS v FROM {table} WHERE {pk} > $1 ORDER BY {pk} LIMIT $2"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(select))
                    .bind(&after)
                    .bind(RESEAL_BATCH)
                    .fetch_all(&self.writer)
                    .await?;
                let Some(last) = rows.last() else { break };
                after = last.try_get("pk")?;
                let mut tx = self.writer.begin().await?;
                for r in &rows {
                    let id: String = r.try_get("pk")?;
                    let stored: Vec<u8> = r.try_get("v")?;
                    if keys.is_current(&stored) {
                        continue;
                    }
                    let aad = format!("{table}:{id}");
                    let plain = if key_id(&stored).is_some() {
                        keys.open(&aad, &stored)?
                    } else {
                        stored.clone()
                    };
                    let update = format!("UPDATE {table} SET {col} = $1 WHERE {pk} = $2 AND {col} = $3");
                    sqlx::query(sqlx::AssertSqlSafe(update))
                        .bind(keys.seal(&aad, &plain)?)
                        .bind(&id)
                        .bind(stored)
                        .execute(&mut *tx)
                        .await?;
                    done += 1;
                }
                tx.commit().await?;
            }
        }
        for key in SECRET_SETTINGS {
            let Some(stored) = self.raw_setting(key).await? else {
                continue;
            };
            if keys.is_current_text(&stored) {
                continue;
            }
            let aad = format!("settings:{key}");
            let plain = if text_key_id(&stored).is_some() {
                keys.open_text(&aad, &stored)?
            } else {
                stored
            };
            self.raw_set_setting(key, &keys.seal_text(&aad, &plain)?).await?;
            done += 1;
        }
        Ok(done)
    }
}

impl crate::Store {
    /// The database's own consistency check; empty when all is well. SQLite: `PRAGMA
    /// integrity_check` and `foreign_key_check`. PostgreSQL (whose server outlives any client's
    /// crash): every table of the schema read to its end and no face without its collection.
    /// On both, with data keys, every sealed value opens.
    pub async fn integrity_check(&self) -> Result<Vec<String>> {
        use sqlx::Row;
        let mut problems = Vec::new();
        if self.backend == crate::Backend::Sqlite {
            let mut conn = self.writer.acquire().await?;
            for r in sqlx::query("PRAGMA integrity_check")
                .fetch_all(&mut *conn)
                .await?
            {
                let line: String = r.try_get(0)?;
                if line != "ok" {
                    problems.push(line);
                }
            }
            let bad = sqlx::query("PRAGMA foreign_key_check")
                .fetch_all(&mut *conn)
                .await?;
            if !bad.is_empty() {
                problems.push(format!("{} rows break a foreign key", bad.len()));
            }
        } else {
            let tables = sqlx::query(
                "SELECT tablename::text AS tablename FROM pg_tables WHERE schemaname = current_schema()",
            )
            .fetch_all(&self.pool)
            .await?;
            for t in tables {
                let t: String = t.try_get(0)?;
                let q = format!("SELECT COUNT(*) AS n FROM \"{}\"", t.replace('"', ""));
                if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(q)).fetch_one(&self.pool).await {
                    problems.push(format!("table {t}: {e}"));
                }
            }
            let orphans: i64 = sqlx::query(
                "SELECT COUNT(*) AS n FROM api_faces f LEFT JOIN api_collections c ON c.id = f.collection_id WHERE c.id IS NULL",
            )
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
            if orphans > 0 {
                problems.push(format!("{orphans} faces without their collection"));
            }
        }
        if let Some(keys) = &self.data_keys {
            for (table, pk, col) in SEALED_COLUMNS {
                let q = format!("SELECT {pk} AS pk, {col} AS v FROM {table}");
                for r in sqlx::query(sqlx::AssertSqlSafe(q)).fetch_all(&self.pool).await? {
                    let id: String = r.try_get("pk")?;
                    let v: Vec<u8> = r.try_get("v")?;
                    if let Err(e) = keys.open(&format!("{table}:{id}"), &v) {
                        problems.push(e.to_string());
                    }
                }
            }
        }
        Ok(problems)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key() -> DataKey {
        DataKey::from_hex(&DataKey::generate_hex().unwrap()).unwrap()
    }

    #[test]
    fn sealed_values_open_only_with_their_key_and_row() {
        let ring = DataKeys::new(key(), vec![]);
        let blob = ring.seal("face_templates:a", b"embedding bytes").unwrap();
        assert!(
            !blob.windows(9).any(|w| w == b"embedding"),
            "no plaintext in the blob"
        );
        assert_eq!(ring.open("face_templates:a", &blob).unwrap(), b"embedding bytes");
        assert!(matches!(
            ring.open("face_templates:b", &blob),
            Err(StoreError::Corrupt(_))
        ));
        let other = DataKeys::new(key(), vec![]);
        assert!(matches!(
            other.open("face_templates:a", &blob),
            Err(StoreError::DataKey(_))
        ));
        let mut altered = blob.clone();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        assert!(ring.open("face_templates:a", &altered).is_err());
        assert!(ring.open("face_templates:a", b"plain").is_err());
        let t = ring.seal_text("settings:pairwise_salt", "salt").unwrap();
        assert_eq!(ring.open_text("settings:pairwise_salt", &t).unwrap(), "salt");
        assert!(ring.opens_check(&ring.check_value().unwrap()));
        assert!(!other.opens_check(&ring.check_value().unwrap()));
    }

    #[test]
    fn a_ring_opens_values_of_every_key_and_seals_with_the_first() {
        let (old, new) = (key(), key());
        let old_ring = DataKeys::new(DataKey::from_bytes(&[7u8; 32]).unwrap(), vec![]);
        let blob = old_ring.seal("x", b"v").unwrap();
        let ring = DataKeys::new(new, vec![old, DataKey::from_bytes(&[7u8; 32]).unwrap()]);
        assert_eq!(ring.open("x", &blob).unwrap(), b"v");
        assert!(!ring.is_current(&blob));
        assert!(ring.is_current(&ring.seal("x", b"v").unwrap()));
        assert!(DataKey::from_hex("abc").is_err());
        assert!(DataKey::from_bytes(&[0u8; 16]).is_err());
    }
}
