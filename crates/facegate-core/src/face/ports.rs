//! What the face service needs from outside, as small traits: something that turns a picture into
//! faces (the face engine, in `facegate-server` over `facegate-vision`), and somewhere templates and
//! accounts are kept (the store). Tests of the service use the fakes in `face::testing`.

use std::future::Future;

use super::FaceError;
use super::template::FaceTemplate;
use crate::account::User;

/// A store that could not answer (the message is for the operator's log, not the person).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortError(pub String);

impl std::fmt::Display for PortError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a picture is for: the quality bar it is held to and how much work it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A login probe: the login bar, one embedding.
    Login,
    /// A template: the enrolment bar, a flip-averaged embedding.
    Enrol,
    /// A small preview frame while the camera is on: detection and quality only, no embedding,
    /// sharpness not judged (a preview cannot show it fairly); `enrol` picks the bar.
    Preview { enrol: bool },
}

/// One face the analyser found (largest first).
#[derive(Debug, Clone)]
pub struct AnalysedFace {
    /// The face box's area in pixels (faces far smaller than the largest are bystanders).
    pub area: f32,
    /// The face box's height over the picture's (a face filling the frame is too close).
    pub height_share: f32,
    /// The embedding (unit length); `None` for a preview.
    pub embedding: Option<Vec<f32>>,
    /// What the purpose's quality bar found wrong, in words for the person.
    pub issues: Vec<&'static str>,
    /// Measures kept with a template and shown on the account page (never pixels).
    pub quality: serde_json::Value,
}

/// The face engine.
pub trait FaceAnalyzer: Send + Sync {
    /// Decodes `image` and finds its faces (largest first). Undecodable or oversized pictures are
    /// `BadImage`; a full queue is `Busy`.
    fn analyse(
        &self,
        image: Vec<u8>,
        purpose: Purpose,
    ) -> impl Future<Output = Result<Vec<AnalysedFace>, FaceError>> + Send;
}

/// Where templates are kept.
pub trait TemplateStore: Send + Sync {
    fn templates_of(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<Vec<FaceTemplate>, PortError>> + Send;
    fn templates_by_pack(
        &self,
        pack: &str,
    ) -> impl Future<Output = Result<Vec<FaceTemplate>, PortError>> + Send;
    fn add_template(&self, t: &FaceTemplate) -> impl Future<Output = Result<(), PortError>> + Send;
    /// Deletes one of the person's templates; false when they have none by that id.
    fn delete_template(
        &self,
        user_id: &str,
        id: &str,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
    /// Deletes every template of the person; how many there were.
    fn delete_templates(&self, user_id: &str) -> impl Future<Output = Result<u64, PortError>> + Send;
}

/// Where accounts are kept (what face login and face sign-up need of them).
pub trait AccountStore: Send + Sync {
    /// The account id of a username, if there is one.
    fn account_id(&self, username: &str) -> impl Future<Output = Result<Option<String>, PortError>> + Send;
    /// A new account without a password.
    fn create_account(&self, user: &User) -> impl Future<Output = Result<(), PortError>> + Send;
}
