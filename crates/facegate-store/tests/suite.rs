//! One storage suite, run against every database facegate supports (Ory Hydra's way): the embedded
//! SQLite and a real PostgreSQL that the test starts itself (`facegate_store::testing`). Each case
//! gets a fresh database and checks what the server relies on: round trips of every kind of row
//! (flags, blobs, JSON), uniqueness, single use under races, cascades and ordering.
//!
//! Without PostgreSQL's server programs the PostgreSQL run is skipped with a message, unless
//! `FACEGATE_REQUIRE_POSTGRES=1` (CI), which makes it fail.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use facegate_core::audit::{AuditLog, Event, Kind, Outcome};
use facegate_core::face::{AccountStore, FaceTemplate, TemplateStore};
use facegate_core::face_api::{ApiFace, CollectionStore};
use facegate_core::{User, Username};
use facegate_store::{Backend, CodeUse, Grant, Redeemed, Store, StoredKey, StoredSession, Token, TokenKind};

fn user(id: &str, name: &str) -> User {
    User {
        id: id.into(),
        username: Username::parse(name).unwrap(),
        email: Some(facegate_core::Email::parse(&format!("{name}@example.com")).unwrap()),
        email_verified: true,
        name: Some(format!("{name} Example")),
        created_at: 1_700_000_000,
    }
}

fn client(id: &str) -> facegate_oidc::client::Client {
    facegate_oidc::client::Client {
        client_id: id.into(),
        secret_hash: Some("hash".into()),
        name: format!("{id} app"),
        redirect_uris: vec!["https://app.example/cb".into(), "http://localhost:3000/cb".into()],
        post_logout_redirect_uris: vec![],
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        auth_method: facegate_oidc::client::AuthMethod::ClientSecretBasic,
        scope: "openid profile".into(),
        jwks: None,
        skip_consent: true,
        id_token_alg: facegate_oidc::keys::SigningAlg::ES256,
        pairwise: true,
        created_at: 5,
        dynamic: false,
        resource_server: true,
        require_par: true,
        jwt_access_tokens: true,
        backchannel_logout_uri: Some("https://app.example/bcl".into()),
        backchannel_logout_session_required: true,
    }
}

fn grant(id: &str, client: &str, sid: Option<&str>) -> Grant {
    Grant {
        id: id.into(),
        client_id: client.into(),
        user_id: Some("u1".into()),
        scope: "openid".into(),
        auth_time: Some(10),
        amr: vec!["face".into(), "mfa".into()],
        acr: Some("urn:facegate:mfa:face:live".into()),
        nonce: Some("n".into()),
        sid: sid.map(String::from),
        created_at: 10,
        revoked_at: None,
        claims: None,
    }
}

fn refresh(hash: &str, grant: &str, client: &str) -> Token {
    Token {
        token_hash: hash.into(),
        kind: TokenKind::Refresh,
        grant_id: grant.into(),
        client_id: client.into(),
        user_id: Some("u1".into()),
        scope: "openid".into(),
        expires_at: i64::MAX,
        used_at: None,
        revoked_at: None,
        created_at: 0,
    }
}

async fn accounts_and_clients(s: &Store) {
    s.create_user(&user("u1", "alice"), Some("$argon2id$x"))
        .await
        .unwrap();
    let again = s.create_user(&user("u2", "alice"), None).await;
    assert!(again.is_err(), "usernames are unique");
    let (u, hash) = s.user_with_password("alice").await.unwrap().unwrap();
    assert_eq!(u, user("u1", "alice"));
    assert_eq!(hash.as_deref(), Some("$argon2id$x"));
    assert_eq!(s.account_facts("u1", "p").await.unwrap(), Some((true, 0)));
    s.create_account(&user("u3", "bob")).await.unwrap();
    assert_eq!(s.account_id("bob").await.unwrap().as_deref(), Some("u3"));
    assert_eq!(s.account_facts("u3", "p").await.unwrap(), Some((false, 0)));

    s.create_client(&client("c"), Some("regtoken")).await.unwrap();
    assert!(
        s.create_client(&client("c"), None).await.is_err(),
        "client ids are unique"
    );
    let c = s.client("c").await.unwrap().unwrap();
    assert_eq!(c.redirect_uris, client("c").redirect_uris);
    assert!(
        c.skip_consent && c.pairwise && c.resource_server,
        "flags round-trip"
    );
    assert_eq!(c.id_token_alg, facegate_oidc::keys::SigningAlg::ES256);
    s.set_client_acr("c", Some("urn:facegate:face:live"))
        .await
        .unwrap();
    assert_eq!(
        s.client_acr("c").await.unwrap().as_deref(),
        Some("urn:facegate:face:live")
    );
    assert!(s.delete_client("c").await.unwrap());
    assert!(s.client("c").await.unwrap().is_none());
    assert_eq!(
        s.client_acr("c").await.unwrap(),
        None,
        "the policy goes with the client"
    );
}

