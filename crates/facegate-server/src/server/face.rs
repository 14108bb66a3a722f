//! The face services as this server runs them: the face engine (one pipeline per worker, a bounded
//! queue) started from the configured pack, the core's face service (`facegate_core::face`) over it,
//! and the liveness service. [`EngineAnalyzer`] is the core's `FaceAnalyzer` port over
//! `facegate-vision`: pictures are decoded, measured and dropped; only embeddings leave it.

use std::path::PathBuf;
use std::sync::Arc;

use facegate_core::face::{
    AnalysedFace, FaceAnalyzer, FaceError, FaceRules, FaceTemplate, MatchPolicy, Purpose,
};
use facegate_store::Store;
use facegate_vision::quality::QualityBar;
use facegate_vision::{
    AnalyzeOptions, DecodeLimits, EngineConfig, EngineError, FaceEngine, FacePipeline, FaceWorker,
    PackManifest, Priority, VisionError,
};

use super::now;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Face login needs a passed liveness check (the default).
    Required,
    /// Face login accepts a single photo. Only for testing or trusted kiosks.
    Off,
}

#[derive(Debug, Clone)]
pub struct FaceSettings {
    pub enabled: bool,
    pub models_dir: PathBuf,
    pub pack: String,
    /// Target false-match rate of a 1:1 comparison.
    pub target_fmr: f64,
    /// Target false-accept rate of a whole 1:N search (face alone, no username): each comparison
    /// must meet it divided by the number of templates searched.
    pub target_fmr_1n: f64,
    /// A 1:N match must beat the best match of any other account by this much (cosine).
    pub identify_margin: f32,
    /// What a face may do: sign in alone, or only follow a password (FACEGATE_FACE_MODE).
    pub role: facegate_core::login::FaceRole,
    /// Face sign-ups allowed per hour, site-wide.
    pub signups_per_hour: u32,
    pub liveness: Liveness,
    /// A face nobody has enrolled may open a new account (face-only mode).
    pub signup: bool,
    /// Password logins of people with enrolled faces continue with a face check.
    pub second_factor: bool,
    pub checks: super::liveness::LivenessSettings,
    /// Face workers and the queue bound (FACEGATE_FACE_WORKERS, FACEGATE_FACE_QUEUE).
    pub engine: EngineConfig,
}

impl Default for FaceSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            models_dir: facegate_vision::default_models_dir(),
            pack: facegate_vision::DEFAULT_PACK.into(),
            target_fmr: 1e-5,
            target_fmr_1n: 1e-3,
            identify_margin: 0.05,
            role: facegate_core::login::FaceRole::Login,
            signups_per_hour: 20,
            liveness: Liveness::Required,
            signup: false,
            second_factor: false,
            checks: Default::default(),
            engine: EngineConfig::default(),
        }
    }
}

/// The core's face engine port over `facegate-vision`'s engine.
#[derive(Debug, Clone)]
pub struct EngineAnalyzer {
    engine: Arc<FaceEngine>,
}

fn engine_error(e: EngineError) -> FaceError {
    match e {
        EngineError::Busy { retry_after } => FaceError::Busy {
            retry_after: retry_after.as_secs().max(1),
        },
        EngineError::Lost => FaceError::Unavailable(e.to_string()),
    }
}

impl FaceAnalyzer for EngineAnalyzer {
    async fn analyse(&self, bytes: Vec<u8>, purpose: Purpose) -> Result<Vec<AnalysedFace>, FaceError> {
        let result = self
            .engine
            .run(Priority::New, move |w: &FaceWorker| {
                analyse_on(w, &bytes, purpose)
            })
            .await
            .map_err(engine_error)?;
        result.map_err(|e| match e.kind() {
            facegate_vision::ErrorKind::BadImage | facegate_vision::ErrorKind::ImageTooLarge => {
                FaceError::BadImage(format!("That file could not be used: {e}."))
            }
            _ => FaceError::Unavailable(e.to_string()),
        })
    }
}

/// One picture on a worker: decoded within the purpose's limits, faces found, each held to the
/// purpose's quality bar.
fn analyse_on(w: &FaceWorker, bytes: &[u8], purpose: Purpose) -> Result<Vec<AnalysedFace>, VisionError> {
    let preview = matches!(purpose, Purpose::Preview { .. });
    let limits = if preview {
        DecodeLimits {
            max_bytes: 256 * 1024,
            max_side: 1280,
            ..DecodeLimits::default()
        }
    } else {
        DecodeLimits {
            max_bytes: 10 * 1024 * 1024,
            ..DecodeLimits::default()
        }
    };
    let img = facegate_vision::decode(bytes, &limits)?;
    let bar = match purpose {
        Purpose::Login => QualityBar::LOGIN,
        Purpose::Enrol => QualityBar::ENROL,
        // A small preview cannot show sharpness fairly; the real picture is still held to it.
        Purpose::Preview { enrol } => QualityBar {
            min_sharpness: 0.0,
            ..if enrol {
                QualityBar::ENROL
            } else {
                QualityBar::LOGIN
            }
        },
    };
    // Enrolment: a flip-averaged embedding (better templates for a second embedding's cost).
    let levers = facegate_vision::Levers {
        flip: purpose == Purpose::Enrol,
        ..w.pipeline.levers()
    };
    let faces = w.pipeline.analyze_with(
        &img,
        &AnalyzeOptions {
            embed: !preview,
            landmarks: !preview && w.pipeline.has_landmarks(),
            max_faces: None,
        },
        &levers,
    )?;
    let height = img.height().max(1) as f32;
    // A preview frame is small: the size rule is scaled to a 640-pixel frame.
    let scale = if preview { 480.0 / height } else { 1.0 };
    Ok(faces
        .into_iter()
        .map(|f| {
            let mut q = f.quality;
            q.eye_distance_px *= scale;
            AnalysedFace {
                area: f.detection.bbox.area(),
                height_share: f.detection.bbox.height() / height,
                embedding: f.embedding.as_ref().map(|e| e.as_slice().to_vec()),
                issues: bar.assess(&q, &f.pose).iter().map(|i| i.message()).collect(),
                quality: serde_json::json!({
                    "eye_distance_px": f.quality.eye_distance_px.round() as i64,
                    "sharpness": f.quality.sharpness.round() as i64,
                    "brightness": f.quality.brightness.round() as i64,
                    "yaw": f.pose.yaw.round() as i64,
                    "pitch": f.pose.pitch.round() as i64,
                }),
            }
        })
        .collect())
}

