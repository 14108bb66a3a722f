//! The face API's service (collections, index, search), in the style of cloud face services:
//! collections hold faces of one model pack; each collection has an in-memory search index
//! (`facegate-index`: exact below a size, approximate above), built from the store at start and kept
//! up to date on every write. Scores are reported as a 0-100 similarity from the pack's calibration.
//! What it needs from outside is a store of collections (`CollectionStore`) and analysed faces
//! (`ApiFaceView`, implemented by the server over `facegate-vision`). Only embeddings, boxes and
//! quality numbers are kept: never images.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, RwLock};

use facegate_index::{Index, IndexConfig};
use serde_json::{Value, json};

use crate::face::PortError;
use crate::secret::random_token;
use crate::similarity::SimilarityScale;

/// A collection with its face count.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiCollection {
    pub id: String,
    /// The model pack whose embeddings it holds.
    pub pack: String,
    pub created_at: i64,
    pub face_count: i64,
}

/// A face indexed into a collection.
#[derive(Clone, PartialEq)]
pub struct ApiFace {
    pub id: String,
    pub collection_id: String,
    pub external_id: Option<String>,
    pub pack: String,
    pub embedding: Vec<f32>,
    /// The face's box in the source image (JSON: left, top, width, height in pixels).
    pub bbox: serde_json::Value,
    /// Quality measures (JSON), as returned when it was indexed.
    pub quality: serde_json::Value,
    pub created_at: i64,
}

impl std::fmt::Debug for ApiFace {
    // Embeddings are biometric data: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ApiFace({} in {}, {}, dim {})",
            self.id,
            self.collection_id,
            self.pack,
            self.embedding.len()
        )
    }
}

/// Which faces indexing keeps, by the face engine's quality measures (`low` refuses only faces too
/// small, blurred, dark or turned to be worth searching; `medium` is face login's bar; `high`
/// enrolment's; docs/face-api.md lists the numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QualityFilter {
    None,
    Low,
    Medium,
    High,
}

impl QualityFilter {
    pub fn parse(s: &str) -> Option<QualityFilter> {
        Some(match s.to_ascii_lowercase().as_str() {
            "none" => Self::None,
            "low" => Self::Low,
            "medium" => Self::Medium,
            "high" => Self::High,
            _ => return None,
        })
    }
}

/// Collection ids: 1-64 characters of letters, digits, `_`, `-` and `.`.
pub fn valid_collection_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// External ids: 1-255 characters, no control characters.
pub fn valid_external_id(id: &str) -> bool {
    (1..=255).contains(&id.chars().count()) && !id.chars().any(char::is_control)
}

/// A face the engine found, as the face API sees it.
pub trait ApiFaceView {
    fn embedding(&self) -> Option<&[f32]>;
    /// The box in the source image (JSON: left, top, width, height in pixels).
    fn bbox(&self) -> Value;
    /// The quality measures (JSON), as returned and kept.
    fn quality(&self) -> Value;
    /// What `filter` finds wrong with the face, as snake_case codes (none: it passes).
    fn issues(&self, filter: QualityFilter) -> Vec<String>;
}

/// Where collections and their faces are kept.
pub trait CollectionStore: Send + Sync {
    /// Creates a collection; `Ok(false)` when one by that id exists.
    fn create_collection(
        &self,
        id: &str,
        pack: &str,
        now: i64,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
    fn collection(&self, id: &str) -> impl Future<Output = Result<Option<ApiCollection>, PortError>> + Send;
    fn delete_collection(&self, id: &str) -> impl Future<Output = Result<bool, PortError>> + Send;
    fn add_faces(&self, faces: &[ApiFace]) -> impl Future<Output = Result<(), PortError>> + Send;
    /// Adds the faces of one file of a folder import and records the file, in one transaction.
    fn add_imported_faces(
        &self,
        faces: &[ApiFace],
        collection: &str,
        sha256: &str,
        source: &str,
        now: i64,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
    /// Deletes faces of a collection; the ids that existed.
    fn delete_faces(
        &self,
        collection: &str,
        ids: &[String],
    ) -> impl Future<Output = Result<Vec<String>, PortError>> + Send;
}

/// What went wrong, for the API surface to render (problem+json).
#[derive(Debug, thiserror::Error)]
pub enum FaceApiError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("there is no collection {0:?}")]
    CollectionNotFound(String),
    #[error("a collection {0} already exists")]
    CollectionExists(String),
    #[error("collection {id} holds {held} embeddings; this server runs {runs}")]
    PackMismatch { id: String, held: String, runs: String },
    #[error("{0}")]
    Unavailable(String),
}

