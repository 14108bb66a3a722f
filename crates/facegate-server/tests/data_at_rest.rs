//! Encryption at rest, end to end: a stolen data folder's database yields no face embedding, no
//! signing key and no pairwise salt; the key file is made on first start with mode 0600; a wrong or
//! missing data key stops `facegate serve` with a message that says so; `facegate keys
//! rotate-data-key` re-encrypts and the site keeps its keys.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::face::{enrol_from_account_page, face_app};
use facegate_server::server::face::Liveness;

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// The database's files (main file, WAL), concatenated.
fn database_files(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("facegate.db")
        {
            all.extend(std::fs::read(p).unwrap());
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_file_holds_no_embedding_private_key_or_salt_in_clear() {
    // The default data key source: a key file in the data folder, made on first start.
    let Some(app) = face_app(Liveness::Off, |s| {
        s.data_key = facegate_server::server::data_key::DataKeySource::File(s.data_dir.join("data.key"));
    })
    .await
    else {
        return;
    };
    let uid = app.add_user("alice").await;
    enrol_from_account_page(&app, "alice", &["deepface/person_img1/img1.jpg"]).await;
    let templates = app.state.store.faces_of(&uid).await.unwrap();
    assert_eq!(templates.len(), 1);
    let keys = app.state.store.keys().await.unwrap();
    assert!(keys.len() >= 3, "a key per algorithm");
    let dir = app.state.settings.data_dir.clone();

    let key_file = dir.join("data.key");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the key file is the owner's only");

    let file = database_files(&dir);
    assert!(file.len() > 10_000, "the database was read");
    let embedding = facegate_core::face::to_bytes(&templates[0].embedding);
    for window in embedding.chunks(32) {
        assert!(!contains(&file, window), "part of the face embedding is in clear");
    }
    for k in &keys {
        // Any 32-byte run of the PKCS#8 document past its (public, fixed) header.
        for window in k.pkcs8[32..].chunks(32).filter(|w| w.len() == 32) {
            assert!(
                !contains(&file, window),
                "part of the {} private key is in clear",
                k.alg
            );
        }
    }
    assert!(
        !contains(&file, app.state.pairwise_salt.expose().as_bytes()),
        "the pairwise salt is in clear"
    );
    let key_hex = std::fs::read_to_string(&key_file).unwrap();
    assert!(
        !contains(&file, key_hex.trim().as_bytes()),
        "the data key is not in the database"
    );
}

fn serve(dir: &Path, env: &[(&str, &str)]) -> (std::process::Child, std::net::SocketAddr) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_facegate"));
    cmd.arg("serve")
        .env("FACEGATE_LISTEN", addr.to_string())
        .env("FACEGATE_ISSUER", format!("http://127.0.0.1:{port}"))
        .env("FACEGATE_DATA", dir)
        .env("FACEGATE_FACE", "off")
        .env("FACEGATE_LOG", "warn")
        .env_remove("FACEGATE_DATA_KEY")
        .env_remove("FACEGATE_DATA_KEY_FILE")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    (cmd.spawn().unwrap(), addr)
}

/// Starts `facegate serve` until it answers /jwks.json; returns that document.
async fn jwks_of(dir: &Path, env: &[(&str, &str)]) -> serde_json::Value {
    let (mut child, addr) = serve(dir, env);
    for _ in 0..300 {
        if let Ok(r) = reqwest::get(format!("http://{addr}/jwks.json")).await
            && r.status() == 200
        {
            let v = r.json().await.unwrap();
            child.kill().unwrap();
            child.wait().unwrap();
            return v;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "facegate serve exited ({status}): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("facegate serve did not answer");
}

/// Starts `facegate serve` expecting it to refuse: returns its error output.
fn refused(dir: &Path, env: &[(&str, &str)]) -> String {
    let (mut child, _) = serve(dir, env);
    for _ in 0..600 {
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            assert!(!out.status.success());
            return String::from_utf8_lossy(&out.stderr).into_owned();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    panic!("facegate serve started with a data key that does not open the database");
}

const KEY_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const KEY_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_missing_data_key_is_a_clear_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    let jwks = jwks_of(dir.path(), &[("FACEGATE_DATA_KEY", KEY_A)]).await;
    assert!(jwks["keys"].as_array().unwrap().len() >= 3);

    let err = refused(dir.path(), &[("FACEGATE_DATA_KEY", KEY_B)]);
    assert!(err.contains("wrong data key"), "{err}");
    assert!(
        !err.contains(KEY_A) && !err.contains(KEY_B),
        "no key in the message: {err}"
    );
    // No key configured: the key file that a first start would make does not open this database,
    // and is not left behind.
    let err = refused(dir.path(), &[]);
    assert!(
        err.contains("wrong data key") && err.contains("data.key did not exist"),
        "{err}"
    );
    assert!(!dir.path().join("data.key").exists());
    let err = refused(dir.path(), &[("FACEGATE_DATA_KEY", "not hex")]);
    assert!(err.contains("FACEGATE_DATA_KEY"), "{err}");
    // The right key still works, with the same signing keys.
    assert_eq!(jwks_of(dir.path(), &[("FACEGATE_DATA_KEY", KEY_A)]).await, jwks);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_data_key_re_encrypts_and_the_old_key_file_no_longer_opens() {
    let dir = tempfile::tempdir().unwrap();
    let jwks = jwks_of(dir.path(), &[]).await;
    let key_file = dir.path().join("data.key");
    let old_key = std::fs::read_to_string(&key_file).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = refused(dir.path(), &[]);
    assert!(
        err.contains("chmod 600"),
        "a key file others can read is refused: {err}"
    );
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();

    let rotate = |env: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_facegate"));
        cmd.args(["keys", "rotate-data-key"])
            .env("FACEGATE_DATA", dir.path())
            .env_remove("FACEGATE_DATA_KEY")
            .env_remove("FACEGATE_DATA_KEY_FILE");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "rotate-data-key failed: {text}");
        text
    };
    let out = rotate(&[]);
    assert!(out.contains("data key rotated"), "{out}");
    // The signing keys and the salt were re-encrypted (the salt is one value, a key per algorithm).
    let n: u64 = out
        .split(", ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a count in {out}"));
    assert!(n >= 4, "{out}");
    let new_key = std::fs::read_to_string(&key_file).unwrap();
    assert_ne!(new_key, old_key);
    assert!(!dir.path().join("data.key.next").exists());
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        jwks_of(dir.path(), &[]).await,
        jwks,
        "the same signing keys after rotation"
    );
    let err = refused(dir.path(), &[("FACEGATE_DATA_KEY", old_key.trim())]);
    assert!(err.contains("wrong data key"), "the old key is retired: {err}");

    // An interrupted rotation (its new key file written, nothing re-encrypted yet) resumes.
    let next = dir.path().join("data.key.next");
    std::fs::write(&next, format!("{KEY_B}\n")).unwrap();
    std::fs::set_permissions(&next, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = rotate(&[]);
    assert!(out.contains("data key rotated"), "{out}");
    assert_eq!(std::fs::read_to_string(&key_file).unwrap().trim(), KEY_B);
    assert_eq!(jwks_of(dir.path(), &[("FACEGATE_DATA_KEY", KEY_B)]).await, jwks);

    // With the key in the environment the new one is FACEGATE_DATA_KEY_NEW.
    let out = rotate(&[("FACEGATE_DATA_KEY", KEY_B), ("FACEGATE_DATA_KEY_NEW", KEY_A)]);
    assert!(
        out.contains("FACEGATE_DATA_KEY_NEW"),
        "the next step is named: {out}"
    );
    assert_eq!(jwks_of(dir.path(), &[("FACEGATE_DATA_KEY", KEY_A)]).await, jwks);
}
