//! `facegate db copy --to postgres://...` as an operator runs it: a site on the embedded SQLite
//! database (an account, a relying party, the signing keys) moves to PostgreSQL with the real
//! binary, and an instance on PostgreSQL then signs the same person in for the same client, with
//! the same secret, under the same signing key.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use common::*;

fn copy(from: &str, to: &str) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_facegate"))
        .args(["db", "copy", "--from", from, "--to", to])
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_moves_from_sqlite_to_postgres_and_its_logins_keep_working() {
    let Some(pg) = facegate_store::testing::TempPostgres::for_test("the db copy command test") else {
        return;
    };
    let old = spawn_with(|s| s.data_key = shared_data_key()).await;
    old.add_user("alice").await;
    let redirect = "http://localhost:9/cb";
    let (client_id, secret) = old.confidential_client(redirect).await;
    let jwks_before: serde_json::Value = reqwest::get(old.url("/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let from = old.state.settings.database_url.clone();
    let to = pg.database("moved").unwrap();

    let (ok, out) = copy(&from, "sqlite:///nonexistent/x.db");
    assert!(
        !ok && out.contains("PostgreSQL"),
        "a target that is not PostgreSQL is refused: {out}"
    );
    let (ok, out) = copy(&from, &to);
    assert!(ok, "db copy failed: {out}");
    assert!(out.contains("all counts match"), "{out}");
    let (ok, out) = copy(&from, &to);
    assert!(
        ok && out.contains("0 inserted now"),
        "a second run copies nothing twice: {out}"
    );

    // The site on PostgreSQL.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let new = spawn_instance(listener, &issuer, &to).await;
    let jwks_after: serde_json::Value = reqwest::get(new.url("/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks_after, jwks_before, "the same signing keys");
    let auth = format!(
        "{issuer}/authorize?response_type=code&client_id={client_id}&redirect_uri={redirect}&scope=openid&state=s1&nonce=n1&code_challenge=5pTqDXt92_jj-qBxRGu2THtS3gHvMSIQ_Z49Sl1ye3o&code_challenge_method=S256"
    );
    let back = sign_in(&browser(), &new, &auth, "alice").await;
    let code = params(&back, false).get("code").expect("a code").clone();
    let tokens: serde_json::Value = reqwest::Client::new()
        .post(new.url("/token"))
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
    assert!(
        tokens["id_token"].is_string(),
        "the copied client and account sign in: {tokens}"
    );
}