impl From<PortError> for FaceApiError {
    fn from(e: PortError) -> Self {
        FaceApiError::Unavailable(e.0)
    }
}

/// One collection's search index and the external ids of its faces.
#[derive(Debug)]
struct Live {
    index: Option<Index<String>>,
    external: HashMap<String, Option<String>>,
}

/// A search result.
#[derive(Debug, Clone)]
pub struct FaceMatch {
    pub face_id: String,
    pub external_id: Option<String>,
    pub cosine: f32,
}

/// How to index one image's faces.
#[derive(Debug, Clone, Copy)]
pub struct IndexRequest<'a> {
    pub external_id: Option<&'a str>,
    /// Keep at most this many faces (the largest that pass the filter).
    pub max_faces: usize,
    pub filter: QualityFilter,
    /// For a folder import: the file's sha256, recorded with the faces in one transaction.
    pub import_sha256: Option<&'a str>,
}

/// What indexing one image did.
#[derive(Debug)]
pub struct IndexOutcome<F> {
    pub indexed: Vec<(ApiFace, F)>,
    /// Faces left out, with the reasons (quality issues in snake_case, or `exceeds_max_faces`).
    pub unindexed: Vec<(F, Vec<String>)>,
}

#[derive(Debug)]
pub struct FaceApi {
    collections: RwLock<HashMap<String, Arc<RwLock<Live>>>>,
    config: IndexConfig,
    scale: SimilarityScale,
    pack: String,
}

fn round2(x: f32) -> f64 {
    (f64::from(x) * 100.0).round() / 100.0
}

impl FaceApi {
    /// Builds every collection's index (CPU work: run it off the async runtime). `calibration` is
    /// the pack's (false-match rate, cosine) pairs, for the similarity scale.
    pub fn build(
        pack: &str,
        calibration: &[(f64, f32)],
        config: IndexConfig,
        collections: Vec<ApiCollection>,
        faces: Vec<ApiFace>,
    ) -> FaceApi {
        let mut grouped: HashMap<String, Vec<ApiFace>> = HashMap::new();
        for c in collections {
            grouped.insert(c.id, Vec::new());
        }
        for f in faces {
            grouped.entry(f.collection_id.clone()).or_default().push(f);
        }
        let collections = grouped
            .into_iter()
            .map(|(id, faces)| {
                let external = faces
                    .iter()
                    .map(|f| (f.id.clone(), f.external_id.clone()))
                    .collect();
                let index = faces.first().map(|f| f.embedding.len()).and_then(|dim| {
                    Index::build(
                        dim,
                        config,
                        faces
                            .into_iter()
                            .filter(|f| f.embedding.len() == dim)
                            .map(|f| (f.id, f.embedding)),
                    )
                    .ok()
                });
                (id, Arc::new(RwLock::new(Live { index, external })))
            })
            .collect();
        FaceApi {
            collections: RwLock::new(collections),
            config,
            scale: SimilarityScale::from_calibration(calibration),
            pack: pack.to_string(),
        }
    }

    pub fn pack(&self) -> &str {
        &self.pack
    }

    pub fn scale(&self) -> &SimilarityScale {
        &self.scale
    }

    /// Similarity 0-100 of a cosine, rounded to 2 decimals.
    pub fn similarity(&self, cosine: f32) -> f64 {
        round2(self.scale.similarity(cosine))
    }

    fn live(&self, id: &str) -> Option<Arc<RwLock<Live>>> {
        self.collections.read().ok()?.get(id).cloned()
    }

    /// The index's mode and size, for describing a collection.
    pub fn index_info(&self, id: &str) -> Value {
        let Some(live) = self.live(id) else {
            return Value::Null;
        };
        let Ok(l) = live.read() else {
            return Value::Null;
        };
        match &l.index {
            Some(i) if i.is_approximate() => json!({
                "kind": "ivf", "lists": i.lists(), "nprobe": i.nprobe(), "exactMax": self.config.exact_max,
            }),
            _ => json!({"kind": "exact", "exactMax": self.config.exact_max}),
        }
    }

    pub async fn create_collection<S: CollectionStore>(
        &self,
        store: &S,
        id: &str,
        now: i64,
    ) -> Result<ApiCollection, FaceApiError> {
        if !valid_collection_id(id) {
            return Err(FaceApiError::InvalidRequest(
                "collectionId must be 1-64 letters, digits, '_', '-' or '.'".into(),
            ));
        }
        if !store.create_collection(id, &self.pack, now).await? {
            return Err(FaceApiError::CollectionExists(id.to_string()));
        }
        if let Ok(mut m) = self.collections.write() {
            m.insert(
                id.to_string(),
                Arc::new(RwLock::new(Live {
                    index: None,
                    external: HashMap::new(),
                })),
            );
        }
        self.collection(store, id).await
    }

