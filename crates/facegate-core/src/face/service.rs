//! The face service: enrolment with its rules, 1:1 verification and 1:N identification against the
//! templates of the configured pack, live guidance, and deleting faces. Pictures go to the face
//! engine (a port) and only embeddings come back; every change to a person's faces is an audit event.

use super::FaceError;
use super::policy::MatchPolicy;
use super::ports::{AnalysedFace, FaceAnalyzer, Purpose, TemplateStore};
use super::template::{FaceTemplate, Identification};
use crate::audit::{self, AuditLog, Event};
use crate::face_fusion::{DEFAULT_FUSION, REPEAT_ADVICE, identify_fused, repeats_enrolled};
use crate::login::FaceRole;
use crate::secret::random_token;
use crate::throttle::WindowCounter;

/// The operator's face rules (everything but the thresholds, which are the `MatchPolicy`).
#[derive(Debug, Clone, PartialEq)]
pub struct FaceRules {
    /// The model pack whose templates are compared (others are kept but ignored).
    pub pack: String,
    /// What a face may do: sign in alone, or only follow a password.
    pub role: FaceRole,
    /// Face login and enrolment need a passed liveness check (the default); off, a single photo
    /// does (tests and trusted kiosks only).
    pub liveness_required: bool,
    /// A face nobody has enrolled may open a new account (an explicit choice on the page).
    pub signup: bool,
    /// Face sign-ups allowed per hour, site-wide.
    pub signups_per_hour: u32,
    /// Most templates one account may have.
    pub max_templates: usize,
}

impl Default for FaceRules {
    fn default() -> Self {
        FaceRules {
            pack: String::new(),
            role: FaceRole::Login,
            liveness_required: true,
            signup: false,
            signups_per_hour: 20,
            max_templates: 20,
        }
    }
}

/// The result of comparing a probe with one account's templates.
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

/// Where a new template comes from.
#[derive(Debug)]
pub enum TemplateSource {
    /// The frontal frames of a passed liveness check made for this enrolment.
    Live { embedding: Vec<f32>, confidence: u8 },
    /// A photo (only when liveness is not required, or the operator's CLI).
    Photo(Vec<u8>),
    /// A liveness check was named but cannot be used (why, in a few words).
    Unusable(String),
}

/// Why a face was not added.
#[derive(Debug, thiserror::Error)]
pub enum EnrolRefusal {
    #[error(
        "To change your faces, confirm it is you first: sign in again from your account page (Confirm it is you)."
    )]
    NoRecentSignIn,
    #[error("You have {0} faces enrolled already: delete some first.")]
    Full(usize),
    #[error("Adding a face needs the liveness check: start it with the button and follow the instructions.")]
    LivenessRequired,
    #[error("This face does not match the faces already on your account, so it was not added.")]
    NotTheSamePerson,
    #[error("The liveness check cannot be used: {0}. Start it again.")]
    LivenessUnusable(String),
    #[error(transparent)]
    Face(#[from] FaceError),
}

#[derive(Debug)]
pub struct FaceService<A> {
    analyzer: A,
    pub policy: MatchPolicy,
    pub rules: FaceRules,
    signups: WindowCounter,
}

/// Faces far smaller than the largest are bystanders in the background, not a second person at the
/// camera: they are ignored.
fn at_the_camera(mut faces: Vec<AnalysedFace>) -> Vec<AnalysedFace> {
    if let Some(main) = faces.first().map(|f| f.area) {
        faces.retain(|f| f.area >= main * 0.25);
    }
    faces
}

impl<A: FaceAnalyzer> FaceService<A> {
    pub fn new(analyzer: A, policy: MatchPolicy, rules: FaceRules) -> FaceService<A> {
        FaceService {
            analyzer,
            policy,
            rules,
            signups: WindowCounter::default(),
        }
    }

    pub fn analyzer(&self) -> &A {
        &self.analyzer
    }

    pub fn pack(&self) -> &str {
        &self.rules.pack
    }

    /// One face of an uploaded picture, held to the purpose's bar: its embedding and measures.
    pub async fn probe(
        &self,
        image: Vec<u8>,
        purpose: Purpose,
    ) -> Result<(Vec<f32>, serde_json::Value), FaceError> {
        let mut faces = at_the_camera(self.analyzer.analyse(image, purpose).await?);
        let face = match faces.len() {
            0 => return Err(FaceError::NoFace),
            1 => faces.remove(0),
            _ => return Err(FaceError::MultipleFaces),
        };
        if !face.issues.is_empty() {
            return Err(FaceError::Quality(face.issues));
        }
        let embedding = face
            .embedding
            .ok_or_else(|| FaceError::Unavailable("the face engine gave no embedding".into()))?;
        Ok((embedding, face.quality))
    }

    async fn probe_embedding(&self, probe: Probe) -> Result<Vec<f32>, FaceError> {
        match probe {
            Probe::Image(image) => Ok(self.probe(image, Purpose::Login).await?.0),
            Probe::Embedding(e) => Ok(e),
        }
    }