async fn codes_tokens_and_grants(s: &Store) {
    s.create_user(&user("u1", "alice"), None).await.unwrap();
    s.create_client(&client("c"), None).await.unwrap();
    s.create_grant(&grant("g1", "c", Some("sid1"))).await.unwrap();
    let g = s.grant("g1").await.unwrap().unwrap();
    assert_eq!(g.amr, vec!["face".to_string(), "mfa".to_string()]);
    s.insert_code("h", "g1", "https://app.example/cb", Some("chal"), i64::MAX)
        .await
        .unwrap();
    // Ten concurrent redemptions of one code: exactly one wins.
    let uses = futures_join(s, "h").await;
    assert_eq!(
        uses.iter().filter(|u| matches!(u, CodeUse::First(_))).count(),
        1,
        "{uses:?}"
    );
    assert!(matches!(s.use_code("nope", 2).await.unwrap(), CodeUse::Unknown));

    s.insert_token(&refresh("r", "g1", "c")).await.unwrap();
    assert!(s.use_refresh_token("r", 5).await.unwrap());
    assert!(
        !s.use_refresh_token("r", 6).await.unwrap(),
        "second use is detected"
    );
    // Issued through the group commit, then revoked with its session.
    assert!(
        s.issue(Some(&grant("g2", "c", Some("sid1"))), &[refresh("r2", "g2", "c")])
            .await
            .unwrap()
    );
    assert!(
        !s.issue(Some(&grant("g3", "gone", None)), &[refresh("r3", "g3", "gone")])
            .await
            .unwrap(),
        "no grant for a missing client"
    );
    assert_eq!(s.revoke_session_refresh_tokens("sid1", 9).await.unwrap(), 2);
    assert_eq!(s.token("r2").await.unwrap().unwrap().revoked_at, Some(9));
    s.revoke_grant("g1", 7).await.unwrap();
    assert!(s.grant("g1").await.unwrap().unwrap().revoked_at.is_some());
}

async fn futures_join(s: &Store, code: &str) -> Vec<CodeUse> {
    let mut handles = Vec::new();
    for i in 0..10 {
        let (s, code) = (s.clone(), code.to_string());
        handles.push(tokio::spawn(
            async move { s.use_code(&code, 100 + i).await.unwrap() },
        ));
    }
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// Redeeming a code stores its tokens in the same step as using it up: of many concurrent
/// redemptions of one code (several land in one group commit), exactly one stores anything; a used
/// code, or one of a deleted client, stores nothing.
async fn redeeming_codes(s: &Store) {
    s.create_user(&user("u1", "alice"), None).await.unwrap();
    s.create_client(&client("c"), None).await.unwrap();
    s.create_grant(&grant("g1", "c", None)).await.unwrap();
    s.insert_code("h", "g1", "https://app.example/cb", None, i64::MAX)
        .await
        .unwrap();
    let (code, g) = s.code("h").await.unwrap().unwrap();
    assert_eq!(
        (code.grant_id.as_str(), g.id.as_str(), code.used_at),
        ("g1", "g1", None)
    );
    assert!(s.code("nope").await.unwrap().is_none());
    // Other writes first keep the writer busy, so that the redemptions queue up into one group.
    let mut busy = Vec::new();
    for i in 0..50 {
        let s = s.clone();
        busy.push(tokio::spawn(async move {
            s.issue(None, &[refresh(&format!("pad{i}"), "g1", "c")])
                .await
                .unwrap()
        }));
    }
    let mut handles = Vec::new();
    for i in 0..10 {
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            let t = refresh(&format!("t{i}"), "g1", "c");
            s.redeem_code("h", 100 + i, &[t]).await.unwrap()
        }));
    }
    for b in busy {
        assert!(b.await.unwrap());
    }
    let mut outcomes = Vec::new();
    for h in handles {
        outcomes.push(h.await.unwrap());
    }
    assert_eq!(
        outcomes.iter().filter(|o| **o == Redeemed::Stored).count(),
        1,
        "{outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Redeemed::Stored | Redeemed::CodeUsed))
    );
    let stored: Vec<_> = (0..10).map(|i| format!("t{i}")).collect();
    let mut found = 0;
    for t in &stored {
        found += usize::from(s.token(t).await.unwrap().is_some());
    }
    assert_eq!(found, 1, "only the winner's token is stored");
    assert!(s.code("h").await.unwrap().unwrap().0.used_at.is_some());
    assert_eq!(
        s.redeem_code("h", 200, &[refresh("late", "g1", "c")])
            .await
            .unwrap(),
        Redeemed::CodeUsed
    );
    assert!(s.token("late").await.unwrap().is_none());
    // A code whose client was deleted meanwhile: nothing usable is stored.
    s.create_client(&client("d"), None).await.unwrap();
    s.create_grant(&grant("g2", "d", None)).await.unwrap();
    s.insert_code("h2", "g2", "https://app.example/cb", None, i64::MAX)
        .await
        .unwrap();
    assert!(s.delete_client("d").await.unwrap());
    let outcome = s.redeem_code("h2", 300, &[refresh("orphan", "g2", "d")]).await;
    assert!(
        matches!(outcome, Ok(Redeemed::ClientGone | Redeemed::CodeUsed) | Err(_)),
        "{outcome:?}"
    );
    assert!(s.token("orphan").await.unwrap().is_none());
}

