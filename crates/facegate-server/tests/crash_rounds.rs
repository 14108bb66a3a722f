//! Crash safety: 20 rounds of `kill -9` at a random moment while faces are indexed (the /v1 API),
//! tokens issued (client_credentials) and accounts created (`facegate user add`, itself killed
//! too), on SQLite and on PostgreSQL. After each kill: the database's integrity check passes, every
//! sealed value still opens with the data key, and every write that was acknowledged (a 200 with
//! face ids, a token, a command that exited 0) is there after the restart.
//!
//! `FACEGATE_CRASH_ROUNDS` sets the number of rounds (default 20); the random moments come from
//! `FACEGATE_CRASH_SEED` (printed, so a failure can be replayed).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine;
use facegate_store::{DataKey, DataKeys, Store};
use serde_json::{Value, json};

const KEY: &str = "c4a5c4a5c4a5c4a5c4a5c4a5c4a5c4a5c4a5c4a5c4a5c4a5c4a5c4a5c4a5c4a5";
const PHOTOS: &[&str] = &[
    "deepface/person_img1/img1.jpg",
    "deepface/person_img3/img3.jpg",
    "deepface/person_img8/img8.jpg",
];

fn rounds() -> usize {
    std::env::var("FACEGATE_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

/// xorshift64*: the test's random moments, reproducible from the printed seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

struct Site {
    dir: PathBuf,
    url: String,
    models: bool,
}

impl Site {
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_facegate"));
        c.args(args)
            .env("FACEGATE_DATA", &self.dir)
            .env("FACEGATE_DATABASE_URL", &self.url)
            .env("FACEGATE_DATA_KEY", KEY)
            .env_remove("FACEGATE_DATA_KEY_FILE")
            .env("FACEGATE_LOG", "warn")
            .env("FACEGATE_FACE", if self.models { "on" } else { "off" })
            .kill_on_drop(true)
            .stdout(std::process::Stdio::null());
        c
    }

    fn serve(&self, port: u16) -> tokio::process::Child {
        self.command(&["serve"])
            .env("FACEGATE_LISTEN", format!("127.0.0.1:{port}"))
            .env("FACEGATE_ISSUER", format!("http://127.0.0.1:{port}"))
            .env("FACEGATE_LIVENESS", "off")
            .spawn()
            .unwrap()
    }

    async fn store(&self) -> Store {
        let keys = DataKeys::new(DataKey::from_hex(KEY).unwrap(), vec![]);
        Store::open_with_keys(&self.url, Some(keys)).await.unwrap()
    }
}

async fn wait_ready(child: &mut tokio::process::Child, base: &str) {
    for _ in 0..600 {
        if let Ok(r) = reqwest::get(format!("{base}/readyz")).await
            && r.status() == 200
        {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("facegate serve exited at start: {status}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("facegate serve did not become ready");
}

fn testdata() -> PathBuf {
    std::env::var_os("FACEGATE_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata"))
}

fn models_installed() -> bool {
    let dir = std::env::var_os("FACEGATE_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(facegate_vision::default_models_dir);
    let ok = dir.join(facegate_vision::DEFAULT_PACK).exists() && testdata().join("faces").exists();
    if !ok {
        if std::env::var("FACEGATE_REQUIRE_MODELS").as_deref() == Ok("1") {
            panic!(
                "the crash rounds index faces: the default model pack is required (FACEGATE_REQUIRE_MODELS=1)"
            );
        }
        eprintln!("SKIPPED (faces part): default model pack or test photos missing");
    }
    ok
}

/// What the clients were told was stored.
#[derive(Default)]
struct Acked {
    tokens: Vec<String>,
    faces: Vec<String>,
    users: Vec<String>,
}

async fn crash_rounds(url: String, dir: &Path, label: &str) {
    let site = Site {
        dir: dir.to_path_buf(),
        url,
        models: models_installed(),
    };
    let seed = std::env::var("FACEGATE_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("{label}: crash rounds with FACEGATE_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");

    // The first start makes the schema and keys; then a client for the API and a collection.
    let mut server = site.serve(port);
    wait_ready(&mut server, &base).await;
    let store = site.store().await;
    let (client, secret) = facegate_server::server::provider::register_client(
        &store,
        facegate_oidc::client::ClientMetadata {
            name: Some("crash".into()),
            grant_types: Some(vec!["client_credentials".into()]),
            ..Default::default()
        },
        None,
    )
    .await
    .unwrap();
    let (id, secret) = (client.client_id, secret.unwrap());
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .unwrap();
    let token = {
        let (http, base, id, secret) = (http.clone(), base.clone(), id.clone(), secret.clone());
        move |scope: &'static str| {
            let (http, base, id, secret) = (http.clone(), base.clone(), id.clone(), secret.clone());
            async move {
                let mut form = vec![("grant_type", "client_credentials")];
                if !scope.is_empty() {
                    form.push(("scope", scope));
                }
                let r = http
                    .post(format!("{base}/token"))
                    .basic_auth(&id, Some(&secret))
                    .form(&form)
                    .send()
                    .await
                    .ok()?;
                if r.status() != 200 {
                    return None;
                }
                let v: Value = r.json().await.ok()?;
                v["access_token"].as_str().map(String::from)
            }
        }
    };
    if site.models {
        let t = token("faces:read faces:write").await.unwrap();
        let r = http
            .post(format!("{base}/v1/collections"))
            .bearer_auth(&t)
            .json(&json!({"collectionId": "crash"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let photos: Arc<Vec<String>> = Arc::new(if site.models {
        PHOTOS
            .iter()
            .map(|p| {
                base64::engine::general_purpose::STANDARD
                    .encode(std::fs::read(testdata().join("faces").join(p)).unwrap())
            })
            .collect()
    } else {
        vec![]
    });

    let mut all = Acked::default();
    let (mut total_tokens, mut total_faces, mut total_users) = (0, 0, 0);
    for round in 0..rounds() {
        if round > 0 {
            server = site.serve(port);
            wait_ready(&mut server, &base).await;
        }
        // The previous round's tokens, checked by the restarted server itself.
        for t in std::mem::take(&mut all.tokens) {
            let v: Value = http
                .post(format!("{base}/introspect"))
                .basic_auth(&id, Some(&secret))
                .form(&[("token", t.as_str())])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(
                v["active"], true,
                "{label} round {round}: an acknowledged token was lost"
            );
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut load = tokio::task::JoinSet::new();
        for _ in 0..3 {
            let (stop, token) = (stop.clone(), token.clone());
            load.spawn(async move {
                let mut acked = Acked::default();
                while !stop.load(Ordering::SeqCst) {
                    if let Some(t) = token("").await {
                        acked.tokens.push(t);
                    }
                }
                acked
            });
        }
        if site.models {
            let (stop, http, base, photos) = (stop.clone(), http.clone(), base.clone(), photos.clone());
            let t = token("faces:read faces:write").await.unwrap();
            load.spawn(async move {
                let mut acked = Acked::default();
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    i += 1;
                    let r = http
                        .post(format!("{base}/v1/collections/crash/faces"))
                        .bearer_auth(&t)
                        .json(&json!({"image": photos[i % photos.len()], "externalId": format!("p{i}")}))
                        .send()
                        .await;
                    if let Ok(r) = r
                        && r.status() == 200
                        && let Ok(v) = r.json::<Value>().await
                    {
                        for rec in v["faceRecords"].as_array().into_iter().flatten() {
                            acked.faces.push(rec["faceId"].as_str().unwrap().to_string());
                        }
                    }
                }
                acked
            });
        }
        // Accounts, by the operator's command; the running one is killed with the server.
        let running: Arc<std::sync::Mutex<Option<tokio::process::Child>>> = Default::default();
        {
            let (stop, running) = (stop.clone(), running.clone());
            let cmd = |name: &str| {
                let mut c = site.command(&["user", "add", "--username", name, "--password-stdin"]);
                c.stdin(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::null());
                c
            };
            let mut n = 0;
            let mut commands = Vec::new();
            for _ in 0..200 {
                n += 1;
                let name = format!("r{round}u{n}");
                commands.push((name.clone(), cmd(&name)));
            }
            load.spawn(async move {
                let mut acked = Acked::default();
                for (name, mut c) in commands {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(mut child) = c.spawn() else { break };
                    if let Some(mut stdin) = child.stdin.take() {
                        use tokio::io::AsyncWriteExt;
                        let _ = stdin.write_all(b"correct horse battery staple\n").await;
                    }
                    *running.lock().unwrap() = Some(child);
                    // Wait for it without holding the lock (the killer takes it).
                    let status = loop {
                        let done = running.lock().unwrap().as_mut().map(|c| c.try_wait());
                        match done {
                            Some(Ok(Some(s))) => break Some(s),
                            Some(Ok(None)) => {}
                            _ => break None,
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    };
                    if status.is_some_and(|s| s.success()) {
                        acked.users.push(name);
                    }
                }
                acked
            });
        }
        let moment = rng.between(300, 2500);
        tokio::time::sleep(std::time::Duration::from_millis(moment)).await;
        server.start_kill().unwrap(); // SIGKILL
        if let Some(c) = running.lock().unwrap().as_mut() {
            let _ = c.start_kill();
        }
        server.wait().await.unwrap();
        stop.store(true, Ordering::SeqCst);
        let mut acked = Acked::default();
        while let Some(r) = load.join_next().await {
            let a = r.unwrap();
            acked.tokens.extend(a.tokens);
            acked.faces.extend(a.faces);
            acked.users.extend(a.users);
        }
        if let Some(mut c) = running.lock().unwrap().take() {
            let _ = c.start_kill();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;

        // The database after the kill, before any restart.
        integrity(&site, label, round).await;
        let store = site.store().await;
        for f in &acked.faces {
            assert!(
                store.api_face("crash", f).await.unwrap().is_some(),
                "{label} round {round}: acknowledged face {f} was lost"
            );
        }
        for u in &acked.users {
            assert!(
                store.user_with_password(u).await.unwrap().is_some(),
                "{label} round {round}: account {u} (its command exited 0) was lost"
            );
        }
        // Every sealed value still opens (a torn write would not).
        assert!(store.all_api_faces().await.unwrap().len() >= acked.faces.len());
        assert!(store.keys().await.unwrap().len() >= 3);
        total_tokens += acked.tokens.len();
        total_faces += acked.faces.len();
        total_users += acked.users.len();
        eprintln!(
            "{label} round {round}: kill -9 after {moment} ms; acknowledged {} tokens, {} faces, {} accounts",
            acked.tokens.len(),
            acked.faces.len(),
            acked.users.len()
        );
        all.tokens = acked.tokens;
    }
    // The last round's tokens, on one more start.
    let mut server = site.serve(port);
    wait_ready(&mut server, &base).await;
    for t in &all.tokens {
        let v: Value = http
            .post(format!("{base}/introspect"))
            .basic_auth(&id, Some(&secret))
            .form(&[("token", t.as_str())])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            v["active"], true,
            "{label} last round: an acknowledged token was lost"
        );
    }
    server.start_kill().unwrap();
    let _ = server.wait().await;
    eprintln!(
        "{label}: {} rounds, {total_tokens} tokens, {total_faces} faces, {total_users} accounts acknowledged, none lost",
        rounds()
    );
    assert!(total_tokens > 0, "the load issued tokens");
    assert!(total_users > 0, "the load created accounts");
    assert!(!site.models || total_faces > 0, "the load indexed faces");
}

async fn integrity(site: &Site, label: &str, round: usize) {
    let problems = site.store().await.integrity_check().await.unwrap();
    assert!(
        problems.is_empty(),
        "{label} round {round}: integrity check: {problems:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_rounds_lose_no_acknowledged_write_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("facegate.db").display());
    crash_rounds(url, dir.path(), "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_rounds_lose_no_acknowledged_write_on_postgres() {
    let Some(pg) = facegate_store::testing::TempPostgres::for_test("the PostgreSQL crash rounds") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    crash_rounds(pg.database("crash").unwrap(), dir.path(), "postgres").await;
}
