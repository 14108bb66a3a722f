//! Keeping the face API's in-memory search indexes of several instances in step (PostgreSQL):
//! every write to a collection sends a notification (`pg_notify`, inside the write's transaction, so
//! it is delivered only if the write commits), and each instance listens and applies the change to
//! its own index. A lost listening connection is re-established and reported as `Resync`, after which
//! the instance rebuilds from the database (notifications sent meanwhile are lost).

use sqlx::postgres::PgListener;

use crate::{Backend, Result, Store};

/// The notification channel.
pub const CHANNEL: &str = "facegate_collections";

/// Notification payloads stay well under PostgreSQL's 8000-byte limit; bigger changes say `sync`.
const MAX_PAYLOAD: usize = 7000;

/// A change to the face API's collections, as another instance must apply it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CollectionChange {
    Created(String),
    Dropped(String),
    /// Faces added to a collection (read them from the database).
    Added {
        collection: String,
        ids: Vec<String>,
    },
    /// Faces deleted from a collection.
    Deleted {
        collection: String,
        ids: Vec<String>,
    },
    /// Rebuild this collection (or, with `None`, everything) from the database.
    Resync(Option<String>),
}

impl CollectionChange {
    /// The notification payload: `op collection [id,id,...]` (ids and collection ids never hold
    /// spaces or commas).
    pub fn encode(&self) -> String {
        let s = match self {
            CollectionChange::Created(c) => format!("new {c}"),
            CollectionChange::Dropped(c) => format!("drop {c}"),
            CollectionChange::Added { collection, ids } => format!("add {collection} {}", ids.join(",")),
            CollectionChange::Deleted { collection, ids } => format!("del {collection} {}", ids.join(",")),
            CollectionChange::Resync(Some(c)) => format!("sync {c}"),
            CollectionChange::Resync(None) => "sync".into(),
        };
        if s.len() <= MAX_PAYLOAD {
            return s;
        }
        match self {
            CollectionChange::Added { collection, .. } | CollectionChange::Deleted { collection, .. } => {
                format!("sync {collection}")
            }
            _ => "sync".into(),
        }
    }

    /// The change a payload describes; anything unexpected means "rebuild everything".
    pub fn decode(payload: &str) -> CollectionChange {
        let mut parts = payload.splitn(3, ' ');
        let (op, collection, ids) = (parts.next(), parts.next(), parts.next());
        let ids = || {
            ids.unwrap_or("")
                .split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect::<Vec<_>>()
        };
        match (op, collection) {
            (Some("new"), Some(c)) => CollectionChange::Created(c.into()),
            (Some("drop"), Some(c)) => CollectionChange::Dropped(c.into()),
            (Some("add"), Some(c)) => CollectionChange::Added {
                collection: c.into(),
                ids: ids(),
            },
            (Some("del"), Some(c)) => CollectionChange::Deleted {
                collection: c.into(),
                ids: ids(),
            },
            (Some("sync"), Some(c)) => CollectionChange::Resync(Some(c.into())),
            _ => CollectionChange::Resync(None),
        }
    }
}

/// The changes other instances (and this one) make, as they commit.
#[derive(Debug)]
pub struct CollectionWatch {
    listener: PgListener,
}

impl CollectionWatch {
    /// The next change. After the connection was lost (and re-established), `Resync(None)`.
    pub async fn next(&mut self) -> Result<CollectionChange> {
        match self.listener.try_recv().await? {
            Some(n) => Ok(CollectionChange::decode(n.payload())),
            None => Ok(CollectionChange::Resync(None)),
        }
    }
}