async fn sessions_requests_and_settings(s: &Store) {
    s.create_user(&user("u1", "alice"), None).await.unwrap();
    let factor =
        facegate_core::login::Factor::new(facegate_core::login::Method::Password, 100, Some("dev".into()));
    let sess = StoredSession {
        id_hash: "sh".into(),
        user_id: "u1".into(),
        auth_time: 100,
        amr: vec!["pwd".into()],
        acr: None,
        expires_at: 1_000,
        factors: vec![factor.clone()],
    };
    s.create_session(&sess).await.unwrap();
    let back = s.session("sh", 500).await.unwrap().unwrap();
    assert_eq!(back.factors, vec![factor]);
    assert!(
        s.session("sh", 1_001).await.unwrap().is_none(),
        "an expired session is gone"
    );
    s.put_auth_request("r1", "{\"a\":1}", 2_000).await.unwrap();
    assert_eq!(
        s.auth_request("r1", 1_500).await.unwrap().as_deref(),
        Some("{\"a\":1}")
    );
    s.update_auth_request("r1", "{\"a\":2}").await.unwrap();
    assert_eq!(
        s.auth_request("r1", 1_500).await.unwrap().as_deref(),
        Some("{\"a\":2}")
    );
    assert!(s.auth_request("r1", 2_001).await.unwrap().is_none());
    s.purge_expired(5_000).await.unwrap();
    assert_eq!(s.setting_or_insert("k", "v1").await.unwrap(), "v1");
    assert_eq!(
        s.setting_or_insert("k", "v2").await.unwrap(),
        "v1",
        "first value wins"
    );
    s.set_setting("k", "v3").await.unwrap();
    assert_eq!(s.setting("k").await.unwrap().as_deref(), Some("v3"));
    s.put_consent("u1", "c", "openid", 1).await.unwrap();
    s.put_consent("u1", "c", "openid email", 2).await.unwrap();
    assert_eq!(
        s.consent("u1", "c").await.unwrap().as_deref(),
        Some("openid email")
    );
}

async fn keys(s: &Store) {
    let k = StoredKey {
        kid: "k1".into(),
        alg: "ES256".into(),
        pkcs8: (0..=255u8).collect(),
        created_at: 1,
        retired_at: None,
    };
    s.insert_key(&k).await.unwrap();
    s.insert_key(&StoredKey {
        kid: "k2".into(),
        ..k.clone()
    })
    .await
    .unwrap();
    s.retire_keys("ES256", "k2", 50).await.unwrap();
    let keys = s.keys().await.unwrap();
    let k1 = keys.iter().find(|x| x.kid == "k1").unwrap();
    assert_eq!(k1.pkcs8, k.pkcs8, "every byte value survives");
    assert_eq!(k1.retired_at, Some(50));
    assert_eq!(s.delete_keys_retired_before(60).await.unwrap(), 1);
}

async fn faces_and_audit(s: &Store) {
    s.create_user(&user("u1", "alice"), None).await.unwrap();
    let embedding: Vec<f32> = (0..512).map(|i| (i as f32 * 0.37).sin() / 16.0).collect();
    let t = FaceTemplate {
        id: "t1".into(),
        user_id: "u1".into(),
        pack: "p".into(),
        embedding: embedding.clone(),
        quality: serde_json::json!({"yaw": 3}),
        created_at: 7,
    };
    s.add_template(&t).await.unwrap();
    assert_eq!(
        s.templates_of("u1").await.unwrap(),
        vec![t.clone()],
        "embeddings round-trip bit for bit"
    );
    assert_eq!(s.templates_by_pack("p").await.unwrap().len(), 1);
    assert_eq!(s.account_facts("u1", "p").await.unwrap(), Some((false, 1)));
    assert!(!s.delete_template("u1", "other").await.unwrap());
    assert!(s.delete_template("u1", "t1").await.unwrap());
    s.add_template(&t).await.unwrap();
    assert_eq!(s.delete_templates("u1").await.unwrap(), 1);

    for (i, outcome) in [Outcome::Failed, Outcome::Ok].into_iter().enumerate() {
        s.record(
            Event::new(Kind::Login, outcome)
                .user(Some("u1"))
                .ip(Some("10.0.0.1"))
                .detail(format!("face {i}")),
        )
        .await;
    }
    let events = s.audit_of("u1", 10).await.unwrap();
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|(_, kind, _, _)| kind == "login"));
}

