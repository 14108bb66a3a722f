//! What went wrong with a face, in words for the person (each surface picks its own status).

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

impl From<super::ports::PortError> for FaceError {
    fn from(e: super::ports::PortError) -> Self {
        FaceError::Unavailable(e.0)
    }
}
