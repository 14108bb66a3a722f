//! Encryption at rest (crypt.rs), as an attacker holding the database file and as an operator
//! rotating the data key: on SQLite (the file read byte by byte) and on PostgreSQL (the column
//! read with SQL, as a dump would show it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use facegate_core::face::FaceTemplate;
use facegate_store::{ApiFace, DataKey, DataKeys, Store, StoreError, StoredKey};
use sqlx::Row;

fn key(n: u8) -> DataKey {
    DataKey::from_bytes(&[n; 32]).unwrap()
}

fn ring(n: u8) -> Option<DataKeys> {
    Some(DataKeys::new(key(n), vec![]))
}

fn embedding(seed: f32) -> Vec<f32> {
    (0..512).map(|i| ((i as f32) * 0.37 + seed).sin()).collect()
}

fn bytes(e: &[f32]) -> Vec<u8> {
    facegate_core::face::to_bytes(e)
}

async fn user(s: &Store, id: &str) {
    s.create_user(
        &facegate_core::User {
            id: id.into(),
            username: facegate_core::Username::parse(&format!("user{id}")).unwrap(),
            email: None,
            email_verified: false,
            name: None,
            created_at: 1,
        },
        None,
    )
    .await
    .unwrap();
}

fn template(id: &str, user: &str, e: Vec<f32>) -> FaceTemplate {
    FaceTemplate {
        id: id.into(),
        user_id: user.into(),
        pack: "p".into(),
        embedding: e,
        quality: serde_json::json!({}),
        created_at: 1,
    }
}

fn api_face(id: &str, e: Vec<f32>) -> ApiFace {
    ApiFace {
        id: id.into(),
        collection_id: "c".into(),
        external_id: None,
        pack: "p".into(),
        embedding: e,
        bbox: serde_json::json!({}),
        quality: serde_json::json!({}),
        created_at: 1,
    }
}

const PKCS8: &[u8] = b"-----not really a key but secret private key bytes 0123456789-----";
const SALT: &str = "pairwise-salt-that-must-not-leak-0123456789";

/// Stores one of each sealed thing; returns the plaintexts an attacker would look for.
async fn fill(s: &Store) -> Vec<Vec<u8>> {
    user(s, "u1").await;
    let (e1, e2) = (embedding(1.0), embedding(2.0));
    s.add_face(&template("t1", "u1", e1.clone())).await.unwrap();
    s.create_collection("c", "p", 1).await.unwrap();
    s.add_api_faces(&[api_face("a1", e2.clone())]).await.unwrap();
    s.insert_key(&StoredKey {
        kid: "k1".into(),
        alg: "RS256".into(),
        pkcs8: PKCS8.to_vec(),
        created_at: 1,
        retired_at: None,
    })
    .await
    .unwrap();
    s.setting_or_insert("pairwise_salt", SALT).await.unwrap();
    s.save_check(
        "live1",
        1,
        b"{\"frontal\":[0.25,0.5,\"liveness-state-secret\"]}",
        i64::MAX,
    )
    .await
    .unwrap();
    // A run of the embedding long enough not to occur by chance (32 bytes).
    vec![
        bytes(&e1)[64..96].to_vec(),
        bytes(&e2)[64..96].to_vec(),
        PKCS8[10..40].to_vec(),
        SALT.as_bytes().to_vec(),
        b"liveness-state-secret".to_vec(),
    ]
}

async fn read_back(s: &Store) {
    assert_eq!(s.faces_of("u1").await.unwrap()[0].embedding, embedding(1.0));
    assert_eq!(s.all_api_faces().await.unwrap()[0].embedding, embedding(2.0));
    assert_eq!(s.keys().await.unwrap()[0].pkcs8, PKCS8);
    assert_eq!(s.setting("pairwise_salt").await.unwrap().as_deref(), Some(SALT));
    assert!(
        s.load_check("live1", 0)
            .await
            .unwrap()
            .unwrap()
            .1
            .ends_with(b"\"liveness-state-secret\"]}")
    );
}

