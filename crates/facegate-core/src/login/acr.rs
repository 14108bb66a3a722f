//! The authentication context classes facegate issues: each is a predicate over the factors a login
//! has done, so "does this login meet `urn:facegate:face:live`?" has one answer, in one place.

use super::factor::{Factor, Method};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Acr {
    /// A password.
    Pwd,
    /// A face match, no liveness check (only when liveness is off).
    Face,
    /// A face match with a passed liveness check.
    FaceLive,
    /// A password and a face.
    MfaFace,
    /// A password and a face with a passed liveness check.
    MfaFaceLive,
}

impl Acr {
    /// Strongest first: what a login is given when nothing in particular was asked.
    pub const ALL: [Acr; 5] = [Acr::MfaFaceLive, Acr::MfaFace, Acr::FaceLive, Acr::Face, Acr::Pwd];

    pub fn as_str(self) -> &'static str {
        match self {
            Acr::Pwd => "urn:facegate:pwd",
            Acr::Face => "urn:facegate:face",
            Acr::FaceLive => "urn:facegate:face:live",
            Acr::MfaFace => "urn:facegate:mfa:face",
            Acr::MfaFaceLive => "urn:facegate:mfa:face:live",
        }
    }

    pub fn parse(s: &str) -> Option<Acr> {
        Acr::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// Every value, for discovery's `acr_values_supported` (weakest first).
    pub fn supported() -> Vec<&'static str> {
        Acr::ALL.iter().rev().map(|a| a.as_str()).collect()
    }

    pub fn needs_password(self) -> bool {
        matches!(self, Acr::Pwd | Acr::MfaFace | Acr::MfaFaceLive)
    }

    pub fn needs_face(self) -> bool {
        !matches!(self, Acr::Pwd)
    }

    pub fn needs_liveness(self) -> bool {
        matches!(self, Acr::FaceLive | Acr::MfaFaceLive)
    }

    /// Do these factors meet this class?
    pub fn satisfied_by(self, factors: &[&Factor]) -> bool {
        let pwd = factors.iter().any(|f| f.method == Method::Password);
        let face = factors.iter().any(|f| f.method.is_face());
        let live = factors.iter().any(|f| f.method.is_live_face());
        (!self.needs_password() || pwd) && (!self.needs_face() || face) && (!self.needs_liveness() || live)
    }
}
