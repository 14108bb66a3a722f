//! device-cli: signs in to facegate from a terminal with the device authorization grant (RFC 8628).
//! It asks for a code, tells you where to enter it (on your phone or laptop, where you approve with
//! your face), polls the token endpoint at the interval it is given, and prints the ID token's
//! claims (as JSON, on stdout) once its signature checks out against the provider's JWKS.
//!
//!     facegate client add --name "My CLI" --public --grant-types urn:ietf:params:oauth:grant-type:device_code
//!     device-cli --issuer http://localhost:8080 --client-id <id>
//!
//! Exit status: 0 signed in, 2 denied, 3 the code expired, 1 anything else.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::Parser;
use serde_json::Value;

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

#[derive(Debug, Parser)]
#[command(
    name = "device-cli",
    about = "Sign in to facegate from a terminal (RFC 8628 device grant)"
)]
struct Args {
    /// The provider's issuer URL.
    #[arg(long, env = "DEVICE_CLI_ISSUER")]
    issuer: String,
    #[arg(long, env = "DEVICE_CLI_CLIENT_ID")]
    client_id: String,
    /// For a confidential client (sent with HTTP Basic); public clients have none.
    #[arg(long, env = "DEVICE_CLI_CLIENT_SECRET")]
    client_secret: Option<String>,
    #[arg(long, default_value = "openid profile email")]
    scope: String,
}

/// How the flow ended, when not with tokens.
#[derive(Debug)]
enum Ended {
    Denied,
    Expired,
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Ended::Denied => "the request was denied",
            Ended::Expired => "the code expired before it was approved; run device-cli again",
        })
    }
}

impl std::error::Error for Ended {}

fn main() {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("device-cli: {e}");
            std::process::exit(1);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(claims) => println!("{claims:#}"),
        Err(e) => {
            eprintln!("device-cli: {e:#}");
            std::process::exit(match e.downcast_ref::<Ended>() {
                Some(Ended::Denied) => 2,
                Some(Ended::Expired) => 3,
                None => 1,
            });
        }
    }
}

async fn run(args: Args) -> anyhow::Result<Value> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let issuer = args.issuer.trim_end_matches('/');
    let meta: Value = json(http.get(format!("{issuer}/.well-known/openid-configuration")))
        .await
        .context("reading the provider's discovery document")?
        .1;
    let endpoint = |name: &str| {
        meta[name]
            .as_str()
            .map(String::from)
            .ok_or_else(|| anyhow!("the provider does not advertise {name}"))
    };
    let (device_endpoint, token_endpoint) = (
        endpoint("device_authorization_endpoint")?,
        endpoint("token_endpoint")?,
    );
    let with_client = |rb: reqwest::RequestBuilder, form: &mut Vec<(&str, String)>| match &args.client_secret
    {
        Some(secret) => rb.basic_auth(&args.client_id, Some(secret)),
        None => {
            form.push(("client_id", args.client_id.clone()));
            rb
        }
    };

    let mut form = vec![("scope", args.scope.clone())];
    let rb = with_client(http.post(&device_endpoint), &mut form);
    let (status, start) = json(rb.form(&form)).await?;
    if !status.is_success() {
        bail!(
            "the device authorization request was refused: {}",
            describe(&start)
        );
    }
    let text = |k: &str| start[k].as_str().ok_or_else(|| anyhow!("the answer has no {k}"));
    let device_code = text("device_code")?.to_string();
    eprintln!(
        "To sign in, open {} and enter the code {}",
        text("verification_uri")?,
        text("user_code")?
    );
    if let Some(complete) = start["verification_uri_complete"].as_str() {
        eprintln!("or open {complete}");
    }
    let mut interval = start["interval"].as_u64().unwrap_or(5).max(1);
    let deadline =
        std::time::Instant::now() + Duration::from_secs(start["expires_in"].as_u64().unwrap_or(600) + 5);

    let tokens = loop {
        tokio::time::sleep(Duration::from_secs(interval)).await;
        let mut form = vec![
            ("grant_type", DEVICE_GRANT.to_string()),
            ("device_code", device_code.clone()),
        ];
        let rb = with_client(http.post(&token_endpoint), &mut form);
        let (status, answer) = json(rb.form(&form)).await?;
        if status.is_success() {
            break answer;
        }
        match answer["error"].as_str() {
            Some("authorization_pending") if std::time::Instant::now() < deadline => {}
            Some("slow_down") => interval += 5,
            Some("access_denied") => return Err(Ended::Denied.into()),
            Some("expired_token") | Some("authorization_pending") => return Err(Ended::Expired.into()),
            _ => bail!("the token request failed: {}", describe(&answer)),
        }
    };
    let id_token = tokens["id_token"]
        .as_str()
        .ok_or_else(|| anyhow!("no ID token in the answer (was openid in the scope?)"))?;
    let jwks_uri = endpoint("jwks_uri")?;
    verify(&http, &jwks_uri, issuer, &args.client_id, id_token).await
}

/// The claims of `id_token` once its signature, issuer, audience and expiry check out.
async fn verify(
    http: &reqwest::Client,
    jwks_uri: &str,
    issuer: &str,
    client_id: &str,
    id_token: &str,
) -> anyhow::Result<Value> {
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(json(http.get(jwks_uri)).await?.1)?;
    let header = jsonwebtoken::decode_header(id_token)?;
    let jwk = header
        .kid
        .as_deref()
        .and_then(|kid| jwks.find(kid))
        .ok_or_else(|| anyhow!("the ID token's key is not in the provider's JWKS"))?;
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk)?;
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[client_id]);
    let data =
        jsonwebtoken::decode::<Value>(id_token, &key, &validation).context("the ID token is not valid")?;
    Ok(data.claims)
}

async fn json(rb: reqwest::RequestBuilder) -> anyhow::Result<(reqwest::StatusCode, Value)> {
    let r = rb.send().await?;
    let status = r.status();
    let body = r.text().await?;
    let v = serde_json::from_str(&body)
        .with_context(|| format!("the provider answered {status} with something that is not JSON"))?;
    Ok((status, v))
}

fn describe(v: &Value) -> String {
    match (v["error"].as_str(), v["error_description"].as_str()) {
        (Some(e), Some(d)) => format!("{e}: {d}"),
        (Some(e), None) => e.to_string(),
        _ => v.to_string(),
    }
}
