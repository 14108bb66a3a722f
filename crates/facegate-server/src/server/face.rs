//! Face login's service: the loaded pipeline, enrolment with quality checks, 1:1 verification and 1:N
//! identification against the templates in the store, and the match policy from the pack's
//! calibration. Photos are decoded, measured and dropped: only embeddings are kept.

use std::path::PathBuf;
use std::sync::Arc;

use facegate_core::face::{FaceTemplate, Identification, per_comparison_fmr};
use facegate_core::face_fusion::{DEFAULT_FUSION, identify_fused};
use facegate_core::secret::random_token;
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

/// What went wrong, in words for the person (the HTTP layer picks the status).
#[derive(Debug, thiserror::Error)]
pub enum FaceError {
    #[error("{0}")]
    BadImage(String),
    #[error("No face was found. Make sure your whole face is in the picture and well lit.")]
    NoFace,
    #[error("More than one face is in the picture. Make sure only you are in view.")]
    MultipleFaces,
    #[error("{}", .0.join(" "))]
    Quality(Vec<&'static str>),
    #[error("No face is enrolled for this account yet.")]
    NotEnrolled,
    #[error("The face does not match.")]
    NoMatch,
    #[error("Face login is not available on this server right now.")]
    Unavailable(String),
    /// 1:N would need a false-match rate per comparison below what the pack's calibration vouches
    /// for: the gallery is too large for face-alone sign-in at the configured target.
    #[error("Sign-in by face alone is not available here: enter your username.")]
    GalleryTooLarge { templates: usize, largest: usize },
    /// Two accounts match too closely to tell apart.
    #[error("The face matches more than one account closely. Enter your username.")]
    Ambiguous,
    /// The face engine's queue is full: the page tries again by itself after `retry_after` seconds.
    #[error("The server is busy: trying again in a moment.")]
    Busy { retry_after: u64 },
}

impl From<EngineError> for FaceError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Busy { retry_after } => FaceError::Busy {
                retry_after: retry_after.as_secs().max(1),
            },
            EngineError::Lost => FaceError::Unavailable(e.to_string()),
        }
    }
}

/// The result of comparing a probe with the store.
#[derive(Debug, Clone)]
pub struct Match {
    pub user_id: String,
    pub score: f32,
    pub threshold: f32,
}

/// What a login compares with the enrolled faces: a photo, or the embedding a liveness check took.
#[derive(Debug)]
pub enum Probe {
    Image(Vec<u8>),
    Embedding(Vec<f32>),
}

#[derive(Debug)]
pub struct FaceService {
    engine: Arc<FaceEngine>,
    manifest: PackManifest,
    has_landmarks: bool,
    pub settings: FaceSettings,
    pub liveness: super::liveness::LivenessService,
}