    async fn templates<S: TemplateStore>(
        &self,
        store: &S,
        user_id: &str,
    ) -> Result<Vec<FaceTemplate>, FaceError> {
        Ok(store
            .templates_of(user_id)
            .await?
            .into_iter()
            .filter(|t| t.pack == self.rules.pack)
            .collect())
    }

    /// 1:1: does the probe match this person (their templates of this pack, fused)? The probe is
    /// analysed (the expensive part) whether or not there is anything to compare with, so an
    /// account without a face takes as long as one with.
    pub async fn verify<S: TemplateStore>(
        &self,
        store: &S,
        user_id: &str,
        probe: Probe,
    ) -> Result<Match, FaceError> {
        let templates = self.templates(store, user_id).await?;
        let probe = self.probe_embedding(probe).await?;
        if templates.is_empty() {
            let _ = identify_fused(&probe, &[], DEFAULT_FUSION);
            return Err(FaceError::NotEnrolled);
        }
        let threshold = self.policy.threshold();
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

    /// 1:N: who is this? Returns the best candidate, the threshold for a gallery of this many
    /// templates (or why there is none), and the probe's embedding, so the caller can judge both a
    /// login and a sign-up's "possible match".
    pub async fn identify<S: TemplateStore>(
        &self,
        store: &S,
        probe: Probe,
    ) -> Result<(Option<Identification>, Result<f32, FaceError>, Vec<f32>), FaceError> {
        let probe = self.probe_embedding(probe).await?;
        let gallery = store.templates_by_pack(&self.rules.pack).await?;
        let threshold = self.policy.identify_threshold(gallery.len().max(1));
        Ok((identify_fused(&probe, &gallery, DEFAULT_FUSION), threshold, probe))
    }

    /// Live guidance for a preview frame: advice in plain words; empty means the picture would do.
    pub async fn guidance(&self, image: Vec<u8>, enrol: bool) -> Result<Vec<&'static str>, FaceError> {
        let faces = at_the_camera(self.analyzer.analyse(image, Purpose::Preview { enrol }).await?);
        let face = match faces.as_slice() {
            [] => {
                return Ok(vec![
                    "No face yet: look at the camera, with your whole face in view.",
                ]);
            }
            [one] => one,
            _ => {
                return Ok(vec![
                    "More than one face is in view: make sure only you are in the picture.",
                ]);
            }
        };
        let mut advice = face.issues.clone();
        if face.height_share > 0.9 {
            advice.insert(0, "You are too close: move back a little.");
        }
        Ok(advice)
    }

    /// One more face sign-up this hour, if the site-wide quota allows it.
    pub fn allow_signup(&self, now: i64) -> bool {
        self.signups
            .allow("signup", self.rules.signups_per_hour, 3600, now)
    }

    /// Stores a template for `user_id`, unless it only repeats the account's templates.
    async fn store_template<S: TemplateStore>(
        &self,
        store: &S,
        user_id: &str,
        embedding: Vec<f32>,
        quality: serde_json::Value,
        existing: &[FaceTemplate],
        now: i64,
    ) -> Result<FaceTemplate, FaceError> {
        if repeats_enrolled(&embedding, &quality, existing) {
            return Err(FaceError::Quality(vec![REPEAT_ADVICE]));
        }
        let t = FaceTemplate {
            id: random_token(12),
            user_id: user_id.to_string(),
            pack: self.rules.pack.clone(),
            embedding,
            quality,
            created_at: now,
        };
        store.add_template(&t).await?;
        Ok(t)
    }

    /// Adds a face to a signed-in person's account. `recent_sign_in`: the session signed in with the
    /// account's strongest factor recently (the login core decides). With liveness required the face
    /// must come from a passed check made for this enrolment; when the account has faces already,
    /// the new one must match them. Every outcome is an audit event.
    pub async fn enrol<S: TemplateStore + AuditLog>(
        &self,
        store: &S,
        user_id: &str,
        ip: Option<&str>,
        recent_sign_in: bool,
        source: TemplateSource,
        now: i64,
    ) -> Result<(FaceTemplate, usize), EnrolRefusal> {
        let result = self
            .enrol_checked(store, user_id, recent_sign_in, source, now)
            .await;
        let event = Event::new(audit::Kind::FaceAdded, audit::Outcome::Ok)
            .user(Some(user_id))
            .ip(ip);
        let event = match &result {
            Ok((t, _)) => event.detail(t.pack.clone()),
            Err(EnrolRefusal::Face(FaceError::Unavailable(_) | FaceError::Busy { .. })) => return result,
            Err(e) => Event {
                outcome: audit::Outcome::Refused,
                ..event
            }
            .detail(refusal_detail(e)),
        };
        store.record(event).await;
        result
    }

