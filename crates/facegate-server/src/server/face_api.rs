//! The face API over this server's face engine: `facegate_core::face_api` holds the service
//! (collections, indexes, search); here are the image analysis through the face engine, the quality
//! bars of the filters, the loading of the indexes at start, and the mapping of the service's errors
//! to problem+json. Images are decoded, measured and dropped.

use std::sync::Arc;

use facegate_core::face_api::ApiFaceView;
pub use facegate_core::face_api::{
    FaceApi, FaceApiError, FaceMatch, IndexOutcome, IndexRequest, QualityFilter, valid_collection_id,
    valid_external_id,
};
use facegate_index::IndexConfig;
use facegate_store::Store;
use facegate_vision::quality::{Issue, QualityBar};
use facegate_vision::{
    AnalyzeOptions, DecodeLimits, EngineError, ErrorKind, Face, FaceEngine, FaceWorker, Priority,
};
use serde_json::Value;

pub use super::face_json::{bbox_json, keypoints_json, pose_json, quality_json};
use super::problem::Problem;

/// A filter's quality bar: `low` refuses only faces too small, blurred, dark or turned to be worth
/// searching; `medium` is face login's bar; `high` is enrolment's (docs/face-api.md lists the numbers).
pub fn bar(filter: QualityFilter) -> Option<QualityBar> {
    match filter {
        QualityFilter::None => None,
        QualityFilter::Low => Some(QualityBar {
            min_eye_distance_px: 12.0,
            min_sharpness: 3.0,
            brightness: (15.0, 245.0),
            max_clipped: 0.7,
            max_yaw: 60.0,
            max_pitch: 50.0,
            max_roll: 60.0,
        }),
        QualityFilter::Medium => Some(QualityBar::LOGIN),
        QualityFilter::High => Some(QualityBar::ENROL),
    }
}

/// A face the engine found, as the face API service sees it.
#[derive(Debug)]
pub struct Found(pub Face);

impl std::ops::Deref for Found {
    type Target = Face;
    fn deref(&self) -> &Face {
        &self.0
    }
}

impl ApiFaceView for Found {
    fn embedding(&self) -> Option<&[f32]> {
        self.0.embedding.as_ref().map(|e| e.as_slice())
    }

    fn bbox(&self) -> Value {
        bbox_json(&self.0)
    }

    fn quality(&self) -> Value {
        quality_json(&self.0)
    }

    fn issues(&self, filter: QualityFilter) -> Vec<String> {
        bar(filter)
            .map(|b| b.assess(&self.0.quality, &self.0.pose))
            .unwrap_or_default()
            .into_iter()
            .map(issue_code)
            .collect()
    }
}

/// A decoded, analysed image: its upright size and its faces, largest first.
#[derive(Debug)]
pub struct Analysed {
    pub width: u32,
    pub height: u32,
    pub faces: Vec<Face>,
}

impl Analysed {
    /// The faces, as the face API service takes them.
    pub fn found(self) -> Vec<Found> {
        self.faces.into_iter().map(Found).collect()
    }
}

/// Builds every collection's index from the store (off the async runtime).
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
    let config = IndexConfig {
        exact_max,
        nprobe,
        ..IndexConfig::default()
    };
    let collections = store.collections().await?;
    let faces = store.all_api_faces().await?;
    let pack = pack.to_string();
    Ok(
        tokio::task::spawn_blocking(move || FaceApi::build(&pack, &calibration, config, collections, faces))
            .await?,
    )
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

impl From<FaceApiError> for Problem {
    fn from(e: FaceApiError) -> Self {
        match &e {
            FaceApiError::InvalidRequest(m) => Problem::invalid_request(m.clone()),
            FaceApiError::CollectionNotFound(_) => {
                Problem::not_found("collection-not-found", "Unknown collection", e.to_string())
            }
            FaceApiError::CollectionExists(_) => {
                Problem::conflict("collection-exists", "Collection already exists", e.to_string())
            }
            FaceApiError::PackMismatch { .. } => Problem::conflict(
                "pack-mismatch",
                "Collection made by another model pack",
                e.to_string(),
            ),
            FaceApiError::Unavailable(m) => Problem::internal(m),
        }
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
    fn filters_and_issue_codes() {
        assert!(bar(QualityFilter::None).is_none());
        assert_eq!(
            bar(QualityFilter::High).map(|b| b.min_sharpness),
            Some(QualityBar::ENROL.min_sharpness)
        );
        assert_eq!(issue_code(Issue::TooSmall), "too_small");
    }
}
