//! The face service and a face login attempt over fakes: a face engine that reads the embedding out
//! of the "picture", and a store in memory. Each test is what a person or an attacker would do.

use std::sync::Mutex;

use super::*;
use crate::account::User;
use crate::audit::{self, AuditLog, Event, MemoryLog};
use crate::login::{FaceMode, LoginTransaction, Method};
use crate::throttle::LoginGuard;

/// "Pictures" are `to_bytes(embedding)`; b"none" has no face, b"two" two faces of equal size.
struct FakeEngine;

impl FaceAnalyzer for FakeEngine {
    async fn analyse(&self, image: Vec<u8>, purpose: Purpose) -> Result<Vec<AnalysedFace>, FaceError> {
        let face = |e: Option<Vec<f32>>| AnalysedFace {
            area: 100.0,
            height_share: 0.4,
            embedding: if matches!(purpose, Purpose::Preview { .. }) {
                None
            } else {
                e
            },
            issues: vec![],
            quality: serde_json::json!({"yaw": 0}),
        };
        match image.as_slice() {
            b"none" => Ok(vec![]),
            b"two" => Ok(vec![face(Some(unit(&[1.0, 0.0]))), face(Some(unit(&[0.0, 1.0])))]),
            b"junk" => Err(FaceError::BadImage("not a picture".into())),
            b => Ok(vec![face(Some(
                from_bytes(b).ok_or_else(|| FaceError::BadImage("odd".into()))?,
            ))]),
        }
    }
}

fn unit(v: &[f32]) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / n).collect()
}

fn photo(v: &[f32]) -> Vec<u8> {
    to_bytes(&unit(v))
}

#[derive(Default)]
struct Store {
    templates: Mutex<Vec<FaceTemplate>>,
    users: Mutex<Vec<User>>,
    log: MemoryLog,
}

impl TemplateStore for Store {
    async fn templates_of(&self, user_id: &str) -> Result<Vec<FaceTemplate>, PortError> {
        Ok(self
            .templates
            .lock()
            .unwrap()
            .iter()
            .filter(|t| t.user_id == user_id)
            .cloned()
            .collect())
    }
    async fn templates_by_pack(&self, pack: &str) -> Result<Vec<FaceTemplate>, PortError> {
        Ok(self
            .templates
            .lock()
            .unwrap()
            .iter()
            .filter(|t| t.pack == pack)
            .cloned()
            .collect())
    }
    async fn add_template(&self, t: &FaceTemplate) -> Result<(), PortError> {
        self.templates.lock().unwrap().push(t.clone());
        Ok(())
    }
    async fn delete_template(&self, user_id: &str, id: &str) -> Result<bool, PortError> {
        let mut v = self.templates.lock().unwrap();
        let n = v.len();
        v.retain(|t| !(t.user_id == user_id && t.id == id));
        Ok(v.len() < n)
    }
    async fn delete_templates(&self, user_id: &str) -> Result<u64, PortError> {
        let mut v = self.templates.lock().unwrap();
        let n = v.len();
        v.retain(|t| t.user_id != user_id);
        Ok((n - v.len()) as u64)
    }
}

impl AccountStore for Store {
    async fn account_id(&self, username: &str) -> Result<Option<String>, PortError> {
        Ok(self
            .users
            .lock()
            .unwrap()
            .iter()
            .find(|u| u.username.as_str() == username)
            .map(|u| u.id.clone()))
    }
    async fn create_account(&self, user: &User) -> Result<(), PortError> {
        self.users.lock().unwrap().push(user.clone());
        Ok(())
    }
}

impl AuditLog for Store {
    async fn record(&self, event: Event) {
        self.log.record(event).await
    }
}

fn service(liveness_required: bool, signup: bool) -> FaceService<FakeEngine> {
    FaceService::new(
        FakeEngine,
        MatchPolicy {
            calibration: vec![(1e-2, 0.2), (1e-3, 0.3), (1e-4, 0.35), (1e-5, 0.4)],
            target_fmr: 1e-5,
            target_fmr_1n: 1e-3,
            identify_margin: 0.05,
        },
        FaceRules {
            pack: "p".into(),
            liveness_required,
            signup,
            signups_per_hour: 2,
            ..FaceRules::default()
        },
    )
}

