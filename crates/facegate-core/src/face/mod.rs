//! Faces: templates and how probes are compared with them (`template`), the match policy from a
//! pack's calibration (`policy`), the face service over its ports (`service`: enrolment, 1:1, 1:N,
//! guidance, deletion), and a face login attempt whole (`login`). No pixels and no models here: the
//! face engine is a port (`ports::FaceAnalyzer`), implemented by `facegate-server` over
//! `facegate-vision`; the store is a port implemented by `facegate-store`.

pub mod error;
pub mod login;
pub mod policy;
pub mod ports;
pub mod service;
mod template;
#[cfg(test)]
mod tests;

pub use error::FaceError;
pub use login::{Attempt, FaceInput, LoginRefusal, SignedIn};
pub use policy::MatchPolicy;
pub use ports::{AccountStore, AnalysedFace, FaceAnalyzer, PortError, Purpose, TemplateStore};
pub use service::{
    EnrolRefusal, FaceRules, FaceService, Match, Probe, TemplateSource, delete_all_faces, delete_face,
};
pub use template::{
    FaceTemplate, Identification, cosine, from_bytes, identify, per_comparison_fmr, score_band, to_bytes,
};
