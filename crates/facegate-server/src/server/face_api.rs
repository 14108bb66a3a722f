//! The face API's service: collections and their in-memory search indexes (built from the store at
//! start, updated on every write), image analysis through the face pipeline, and the operations the
//! `/v1` handlers and `facegate faces import` call. Images are decoded, measured and dropped; only
//! embeddings, boxes and quality numbers are kept.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use facegate_core::secret::random_token;
use facegate_core::similarity::SimilarityScale;
use facegate_index::{Index, IndexConfig};
use facegate_store::{ApiCollection, ApiFace, Store, StoreError};
use facegate_vision::quality::{Issue, QualityBar};
use facegate_vision::{
    AnalyzeOptions, DecodeLimits, EngineError, ErrorKind, Face, FaceEngine, FaceWorker, Priority,
};
use serde_json::{Value, json};

use super::face_json::round2;
pub use super::face_json::{bbox_json, keypoints_json, pose_json, quality_json};
use super::now;
use super::problem::Problem;

/// Which faces `POST /v1/collections/{id}/faces` keeps, by the pipeline's quality measures.
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

    /// The bar: `low` refuses only faces too small, blurred, dark or turned to be worth searching;
    /// `medium` is face login's bar; `high` is enrolment's (docs/face-api.md lists the numbers).
    pub fn bar(self) -> Option<QualityBar> {
        match self {
            Self::None => None,
            Self::Low => Some(QualityBar {
                min_eye_distance_px: 12.0,
                min_sharpness: 3.0,
                brightness: (15.0, 245.0),
                max_clipped: 0.7,
                max_yaw: 60.0,
                max_pitch: 50.0,
                max_roll: 60.0,
            }),
            Self::Medium => Some(QualityBar::LOGIN),
            Self::High => Some(QualityBar::ENROL),
        }
    }
}

