//! The liveness service (facegate-core) plugged into this server's face engine: [`EnginePort`]
//! gives it places in the engine's queue and turns each frame into an observation with the vision
//! pipeline (`facegate_vision::observe`). Everything else (checks, challenges, decisions) is in
//! `facegate_core::liveness`.

use std::future::Future;
use std::sync::Arc;

use facegate_core::liveness::{Analysis, FaceObservation, FramePort, Observation, PortError, Priority};
use facegate_vision::observe::FrameObservation;
use facegate_vision::{EngineError, FaceEngine, FaceWorker, Permit};

pub use facegate_core::liveness::{
    LivenessError, LivenessSettings, MAX_PER_ORIGIN, Owner, Report, Started, USE_WITHIN,
};

/// The liveness service as this server runs it.
pub type LivenessService = facegate_core::liveness::LivenessService<EnginePort>;

/// The false-accept rate whose calibrated threshold every frame of a check (turned ones included)
/// must reach against the check's frontal frames: `facegate liveness-eval` measured the live
/// video's turned frames against this and the identity splice (docs/liveness.md).
pub const IDENTITY_FAR: f64 = 1e-2;

/// The face engine as the liveness service's port.
#[derive(Debug, Clone)]
pub struct EnginePort {
    pub engine: Arc<FaceEngine>,
    identity_threshold: Option<f32>,
}

impl From<Arc<FaceEngine>> for EnginePort {
    fn from(engine: Arc<FaceEngine>) -> Self {
        // The pack's calibrated thresholds are the worker's; ask one worker once.
        let identity_threshold = engine
            .submit(facegate_vision::Priority::New, |w: &FaceWorker| {
                w.pipeline.manifest().threshold_for(IDENTITY_FAR)
            })
            .ok()
            .and_then(|p| p.wait().ok())
            .flatten();
        EnginePort {
            engine,
            identity_threshold,
        }
    }
}

fn port_error(e: EngineError) -> PortError {
    match e {
        EngineError::Busy { retry_after } => PortError::Busy { retry_after },
        EngineError::Lost => PortError::Unavailable(e.to_string()),
    }
}

impl FramePort for EnginePort {
    type Permit = Permit<FaceWorker>;

    fn reserve(&self, priority: Priority) -> Result<Self::Permit, PortError> {
        let priority = match priority {
            Priority::Continuing => facegate_vision::Priority::Continuing,
            Priority::New => facegate_vision::Priority::New,
        };
        self.engine.reserve(priority).map_err(port_error)
    }

    fn analyse(
        &self,
        permit: Self::Permit,
        frame: Vec<u8>,
        frontal_yaw: f32,
    ) -> impl Future<Output = (Vec<u8>, Result<Analysis, PortError>)> + Send {
        let pending = permit.submit(move |w: &FaceWorker| {
            let r = facegate_vision::observe::observe_frame(
                &w.pipeline,
                w.antispoof.as_ref(),
                &frame,
                frontal_yaw,
            );
            (frame, r)
        });
        async move {
            match pending.await {
                Err(e) => (Vec::new(), Err(port_error(e))),
                Ok((frame, Ok(o))) => (frame, Ok(Analysis::Observed(to_core(o)))),
                Ok((frame, Err(e))) => {
                    let r = match e.kind() {
                        facegate_vision::ErrorKind::BadImage | facegate_vision::ErrorKind::ImageTooLarge => {
                            Ok(Analysis::Unreadable)
                        }
                        _ => Err(PortError::Unavailable(e.to_string())),
                    };
                    (frame, r)
                }
            }
        }
    }

    fn identity_threshold(&self) -> Option<f32> {
        self.identity_threshold
    }
}

/// The vision pipeline's measures as the liveness check's observation.
pub fn to_core(o: FrameObservation) -> Observation {
    Observation {
        faces: o.faces,
        face: o.face.map(|f| FaceObservation {
            nose: f.nose,
            size: f.size,
            yaw: f.yaw,
            pitch: f.pitch,
            roll: f.roll,
            parallax: f.parallax,
            eyes: f.eyes,
            mouth_width: f.mouth_width,
            corner_lift: f.corner_lift,
            live_score: f.live_score,
            center: f.center,
            width: f.width,
        }),
        embedding: o.embedding,
        phash: o.phash,
    }
}

/// One decoded image as the liveness check's observation (for `facegate liveness-eval`).
pub fn observe_image_core(
    pipeline: &facegate_vision::FacePipeline,
    antispoof: Option<&facegate_vision::antispoof::AntiSpoof>,
    img: &image::RgbImage,
    frontal_yaw: f32,
) -> Result<Observation, facegate_vision::VisionError> {
    facegate_vision::observe::observe_image(pipeline, antispoof, img, frontal_yaw).map(to_core)
}