async fn face_api_tables(s: &Store) {
    assert!(
        CollectionStore::create_collection(s, "staff", "p", 1)
            .await
            .unwrap()
    );
    assert!(
        !CollectionStore::create_collection(s, "staff", "p", 2)
            .await
            .unwrap(),
        "ids are unique"
    );
    let face = |id: &str| ApiFace {
        id: id.into(),
        collection_id: "staff".into(),
        external_id: Some("Jane".into()),
        pack: "p".into(),
        embedding: vec![0.5, -0.25, 0.125],
        bbox: serde_json::json!({"left": 1.5}),
        quality: serde_json::json!({"sharpness": 40}),
        created_at: 3,
    };
    s.add_faces(&[face("f1"), face("f2")]).await.unwrap();
    CollectionStore::add_imported_faces(s, &[face("f3")], "staff", "sha", "Jane", 4)
        .await
        .unwrap();
    assert!(s.import_done("staff", "sha").await.unwrap());
    assert!(
        CollectionStore::add_imported_faces(s, &[face("f4")], "staff", "sha", "Jane", 5)
            .await
            .is_err(),
        "a file is imported once"
    );
    assert_eq!(
        s.all_api_faces().await.unwrap().len(),
        3,
        "the refused import left no face"
    );
    assert_eq!(s.api_face("staff", "f1").await.unwrap().unwrap(), face("f1"));
    assert_eq!(s.collection("staff").await.unwrap().unwrap().face_count, 3);
    let deleted = CollectionStore::delete_faces(s, "staff", &["f1".into(), "nope".into()])
        .await
        .unwrap();
    assert_eq!(deleted, vec!["f1".to_string()]);
    assert_eq!(s.count_request("c", "2026-12", 2).await.unwrap(), Some(1));
    assert_eq!(s.count_request("c", "2026-12", 2).await.unwrap(), Some(2));
    assert_eq!(
        s.count_request("c", "2026-12", 2).await.unwrap(),
        None,
        "the quota holds"
    );
    assert_eq!(s.requests_in("c", "2026-12").await.unwrap(), 2);
    assert!(CollectionStore::delete_collection(s, "staff").await.unwrap());
    assert!(
        s.all_api_faces().await.unwrap().is_empty(),
        "faces go with their collection"
    );
}

async fn shared_throttle(s: &Store) {
    use facegate_core::throttle::{AttemptGuard, login_keys};
    let g = facegate_store::SharedGuard::new(s.clone());
    let keys = login_keys("pwd", "203.0.113.6", None, Some("alice"));
    // Counted before verifying: three free, the fourth earns a delay, the rest wait.
    let mut admitted = 0;
    for _ in 0..10 {
        if g.begin(&keys).await.is_ok() {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 4);
    assert!(g.waiting(&keys).await.is_some());
    // The owner elsewhere is not locked out: the account-wide key only slows, never locks.
    let owner = login_keys("pwd", "198.51.100.1", Some("dev"), Some("alice"));
    assert!(
        g.waiting(&owner)
            .await
            .is_none_or(|w| w <= std::time::Duration::from_secs(30))
    );
    // A success at another address clears that address's count only.
    g.begin(&owner).await.unwrap();
    g.end(&owner, true).await;
    assert!(g.waiting(&keys).await.is_some(), "the stranger's lock stays");
    // A failed liveness check counts without an attempt begun.
    let face = login_keys("face", "192.0.2.1", None, None);
    for _ in 0..4 {
        g.fail(&face).await;
    }
    assert!(g.waiting(&face).await.is_some());
    s.purge_expired(i64::MAX / 2000).await.unwrap();
}

async fn shared_state(s: &Store) {
    use facegate_store::Bucket;
    // Admin sessions: valid until they expire, gone when removed.
    s.add_admin_session("h1", 1_000).await.unwrap();
    assert!(s.admin_session_valid("h1", 999).await.unwrap());
    assert!(!s.admin_session_valid("h1", 1_000).await.unwrap(), "expired");
    assert!(!s.admin_session_valid("h2", 0).await.unwrap(), "unknown");
    s.remove_admin_session("h1").await.unwrap();
    assert!(!s.admin_session_valid("h1", 0).await.unwrap(), "signed out");
    // A bucket of burst 3 at 2 tokens a second: three at once, the fourth waits a second.
    let t = 10_000_000;
    for i in 0..3 {
        assert_eq!(
            s.take_token("api:c", 2.0, 3, t).await.unwrap(),
            Bucket::Taken,
            "take {i}"
        );
    }
    assert_eq!(s.take_token("api:c", 2.0, 3, t).await.unwrap(), Bucket::Wait(1));
    // Refused takes cost nothing: after 500 ms one token is back, exactly one.
    assert_eq!(
        s.take_token("api:c", 2.0, 3, t + 100).await.unwrap(),
        Bucket::Wait(1)
    );
    assert_eq!(
        s.take_token("api:c", 2.0, 3, t + 500).await.unwrap(),
        Bucket::Taken
    );
    assert!(matches!(
        s.take_token("api:c", 2.0, 3, t + 500).await.unwrap(),
        Bucket::Wait(_)
    ));
    // Another key has its own bucket; a long pause refills to the burst, no more.
    assert_eq!(s.take_token("api:d", 2.0, 3, t).await.unwrap(), Bucket::Taken);
    let later = t + 3_600_000;
    let taken = futures_count(s, later).await;
    assert_eq!(taken, 3, "a full bucket holds the burst, even taken in parallel");
    // An assertion id is accepted once, on any connection.
    assert!(s.remember_assertion("c:jti-1", 2_000).await.unwrap());
    assert!(!s.remember_assertion("c:jti-1", 2_000).await.unwrap(), "replayed");
    assert!(s.remember_assertion("c:jti-2", 2_000).await.unwrap());
    s.purge_expired(5_000).await.unwrap();
    assert!(
        s.remember_assertion("c:jti-1", 9_000).await.unwrap(),
        "forgotten after it expired"
    );
}

/// Ten parallel takes from the full bucket `api:c` at `at`: how many got a token.
async fn futures_count(s: &Store, at: i64) -> usize {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let s = s.clone();
        set.spawn(async move { s.take_token("api:c", 2.0, 3, at).await.unwrap() });
    }
    let mut n = 0;
    while let Some(r) = set.join_next().await {
        if r.unwrap() == facegate_store::Bucket::Taken {
            n += 1;
        }
    }
    n
}

