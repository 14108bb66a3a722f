//! Instants as wall-clock milliseconds, for a check kept in the database: every instance maps
//! its own monotonic clock to the Unix epoch through one anchor taken at its start, so a deadline
//! written by one instance means the same moment to another (their clocks kept in step, as token
//! expiry already assumes). A simulated clock (tests, the eval) maps consistently too.

use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn anchor() -> (Instant, i64) {
    static ANCHOR: OnceLock<(Instant, i64)> = OnceLock::new();
    *ANCHOR.get_or_init(|| {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        (Instant::now(), ms)
    })
}

pub fn to_ms(t: Instant) -> i64 {
    let (at, ms) = anchor();
    if t >= at {
        ms.saturating_add(t.duration_since(at).as_millis() as i64)
    } else {
        ms.saturating_sub(at.duration_since(t).as_millis() as i64)
    }
}

pub fn from_ms(v: i64) -> Instant {
    let (at, ms) = anchor();
    if v >= ms {
        at + Duration::from_millis((v - ms) as u64)
    } else {
        at.checked_sub(Duration::from_millis((ms - v) as u64))
            .unwrap_or(at)
    }
}

/// Embeddings as base64 of their little-endian f32 bytes (a quarter of their JSON size).
pub mod vectors {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD_NO_PAD as B64;

    pub fn serialize<S: serde::Serializer>(v: &[Vec<f32>], s: S) -> Result<S::Ok, S::Error> {
        let out: Vec<String> = v
            .iter()
            .map(|e| B64.encode(e.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>()))
            .collect();
        serde::Serialize::serialize(&out, s)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Vec<f32>>, D::Error> {
        let v: Vec<String> = serde::Deserialize::deserialize(d)?;
        v.iter()
            .map(|s| {
                let b = B64.decode(s).map_err(serde::de::Error::custom)?;
                if b.len() % 4 != 0 {
                    return Err(serde::de::Error::custom("embedding bytes not a multiple of 4"));
                }
                Ok(b.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect())
            })
            .collect()
    }
}

/// Bytes (a reference picture) as base64.
pub mod bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD_NO_PAD as B64;

    pub fn serialize<S: serde::Serializer>(v: &Option<(f32, Vec<u8>)>, s: S) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(&v.as_ref().map(|(score, b)| (score, B64.encode(b))), s)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<(f32, Vec<u8>)>, D::Error> {
        let v: Option<(f32, String)> = serde::Deserialize::deserialize(d)?;
        v.map(|(score, s)| {
            B64.decode(s)
                .map(|b| (score, b))
                .map_err(serde::de::Error::custom)
        })
        .transpose()
    }
}