    /// A collection, or `CollectionNotFound`.
    pub async fn collection<S: CollectionStore>(
        &self,
        store: &S,
        id: &str,
    ) -> Result<ApiCollection, FaceApiError> {
        store
            .collection(id)
            .await?
            .ok_or_else(|| FaceApiError::CollectionNotFound(id.to_string()))
    }

    pub async fn delete_collection<S: CollectionStore>(
        &self,
        store: &S,
        id: &str,
    ) -> Result<(), FaceApiError> {
        if !store.delete_collection(id).await? {
            return Err(FaceApiError::CollectionNotFound(id.to_string()));
        }
        if let Ok(mut m) = self.collections.write() {
            m.remove(id);
        }
        Ok(())
    }

    /// A collection that holds this server's pack (`PackMismatch` otherwise).
    pub async fn usable_collection<S: CollectionStore>(
        &self,
        store: &S,
        id: &str,
    ) -> Result<ApiCollection, FaceApiError> {
        let c = self.collection(store, id).await?;
        if c.pack != self.pack {
            return Err(FaceApiError::PackMismatch {
                id: id.to_string(),
                held: c.pack,
                runs: self.pack.clone(),
            });
        }
        Ok(c)
    }

    /// Indexes the faces of an analysed image (largest first): quality filter, then the
    /// `max_faces` largest.
    pub async fn index_faces<S: CollectionStore, F: ApiFaceView>(
        &self,
        store: &S,
        collection: &str,
        faces: Vec<F>,
        req: IndexRequest<'_>,
        now: i64,
    ) -> Result<IndexOutcome<F>, FaceApiError> {
        let IndexRequest {
            external_id,
            max_faces,
            filter,
            import_sha256,
        } = req;
        let mut keep = Vec::new();
        let mut unindexed = Vec::new();
        for face in faces {
            let issues = face.issues(filter);
            if !issues.is_empty() {
                unindexed.push((face, issues));
            } else if keep.len() >= max_faces {
                unindexed.push((face, vec!["exceeds_max_faces".to_string()]));
            } else {
                keep.push(face);
            }
        }
        let mut records = Vec::new();
        for face in keep {
            let Some(embedding) = face.embedding().map(<[f32]>::to_vec) else {
                return Err(FaceApiError::Unavailable(
                    "the face engine gave no embedding".into(),
                ));
            };
            let record = ApiFace {
                id: random_token(12),
                collection_id: collection.to_string(),
                external_id: external_id.map(String::from),
                pack: self.pack.clone(),
                embedding,
                bbox: face.bbox(),
                quality: face.quality(),
                created_at: now,
            };
            records.push((record, face));
        }
        let rows: Vec<ApiFace> = records.iter().map(|(r, _)| r.clone()).collect();
        if rows.is_empty() {
            // Nothing kept: nothing stored, and an import file stays to be retried.
            return Ok(IndexOutcome {
                indexed: records,
                unindexed,
            });
        }
        match import_sha256 {
            Some(sha) => {
                store
                    .add_imported_faces(&rows, collection, sha, external_id.unwrap_or_default(), now)
                    .await?
            }
            None => store.add_faces(&rows).await?,
        }
        self.add_to_index(collection, &rows);
        Ok(IndexOutcome {
            indexed: records,
            unindexed,
        })
    }

    /// Another instance's change, applied to this instance's indexes only (the store has it).
    /// Faces already in the index are left as they are.
    pub fn index_stored(&self, collection: &str, rows: &[ApiFace]) {
        let fresh: Vec<ApiFace> = rows
            .iter()
            .filter(|r| self.embedding_of(collection, &r.id).is_none())
            .cloned()
            .collect();
        self.add_to_index(collection, &fresh);
    }

    /// Faces deleted elsewhere: out of this instance's index.
    pub fn unindex(&self, collection: &str, ids: &[String]) {
        if let Some(live) = self.live(collection)
            && let Ok(mut l) = live.write()
        {
            for id in ids {
                if let Some(i) = l.index.as_mut() {
                    i.remove(id);
                }
                l.external.remove(id);
            }
        }
    }

    /// A collection created elsewhere (empty until faces arrive).
    pub fn know_collection(&self, id: &str) {
        if let Ok(mut m) = self.collections.write() {
            m.entry(id.to_string()).or_insert_with(|| {
                Arc::new(RwLock::new(Live {
                    index: None,
                    external: HashMap::new(),
                }))
            });
        }
    }