impl Store {
    /// Listens for collection changes; `None` on SQLite (one instance: nothing to follow).
    pub async fn watch_collections(&self) -> Result<Option<CollectionWatch>> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let mut listener = PgListener::connect(self.url.expose()).await?;
        listener.listen(CHANNEL).await?;
        Ok(Some(CollectionWatch { listener }))
    }

    /// Tells the other instances, inside the write's transaction (PostgreSQL only).
    pub(crate) async fn notify<'c, E>(&self, executor: E, change: &CollectionChange) -> Result<()>
    where
        E: sqlx::Executor<'c, Database = sqlx::Any>,
    {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(change.encode())
                .execute(executor)
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_oversized_ones_ask_for_a_resync() {
        for c in [
            CollectionChange::Created("staff".into()),
            CollectionChange::Dropped("staff".into()),
            CollectionChange::Added {
                collection: "staff".into(),
                ids: vec!["a1".into(), "b-2_x".into()],
            },
            CollectionChange::Deleted {
                collection: "s.v1".into(),
                ids: vec!["z".into()],
            },
            CollectionChange::Resync(Some("staff".into())),
            CollectionChange::Resync(None),
        ] {
            assert_eq!(CollectionChange::decode(&c.encode()), c);
        }
        let big = CollectionChange::Added {
            collection: "staff".into(),
            ids: (0..1000).map(|i| format!("face{i:012}")).collect(),
        };
        assert_eq!(big.encode(), "sync staff");
        assert_eq!(
            CollectionChange::decode("nonsense"),
            CollectionChange::Resync(None)
        );
    }
}

/// The channel on which instances announce the liveness frames they saw (perceptual hashes).
pub const FRAMES_CHANNEL: &str = "facegate_frames";

/// A frame another instance saw: which instance, the check's tag, the frame's 256-bit hash.
pub type SeenFrame = (String, u64, [u64; 4]);

fn encode_frames(instance: &str, frames: &[(u64, [u64; 4])]) -> String {
    let mut s = String::from(instance);
    for (tag, h) in frames {
        s.push_str(&format!(
            " {tag:016x}:{:016x}{:016x}{:016x}{:016x}",
            h[0], h[1], h[2], h[3]
        ));
    }
    s
}

/// The frames a payload announces (malformed parts are skipped).
pub fn decode_frames(payload: &str) -> Vec<SeenFrame> {
    let mut parts = payload.split(' ');
    let Some(instance) = parts.next() else {
        return Vec::new();
    };
    parts
        .filter_map(|p| {
            let (tag, hash) = p.split_once(':')?;
            if hash.len() != 64 {
                return None;
            }
            let word = |i: usize| u64::from_str_radix(hash.get(i * 16..i * 16 + 16)?, 16).ok();
            Some((
                instance.to_string(),
                u64::from_str_radix(tag, 16).ok()?,
                [word(0)?, word(1)?, word(2)?, word(3)?],
            ))
        })
        .collect()
}

/// Frames other instances announce.
#[derive(Debug)]
pub struct FrameWatch {
    listener: PgListener,
}

impl FrameWatch {
    /// The next announcement's frames (empty after a lost connection was re-established).
    pub async fn next(&mut self) -> Result<Vec<SeenFrame>> {
        Ok(match self.listener.try_recv().await? {
            Some(n) => decode_frames(n.payload()),
            None => Vec::new(),
        })
    }
}

impl Store {
    /// Listens for liveness frames other instances saw; `None` on SQLite.
    pub async fn watch_frames(&self) -> Result<Option<FrameWatch>> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let mut listener = PgListener::connect(self.url.expose()).await?;
        listener.listen(FRAMES_CHANNEL).await?;
        Ok(Some(FrameWatch { listener }))
    }

    /// Announces frames this instance saw (PostgreSQL only; in payloads under 8000 bytes).
    pub async fn announce_frames(&self, instance: &str, frames: &[(u64, [u64; 4])]) -> Result<()> {
        if self.backend != Backend::Postgres {
            return Ok(());
        }
        for chunk in frames.chunks(80) {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(FRAMES_CHANNEL)
                .bind(encode_frames(instance, chunk))
                .execute(&self.writer)
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod frame_tests {
    use super::*;

    #[test]
    fn frame_announcements_round_trip() {
        let frames = vec![
            (7u64, [1u64, u64::MAX, 0, 0x0123_4567_89ab_cdef]),
            (u64::MAX, [0; 4]),
        ];
        let decoded = decode_frames(&encode_frames("inst1", &frames));
        assert_eq!(
            decoded,
            frames
                .iter()
                .map(|(t, h)| ("inst1".to_string(), *t, *h))
                .collect::<Vec<_>>()
        );
        assert!(encode_frames("i", &[(1, [2; 4]); 80]).len() < 8000);
        assert!(decode_frames("i 12:zz").is_empty());
    }
}