impl FaceService {
    /// Starts the face engine: `settings.engine.workers` pipelines (default: one per core), each
    /// with its own anti-spoof model when that is installed.
    pub fn load(settings: FaceSettings) -> Result<FaceService, VisionError> {
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
        // Two frames of one check must be one person: the pack's lenient 1e-2 operating point.
        let continuity = manifest.threshold_for(1e-2).unwrap_or(0.2);
        let liveness = super::liveness::LivenessService::new(
            engine.clone(),
            has_landmarks,
            has_antispoof,
            continuity,
            settings.checks.clone(),
        );
        Ok(FaceService {
            engine,
            manifest,
            has_landmarks,
            settings,
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

    /// The 1:1 cosine threshold (the configured target).
    pub fn threshold(&self, gallery: usize) -> f32 {
        let fmr = per_comparison_fmr(self.settings.target_fmr, gallery);
        self.manifest.threshold_for(fmr).unwrap_or(1.0)
    }

    /// The smallest false-match rate the pack's calibration measured: nothing stricter is vouched for.
    pub fn vouched_fmr(&self) -> f64 {
        self.manifest
            .calibration
            .thresholds
            .iter()
            .map(|t| t.fmr)
            .fold(f64::INFINITY, f64::min)
    }

    /// The largest gallery (templates) a 1:N search serves at the configured 1:N target.
    pub fn largest_gallery(&self) -> usize {
        (self.settings.target_fmr_1n / self.vouched_fmr())
            .floor()
            .max(0.0) as usize
    }

    /// The threshold of a 1:N search over `templates` comparisons, or `GalleryTooLarge`.
    pub fn identify_threshold(&self, templates: usize) -> Result<f32, FaceError> {
        let fmr = per_comparison_fmr(self.settings.target_fmr_1n, templates);
        // Calibrated rates are decimal steps: allow for their rounding.
        if fmr < self.vouched_fmr() * 0.999 {
            return Err(FaceError::GalleryTooLarge {
                templates,
                largest: self.largest_gallery(),
            });
        }
        Ok(self.manifest.threshold_for(fmr).unwrap_or(1.0))
    }

    /// "Possibly the same person": the pack's lenient 1e-2 operating point, for refusing a face
    /// sign-up that may be an existing account's face.
    pub fn possible_match_threshold(&self) -> f32 {
        self.manifest.threshold_for(1e-2).unwrap_or(0.2)
    }

    /// Decodes and analyses an uploaded image off the async runtime; exactly one face, held to `bar`.
    /// `flip`: a flip-averaged embedding (enrolment: better templates for a second embedding's cost).
    async fn probe(
        &self,
        bytes: Vec<u8>,
        bar: QualityBar,
        flip: bool,
    ) -> Result<(Vec<f32>, serde_json::Value), FaceError> {
        let result = self
            .engine
            .run(Priority::New, move |w: &FaceWorker| {
                let limits = DecodeLimits {
                    max_bytes: 10 * 1024 * 1024,
                    ..DecodeLimits::default()
                };
                let img = facegate_vision::decode(&bytes, &limits)?;
                let levers = facegate_vision::Levers {
                    flip,
                    ..w.pipeline.levers()
                };
                w.pipeline.analyze_with(
                    &img,
                    &AnalyzeOptions {
                        embed: true,
                        landmarks: w.pipeline.has_landmarks(),
                        max_faces: None,
                    },
                    &levers,
                )
            })
            .await?;
        let mut faces = match result {
            Ok(f) => f,
            Err(e)
                if matches!(
                    e.kind(),
                    facegate_vision::ErrorKind::BadImage | facegate_vision::ErrorKind::ImageTooLarge
                ) =>
            {
                return Err(FaceError::BadImage(format!("That file could not be used: {e}.")));
            }
            Err(e) => return Err(FaceError::Unavailable(e.to_string())),
        };
        // Faces far smaller than the main one are bystanders in the background, not a second person
        // at the camera; they are ignored.
        if let Some(main) = faces.first().map(|f| f.detection.bbox.area()) {
            faces.retain(|f| f.detection.bbox.area() >= main * 0.25);
        }
        let face = match faces.len() {
            0 => return Err(FaceError::NoFace),
            1 => faces.remove(0),
            _ => return Err(FaceError::MultipleFaces),
        };
        let issues = bar.assess(&face.quality, &face.pose);
        if !issues.is_empty() {
            return Err(FaceError::Quality(issues.iter().map(|i| i.message()).collect()));
        }
        let embedding = face
            .embedding
            .as_ref()
            .map(|e| e.as_slice().to_vec())
            .ok_or_else(|| FaceError::Unavailable("no embedding".into()))?;
        let quality = serde_json::json!({
            "eye_distance_px": face.quality.eye_distance_px.round() as i64,
            "sharpness": face.quality.sharpness.round() as i64,
            "brightness": face.quality.brightness.round() as i64,
            "yaw": face.pose.yaw.round() as i64,
            "pitch": face.pose.pitch.round() as i64,
        });
        Ok((embedding, quality))
    }

    async fn probe_embedding(&self, probe: Probe) -> Result<Vec<f32>, FaceError> {
        match probe {
            Probe::Image(image) => Ok(self.probe(image, QualityBar::LOGIN, false).await?.0),
            Probe::Embedding(e) => Ok(e),
        }
    }

    /// Enrols one photo for a person (the operator's CLI; the account page goes through
    /// `enrol_probe` and `enrol_embedding` with its checks in between).
    pub async fn enrol(
        &self,
        store: &Store,
        user_id: &str,
        image: Vec<u8>,
    ) -> Result<FaceTemplate, FaceError> {
        let (embedding, quality) = self.probe(image, QualityBar::ENROL, true).await?;
        self.enrol_embedding(store, user_id, embedding, quality).await
    }

    /// The (flip-averaged) embedding and quality of a photo, held to the enrolment bar.
    pub async fn enrol_probe(&self, image: Vec<u8>) -> Result<(Vec<f32>, serde_json::Value), FaceError> {
        self.probe(image, QualityBar::ENROL, true).await
    }

    /// Stores a template, unless it only repeats the account's templates (same pose and light).
    pub async fn enrol_embedding(
        &self,
        store: &Store,
        user_id: &str,
        embedding: Vec<f32>,
        quality: serde_json::Value,
    ) -> Result<FaceTemplate, FaceError> {
        let existing: Vec<FaceTemplate> = store
            .faces_of(user_id)
            .await
            .map_err(|e| FaceError::Unavailable(e.to_string()))?
            .into_iter()
            .filter(|t| t.pack == self.settings.pack)
            .collect();
        if facegate_core::face_fusion::repeats_enrolled(&embedding, &quality, &existing) {
            return Err(FaceError::Quality(vec![
                facegate_core::face_fusion::REPEAT_ADVICE,
            ]));
        }
        let t = FaceTemplate {
            id: random_token(12),
            user_id: user_id.to_string(),
            pack: self.settings.pack.clone(),
            embedding,
            quality,
            created_at: now(),
        };
        store
            .add_face(&t)
            .await
            .map_err(|e| FaceError::Unavailable(e.to_string()))?;
        Ok(t)
    }

    /// 1:1: does the photo match this person (any of their templates of this pack)?
    pub async fn verify(&self, store: &Store, user_id: &str, probe: Probe) -> Result<Match, FaceError> {
        let templates: Vec<FaceTemplate> = store
            .faces_of(user_id)
            .await
            .map_err(|e| FaceError::Unavailable(e.to_string()))?
            .into_iter()
            .filter(|t| t.pack == self.settings.pack)
            .collect();
        // The probe is analysed (the expensive part) whether or not there is anything to compare
        // with, so an account without a face takes as long as one with.
        let probe = self.probe_embedding(probe).await?;
        if templates.is_empty() {
            let _ = identify_fused(&probe, &[], DEFAULT_FUSION);
            return Err(FaceError::NotEnrolled);
        }
        let threshold = self.threshold(1);
        let best = identify_fused(&probe, &templates, DEFAULT_FUSION).ok_or(FaceError::NotEnrolled)?;
        if best.score >= threshold {
            Ok(Match {
                user_id: best.user_id,
                score: best.score,
                threshold,
            })
        } else {
            Err(FaceError::NoMatch)
        }
    }

    /// 1:N: who is this? Every template is one comparison, so the per-comparison rate is the 1:N
    /// target divided by the number of templates (not people); beyond what the calibration vouches
    /// for the search is refused. Returns the best candidate and the threshold even when it does
    /// not pass (for the audit band, and for sign-up's "possible match" test).
    pub async fn identify(
        &self,
        store: &Store,
        probe: Probe,
    ) -> Result<(Option<Identification>, Result<f32, FaceError>, Vec<f32>), FaceError> {
        let probe = self.probe_embedding(probe).await?;
        let gallery = store
            .faces_by_pack(&self.settings.pack)
            .await
            .map_err(|e| FaceError::Unavailable(e.to_string()))?;
        let threshold = self.identify_threshold(gallery.len().max(1));
        Ok((identify_fused(&probe, &gallery, DEFAULT_FUSION), threshold, probe))
    }

    /// Is `id` a match distinct enough to sign in: above the threshold and clear of every other
    /// account by the margin?
    pub fn accept_identification(&self, id: &Identification, threshold: f32) -> Result<(), FaceError> {
        if id.score < threshold {
            return Err(FaceError::NoMatch);
        }
        if id
            .runner_up
            .is_some_and(|r| id.score - r < self.settings.identify_margin)
        {
            return Err(FaceError::Ambiguous);
        }
        Ok(())
    }

    /// Live guidance for a preview frame: detection and quality only, no embedding, nothing kept.
    /// Returns advice in plain words; an empty list means the picture would be good.
    pub async fn guidance(&self, bytes: Vec<u8>, bar: QualityBar) -> Result<Vec<&'static str>, FaceError> {
        // A small preview cannot show sharpness fairly; the real picture is still held to it.
        let bar = QualityBar {
            min_sharpness: 0.0,
            ..bar
        };
        let result = self
            .engine
            .run(Priority::New, move |w: &FaceWorker| {
                let limits = DecodeLimits {
                    max_bytes: 256 * 1024,
                    max_side: 1280,
                    ..DecodeLimits::default()
                };
                let img = facegate_vision::decode(&bytes, &limits)?;
                let faces = w.pipeline.analyze(
                    &img,
                    &AnalyzeOptions {
                        embed: false,
                        landmarks: false,
                        max_faces: None,
                    },
                )?;
                Ok::<_, VisionError>((faces, img.height() as f32))
            })
            .await?;
        let (mut faces, height) = result.map_err(|e| FaceError::BadImage(e.to_string()))?;
        if let Some(main) = faces.first().map(|f| f.detection.bbox.area()) {
            faces.retain(|f| f.detection.bbox.area() >= main * 0.25);
        }
        let face = match faces.len() {
            0 => {
                return Ok(vec![
                    "No face yet: look at the camera, with your whole face in view.",
                ]);
            }
            1 => &faces[0],
            _ => {
                return Ok(vec![
                    "More than one face is in view: make sure only you are in the picture.",
                ]);
            }
        };
        // A preview frame is small: scale the size rule to a 640-pixel frame.
        let scale = 480.0 / height.max(1.0);
        let mut q = face.quality;
        q.eye_distance_px *= scale;
        let mut advice: Vec<&'static str> = bar.assess(&q, &face.pose).iter().map(|i| i.message()).collect();
        if face.detection.bbox.height() > 0.9 * height {
            advice.insert(0, "You are too close: move back a little.");
        }
        Ok(advice)
    }

    /// The embedding of a photo for a new face-only account (enrolment quality).
    pub async fn signup_probe(&self, image: Vec<u8>) -> Result<(Vec<f32>, serde_json::Value), FaceError> {
        self.probe(image, QualityBar::ENROL, true).await
    }
}
