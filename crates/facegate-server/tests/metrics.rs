//! Prometheus `/metrics`: closed without a token, refused with a wrong one, and with the right one
//! it counts what an operator watches — requests by route template and status, their latency, and
//! logins by factor and outcome — without user names or ids in any label.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use common::{browser, field, spawn_with};
use facegate_server::server::settings::Secret;

const TOKEN: &str = "metrics-token-0123456789abcdefghijklmnop";

/// The value of the series whose line starts with `prefix` (name and labels), 0 if absent.
fn value(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn scrape(url: &str, token: Option<&str>) -> (u16, String) {
    let mut r = reqwest::Client::new().get(url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn metrics_are_closed_without_a_configured_token() {
    let app = spawn_with(|_| {}).await;
    let (status, body) = scrape(&app.url("/metrics"), Some("anything")).await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test]
async fn metrics_count_requests_and_logins_without_personal_labels() {
    let app = spawn_with(|s| s.metrics_token = Some(Secret::new(TOKEN))).await;
    app.add_user("metered-alice").await;

    let (status, _) = scrape(&app.url("/metrics"), None).await;
    assert_eq!(status, 401, "no token");
    let (status, _) = scrape(
        &app.url("/metrics"),
        Some("metrics-token-0123456789abcdefghijklmnoX"),
    )
    .await;
    assert_eq!(status, 401, "a wrong token of the same length");

    let (_, before) = scrape(&app.url("/metrics"), Some(TOKEN)).await;
    let failed_pwd = r#"facegate_events_total{kind="login",factor="pwd",outcome="failed"}"#;
    let discovery_ok = r#"facegate_http_requests_total{route="/.well-known/openid-configuration",method="GET",status="200"}"#;

    for _ in 0..3 {
        let r = reqwest::get(app.url("/.well-known/openid-configuration"))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    // A wrong password on the login page.
    let b = browser();
    let page = b
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let form = [
        ("csrf", field(&page, "csrf")),
        ("username", "metered-alice".to_string()),
        ("password", "not the password".to_string()),
    ];
    let r = b.post(app.url("/login")).form(&form).send().await.unwrap();
    assert!(!r.status().is_redirection(), "a wrong password does not sign in");

    let (status, after) = scrape(&app.url("/metrics"), Some(TOKEN)).await;
    assert_eq!(status, 200);
    assert!(
        value(&after, discovery_ok) - value(&before, discovery_ok) >= 3.0,
        "three discovery requests counted:\n{after}"
    );
    assert!(
        value(&after, failed_pwd) - value(&before, failed_pwd) >= 1.0,
        "the failed password login counted by factor and outcome:\n{after}"
    );
    assert!(
        after.contains(
            "facegate_http_request_duration_seconds_bucket{route=\"/.well-known/openid-configuration\""
        ),
        "latency histogram with buckets:\n{after}"
    );
    assert!(!after.contains("metered-alice"), "no user names in labels");
}