    /// A collection deleted elsewhere.
    pub fn forget_collection(&self, id: &str) {
        if let Ok(mut m) = self.collections.write() {
            m.remove(id);
        }
    }

    /// Replaces every index with `rebuilt`'s (a resynchronisation from the database).
    pub fn replace_with(&self, rebuilt: FaceApi) {
        let fresh = rebuilt.collections.into_inner().unwrap_or_default();
        if let Ok(mut m) = self.collections.write() {
            *m = fresh;
        }
    }

    /// Replaces one collection's index with one built from `faces`.
    pub fn rebuild_collection(&self, id: &str, faces: Vec<ApiFace>) {
        let one = FaceApi::build(
            &self.pack,
            &[],
            self.config,
            vec![ApiCollection {
                id: id.to_string(),
                pack: self.pack.clone(),
                created_at: 0,
                face_count: 0,
            }],
            faces,
        );
        let live = one.live(id);
        if let (Some(live), Ok(mut m)) = (live, self.collections.write()) {
            m.insert(id.to_string(), live);
        }
    }

    fn add_to_index(&self, collection: &str, rows: &[ApiFace]) {
        let live = match self.live(collection) {
            Some(l) => l,
            None => {
                let l = Arc::new(RwLock::new(Live {
                    index: None,
                    external: HashMap::new(),
                }));
                if let Ok(mut m) = self.collections.write() {
                    m.entry(collection.to_string())
                        .or_insert_with(|| l.clone())
                        .clone()
                } else {
                    l
                }
            }
        };
        let Ok(mut l) = live.write() else {
            return;
        };
        for r in rows {
            let dim = r.embedding.len();
            let index = l.index.get_or_insert_with(|| Index::new(dim, self.config));
            // One pack, one dimension: a face of another dimension stays stored and unsearched
            // (the next start's build leaves it out the same way).
            if index.insert(r.id.clone(), &r.embedding).is_ok() {
                l.external.insert(r.id.clone(), r.external_id.clone());
            }
        }
    }

    /// Deletes faces; returns the ids that existed.
    pub async fn delete_faces<S: CollectionStore>(
        &self,
        store: &S,
        collection: &str,
        ids: &[String],
    ) -> Result<Vec<String>, FaceApiError> {
        let deleted = store.delete_faces(collection, ids).await?;
        if let Some(live) = self.live(collection)
            && let Ok(mut l) = live.write()
        {
            for id in &deleted {
                if let Some(i) = l.index.as_mut() {
                    i.remove(id);
                }
                l.external.remove(id);
            }
        }
        Ok(deleted)
    }

    /// The stored embedding of a face in a collection.
    pub fn embedding_of(&self, collection: &str, face_id: &str) -> Option<Vec<f32>> {
        let live = self.live(collection)?;
        let l = live.read().ok()?;
        l.index.as_ref()?.get(&face_id.to_string()).map(<[f32]>::to_vec)
    }

    /// The `max` most similar faces with similarity >= `threshold` (0-100), best first.
    pub fn search(
        &self,
        collection: &str,
        probe: &[f32],
        threshold: f32,
        max: usize,
        exclude: Option<&str>,
    ) -> Vec<FaceMatch> {
        let Some(live) = self.live(collection) else {
            return Vec::new();
        };
        let Ok(l) = live.read() else {
            return Vec::new();
        };
        let Some(index) = l.index.as_ref() else {
            return Vec::new();
        };
        let min_cos = self.scale.cosine(threshold) - 1e-6;
        index
            .search(probe, max + usize::from(exclude.is_some()), min_cos)
            .into_iter()
            .filter(|h| Some(h.key.as_str()) != exclude)
            .filter(|h| self.scale.similarity(h.score) >= threshold - 1e-3)
            .take(max)
            .map(|h| FaceMatch {
                external_id: l.external.get(&h.key).cloned().flatten(),
                face_id: h.key,
                cosine: h.score,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_filters() {
        assert!(valid_collection_id("staff-2026.v1_a"));
        assert!(!valid_collection_id(""));
        assert!(!valid_collection_id("a/b"));
        assert!(!valid_collection_id(&"x".repeat(65)));
        assert!(valid_external_id("Jane Doe #4"));
        assert!(!valid_external_id("a\nb"));
        assert_eq!(QualityFilter::parse("HIGH"), Some(QualityFilter::High));
        assert_eq!(QualityFilter::parse("auto"), None);
    }
}