/// A decoded, analysed image: its upright size and its faces, largest first.
#[derive(Debug)]
pub struct Analysed {
    pub width: u32,
    pub height: u32,
    pub faces: Vec<Face>,
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
pub struct IndexOutcome {
    pub indexed: Vec<(ApiFace, Face)>,
    /// Faces left out, with the reasons (quality issues in snake_case, or `exceeds_max_faces`).
    pub unindexed: Vec<(Face, Vec<String>)>,
}

#[derive(Debug)]
pub struct FaceApi {
    collections: RwLock<HashMap<String, Arc<RwLock<Live>>>>,
    config: IndexConfig,
    scale: SimilarityScale,
    pack: String,
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

impl FaceApi {
    /// Builds every collection's index from the store.
    pub async fn load(store: &Store, pack: &str, exact_max: usize, nprobe: usize) -> anyhow::Result<FaceApi> {
        // An unknown pack leaves face login off (with a warning elsewhere); the API still starts, and
        // its image endpoints answer face-unavailable.
        let calibration: Vec<(f64, f32)> = match facegate_vision::PackManifest::builtin(pack) {
            Ok(m) => m
                .calibration
                .thresholds
                .iter()
                .map(|t| (t.fmr, t.cosine))
                .collect(),
            Err(e) => {
                tracing::warn!("face API: {e}");
                Vec::new()
            }
        };
        let scale = SimilarityScale::from_calibration(&calibration);
        let config = IndexConfig {
            exact_max,
            nprobe,
            ..IndexConfig::default()
        };
        let mut grouped: HashMap<String, Vec<ApiFace>> = HashMap::new();
        for c in store.collections().await? {
            grouped.insert(c.id, Vec::new());
        }
        for f in store.all_api_faces().await? {
            grouped.entry(f.collection_id.clone()).or_default().push(f);
        }
        let collections = tokio::task::spawn_blocking(move || {
            grouped
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
                .collect::<HashMap<_, _>>()
        })
        .await?;
        Ok(FaceApi {
            collections: RwLock::new(collections),
            config,
            scale,
            pack: pack.to_string(),
        })
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

    pub async fn create_collection(&self, store: &Store, id: &str) -> Result<ApiCollection, Problem> {
        if !valid_collection_id(id) {
            return Err(Problem::invalid_request(
                "collectionId must be 1-64 letters, digits, '_', '-' or '.'",
            ));
        }
        match store.create_collection(id, &self.pack, now()).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                return Err(Problem::conflict(
                    "collection-exists",
                    "Collection already exists",
                    format!("a collection {id} already exists"),
                ));
            }
            Err(e) => return Err(e.into()),
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

    /// A collection, or 404 `collection-not-found`.
    pub async fn collection(&self, store: &Store, id: &str) -> Result<ApiCollection, Problem> {
        store.collection(id).await?.ok_or_else(|| {
            Problem::not_found(
                "collection-not-found",
                "Unknown collection",
                format!("there is no collection {id:?}"),
            )
        })
    }

    pub async fn delete_collection(&self, store: &Store, id: &str) -> Result<(), Problem> {
        if !store.delete_collection(id).await? {
            return Err(Problem::not_found(
                "collection-not-found",
                "Unknown collection",
                format!("there is no collection {id:?}"),
            ));
        }
        if let Ok(mut m) = self.collections.write() {
            m.remove(id);
        }
        Ok(())
    }

    /// A collection that holds this server's pack (409 `pack-mismatch` otherwise).
    pub async fn usable_collection(&self, store: &Store, id: &str) -> Result<ApiCollection, Problem> {
        let c = self.collection(store, id).await?;
        if c.pack != self.pack {
            return Err(Problem::conflict(
                "pack-mismatch",
                "Collection made by another model pack",
                format!(
                    "collection {id} holds {} embeddings; this server runs {}",
                    c.pack, self.pack
                ),
            ));
        }
        Ok(c)
    }

    /// Decodes and analyses an image off the async runtime, refusing bad or oversized images.
    pub async fn analyse(
        engine: Arc<FaceEngine>,
        bytes: Vec<u8>,
        max_image: usize,
        embed: bool,
        landmarks: bool,
    ) -> Result<Analysed, Problem> {
        let result = engine
            .run(Priority::New, move |w: &FaceWorker| {
                let limits = DecodeLimits {
                    max_bytes: max_image,
                    ..DecodeLimits::default()
                };
                let img = facegate_vision::decode(&bytes, &limits)?;
                let faces = w.pipeline.analyze(
                    &img,
                    &AnalyzeOptions {
                        embed,
                        landmarks: landmarks && w.pipeline.has_landmarks(),
                        max_faces: Some(100),
                    },
                )?;
                Ok::<_, facegate_vision::VisionError>(Analysed {
                    width: img.width(),
                    height: img.height(),
                    faces,
                })
            })
            .await
            .map_err(|e| match e {
                EngineError::Busy { retry_after } => Problem::busy(retry_after.as_secs()),
                EngineError::Lost => Problem::internal(e),
            })?;
        result.map_err(|e| match e.kind() {
            ErrorKind::BadImage => Problem::invalid_image(e.to_string()),
            ErrorKind::ImageTooLarge => Problem::too_large(e.to_string()),
            ErrorKind::FaceCount => Problem::no_face(e.to_string()),
            _ => Problem::internal(e),
        })
    }

    /// Indexes the faces of an analysed image: quality filter, then the `max_faces` largest.
    pub async fn index_faces(
        &self,
        store: &Store,
        collection: &str,
        analysed: Analysed,
        req: IndexRequest<'_>,
    ) -> Result<IndexOutcome, Problem> {
        let IndexRequest {
            external_id,
            max_faces,
            filter,
            import_sha256,
        } = req;
        let bar = filter.bar();
        let mut keep = Vec::new();
        let mut unindexed = Vec::new();
        for face in analysed.faces {
            let issues: Vec<String> = bar
                .map(|b| b.assess(&face.quality, &face.pose))
                .unwrap_or_default()
                .into_iter()
                .map(issue_code)
                .collect();
            if !issues.is_empty() {
                unindexed.push((face, issues));
            } else if keep.len() >= max_faces {
                unindexed.push((face, vec!["exceeds_max_faces".to_string()]));
            } else {
                keep.push(face);
            }
        }
        let t = now();
        let mut records = Vec::new();
        for face in keep {
            let Some(embedding) = face.embedding.as_ref().map(|e| e.as_slice().to_vec()) else {
                return Err(Problem::internal("face without embedding"));
            };
            let record = ApiFace {
                id: random_token(12),
                collection_id: collection.to_string(),
                external_id: external_id.map(String::from),
                pack: self.pack.clone(),
                embedding,
                bbox: bbox_json(&face),
                quality: quality_json(&face),
                created_at: t,
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
                    .add_imported_faces(&rows, collection, sha, external_id.unwrap_or_default(), t)
                    .await?
            }
            None => store.add_api_faces(&rows).await?,
        }
        self.add_to_index(collection, &rows);
        Ok(IndexOutcome {
            indexed: records,
            unindexed,
        })
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
            if let Err(e) = index.insert(r.id.clone(), &r.embedding) {
                tracing::error!("face {} not added to the search index: {e}", r.id);
                continue;
            }
            l.external.insert(r.id.clone(), r.external_id.clone());
        }
    }

    /// Deletes faces; returns the ids that existed.
    pub async fn delete_faces(
        &self,
        store: &Store,
        collection: &str,
        ids: &[String],
    ) -> Result<Vec<String>, Problem> {
        let deleted = store.delete_api_faces(collection, ids).await?;
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

fn issue_code(i: Issue) -> String {
    serde_json::to_value(i)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_else(|| format!("{i:?}").to_lowercase())
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
        assert!(QualityFilter::None.bar().is_none());
        assert_eq!(issue_code(Issue::TooSmall), "too_small");
    }
}