fn template(user: &str, v: &[f32]) -> FaceTemplate {
    FaceTemplate {
        id: crate::secret::random_token(6),
        user_id: user.into(),
        pack: "p".into(),
        embedding: unit(v),
        quality: serde_json::json!({"yaw": 0}),
        created_at: 0,
    }
}

fn store_with(people: &[(&str, &[f32])]) -> Store {
    let s = Store::default();
    for (name, v) in people {
        s.users.lock().unwrap().push(User {
            id: format!("id-{name}"),
            username: crate::Username::parse(name).unwrap(),
            email: None,
            email_verified: false,
            name: None,
            created_at: 0,
        });
        s.templates
            .lock()
            .unwrap()
            .push(template(&format!("id-{name}"), v));
    }
    s
}

fn attempt<'a>(txn: &'a mut LoginTransaction, username: Option<&str>, input: FaceInput) -> Attempt<'a> {
    Attempt {
        txn,
        username: username.map(str::to_string),
        signup: false,
        input,
        ip: "203.0.113.9".into(),
        device: Some("dev".into()),
        device_id: Some("d".into()),
        now: 1_000_000,
    }
}

#[tokio::test]
async fn a_photo_does_not_sign_in_when_liveness_is_required() {
    let svc = service(true, false);
    let store = store_with(&[("alice", &[1.0, 0.0, 0.0])]);
    let mut txn = LoginTransaction::new(0);
    let r = svc
        .login(
            &store,
            &LoginGuard::default(),
            attempt(&mut txn, Some("alice"), FaceInput::Photo(photo(&[1.0, 0.0, 0.0]))),
        )
        .await;
    assert!(matches!(r, Err(LoginRefusal::LivenessRequired)), "{r:?}");
    assert!(txn.factors.is_empty());
    let ev = store.log.events();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].outcome, audit::Outcome::Refused);
}

#[tokio::test]
async fn the_live_embedding_signs_in_one_to_one_and_is_audited_with_a_band_only() {
    let svc = service(true, false);
    let store = store_with(&[("alice", &[1.0, 0.0, 0.0]), ("bob", &[0.0, 1.0, 0.0])]);
    let mut txn = LoginTransaction::new(0);
    let r = svc
        .login(
            &store,
            &LoginGuard::default(),
            attempt(&mut txn, Some("alice"), FaceInput::Live(unit(&[1.0, 0.05, 0.0]))),
        )
        .await
        .unwrap();
    assert_eq!(r.user_id, "id-alice");
    assert_eq!(
        r.method,
        Method::Face {
            mode: FaceMode::Verify,
            live: true
        }
    );
    assert_eq!(txn.user_id.as_deref(), Some("id-alice"));
    let ev = store.log.events();
    assert_eq!(ev.len(), 1);
    assert_eq!(
        (ev[0].kind, ev[0].outcome),
        (audit::Kind::Login, audit::Outcome::Ok)
    );
    assert_eq!(ev[0].detail.as_deref(), Some("face-1:1 strong-match"));
    // Bob's face with Alice's username: refused, and a wrong guess.
    let mut txn = LoginTransaction::new(0);
    let r = svc
        .login(
            &store,
            &LoginGuard::default(),
            attempt(&mut txn, Some("alice"), FaceInput::Live(unit(&[0.0, 1.0, 0.0]))),
        )
        .await;
    assert!(matches!(r, Err(LoginRefusal::NoMatch)), "{r:?}");
    assert_eq!(store.log.events()[1].outcome, audit::Outcome::Failed);
}

#[tokio::test]
async fn an_unknown_username_is_answered_like_a_wrong_face() {
    let svc = service(false, false);
    let store = store_with(&[("alice", &[1.0, 0.0])]);
    let mut txn = LoginTransaction::new(0);
    let r = svc
        .login(
            &store,
            &LoginGuard::default(),
            attempt(&mut txn, Some("nobody"), FaceInput::Photo(photo(&[1.0, 0.0]))),
        )
        .await;
    assert!(matches!(r, Err(LoginRefusal::NoMatch)), "{r:?}");
}

