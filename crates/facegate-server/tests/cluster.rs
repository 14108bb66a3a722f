//! Several facegate instances on one PostgreSQL database behind a round-robin proxy, on loopback:
//! what a site that outgrows one machine runs. The PostgreSQL server is started by the test
//! (`facegate_store::testing`); without its programs the test is skipped with a message, unless
//! `FACEGATE_REQUIRE_POSTGRES=1` (CI), which makes it fail.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;

/// A TCP proxy that sends each new connection to the next backend in turn; counts per backend.
async fn round_robin(backends: Vec<std::net::SocketAddr>) -> (std::net::SocketAddr, Arc<Vec<AtomicUsize>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counts = Arc::new(backends.iter().map(|_| AtomicUsize::new(0)).collect::<Vec<_>>());
    let c = counts.clone();
    tokio::spawn(async move {
        let mut next = 0usize;
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                return;
            };
            let i = next % backends.len();
            next += 1;
            c[i].fetch_add(1, Ordering::SeqCst);
            let target = backends[i];
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (addr, counts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_postgres_serve_one_login_between_them() {
    let Some(pg) = facegate_store::testing::TempPostgres::for_test("the cluster test") else {
        return;
    };
    let db = pg.database("facegate").unwrap();
    let la = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lb = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (aa, ab) = (la.local_addr().unwrap(), lb.local_addr().unwrap());
    let (proxy, counts) = round_robin(vec![aa, ab]).await;
    let issuer = format!("http://127.0.0.1:{}", proxy.port());
    // Both start at once on an empty database: the migrator's lock lets one migrate.
    let (a, _b) = tokio::join!(spawn_instance(la, &issuer, &db), spawn_instance(lb, &issuer, &db));

    // Each instance is up and ready, on PostgreSQL.
    for addr in [aa, ab] {
        let r = reqwest::get(format!("http://{addr}/healthz")).await.unwrap();
        assert_eq!(r.status(), 200);
        let r = reqwest::get(format!("http://{addr}/readyz")).await.unwrap();
        assert_eq!(r.status(), 200);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["database"], "postgres", "{v}");
    }

    a.add_user("alice").await;
    let redirect = "http://localhost:9/cb";
    let (client_id, secret) = a.confidential_client(redirect).await;
    // A browser that opens a new connection for every request: the proxy alternates instances, so
    // the authorization request, the login form, the consent and the token exchange each land on
    // whichever instance is next.
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let auth = format!(
        "{issuer}/authorize?response_type=code&client_id={client_id}&redirect_uri={redirect}&scope=openid%20profile&state=s1&nonce=n1&code_challenge=5pTqDXt92_jj-qBxRGu2THtS3gHvMSIQ_Z49Sl1ye3o&code_challenge_method=S256"
    );
    let back = sign_in(&browser, &a, &auth, "alice").await;
    let p = params(&back, false);
    assert_eq!(p.get("state").map(String::as_str), Some("s1"), "{back}");
    let code = p.get("code").expect("a code").clone();
    let token: serde_json::Value = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
        .post(format!("{issuer}/token"))
        .basic_auth(&client_id, Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
            ("code_verifier", "dBjftJeZ4CVP-mJ92K9ACoJ45Gs7JDrEyLrwZ1XC8Qk"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = token["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("tokens: {token}"))
        .to_string();
    assert!(token["id_token"].is_string(), "{token}");
    // The token works on both instances.
    for addr in [aa, ab] {
        let r = reqwest::Client::new()
            .get(format!("http://{addr}/userinfo"))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "userinfo on {addr}");
    }
    let served: Vec<usize> = counts.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    assert!(
        served.iter().all(|n| *n >= 2),
        "both instances took part: {served:?}"
    );
    // The code was used once, whichever instance is asked again.
    let again = reqwest::Client::new()
        .post(format!("http://{aa}/token"))
        .basic_auth(&client_id, Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
            ("code_verifier", "dBjftJeZ4CVP-mJ92K9ACoJ45Gs7JDrEyLrwZ1XC8Qk"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        again.status(),
        400,
        "a replayed code is refused on the other instance too"
    );

    // Guessing alice's password through the proxy: the guesses alternate instances, and the lock
    // that follows holds on both (each instance alone saw only half of them). A new browser: the
    // guesser has no session.
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let r = browser.get(&auth).send().await.unwrap();
    let login = location(&r);
    let login = if login.starts_with('/') {
        format!("{issuer}{login}")
    } else {
        login
    };
    let page = browser.get(&login).send().await.unwrap().text().await.unwrap();
    let (csrf, req) = (field(&page, "csrf"), field(&page, "req"));
    let before: Vec<usize> = counts.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let r = browser
            .post(format!("{issuer}/login"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("req", req.as_str()),
                ("username", "alice"),
                ("password", "wrong guess"),
            ])
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    let after: Vec<usize> = counts.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    assert!(
        before.iter().zip(&after).all(|(b, a)| a - b >= 2),
        "the guesses reached both instances: {before:?} -> {after:?}"
    );
    assert_eq!(&statuses[..4], &[401, 401, 401, 401], "{statuses:?}");
    assert_eq!(
        statuses[4], 429,
        "the fifth guess waits, whichever instance takes it: {statuses:?}"
    );
    // Asked directly, each instance holds the guesser back (the right password too, for now).
    for addr in [aa, ab] {
        let r = browser
            .post(format!("http://{addr}/login"))
            .header("origin", &issuer)
            .form(&[
                ("csrf", csrf.as_str()),
                ("req", req.as_str()),
                ("username", "alice"),
                ("password", PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 429, "instance {addr} holds the lock");
    }
}

/// A face as the face API service takes it, without the face engine (the cluster runs without models).
struct Fake(Vec<f32>);

impl facegate_core::face_api::ApiFaceView for Fake {
    fn embedding(&self) -> Option<&[f32]> {
        Some(&self.0)
    }
    fn bbox(&self) -> serde_json::Value {
        serde_json::json!({"left": 0, "top": 0, "width": 10, "height": 10})
    }
    fn quality(&self) -> serde_json::Value {
        serde_json::json!({})
    }
    fn issues(&self, _: facegate_core::face_api::QualityFilter) -> Vec<String> {
        vec![]
    }
}

fn unit(i: usize) -> Vec<f32> {
    let mut v = vec![0.0f32; 64];
    v[i] = 1.0;
    v
}

/// Polls `f` for up to `limit`; how long it took until true.
async fn within(limit: std::time::Duration, mut f: impl FnMut() -> bool) -> Option<std::time::Duration> {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if f() {
            return Some(start.elapsed());
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_face_indexed_on_one_instance_is_found_on_the_other_within_a_second() {
    let Some(pg) = facegate_store::testing::TempPostgres::for_test("the index sync test") else {
        return;
    };
    let db = pg.database("facegate").unwrap();
    let la = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lb = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = "http://127.0.0.1:9";
    let (a, b) = tokio::join!(spawn_instance(la, issuer, &db), spawn_instance(lb, issuer, &db));
    // Let both listeners start.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (fa, fb) = (&a.state.face_api, &b.state.face_api);
    fa.create_collection(&a.state.store, "staff", 1).await.unwrap();
    let out = fa
        .index_faces(
            &a.state.store,
            "staff",
            vec![Fake(unit(3)), Fake(unit(7))],
            facegate_core::face_api::IndexRequest {
                external_id: Some("jane"),
                max_faces: 1,
                filter: facegate_core::face_api::QualityFilter::None,
                import_sha256: None,
            },
            2,
        )
        .await
        .unwrap();
    let id = out.indexed[0].0.id.clone();
    let found = within(std::time::Duration::from_secs(1), || {
        fb.search("staff", &unit(3), 50.0, 5, None)
            .iter()
            .any(|m| m.face_id == id && m.external_id.as_deref() == Some("jane"))
    })
    .await;
    eprintln!("index sync delay: {found:?}");
    assert!(
        found.is_some(),
        "the face indexed on A is found on B within a second"
    );

    // Deleted through B: gone on A.
    fb.delete_faces(&b.state.store, "staff", std::slice::from_ref(&id))
        .await
        .unwrap();
    let gone = within(std::time::Duration::from_secs(1), || {
        fa.search("staff", &unit(3), 50.0, 5, None).is_empty()
    })
    .await;
    assert!(
        gone.is_some(),
        "the face deleted on B is gone on A within a second"
    );

    // A collection dropped on A is gone on B.
    fa.delete_collection(&a.state.store, "staff").await.unwrap();
    let dropped = within(std::time::Duration::from_secs(1), || {
        fb.index_info("staff").is_null()
    })
    .await;
    assert!(dropped.is_some(), "the collection dropped on A is gone on B");
}
