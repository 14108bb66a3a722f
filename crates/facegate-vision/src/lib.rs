//! facegate-vision: images in, faces out.
//!
//! Decoding with limits ([`decode`]), detection with five keypoints ([`detect`]), ArcFace alignment and
//! embeddings ([`embed`]), 106-point landmarks and the measures taken from them ([`landmarks`],
//! [`measures`]), quality signals ([`quality`]), model packs and their fetching ([`pack`], [`fetch`]),
//! all tied together by [`FacePipeline`]. No HTTP and no database here.

pub mod antispoof;
pub mod decode;
pub mod detect;
pub mod embed;
pub mod engine;
pub mod error;
pub mod fetch;
pub mod geometry;
pub mod landmarks;
pub mod measures;
pub mod metrics;
pub mod observe;
pub mod pack;
pub mod pipeline;
pub mod quality;
pub mod runtime;

/// Runs one stage of the face pipeline, recording its time as `facegate_face_stage_seconds{stage}`
/// (a no-op without a metrics recorder installed, as in the CLI and tests).
pub(crate) fn timed<T>(stage: &'static str, f: impl FnOnce() -> T) -> T {
    let t = std::time::Instant::now();
    let out = f();
    ::metrics::histogram!("facegate_face_stage_seconds", "stage" => stage).record(t.elapsed().as_secs_f64());
    out
}

pub use decode::{DecodeLimits, decode};
pub use detect::Detection;
pub use embed::Embedding;
pub use engine::{Engine, EngineConfig, EngineError, FaceEngine, FaceWorker, Permit, Priority};
pub use error::{ErrorKind, Result, VisionError};
pub use pack::{DEFAULT_PACK, PackManifest, default_models_dir};
pub use pipeline::{AnalyzeOptions, Face, FacePipeline, Levers};
pub use runtime::RuntimeOptions;
