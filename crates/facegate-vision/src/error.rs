//! One error type for the crate, with a coarse [`ErrorKind`] callers can match on.

use std::path::PathBuf;

/// What went wrong, coarsely: enough for an HTTP layer to choose a status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The caller sent bytes that are not a usable image (empty, unknown format, corrupt, too small).
    BadImage,
    /// The image is larger than the configured limits (a decompression bomb or simply too big).
    ImageTooLarge,
    /// The image holds no face, or more faces than the operation accepts.
    FaceCount,
    /// A model pack is missing, incomplete, or its manifest is wrong: an operator problem.
    Pack,
    /// Fetching a pack from its registry package failed.
    Fetch,
    /// The inference runtime failed or a model answered with an unexpected shape.
    Runtime,
    /// Local I/O failed.
    Io,
}

#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    #[error("the image is empty (0 bytes)")]
    EmptyImage,
    #[error("the data is not an image in a supported format (JPEG, PNG, WebP, GIF, PNM)")]
    UnknownFormat,
    #[error("the image is corrupt or truncated: {0}")]
    CorruptImage(String),
    #[error(
        "the image is {width}x{height} pixels; the limit is {max_side} pixels per side and {max_pixels} pixels in all"
    )]
    ImageTooLarge {
        width: u32,
        height: u32,
        max_side: u32,
        max_pixels: u64,
    },
    #[error("the image file is {bytes} bytes; the limit is {max_bytes} bytes")]
    FileTooLarge { bytes: usize, max_bytes: usize },
    #[error(
        "the image is {width}x{height} pixels, too small to hold a face (at least {min_side} pixels per side)"
    )]
    ImageTooSmall { width: u32, height: u32, min_side: u32 },
    #[error("no face was found in the image")]
    NoFace,
    #[error("{count} faces were found in the image; exactly one is needed")]
    MultipleFaces { count: usize },
    #[error("model pack `{pack}` is not installed in {dir}: run `facegate models fetch --pack {pack}`")]
    PackNotInstalled { pack: String, dir: PathBuf },
    #[error("unknown model pack `{0}` (known packs: {1})")]
    UnknownPack(String, String),
    #[error("model pack problem: {0}")]
    Pack(String),
    #[error("{0}")]
    Fetch(String),
    #[error("ONNX Runtime: {0}")]
    Runtime(String),
    #[error("model `{model}` gave an unexpected output: {detail}")]
    ModelOutput { model: String, detail: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl VisionError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::EmptyImage | Self::UnknownFormat | Self::CorruptImage(_) | Self::ImageTooSmall { .. } => {
                ErrorKind::BadImage
            }
            Self::ImageTooLarge { .. } | Self::FileTooLarge { .. } => ErrorKind::ImageTooLarge,
            Self::NoFace | Self::MultipleFaces { .. } => ErrorKind::FaceCount,
            Self::PackNotInstalled { .. } | Self::UnknownPack(..) | Self::Pack(_) => ErrorKind::Pack,
            Self::Fetch(_) => ErrorKind::Fetch,
            Self::Runtime(_) | Self::ModelOutput { .. } => ErrorKind::Runtime,
            Self::Io { .. } => ErrorKind::Io,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

impl From<ort::Error> for VisionError {
    fn from(e: ort::Error) -> Self {
        Self::Runtime(e.to_string())
    }
}

pub type Result<T, E = VisionError> = std::result::Result<T, E>;
