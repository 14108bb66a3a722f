//! A face login attempt, whole: throttle (counted before it is judged), the probe (a used-up
//! liveness check, or a photo where liveness is off), whom to compare with (the login's account,
//! the typed username 1:1, or everyone 1:N), the optional face sign-up, the factor recorded in the
//! login transaction, and one audit event with the mode and a score band. The HTTP handler only
//! reads the form, consumes the liveness check and maps the result.

use std::time::Duration;

use super::ports::{AccountStore, TemplateStore};
use super::service::{FaceService, Probe};
use super::template::score_band;
use super::{FaceAnalyzer, FaceError};
use crate::account::{User, Username};
use crate::audit::{self, AuditLog, Event};
use crate::login::{FaceMode, FaceRole, Factor, LoginTransaction, Method};
use crate::secret::random_token;
use crate::throttle::{AttemptGuard, login_keys};

/// What the person sent.
#[derive(Debug)]
pub enum FaceInput {
    /// The embedding of a passed liveness check made for this login (already used up).
    Live(Vec<f32>),
    /// A liveness check was named but cannot be used (why, in a few words).
    Unusable(String),
    /// A single photo: accepted only when liveness is not required.
    Photo(Vec<u8>),
    /// Nothing.
    Nothing,
}

/// One face login attempt.
#[derive(Debug)]
pub struct Attempt<'a> {
    /// The pending login: its account, when it names one, is the only one compared with.
    pub txn: &'a mut LoginTransaction,
    /// The username typed on the page, if any.
    pub username: Option<String>,
    /// The person ticked "I am new here".
    pub signup: bool,
    pub input: FaceInput,
    /// Client address and device cookie (throttle keys); `device_id` as recorded with the factor.
    pub ip: String,
    pub device: Option<String>,
    pub device_id: Option<String>,
    pub now: i64,
}

/// A face factor done (and recorded in the transaction).
#[derive(Debug, Clone, PartialEq)]
pub struct SignedIn {
    pub user_id: String,
    pub method: Method,
}

#[derive(Debug, thiserror::Error)]
pub enum LoginRefusal {
    #[error("Too many attempts. Try again in {} seconds.", .0.as_secs().max(1))]
    Throttled(Duration),
    #[error("On this site a face only confirms a sign-in: sign in with your password first.")]
    SecondFactorOnly,
    #[error("No picture was sent.")]
    NothingSent,
    #[error("Face sign-in needs the liveness check: start it with the button and follow the instructions.")]
    LivenessRequired,
    #[error("The liveness check cannot be used: {0}. Start it again.")]
    LivenessUnusable(String),
    /// 1:1 (with the login's account or a username): a wrong face, an unknown username or an
    /// account without a face, answered alike.
    #[error("That did not work. Try again, or use your password.")]
    NoMatch,
    #[error("Your face was not recognised. Try again, or sign in with your password.")]
    NotRecognised,
    #[error("Your face matches more than one account closely: enter your username.")]
    Ambiguous,
    #[error("This face may already have an account here. Sign in instead, or ask the operator.")]
    PossibleExisting,
    #[error("Too many new accounts were opened in the last hour. Try again later.")]
    SignupsExhausted,
    #[error("This sign-in is for another account. Start again from the application.")]
    OtherAccount,
    #[error(transparent)]
    Face(FaceError),
}

/// How an attempt ends for the throttle: a success, a wrong guess (kept), or no guess (given back).
enum Settle {
    Success,
    Guess,
    NoGuess,
}

impl<A: FaceAnalyzer> FaceService<A> {
    /// A face login attempt (see the module's documentation).
    pub async fn login<S, G>(
        &self,
        store: &S,
        guard: &G,
        attempt: Attempt<'_>,
    ) -> Result<SignedIn, LoginRefusal>
    where
        S: TemplateStore + AccountStore + AuditLog,
        G: AttemptGuard,
    {
        let bound = attempt.txn.user_id.clone();
        if bound.is_none() && self.rules.role != FaceRole::Login {
            return Err(LoginRefusal::SecondFactorOnly);
        }
        let account_key = bound.clone().or(attempt.username.clone());
        let keys = login_keys(
            "face",
            &attempt.ip,
            attempt.device.as_deref(),
            account_key.as_deref(),
        );
        guard.begin(&keys).await.map_err(LoginRefusal::Throttled)?;
        let ip = attempt.ip.clone();
        let (result, settle, detail) = self.judge(store, attempt).await;
        match settle {
            Settle::Success => guard.end(&keys, true).await,
            Settle::Guess => guard.end(&keys, false).await,
            Settle::NoGuess => guard.refund(&keys).await,
        }
        if let Some((outcome, detail)) = detail {
            let user = match &result {
                Ok(s) => Some(s.user_id.clone()),
                Err(_) => bound,
            };
            store
                .record(
                    Event::new(audit::Kind::Login, outcome)
                        .user(user.as_deref())
                        .ip(Some(&ip))
                        .detail(detail),
                )
                .await;
        }
        result
    }

