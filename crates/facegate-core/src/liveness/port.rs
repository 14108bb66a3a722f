//! What the liveness service needs from the face engine, as a port: a place in its queue (with a
//! priority, or "busy, retry after"), and the analysis of one frame into an [`Observation`]. The
//! server implements it with its `FaceEngine` and the vision pipeline; tests with plain functions.

use std::future::Future;
use std::time::Duration;

use super::Observation;

/// Which work the engine serves first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// A frame of a check under way: served first.
    Continuing,
    /// Everything else (the first frame of a check).
    New,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// No place in the queue: the frame was not taken; try again after this long.
    #[error("the face engine is busy: try again in {retry_after:?}")]
    Busy { retry_after: Duration },
    /// The engine cannot analyse frames (lost, model error).
    #[error("{0}")]
    Unavailable(String),
}

/// What became of one frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Analysis {
    Observed(Observation),
    /// Not a picture the engine could read (broken, too large): it counts as a frame without a face.
    Unreadable,
}

/// The face engine as the liveness service sees it.
pub trait FramePort: Send + Sync + 'static {
    /// A reserved place in the engine's queue.
    type Permit: Send + 'static;
    /// A place for one frame now, or [`PortError::Busy`] at once.
    fn reserve(&self, priority: Priority) -> Result<Self::Permit, PortError>;
    /// Analyses the frame (JPEG or PNG bytes) in the reserved place; gives the bytes back.
    /// `frontal_yaw`: frames turned further than this need not be embedded.
    fn analyse(
        &self,
        permit: Self::Permit,
        frame: Vec<u8>,
        frontal_yaw: f32,
    ) -> impl Future<Output = (Vec<u8>, Result<Analysis, PortError>)> + Send;
    /// The cosine every frame of a check (turned ones too) must reach with the check's frontal
    /// frames, for the engine's embedding model; None: not checked.
    fn identity_threshold(&self) -> Option<f32> {
        None
    }
}