async fn aws_access_keys(s: &Store) {
    use facegate_store::AwsAccessKey;
    s.create_client(&client("app"), None).await.unwrap();
    let k = |id: &str, at: i64| AwsAccessKey {
        access_key_id: id.into(),
        client_id: "app".into(),
        secret_sealed: format!("sealed-{id}"),
        created_at: at,
        last_used_at: None,
    };
    s.insert_aws_key(&k("FGA1", 1)).await.unwrap();
    s.insert_aws_key(&k("FGA2", 2)).await.unwrap();
    assert!(
        matches!(
            s.insert_aws_key(&k("FGA1", 3)).await,
            Err(facegate_store::StoreError::Conflict(_))
        ),
        "an id is unique"
    );
    let mut other = k("FGA3", 3);
    other.client_id = "nobody".into();
    assert!(
        s.insert_aws_key(&other).await.is_err(),
        "a key belongs to a known client"
    );
    assert_eq!(s.aws_key("FGA1").await.unwrap(), Some(k("FGA1", 1)));
    assert_eq!(s.aws_key("nope").await.unwrap(), None);
    s.touch_aws_key("FGA1", 1000).await.unwrap();
    s.touch_aws_key("FGA1", 1010).await.unwrap();
    assert_eq!(
        s.aws_key("FGA1").await.unwrap().unwrap().last_used_at,
        Some(1000),
        "written at most once a minute"
    );
    let ids = |v: Vec<AwsAccessKey>| v.into_iter().map(|k| k.access_key_id).collect::<Vec<_>>();
    assert_eq!(ids(s.aws_keys(Some("app")).await.unwrap()), ["FGA1", "FGA2"]);
    assert_eq!(ids(s.aws_keys(None).await.unwrap()), ["FGA1", "FGA2"]);
    assert!(s.delete_aws_key("FGA2").await.unwrap());
    assert!(!s.delete_aws_key("FGA2").await.unwrap());
    assert!(s.delete_client("app").await.unwrap());
    assert_eq!(
        s.aws_key("FGA1").await.unwrap(),
        None,
        "a client's keys go with it"
    );
}

macro_rules! cases {
    ($($case:ident),* $(,)?) => {
        &[$((stringify!($case), |s: Store| Box::pin(async move { $case(&s).await }) as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>)),*]
    };
}