    /// The attempt's result, how the throttle settles it, and its audit event (none for what is
    /// not an attempt at all: nothing sent, a busy engine).
    async fn judge<S>(
        &self,
        store: &S,
        attempt: Attempt<'_>,
    ) -> (
        Result<SignedIn, LoginRefusal>,
        Settle,
        Option<(audit::Outcome, String)>,
    )
    where
        S: TemplateStore + AccountStore + AuditLog,
    {
        use audit::Outcome::{Failed, Ok as Done, Refused};
        let refused =
            |r: LoginRefusal, why: &str| (Err(r), Settle::NoGuess, Some((Refused, why.to_string())));
        let failed = |r: LoginRefusal, why: String| (Err(r), Settle::Guess, Some((Failed, why)));
        let error = |e: FaceError| (Err(LoginRefusal::Face(e)), Settle::NoGuess, None);

        let (probe, live) = match attempt.input {
            FaceInput::Live(e) => (Probe::Embedding(e), true),
            // A failed check was counted when it failed, and one not passed is no guess.
            FaceInput::Unusable(why) => {
                return refused(LoginRefusal::LivenessUnusable(why), "face: liveness not usable");
            }
            FaceInput::Photo(_) | FaceInput::Nothing if self.rules.liveness_required => {
                return refused(LoginRefusal::LivenessRequired, "face: liveness required");
            }
            FaceInput::Photo(image) => (Probe::Image(image), false),
            FaceInput::Nothing => return (Err(LoginRefusal::NothingSent), Settle::NoGuess, None),
        };

        let target = match (&attempt.txn.user_id, &attempt.username) {
            (Some(u), _) => Some(Some(u.clone())),
            (None, Some(name)) => match store.account_id(name).await {
                Ok(id) => Some(id),
                Err(e) => return error(e.into()),
            },
            (None, None) => None,
        };
        let (user_id, mode, band) = match target {
            Some(uid) => {
                // An unknown username costs the same work as a known one and is answered alike.
                let result = self.verify(store, uid.as_deref().unwrap_or(""), probe).await;
                match (uid, result) {
                    (Some(uid), Ok(m)) => (uid, FaceMode::Verify, score_band(m.score, m.threshold)),
                    (_, Err(FaceError::NoMatch | FaceError::NotEnrolled)) | (None, Ok(_)) => {
                        return failed(LoginRefusal::NoMatch, "face-1:1 no-match".into());
                    }
                    (_, Err(e)) => return error(e),
                }
            }
            None => {
                let (best, threshold, embedding) = match self.identify(store, probe).await {
                    Ok(r) => r,
                    Err(e) => return error(e),
                };
                if attempt.signup && self.rules.signup {
                    // A new account only for a face that is not possibly an existing account's.
                    if best
                        .as_ref()
                        .is_some_and(|b| b.score >= self.policy.possible_match_threshold())
                    {
                        return (
                            Err(LoginRefusal::PossibleExisting),
                            Settle::Guess,
                            Some((Refused, "face-signup: possible match of an account".into())),
                        );
                    }
                    if !self.allow_signup(attempt.now) {
                        return (Err(LoginRefusal::SignupsExhausted), Settle::NoGuess, None);
                    }
                    match self.sign_up(store, embedding, live, attempt.now).await {
                        Ok(uid) => (uid, FaceMode::Signup, "new-account"),
                        Err(e) => return error(e),
                    }
                } else {
                    let threshold = match threshold {
                        Ok(t) => t,
                        Err(e) => {
                            return (
                                Err(LoginRefusal::Face(e)),
                                Settle::NoGuess,
                                Some((Refused, "face-1:n gallery too large".into())),
                            );
                        }
                    };
                    let Some(b) = best else {
                        return failed(LoginRefusal::NotRecognised, "face-1:n no-match".into());
                    };
                    match self.policy.accept_identification(&b, threshold) {
                        Ok(()) => (
                            b.user_id.clone(),
                            FaceMode::Identify,
                            score_band(b.score, threshold),
                        ),
                        Err(FaceError::Ambiguous) => {
                            return failed(LoginRefusal::Ambiguous, "face-1:n ambiguous".into());
                        }
                        Err(_) => {
                            return failed(
                                LoginRefusal::NotRecognised,
                                format!("face-1:n {}", score_band(b.score, threshold)),
                            );
                        }
                    }
                }
            }
        };
        let method = Method::Face { mode, live };
        let factor = Factor::new(method.clone(), attempt.now, attempt.device_id.clone());
        if attempt.txn.record(&user_id, factor).is_err() {
            return (
                Err(LoginRefusal::OtherAccount),
                Settle::Guess,
                Some((Refused, "face: another account than the login's".into())),
            );
        }
        let detail = format!("{} {band}", method.name());
        (
            Ok(SignedIn { user_id, method }),
            Settle::Success,
            Some((Done, detail)),
        )
    }

    /// Face-only sign-up: a new account whose first template is this face.
    async fn sign_up<S>(
        &self,
        store: &S,
        embedding: Vec<f32>,
        live: bool,
        now: i64,
    ) -> Result<String, FaceError>
    where
        S: TemplateStore + AccountStore + AuditLog,
    {
        let id = random_token(16);
        let username = Username::parse(&format!(
            "face-{}",
            &id[..8].to_lowercase().replace(['_', '-'], "x")
        ))
        .map_err(|e| FaceError::Unavailable(e.to_string()))?;
        let user = User {
            id: id.clone(),
            username,
            email: None,
            email_verified: false,
            name: None,
            created_at: now,
        };
        store.create_account(&user).await?;
        store
            .record(
                Event::new(audit::Kind::Signup, audit::Outcome::Ok)
                    .user(Some(&id))
                    .detail("face"),
            )
            .await;
        self.first_template(store, &id, embedding, live, now).await?;
        Ok(id)
    }
}