#[tokio::test]
async fn requests_that_are_no_guess_cannot_reset_the_lock() {
    // The attack: guess a face for alice, and between guesses send a request that is no guess (no
    // picture, a broken one) hoping it counts as a success and clears the count.
    let svc = service(false, false);
    let store = store_with(&[("alice", &[1.0, 0.0, 0.0])]);
    let guard = LoginGuard::default();
    let mut locked = false;
    for i in 0..30 {
        let mut txn = LoginTransaction::new(0);
        let input = match i % 3 {
            0 => FaceInput::Photo(photo(&[0.0, 1.0, 0.0])),
            1 => FaceInput::Nothing,
            _ => FaceInput::Photo(b"junk".to_vec()),
        };
        if let Err(LoginRefusal::Throttled(_)) = svc
            .login(&store, &guard, attempt(&mut txn, Some("alice"), input))
            .await
        {
            locked = true;
            break;
        }
    }
    assert!(
        locked,
        "wrong faces for one account from one address must end in a lock"
    );
}

#[tokio::test]
async fn one_to_n_needs_a_margin_over_other_accounts() {
    let svc = service(false, false);
    let store = store_with(&[("alice", &[1.0, 0.0, 0.0]), ("twin", &[1.0, 0.02, 0.0])]);
    let mut txn = LoginTransaction::new(0);
    let r = svc
        .login(
            &store,
            &LoginGuard::default(),
            attempt(&mut txn, None, FaceInput::Photo(photo(&[1.0, 0.01, 0.0]))),
        )
        .await;
    assert!(matches!(r, Err(LoginRefusal::Ambiguous)), "{r:?}");
    let store = store_with(&[("alice", &[1.0, 0.0, 0.0]), ("bob", &[0.0, 1.0, 0.0])]);
    let mut txn = LoginTransaction::new(0);
    let r = svc
        .login(
            &store,
            &LoginGuard::default(),
            attempt(&mut txn, None, FaceInput::Photo(photo(&[1.0, 0.01, 0.0]))),
        )
        .await
        .unwrap();
    assert_eq!(r.user_id, "id-alice");
    assert_eq!(
        r.method,
        Method::Face {
            mode: FaceMode::Identify,
            live: false
        }
    );
}

#[tokio::test]
async fn one_to_n_is_refused_beyond_the_calibrated_gallery_counting_templates() {
    let svc = service(false, false);
    // 51 people with two templates each: 102 templates, over the 100 the calibration vouches for.
    let store = Store::default();
    for i in 0..51 {
        let mut v = vec![0.0f32; 64];
        v[i] = 1.0;
        store
            .templates
            .lock()
            .unwrap()
            .push(template(&format!("u{i}"), &v));
        store
            .templates
            .lock()
            .unwrap()
            .push(template(&format!("u{i}"), &v));
    }
    let mut v = vec![0.0f32; 64];
    v[3] = 1.0;
    let mut txn = LoginTransaction::new(0);
    let r = svc
        .login(
            &store,
            &LoginGuard::default(),
            attempt(&mut txn, None, FaceInput::Photo(photo(&v))),
        )
        .await;
    assert!(
        matches!(
            r,
            Err(LoginRefusal::Face(FaceError::GalleryTooLarge {
                templates: 102,
                ..
            }))
        ),
        "{r:?}"
    );
}

#[tokio::test]
async fn face_signup_is_explicit_refused_for_a_possible_match_and_rate_limited() {
    let svc = service(false, true);
    let store = store_with(&[("alice", &[1.0, 0.0, 0.0, 0.0, 0.0])]);
    let guard = LoginGuard::default();
    // Without the explicit choice an unknown face is just not recognised.
    let mut txn = LoginTransaction::new(0);
    let r = svc
        .login(
            &store,
            &guard,
            attempt(
                &mut txn,
                None,
                FaceInput::Photo(photo(&[0.0, 1.0, 0.0, 0.0, 0.0])),
            ),
        )
        .await;
    assert!(matches!(r, Err(LoginRefusal::NotRecognised)), "{r:?}");
    // Alice's look-alike (below the login threshold, above "possible match") cannot open an account.
    let mut txn = LoginTransaction::new(0);
    let mut a = attempt(
        &mut txn,
        None,
        FaceInput::Photo(photo(&[0.3, 1.0, 0.0, 0.0, 0.0])),
    );
    a.signup = true;
    assert!(matches!(
        svc.login(&store, &guard, a).await,
        Err(LoginRefusal::PossibleExisting)
    ));
    // Two new faces per hour, then the quota.
    for (i, expect_ok) in [(2usize, true), (3, true), (4, false)] {
        let mut v = vec![0.0f32; 5];
        v[i] = 1.0;
        let mut txn = LoginTransaction::new(0);
        let mut a = attempt(&mut txn, None, FaceInput::Photo(photo(&v)));
        a.signup = true;
        let r = svc.login(&store, &guard, a).await;
        if expect_ok {
            let s = r.unwrap();
            assert_eq!(
                s.method,
                Method::Face {
                    mode: FaceMode::Signup,
                    live: false
                }
            );
            assert_eq!(store.templates_of(&s.user_id).await.unwrap().len(), 1);
        } else {
            assert!(matches!(r, Err(LoginRefusal::SignupsExhausted)), "{r:?}");
        }
    }
}