/// Everything of the database on disk: the file and its WAL.
fn disk(dir: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        all.extend(std::fs::read(e.unwrap().path()).unwrap());
    }
    all
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn the_sqlite_file_holds_no_embedding_private_key_or_salt_in_clear() {
    // Control: without a data key the same values are in the file, so the search below can fail.
    let plain_dir = tempfile::tempdir().unwrap();
    let url = |d: &tempfile::TempDir| format!("sqlite://{}?mode=rwc", d.path().join("f.db").display());
    let plain = Store::open(&url(&plain_dir)).await.unwrap();
    let secrets = fill(&plain).await;
    let file = disk(plain_dir.path());
    for s in &secrets {
        assert!(contains(&file, s), "control: a clear store keeps {s:?} readable");
    }

    let dir = tempfile::tempdir().unwrap();
    let s = Store::open_with_keys(&url(&dir), ring(1)).await.unwrap();
    let secrets = fill(&s).await;
    read_back(&s).await;
    drop(s);
    let file = disk(dir.path());
    for (i, secret) in secrets.iter().enumerate() {
        assert!(
            !contains(&file, secret),
            "secret {i} is readable in the database file"
        );
    }

    // The wrong key is refused at open; no key opens the database but not its sealed values.
    match Store::open_with_keys(&url(&dir), ring(2)).await {
        Err(StoreError::WrongDataKey { stored, given }) => {
            assert_eq!(stored, key(1).id_hex());
            assert_eq!(given, key(2).id_hex());
        }
        other => panic!("a wrong key must not open the database: {other:?}"),
    }
    let keyless = Store::open(&url(&dir)).await.unwrap();
    assert!(keyless.is_sealed());
    assert!(matches!(
        keyless.faces_of("u1").await,
        Err(StoreError::DataKey(_))
    ));
    assert!(matches!(
        keyless.add_face(&template("t9", "u1", embedding(9.0))).await,
        Err(StoreError::DataKey(_))
    ));
    let s = Store::open_with_keys(&url(&dir), ring(1)).await.unwrap();
    read_back(&s).await;

    // A sealed value moved into another row does not open there.
    s.add_face(&template("t2", "u1", embedding(3.0))).await.unwrap();
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url(&dir))
        .await
        .unwrap();
    sqlx::query("UPDATE face_templates SET embedding = (SELECT embedding FROM face_templates WHERE id = 't1') WHERE id = 't2'")
        .execute(&mut conn)
        .await
        .unwrap();
    assert!(matches!(s.faces_of("u1").await, Err(StoreError::Corrupt(_))));
}

#[tokio::test]
async fn a_clear_database_is_sealed_on_its_first_start_with_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("f.db").display());
    let secrets = fill(&Store::open(&url).await.unwrap()).await;
    let s = Store::open_with_keys(&url, ring(1)).await.unwrap();
    assert_eq!(s.resealed_at_open(), 5, "five values sealed at open");
    assert_eq!(s.reseal().await.unwrap(), 0);
    read_back(&s).await;
    // Checkpoint the WAL and vacuum so that no old page keeps the clear values.
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    sqlx::query("VACUUM").execute(&mut conn).await.unwrap();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    drop(s);
    let file = disk(dir.path());
    for (i, secret) in secrets.iter().enumerate() {
        assert!(
            !contains(&file, secret),
            "secret {i} still in clear after sealing"
        );
    }
}

/// Rotation on one backend: re-sealed under the new key, resumable, the old key then refused.
async fn rotation(url: &str) {
    let s1 = Store::open_with_keys(url, ring(1)).await.unwrap();
    fill(&s1).await;
    // Rotate to key 2 (the old key still in the ring to open what it sealed).
    let s2 = Store::open_with_keys(url, Some(DataKeys::new(key(2), vec![key(1)])))
        .await
        .unwrap();
    assert_eq!(s2.resealed_at_open(), 5);
    // An instance still on key 1 writes meanwhile: the database is now as an interrupted rotation
    // leaves it, some values under each key. Running the rotation again finishes it.
    user(&s1, "u2").await;
    s1.add_face(&template("t5", "u2", embedding(5.0))).await.unwrap();
    assert_eq!(s2.faces_of("u2").await.unwrap()[0].embedding, embedding(5.0));
    assert!(matches!(
        Store::open_with_keys(url, ring(2))
            .await
            .unwrap()
            .faces_of("u2")
            .await,
        Err(StoreError::DataKey(_))
    ));
    assert_eq!(
        s2.reseal().await.unwrap(),
        1,
        "the resumed run re-seals only what is left"
    );
    assert_eq!(s2.reseal().await.unwrap(), 0);
    let only_new = Store::open_with_keys(url, ring(2)).await.unwrap();
    read_back(&only_new).await;
    assert_eq!(
        only_new.faces_of("u2").await.unwrap()[0].embedding,
        embedding(5.0)
    );
    assert!(matches!(
        Store::open_with_keys(url, ring(1)).await,
        Err(StoreError::WrongDataKey { .. })
    ));
}

#[tokio::test]
async fn rotating_the_data_key_resumes_and_retires_the_old_key_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    rotation(&format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("f.db").display()
    ))
    .await;
}

#[tokio::test]
async fn postgres_stores_sealed_values_and_rotates() {
    let Some(pg) = facegate_store::testing::TempPostgres::for_test("the PostgreSQL encryption test") else {
        return;
    };
    let url = pg.database("sealed").unwrap();
    let s = Store::open_with_keys(&url, ring(1)).await.unwrap();
    let secrets = fill(&s).await;
    read_back(&s).await;
    // What a dump of the database shows: every sealed column, as bytes.
    let mut dump = Vec::new();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    for q in [
        "SELECT embedding AS v FROM face_templates",
        "SELECT embedding AS v FROM api_faces",
        "SELECT pkcs8 AS v FROM signing_keys",
        "SELECT state AS v FROM liveness_checks",
        "SELECT convert_to(value, 'UTF8') AS v FROM settings",
    ] {
        for r in sqlx::query(q).fetch_all(&pool).await.unwrap() {
            dump.extend(r.get::<Vec<u8>, _>("v"));
        }
    }
    for (i, secret) in secrets.iter().enumerate() {
        assert!(!contains(&dump, secret), "secret {i} is readable in PostgreSQL");
    }
    drop(s);
    rotation(&pg.database("rotate").unwrap()).await;
}