    async fn enrol_checked<S: TemplateStore>(
        &self,
        store: &S,
        user_id: &str,
        recent_sign_in: bool,
        source: TemplateSource,
        now: i64,
    ) -> Result<(FaceTemplate, usize), EnrolRefusal> {
        if !recent_sign_in {
            return Err(EnrolRefusal::NoRecentSignIn);
        }
        let all = store.templates_of(user_id).await.map_err(FaceError::from)?;
        if all.len() >= self.rules.max_templates {
            return Err(EnrolRefusal::Full(all.len()));
        }
        let (embedding, quality) = match source {
            TemplateSource::Live {
                embedding,
                confidence,
            } => (
                embedding,
                serde_json::json!({"source": "liveness check", "liveness_confidence": confidence}),
            ),
            TemplateSource::Photo(_) if self.rules.liveness_required => {
                return Err(EnrolRefusal::LivenessRequired);
            }
            TemplateSource::Photo(image) => self.probe(image, Purpose::Enrol).await?,
            TemplateSource::Unusable(why) => return Err(EnrolRefusal::LivenessUnusable(why)),
        };
        let existing: Vec<FaceTemplate> = all
            .iter()
            .filter(|t| t.pack == self.rules.pack)
            .cloned()
            .collect();
        // A new face must be the same person as the faces already enrolled.
        if !existing.is_empty() {
            match self
                .verify(store, user_id, Probe::Embedding(embedding.clone()))
                .await
            {
                Ok(_) => {}
                Err(FaceError::NoMatch | FaceError::NotEnrolled) => {
                    return Err(EnrolRefusal::NotTheSamePerson);
                }
                Err(e) => return Err(e.into()),
            }
        }
        let t = self
            .store_template(store, user_id, embedding, quality, &existing, now)
            .await?;
        Ok((t, all.len() + 1))
    }

    /// The operator's CLI: one photo for a person, held to the enrolment bar, without the account
    /// page's sign-in and liveness rules (the operator vouches for the photo).
    pub async fn enrol_photo<S: TemplateStore + AuditLog>(
        &self,
        store: &S,
        user_id: &str,
        image: Vec<u8>,
        now: i64,
    ) -> Result<FaceTemplate, FaceError> {
        let (embedding, quality) = self.probe(image, Purpose::Enrol).await?;
        let existing = self.templates(store, user_id).await?;
        let t = self
            .store_template(store, user_id, embedding, quality, &existing, now)
            .await?;
        store
            .record(
                Event::new(audit::Kind::FaceAdded, audit::Outcome::Ok)
                    .user(Some(user_id))
                    .detail(format!("{} (operator)", t.pack)),
            )
            .await;
        Ok(t)
    }

    /// The first template of a new face-only account.
    pub(crate) async fn first_template<S: TemplateStore + AuditLog>(
        &self,
        store: &S,
        user_id: &str,
        embedding: Vec<f32>,
        live: bool,
        now: i64,
    ) -> Result<FaceTemplate, FaceError> {
        let quality = serde_json::json!({"source": if live { "liveness check" } else { "photo" }});
        let t = self
            .store_template(store, user_id, embedding, quality, &[], now)
            .await?;
        store
            .record(
                Event::new(audit::Kind::FaceAdded, audit::Outcome::Ok)
                    .user(Some(user_id))
                    .detail("sign-up"),
            )
            .await;
        Ok(t)
    }
}

/// Deletes one of the person's faces (an audit event when there was one). Needs no face engine: a
/// person can delete their faces whether or not face login is on.
pub async fn delete_face<S: TemplateStore + AuditLog>(
    store: &S,
    user_id: &str,
    id: &str,
) -> Result<bool, FaceError> {
    let deleted = store.delete_template(user_id, id).await?;
    if deleted {
        store
            .record(Event::new(audit::Kind::FaceDeleted, audit::Outcome::Ok).user(Some(user_id)))
            .await;
    }
    Ok(deleted)
}

/// Deletes every face of the person (always an audit event, with the count).
pub async fn delete_all_faces<S: TemplateStore + AuditLog>(
    store: &S,
    user_id: &str,
) -> Result<u64, FaceError> {
    let n = store.delete_templates(user_id).await?;
    store
        .record(
            Event::new(audit::Kind::FacesDeleted, audit::Outcome::Ok)
                .user(Some(user_id))
                .detail(format!("{n} templates")),
        )
        .await;
    Ok(n)
}

/// The audit phrase of a refused enrolment (fixed words, never input).
fn refusal_detail(e: &EnrolRefusal) -> String {
    match e {
        EnrolRefusal::NoRecentSignIn => "no recent sign-in".into(),
        EnrolRefusal::Full(n) => format!("{n} templates"),
        EnrolRefusal::LivenessRequired => "liveness required".into(),
        EnrolRefusal::NotTheSamePerson => "does not match the enrolled faces".into(),
        EnrolRefusal::LivenessUnusable(why) => format!("liveness: {why}"),
        EnrolRefusal::Face(FaceError::Quality(_)) => "quality".into(),
        EnrolRefusal::Face(FaceError::NoFace) => "no face".into(),
        EnrolRefusal::Face(FaceError::MultipleFaces) => "several faces".into(),
        EnrolRefusal::Face(FaceError::BadImage(_)) => "bad image".into(),
        EnrolRefusal::Face(_) => "face".into(),
    }
}
