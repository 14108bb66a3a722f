//! Several facegate instances on one PostgreSQL database behind a round-robin proxy, on loopback:
//! what a site that outgrows one machine runs. The PostgreSQL server is started by the test
//! (`facegate_store::testing`); without its programs the test is skipped with a message, unless
//! `FACEGATE_REQUIRE_POSTGRES=1` (CI), which makes it fail.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;

/// The load balancer in front of the instances: Debian's nginx running `deploy/nginx-facegate.conf`
/// (the file docs/deploy.md gives operators) when nginx is installed — CI installs it and sets
/// `FACEGATE_REQUIRE_NGINX=1` — else a round-robin TCP proxy in this file.
enum Proxy {
    Nginx {
        child: std::process::Child,
        dir: tempfile::TempDir,
        backends: Vec<std::net::SocketAddr>,
    },
    Tcp(Arc<Vec<AtomicUsize>>),
}

impl Proxy {
    async fn start(backends: Vec<std::net::SocketAddr>) -> (std::net::SocketAddr, Proxy) {
        let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists());
        match nginx {
            Some(bin) => Proxy::nginx(bin, backends).await,
            None if std::env::var("FACEGATE_REQUIRE_NGINX").as_deref() == Ok("1") => {
                panic!(
                    "nginx is required here (FACEGATE_REQUIRE_NGINX=1) but not installed (apt-get install nginx-light)"
                )
            }
            None => {
                eprintln!("nginx is not installed: using the test's own round-robin proxy");
                let (addr, counts) = round_robin(backends).await;
                (addr, Proxy::Tcp(counts))
            }
        }
    }

    /// nginx with the repository's site config, its upstream servers and port replaced.
    async fn nginx(bin: &str, backends: Vec<std::net::SocketAddr>) -> (std::net::SocketAddr, Proxy) {
        let site = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/nginx-facegate.conf"
        ))
        .unwrap();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut servers = backends.iter();
        let site: String = site
            .lines()
            .filter_map(|line| {
                let t = line.trim_start();
                if t.starts_with("server 10.0.0.") {
                    let addr = servers.next()?;
                    Some(format!("    server {addr} max_fails=1 fail_timeout=5s;"))
                } else if t.starts_with("listen ") {
                    Some(format!("    listen 127.0.0.1:{port};"))
                } else {
                    Some(line.to_string())
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            servers.next().is_none(),
            "the site config names fewer upstream servers than the test runs"
        );
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        std::fs::write(dir.path().join("facegate.conf"), site).unwrap();
        let conf = format!(
            "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{ worker_connections 512; }}\n\
             http {{\n  log_format upstream '$upstream_addr';\n  access_log {d}/access.log upstream;\n\
               client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n\
               uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  include {d}/facegate.conf;\n}}\n"
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        #[allow(clippy::zombie_processes)] // waited for in Drop, or killed with the test on panic
        let child = std::process::Command::new(bin)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .spawn()
            .unwrap();
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return (addr, Proxy::Nginx { child, dir, backends });
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
        panic!("nginx did not start: {log}");
    }

    /// Requests (nginx) or connections (TCP proxy) each backend took so far.
    fn counts(&self) -> Vec<usize> {
        match self {
            Proxy::Tcp(c) => c.iter().map(|c| c.load(Ordering::SeqCst)).collect(),
            Proxy::Nginx { dir, backends, .. } => {
                let log = std::fs::read_to_string(dir.path().join("access.log")).unwrap_or_default();
                backends
                    .iter()
                    .map(|b| {
                        let b = b.to_string();
                        // With a retry the line lists every upstream tried; the last one answered.
                        log.lines()
                            .filter(|l| l.rsplit(", ").next().is_some_and(|last| last.trim() == b))
                            .count()
                    })
                    .collect()
            }
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Proxy::Nginx { child, .. } = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A TCP proxy that sends each new connection to the next backend in turn (or, when that one
/// refuses, the one after: a dead instance is skipped); counts per backend.
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
            let first = next % backends.len();
            next += 1;
            let (backends, c) = (backends.clone(), c.clone());
            tokio::spawn(async move {
                for k in 0..backends.len() {
                    let i = (first + k) % backends.len();
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(backends[i]).await {
                        c[i].fetch_add(1, Ordering::SeqCst);
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        return;
                    }
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
    let (proxy, balancer) = Proxy::start(vec![aa, ab]).await;
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
    let served = balancer.counts();
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
    let before = balancer.counts();
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
    let after = balancer.counts();
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

/// Starts two instances with the same settings on a fresh database behind the load balancer.
async fn cluster(
    pg: &facegate_store::testing::TempPostgres,
    name: &str,
    adjust: impl Fn(&mut facegate_server::server::Settings) + Clone,
) -> (TestApp, TestApp, String, Proxy, [std::net::SocketAddr; 2]) {
    let db = pg.database(name).unwrap();
    let la = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lb = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (aa, ab) = (la.local_addr().unwrap(), lb.local_addr().unwrap());
    let (proxy, balancer) = Proxy::start(vec![aa, ab]).await;
    let issuer = format!("http://127.0.0.1:{}", proxy.port());
    let (a, b) = tokio::join!(
        spawn_instance_with(la, &issuer, &db, adjust.clone()),
        spawn_instance_with(lb, &issuer, &db, adjust)
    );
    (a, b, issuer, balancer, [aa, ab])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_api_rate_limit_and_an_admin_session_hold_across_instances() {
    let Some(pg) = facegate_store::testing::TempPostgres::for_test("the cluster rate limit test") else {
        return;
    };
    let (a, _b, issuer, balancer, [aa, ab]) = cluster(&pg, "limits", |s| {
        s.api.rate_per_sec = 0.2;
        s.api.burst = 3;
        s.admin_token = Some(facegate_server::server::settings::Secret::new(
            "admin-token-0123456789abcdef",
        ));
    })
    .await;
    let (_, token) = client_token(&issuer, &a.state, "faces:read").await;
    // A new connection per request: the proxy spreads them over both instances. Three in the
    // burst, then the client waits — each instance alone would have let three through.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let before = balancer.counts();
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let r = http
            .get(format!("{issuer}/v1/collections"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    let after = balancer.counts();
    assert!(
        before.iter().zip(&after).all(|(b, a)| a - b >= 2),
        "the requests reached both instances: {before:?} -> {after:?}"
    );
    assert_eq!(
        statuses,
        [200, 200, 200, 429, 429, 429],
        "one bucket for the client on both instances"
    );
    for addr in [aa, ab] {
        let r = http
            .get(format!("http://{addr}/v1/collections"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 429, "instance {addr} sees the empty bucket");
        assert!(r.headers().contains_key("retry-after"));
    }

    // The admin page: signed in through instance A, the session works on instance B.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = browser
        .post(format!("http://{aa}/admin/login"))
        .form(&[("token", "admin-token-0123456789abcdef")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "signed in on A");
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("fg_admin="))
        .map(|c| c.split(';').next().unwrap().to_string())
        .expect("an admin session cookie");
    let page = browser
        .get(format!("http://{ab}/admin"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("/admin/logout"),
        "B knows the session A opened:\n{page}"
    );
    // Signed out through B: A no longer takes the cookie.
    let csrf = field(&page, "csrf");
    let r = browser
        .post(format!("http://{ab}/admin/logout"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let page = browser
        .get(format!("http://{aa}/admin"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Admin token"),
        "A asks for the token again:\n{page}"
    );
}

/// A `facegate serve` process (the release or debug binary of this build) on `db`.
fn serve_process(
    db: &str,
    issuer: &str,
    dir: &std::path::Path,
) -> (std::process::Child, std::net::SocketAddr) {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_facegate"))
        .arg("serve")
        .env("FACEGATE_DATABASE_URL", db)
        .env("FACEGATE_LISTEN", addr.to_string())
        .env("FACEGATE_ISSUER", issuer)
        .env("FACEGATE_DATA", dir)
        .env("FACEGATE_DATA_KEY", common::SHARED_DATA_KEY)
        .env("FACEGATE_FACE", "off")
        .env("FACEGATE_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    (child, addr)
}

async fn wait_ready(addr: std::net::SocketAddr) {
    for _ in 0..200 {
        if let Ok(r) = reqwest::get(format!("http://{addr}/readyz")).await
            && r.status() == 200
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("instance {addr} did not become ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_of_one_instance_under_load_loses_no_acknowledged_token() {
    let Some(pg) = facegate_store::testing::TempPostgres::for_test("the kill -9 cluster test") else {
        return;
    };
    let db = pg.database("kill9").unwrap();
    let (da, db_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // The proxy's port is the issuer: pick the backends first, then the proxy, then start them.
    let (mut a, aa) = serve_process(&db, "http://127.0.0.1:9", da.path());
    wait_ready(aa).await; // A migrates the empty database alone
    let (mut b, ab) = serve_process(&db, "http://127.0.0.1:9", db_dir.path());
    wait_ready(ab).await;
    let (proxy, balancer) = Proxy::start(vec![aa, ab]).await;
    let store = facegate_store::Store::open(&db).await.unwrap();
    let (client, secret) = facegate_server::server::provider::register_client(
        &store,
        facegate_oidc::client::ClientMetadata {
            name: Some("load".into()),
            grant_types: Some(vec!["client_credentials".into()]),
            ..Default::default()
        },
        None,
    )
    .await
    .unwrap();
    let (id, secret) = (client.client_id, secret.unwrap());

    // Eight callers asking for tokens through the proxy; every answered token is kept.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let killed_at = Arc::new(std::sync::Mutex::new(None::<std::time::Instant>));
    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (stop, id, secret, killed_at) = (stop.clone(), id.clone(), secret.clone(), killed_at.clone());
        callers.spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(5))
                .build()
                .unwrap();
            let (mut tokens, mut errors, mut after_kill_ok) = (Vec::new(), 0usize, 0usize);
            while !stop.load(Ordering::SeqCst) {
                let r = http
                    .post(format!("http://{proxy}/token"))
                    .basic_auth(&id, Some(&secret))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 200 => {
                        let v: serde_json::Value = r.json().await.unwrap();
                        tokens.push(v["access_token"].as_str().unwrap().to_string());
                        let k = *killed_at.lock().unwrap();
                        if k.is_some_and(|k| k.elapsed() > std::time::Duration::from_millis(500)) {
                            after_kill_ok += 1;
                        }
                    }
                    _ => errors += 1,
                }
            }
            (tokens, errors, after_kill_ok)
        });
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    a.kill().unwrap(); // SIGKILL: no shutdown, no flush
    *killed_at.lock().unwrap() = Some(std::time::Instant::now());
    a.wait().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2000)).await;
    stop.store(true, Ordering::SeqCst);
    let (mut tokens, mut errors, mut after_kill) = (Vec::new(), 0, 0);
    while let Some(r) = callers.join_next().await {
        let (t, e, k) = r.unwrap();
        tokens.extend(t);
        errors += e;
        after_kill += k;
    }
    let served = balancer.counts();
    eprintln!(
        "kill -9 under load: {} tokens acknowledged, {errors} failed requests (around the kill), {after_kill} answered after it; per instance {served:?}",
        tokens.len()
    );
    assert!(
        served[0] > 0 && served[1] > 0,
        "both instances served before the kill: {served:?}"
    );
    assert!(
        after_kill >= 8,
        "the other instance kept answering after the kill ({after_kill})"
    );
    // Every token an instance acknowledged is in the database: active on the survivor.
    let http = reqwest::Client::new();
    for t in &tokens {
        let v: serde_json::Value = http
            .post(format!("http://{ab}/introspect"))
            .basic_auth(&id, Some(&secret))
            .form(&[("token", t.as_str())])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["active"], true, "an acknowledged token was lost: {v}");
    }
    let _ = b.kill();
    let _ = b.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_assertion_is_accepted_once_across_instances() {
    use facegate_oidc::keys::{SigningAlg, SigningKey, generate};
    let Some(pg) = facegate_store::testing::TempPostgres::for_test("the cluster jti test") else {
        return;
    };
    let (a, _b, issuer, _balancer, [aa, ab]) = cluster(&pg, "jti", |_| {}).await;
    let key = SigningKey::from_pkcs8(SigningAlg::ES256, &generate(SigningAlg::ES256).unwrap()).unwrap();
    let (id, _) = a
        .add_client(facegate_oidc::client::ClientMetadata {
            grant_types: Some(vec!["client_credentials".into()]),
            token_endpoint_auth_method: Some("private_key_jwt".into()),
            jwks: Some(serde_json::json!({"keys": [key.public_jwk()]})),
            ..Default::default()
        })
        .await;
    let now = facegate_server::server::now();
    let assertion = key
        .sign(
            &serde_json::json!({"iss": id, "sub": id, "aud": format!("{issuer}/token"), "exp": now + 60, "iat": now, "jti": "j-1"}),
            None,
        )
        .unwrap();
    let form = [
        ("grant_type", "client_credentials"),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", assertion.as_str()),
    ];
    let http = reqwest::Client::new();
    let first = http
        .post(format!("http://{aa}/token"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200, "the assertion is good on A");
    let replay = http
        .post(format!("http://{ab}/token"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        replay.status(),
        401,
        "the same assertion replayed to B is refused"
    );
}