/// The face services of a running server.
#[derive(Debug)]
pub struct Faces {
    engine: Arc<FaceEngine>,
    manifest: PackManifest,
    has_landmarks: bool,
    pub settings: FaceSettings,
    /// Enrolment, 1:1, 1:N, face login (the core's service over this engine).
    pub service: facegate_core::face::FaceService<EngineAnalyzer>,
    pub liveness: super::liveness::LivenessService,
}

impl Faces {
    /// Starts the face engine: `settings.engine.workers` pipelines (default: one per core), each
    /// with its own anti-spoof model when that is installed.
    pub fn load(settings: FaceSettings) -> Result<Faces, VisionError> {
        let mut antispoof_missing = None;
        let engine = FaceEngine::start(settings.engine, |_| {
            let pipeline = FacePipeline::load(&settings.models_dir, &settings.pack, &Default::default())?;
            if pipeline.manifest().calibration.thresholds.is_empty() {
                return Err(VisionError::Pack(format!(
                    "pack {} has no calibrated thresholds",
                    settings.pack
                )));
            }
            let antispoof = match facegate_vision::antispoof::AntiSpoof::load(
                &settings.models_dir,
                &Default::default(),
            ) {
                Ok(a) => Some(a),
                Err(e) => {
                    antispoof_missing = Some(e.to_string());
                    None
                }
            };
            Ok(FaceWorker { pipeline, antispoof })
        })?;
        if let Some(e) = antispoof_missing {
            // Liveness without its passive cue is weaker than what the operator configured.
            if settings.liveness == Liveness::Required {
                return Err(VisionError::Pack(format!(
                    "liveness is required but its passive anti-spoof model cannot be loaded ({e}); run `facegate models fetch`"
                )));
            }
            tracing::warn!("liveness checks (API only) run without the passive anti-spoof model: {e}");
        }
        let (manifest, has_landmarks, has_antispoof) = engine
            .submit(Priority::New, |w: &FaceWorker| {
                (
                    w.pipeline.manifest().clone(),
                    w.pipeline.has_landmarks(),
                    w.antispoof.is_some(),
                )
            })
            .and_then(|p| p.wait())
            .map_err(|e| VisionError::Runtime(e.to_string()))?;
        let engine = Arc::new(engine);
        let policy = MatchPolicy {
            calibration: manifest
                .calibration
                .thresholds
                .iter()
                .map(|t| (t.fmr, t.cosine))
                .collect(),
            target_fmr: settings.target_fmr,
            target_fmr_1n: settings.target_fmr_1n,
            identify_margin: settings.identify_margin,
        };
        // Two frames of one check must be one person: the pack's lenient 1e-2 operating point.
        let continuity = policy.possible_match_threshold();
        let liveness = super::liveness::LivenessService::new(
            engine.clone(),
            has_landmarks,
            has_antispoof,
            continuity,
            settings.checks.clone(),
        );
        let service = facegate_core::face::FaceService::new(
            EngineAnalyzer {
                engine: engine.clone(),
            },
            policy,
            FaceRules {
                pack: settings.pack.clone(),
                role: settings.role,
                liveness_required: settings.liveness == Liveness::Required,
                signup: settings.signup,
                signups_per_hour: settings.signups_per_hour,
                ..FaceRules::default()
            },
        );
        Ok(Faces {
            engine,
            manifest,
            has_landmarks,
            settings,
            service,
            liveness,
        })
    }

    /// The face engine (the face API analyses images with it too).
    pub fn engine(&self) -> Arc<FaceEngine> {
        self.engine.clone()
    }

    pub fn manifest(&self) -> &PackManifest {
        &self.manifest
    }

    pub fn has_landmarks(&self) -> bool {
        self.has_landmarks
    }

    pub fn pack(&self) -> &str {
        &self.settings.pack
    }

    /// The largest gallery (templates) a 1:N search serves at the configured 1:N target.
    pub fn largest_gallery(&self) -> usize {
        self.service.policy.largest_gallery()
    }

    /// The operator's enrolment of one photo (`facegate user add --face`, tests).
    pub async fn enrol(
        &self,
        store: &Store,
        user_id: &str,
        image: Vec<u8>,
    ) -> Result<FaceTemplate, FaceError> {
        self.service.enrol_photo(store, user_id, image, now()).await
    }
}