/// Issue 15: email links (single use, superseded, expiring), invitations, disabled accounts,
/// sessions by handle, connected applications, deletion, the admin page's search and audit filter.
async fn account_lifecycle(s: &Store) {
    s.create_user(&user("u1", "alice"), Some("$argon2id$x"))
        .await
        .unwrap();
    s.create_user(&user("u2", "bob"), None).await.unwrap();
    s.create_client(&client("c"), None).await.unwrap();
    // Email links.
    s.put_email_link("h1", "u1", "reset", Some("alice@example.com"), 100, 200)
        .await
        .unwrap();
    assert!(s.email_link_usable("h1", "reset", 150).await.unwrap());
    assert!(
        !s.email_link_usable("h1", "confirm", 150).await.unwrap(),
        "another purpose"
    );
    assert!(!s.email_link_usable("h1", "reset", 200).await.unwrap(), "expired");
    // A newer link supersedes it.
    s.put_email_link("h2", "u1", "reset", None, 160, 300)
        .await
        .unwrap();
    assert!(
        s.take_email_link("h1", "reset", 170).await.unwrap().is_none(),
        "superseded"
    );
    let l = s.take_email_link("h2", "reset", 170).await.unwrap().unwrap();
    assert_eq!(l.user_id, "u1");
    assert!(
        s.take_email_link("h2", "reset", 171).await.unwrap().is_none(),
        "single use"
    );
    assert_eq!(s.email_link_owner("h2").await.unwrap().as_deref(), Some("u1"));
    // Single use under a race: one of ten concurrent uses wins.
    s.put_email_link("h3", "u1", "confirm", Some("alice@example.com"), 100, i64::MAX)
        .await
        .unwrap();
    let racers: Vec<_> = (0..10)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.take_email_link("h3", "confirm", 500).await.unwrap().is_some() })
        })
        .collect();
    let mut wins = 0;
    for r in racers {
        wins += usize::from(r.await.unwrap());
    }
    assert_eq!(wins, 1, "a link used more than once");
    // Invitations.
    s.put_invite("i1", Some("new@example.com"), 0, 1000)
        .await
        .unwrap();
    assert_eq!(
        s.invite("i1", 10).await.unwrap(),
        Some(Some("new@example.com".into()))
    );
    assert!(s.take_invite("i1", 10).await.unwrap());
    assert!(!s.take_invite("i1", 11).await.unwrap());
    // Account fields. An address is found case-insensitively; a confirmed holder before an older
    // unconfirmed one (someone who opened an account with another's address).
    assert_eq!(
        s.user_by_email("ALICE@example.com").await.unwrap().unwrap().id,
        "u1"
    );
    let mut squatter = user("u0", "mallory");
    squatter.email = Some(facegate_core::Email::parse("bob@example.com").unwrap());
    squatter.email_verified = false;
    squatter.created_at = 1;
    s.create_user(&squatter, None).await.unwrap();
    assert_eq!(
        s.user_by_email("bob@example.com").await.unwrap().unwrap().id,
        "u2"
    );
    assert!(s.delete_user("u0", 1).await.unwrap());
    s.set_email("u1", "alice@new.example", false).await.unwrap();
    let u = s.user("u1").await.unwrap().unwrap();
    assert_eq!(
        (u.email.unwrap().as_str(), u.email_verified),
        ("alice@new.example", false)
    );
    s.set_password_hash("u2", Some("$argon2id$y")).await.unwrap();
    assert_eq!(
        s.password_hash("u2").await.unwrap().as_deref(),
        Some("$argon2id$y")
    );
    assert!(s.set_disabled("u2", Some(42)).await.unwrap());
    assert_eq!(s.disabled_at("u2").await.unwrap(), Some(42));
    assert_eq!(s.find_user("BOB").await.unwrap().unwrap().id, "u2");
    // Sessions by handle.
    for h in [
        "sessAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "sessBBBBBBBBBBBBBBBBBBBBBBBBBBBB",
        "sessCCCCCCCCCCCCCCCCCCCCCCCCCCCC",
    ] {
        let sess = StoredSession {
            id_hash: h.into(),
            user_id: "u1".into(),
            auth_time: 10,
            amr: vec!["pwd".into()],
            acr: None,
            expires_at: i64::MAX,
            factors: vec![],
        };
        s.create_session_with(&sess, 10, Some("127.0.0.1"), Some("Firefox"))
            .await
            .unwrap();
    }
    let list = s.sessions_of("u1", 0).await.unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[0].user_agent.as_deref(), Some("Firefox"));
    assert!(
        s.end_session_by_sid("u1", &"sessAAAAAAAAAAAAAAAAAAAAAAAAAAAA"[..22])
            .await
            .unwrap()
    );
    assert!(
        !s.end_session_by_sid("u2", &"sessBBBBBBBBBBBBBBBBBBBBBBBBBBBB"[..22])
            .await
            .unwrap(),
        "another account's session"
    );
    let ended = s
        .end_sessions("u1", Some("sessBBBBBBBBBBBBBBBBBBBBBBBBBBBB"))
        .await
        .unwrap();
    assert_eq!(ended.len(), 1);
    assert_eq!(
        s.sessions_of("u1", 0).await.unwrap().len(),
        1,
        "the kept session stays"
    );
    // Connected applications, and taking one's access back.
    s.put_consent("u1", "c", "openid profile", 5).await.unwrap();
    assert!(
        s.issue(Some(&grant("g1", "c", None)), &[refresh("r1", "g1", "c")])
            .await
            .unwrap()
    );
    let apps = s.connected_apps("u1").await.unwrap();
    assert_eq!(apps.len(), 1, "{apps:?}");
    assert_eq!(apps[0].0, "c");
    assert!(s.revoke_app("u1", "c", 50).await.unwrap());
    assert!(s.connected_apps("u1").await.unwrap().is_empty());
    assert!(s.token("r1").await.unwrap().unwrap().revoked_at.is_some());
    // The admin page: search, audit filter.
    let page = s.users_page("ALI", 10, 0).await.unwrap();
    assert_eq!(page.len(), 1);
    assert!(page[0].has_password);
    let all = s.users_page("", 10, 0).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].disabled_at, Some(42));
    let login = |user: &str, outcome| Event::new(Kind::Login, outcome).user(Some(user)).detail("pwd");
    s.audit(&login("u1", Outcome::Failed).ip(Some("1.2.3.4")), 100)
        .await
        .unwrap();
    s.audit(&login("u1", Outcome::Ok).client(Some("c")), 200)
        .await
        .unwrap();
    s.audit(&login("u2", Outcome::Ok), 300).await.unwrap();
    let f = |user: Option<&str>, client: Option<&str>, outcome: Option<&str>, from: Option<i64>| {
        facegate_store::AuditFilter {
            user: user.map(String::from),
            client: client.map(String::from),
            outcome: outcome.map(String::from),
            from,
            ..Default::default()
        }
    };
    assert_eq!(
        s.audit_search(&f(Some("alice"), None, None, None))
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        s.audit_search(&f(None, Some("c"), None, None))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        s.audit_search(&f(None, None, Some("failed"), None))
            .await
            .unwrap()
            .len(),
        1
    );
    let late = s.audit_search(&f(None, None, None, Some(250))).await.unwrap();
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].username.as_deref(), Some("bob"));
    // Deleting: the account and its rows go, its tokens are revoked, its audit stays.
    assert!(
        s.issue(Some(&grant("g2", "c", None)), &[refresh("r2", "g2", "c")])
            .await
            .unwrap()
    );
    assert!(s.delete_user("u1", 60).await.unwrap());
    assert!(s.user("u1").await.unwrap().is_none());
    assert!(s.sessions_of("u1", 0).await.unwrap().is_empty());
    assert!(s.token("r2").await.unwrap().unwrap().revoked_at.is_some());
    assert_eq!(
        s.audit_search(&f(Some("u1"), None, None, None))
            .await
            .unwrap()
            .len(),
        2
    );
}

