//! The store against a fresh SQLite file: settings, pragmas, single-use codes, refresh rotation.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use facegate_store::{CodeUse, Grant, Store, Token, TokenKind};

async fn store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    (Store::open(&url).await.unwrap(), dir)
}

#[tokio::test]
async fn sqlite_runs_in_wal_with_normal_sync_and_foreign_keys() {
    let (s, _d) = store().await;
    let p = s.pragmas().await.unwrap();
    assert_eq!(
        p,
        ("wal".to_string(), 1, 1),
        "journal_mode, synchronous (1 = NORMAL), foreign_keys"
    );
}

#[tokio::test]
async fn codes_are_single_use_and_refresh_tokens_rotate() {
    let (s, _d) = store().await;
    // Grants are refused for a client that does not exist: register the one they belong to.
    s.create_client(
        &facegate_oidc::client::Client {
            client_id: "c".into(),
            secret_hash: None,
            name: "c".into(),
            redirect_uris: vec!["https://x/cb".into()],
            post_logout_redirect_uris: vec![],
            grant_types: vec!["authorization_code".into()],
            auth_method: facegate_oidc::client::AuthMethod::None,
            scope: "openid".into(),
            jwks: None,
            skip_consent: false,
            id_token_alg: facegate_oidc::keys::SigningAlg::RS256,
            pairwise: false,
            created_at: 0,
            dynamic: false,
            resource_server: false,
            require_par: false,
            jwt_access_tokens: false,
            backchannel_logout_uri: None,
            backchannel_logout_session_required: false,
        },
        None,
    )
    .await
    .unwrap();
    let g = Grant {
        id: "g1".into(),
        client_id: "c".into(),
        user_id: None,
        scope: "openid".into(),
        auth_time: None,
        amr: vec![],
        acr: None,
        nonce: None,
        sid: None,
        created_at: 0,
        revoked_at: None,
        claims: None,
    };
    s.create_grant(&g).await.unwrap();
    s.insert_code("h", "g1", "https://x/cb", None, i64::MAX)
        .await
        .unwrap();
    assert!(matches!(s.use_code("h", 1).await.unwrap(), CodeUse::First(_)));
    assert!(matches!(s.use_code("h", 2).await.unwrap(), CodeUse::Reused(_)));
    assert!(matches!(s.use_code("nope", 2).await.unwrap(), CodeUse::Unknown));
    let t = Token {
        token_hash: "r".into(),
        kind: TokenKind::Refresh,
        grant_id: "g1".into(),
        client_id: "c".into(),
        user_id: None,
        scope: "openid".into(),
        expires_at: i64::MAX,
        used_at: None,
        revoked_at: None,
        created_at: 0,
    };
    s.insert_token(&t).await.unwrap();
    assert!(s.use_refresh_token("r", 5).await.unwrap());
    assert!(
        !s.use_refresh_token("r", 6).await.unwrap(),
        "second use is detected"
    );
    s.revoke_grant("g1", 7).await.unwrap();
    assert_eq!(s.token("r").await.unwrap().unwrap().revoked_at, Some(7));
    assert_eq!(s.setting_or_insert("k", "v1").await.unwrap(), "v1");
    assert_eq!(
        s.setting_or_insert("k", "v2").await.unwrap(),
        "v1",
        "first value wins"
    );
}