#[tokio::test]
async fn a_face_of_another_account_cannot_complete_this_login() {
    let svc = service(false, false);
    let store = store_with(&[("alice", &[1.0, 0.0, 0.0]), ("bob", &[0.0, 1.0, 0.0])]);
    // The login is Alice's (after her password); Bob's face must not finish it, whatever username.
    let mut txn = LoginTransaction::new(0);
    txn.bind_user("id-alice").unwrap();
    let r = svc
        .login(
            &store,
            &LoginGuard::default(),
            attempt(&mut txn, Some("bob"), FaceInput::Photo(photo(&[0.0, 1.0, 0.0]))),
        )
        .await;
    assert!(matches!(r, Err(LoginRefusal::NoMatch)), "{r:?}");
    assert!(txn.factors.is_empty());
}

#[tokio::test]
async fn enrolment_rules_and_their_audit_events() {
    let svc = service(true, false);
    let store = store_with(&[("alice", &[1.0, 0.0, 0.0])]);
    let live = |v: &[f32]| TemplateSource::Live {
        embedding: unit(v),
        confidence: 90,
    };
    // Without a recent sign-in: refused.
    let r = svc
        .enrol(&store, "id-alice", None, false, live(&[1.0, 0.3, 0.0]), 5)
        .await;
    assert!(matches!(r, Err(EnrolRefusal::NoRecentSignIn)), "{r:?}");
    // A photo when liveness is required: refused.
    let r = svc
        .enrol(
            &store,
            "id-alice",
            None,
            true,
            TemplateSource::Photo(photo(&[1.0, 0.3, 0.0])),
            5,
        )
        .await;
    assert!(matches!(r, Err(EnrolRefusal::LivenessRequired)), "{r:?}");
    // Someone else's face on Alice's account (a thief with her session): refused.
    let r = svc
        .enrol(&store, "id-alice", None, true, live(&[0.0, 1.0, 0.0]), 5)
        .await;
    assert!(matches!(r, Err(EnrolRefusal::NotTheSamePerson)), "{r:?}");
    // Her own face: added.
    let (_, n) = svc
        .enrol(&store, "id-alice", None, true, live(&[1.0, 0.3, 0.0]), 5)
        .await
        .unwrap();
    assert_eq!(n, 2);
    let ev = store.log.events();
    let outcomes: Vec<_> = ev.iter().map(|e| (e.kind, e.outcome)).collect();
    assert_eq!(
        outcomes,
        [
            (audit::Kind::FaceAdded, audit::Outcome::Refused),
            (audit::Kind::FaceAdded, audit::Outcome::Refused),
            (audit::Kind::FaceAdded, audit::Outcome::Refused),
            (audit::Kind::FaceAdded, audit::Outcome::Ok),
        ]
    );
    // Deleting is audited too.
    assert_eq!(delete_all_faces(&store, "id-alice").await.unwrap(), 2);
    assert_eq!(store.log.events().last().unwrap().kind, audit::Kind::FacesDeleted);
}

#[tokio::test]
async fn one_face_exactly_and_bystanders_ignored() {
    let svc = service(false, false);
    assert!(matches!(
        svc.probe(b"none".to_vec(), Purpose::Login).await,
        Err(FaceError::NoFace)
    ));
    assert!(matches!(
        svc.probe(b"two".to_vec(), Purpose::Login).await,
        Err(FaceError::MultipleFaces)
    ));
    assert!(matches!(
        svc.probe(b"junk".to_vec(), Purpose::Login).await,
        Err(FaceError::BadImage(_))
    ));
    assert_eq!(svc.guidance(b"two".to_vec(), false).await.unwrap().len(), 1);
}
