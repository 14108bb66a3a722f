//! A real relying-party library (the `openidconnect` crate) against the running server: discovery,
//! code flow with PKCE, ID token validation (signature, iss, aud, nonce, at_hash), userinfo, refresh.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use common::{browser, oidc_http, params, sign_in, spawn_app};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};

const REDIRECT: &str = "http://localhost:9/callback";

#[tokio::test]
async fn openidconnect_crate_code_flow_pkce_userinfo_and_refresh() {
    let app = spawn_app().await;
    let user_id = app.add_user("alice").await;
    let (client_id, secret) = app.confidential_client(REDIRECT).await;
    let http = oidc_http();

    let metadata = CoreProviderMetadata::discover_async(IssuerUrl::new(app.issuer.clone()).unwrap(), &http)
        .await
        .unwrap();
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client_id.clone()),
        Some(ClientSecret::new(secret)),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();

    let back = sign_in(&browser(), &app, auth_url.as_str(), "alice").await;
    assert!(back.starts_with(REDIRECT), "{back}");
    let p = params(&back, false);
    assert_eq!(p["state"], *csrf.secret(), "state comes back exactly");
    assert_eq!(p["iss"], app.issuer);

    let tokens = client
        .exchange_code(AuthorizationCode::new(p["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let id_token = tokens.id_token().expect("an id_token");
    let verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &nonce)
        .expect("signature, iss, aud, exp and nonce verify");
    assert_eq!(claims.subject().as_str(), user_id);
    assert_eq!(claims.issuer().as_str(), app.issuer);
    let at_hash = claims.access_token_hash().expect("at_hash present");
    let expected = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(*at_hash, expected);
    let amr: Vec<String> = claims
        .auth_method_refs()
        .unwrap()
        .iter()
        .map(|a| a.to_string())
        .collect();
    assert_eq!(amr, vec!["pwd"]);
    assert!(claims.auth_time().is_some());

    let info: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), None)
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(info.subject().as_str(), user_id);
    assert_eq!(info.email().map(|e| e.as_str()), Some("alice@example.com"));
    assert_eq!(info.email_verified(), Some(true));
    assert_eq!(info.preferred_username().map(|u| u.as_str()), Some("alice"));

    // Refresh: new tokens; the old refresh token is spent, and replaying it revokes the family.
    let refresh = tokens
        .refresh_token()
        .expect("offline_access gives a refresh token")
        .clone();
    let refreshed = client
        .exchange_refresh_token(&refresh)
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    assert_ne!(refreshed.access_token().secret(), tokens.access_token().secret());
    let new_id = refreshed.id_token().expect("refresh returns an id_token");
    let new_claims = new_id.claims(&verifier, |_: Option<&Nonce>| Ok(())).unwrap();
    assert_eq!(new_claims.subject().as_str(), user_id);
    assert!(
        client
            .exchange_refresh_token(&refresh)
            .unwrap()
            .request_async(&http)
            .await
            .is_err(),
        "a refresh token works once"
    );
    let after: Result<CoreUserInfoClaims, _> = client
        .user_info(refreshed.access_token().clone(), None)
        .unwrap()
        .request_async(&http)
        .await;
    assert!(
        after.is_err(),
        "reusing a refresh token revokes what was issued from it"
    );
}

#[tokio::test]
async fn second_authorization_reuses_session_and_consent() {
    let app = spawn_app().await;
    app.add_user("bob").await;
    let (client_id, _) = app.confidential_client(REDIRECT).await;
    let b = browser();
    let url = |state: &str| {
        format!(
            "{}/authorize?client_id={client_id}&redirect_uri={}&response_type=code&scope=openid&state={state}",
            app.issuer,
            urlencode(REDIRECT)
        )
    };
    let first = sign_in(&b, &app, &url("one"), "bob").await;
    assert!(first.starts_with(REDIRECT));
    // Same browser: no login, no consent, straight back.
    let r = b.get(url("two")).send().await.unwrap();
    let loc = common::location(&r);
    assert!(
        loc.starts_with(REDIRECT) && params(&loc, false)["state"] == "two",
        "{loc}"
    );
    // prompt=none works with the session; prompt=login asks again.
    let r = b
        .get(format!("{}&prompt=none", url("three")))
        .send()
        .await
        .unwrap();
    assert!(params(&common::location(&r), false).contains_key("code"));
    let r = b
        .get(format!("{}&prompt=login", url("four")))
        .send()
        .await
        .unwrap();
    let loc = common::location(&r);
    assert!(loc.starts_with("/login"), "{loc}");
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