type Case = (
    &'static str,
    fn(Store) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
);

const CASES: &[Case] = cases![
    accounts_and_clients,
    codes_tokens_and_grants,
    redeeming_codes,
    sessions_requests_and_settings,
    keys,
    faces_and_audit,
    face_api_tables,
    shared_throttle,
    shared_state,
    account_lifecycle,
    aws_access_keys,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_suite_on_sqlite() {
    for (name, case) in CASES {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let s = Store::open(&url).await.unwrap();
        assert_eq!(s.backend(), Backend::Sqlite);
        eprintln!("sqlite: {name}");
        case(s).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_suite_on_postgres() {
    let Some(pg) = facegate_store::testing::TempPostgres::for_test("the PostgreSQL storage suite") else {
        return;
    };
    for (i, (name, case)) in CASES.iter().enumerate() {
        let url = pg.database(&format!("suite{i}")).unwrap();
        let s = Store::open(&url).await.unwrap();
        assert_eq!(s.backend(), Backend::Postgres);
        // A second instance starting on the same database migrates nothing twice.
        Store::open(&url).await.unwrap();
        eprintln!("postgres: {name}");
        case(s).await;
    }
}

#[tokio::test]
async fn a_database_of_the_old_migration_runner_is_bridged_once() {
    use sqlx::Row;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
    {
        // What the hand-written runner of earlier versions left: the tables, and schema_migrations.
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        sqlx::query(
            "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .execute(&pool)
        .await
        .unwrap();
        for (v, sql) in [
            (1, include_str!("../migrations/sqlite/0001_init.sql")),
            (2, include_str!("../migrations/sqlite/0002_id_token_alg.sql")),
        ] {
            for stmt in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                sqlx::query(sqlx::AssertSqlSafe(stmt.to_string()))
                    .execute(&pool)
                    .await
                    .unwrap();
            }
            sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, 0)")
                .bind(v)
                .execute(&pool)
                .await
                .unwrap();
        }
        sqlx::query(
            "INSERT INTO users (id, username, email_verified, created_at) VALUES ('u1', 'alice', 0, 1)",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }
    let s = Store::open(&url).await.unwrap();
    assert!(s.user("u1").await.unwrap().is_some(), "the data is kept");
    s.create_client(&client("c"), None).await.unwrap();
    assert!(
        s.client("c").await.unwrap().unwrap().resource_server,
        "later migrations applied"
    );
    drop(s);
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    let n: i64 = sqlx::query("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 15, "every migration recorded once");
    // And opening again changes nothing.
    Store::open(&url).await.unwrap();
}

/// `facegate db copy`: an SQLite database with a row in every kind of table, copied into
/// PostgreSQL, reads back the same through the store; a second run copies nothing again; a copy
/// cut short is finished by running it again; a target holding other data is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqlite_database_copies_into_postgres_verified_and_resumable() {
    let Some(pg) = facegate_store::testing::TempPostgres::for_test("the db copy test") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let src = Store::open(&format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("s.db").display()
    ))
    .await
    .unwrap();
    src.create_user(&user("u1", "alice"), Some("$argon2id$stub"))
        .await
        .unwrap();
    src.create_client(&client("c"), None).await.unwrap();
    let key = StoredKey {
        kid: "k1".into(),
        alg: "ES256".into(),
        pkcs8: (0..=255u8).collect(),
        created_at: 1,
        retired_at: None,
    };
    src.insert_key(&key).await.unwrap();
    let g = grant("g1", "c", Some("sid1"));
    src.create_grant(&g).await.unwrap();
    assert!(src.issue(None, &[refresh("r1", "g1", "c")]).await.unwrap());
    let embedding: Vec<f32> = (0..512).map(|i| (i as f32 * 0.37).sin() / 16.0).collect();
    let t = FaceTemplate {
        id: "t1".into(),
        user_id: "u1".into(),
        pack: "p".into(),
        embedding: embedding.clone(),
        quality: serde_json::json!({"yaw": 3}),
        created_at: 7,
    };
    src.add_template(&t).await.unwrap();
    src.record(
        Event::new(Kind::Login, Outcome::Ok)
            .user(Some("u1"))
            .detail("face"),
    )
    .await;
    CollectionStore::create_collection(&src, "staff", "p", 1)
        .await
        .unwrap();
    // Many rows in one table: several batches.
    for i in 0..1200 {
        src.record(Event::new(Kind::Login, Outcome::Failed).detail(format!("pwd {i}")))
            .await;
    }
    src.take_token("api:c", 1.0, 2, 5).await.unwrap();

    let url = pg.database("copy").unwrap();
    let dst = Store::open(&url).await.unwrap();
    let mut seen = std::collections::HashSet::new();
    let report = src
        .copy_into(&dst, |table, _, _| {
            seen.insert(table.to_string());
        })
        .await
        .unwrap();
    for r in &report {
        assert_eq!(r.source, r.target, "{r:?}");
    }
    let audit = report.iter().find(|r| r.table == "audit_events").unwrap();
    assert_eq!(audit.source, 1201);
    for table in [
        "users",
        "clients",
        "signing_keys",
        "grants",
        "tokens",
        "face_templates",
        "api_collections",
        "rate_buckets",
    ] {
        assert!(seen.contains(table), "{table} copied: {report:?}");
    }
    // Read back through the store on PostgreSQL: the same rows, bit for bit.
    assert_eq!(dst.templates_of("u1").await.unwrap(), vec![t.clone()]);
    let k = dst.keys().await.unwrap();
    assert_eq!(k.len(), 1);
    assert_eq!(k[0].pkcs8, key.pkcs8, "the signing key survives byte for byte");
    assert_eq!(dst.client("c").await.unwrap().unwrap(), client("c"));
    assert!(dst.user("u1").await.unwrap().is_some());
    assert_eq!(dst.grant("g1").await.unwrap().unwrap().amr, g.amr);

    // Run again: nothing is doubled, nothing inserted.
    let again = src.copy_into(&dst, |_, _, _| {}).await.unwrap();
    assert!(
        again.iter().all(|r| r.inserted == 0 && r.source == r.target),
        "{again:?}"
    );

    // A copy cut short (some rows of a table missing) is finished by running it again.
    let raw = sqlx::AnyPool::connect(&url).await.unwrap();
    sqlx::query("DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events ORDER BY id LIMIT 700)")
        .execute(&raw)
        .await
        .unwrap();
    let resumed = src.copy_into(&dst, |_, _, _| {}).await.unwrap();
    let audit = resumed.iter().find(|r| r.table == "audit_events").unwrap();
    assert_eq!((audit.inserted, audit.target), (700, 1201), "{audit:?}");

    // A target with rows the source does not have is refused, not merged.
    dst.create_user(&user("u9", "mallory"), None).await.unwrap();
    let e = src.copy_into(&dst, |_, _, _| {}).await.unwrap_err().to_string();
    assert!(e.contains("not from this database"), "{e}");
}
