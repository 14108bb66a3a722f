//! `notes`: the secret-notes example relying party. See docs/examples.md.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

/// Secret notes: a small web app that signs people in with facegate (OpenID Connect).
#[derive(Debug, Parser)]
#[command(name = "notes", version)]
struct Args {
    /// The provider's issuer URL.
    #[arg(long, env = "NOTES_ISSUER", default_value = "http://localhost:8080")]
    issuer: String,
    /// The client id facegate gave this app (`facegate client add ...`).
    #[arg(long, env = "NOTES_CLIENT_ID")]
    client_id: String,
    /// The client secret (better: --client-secret-file or the environment, not the command line).
    #[arg(long, env = "NOTES_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
    /// A file holding the client secret (first line).
    #[arg(long, env = "NOTES_CLIENT_SECRET_FILE", conflicts_with = "client_secret")]
    client_secret_file: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "NOTES_LISTEN", default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    /// Where browsers reach this app; the redirect URI is this plus `/callback`, and facegate sends
    /// people back here after logout. Default: http://localhost:<listen port>.
    #[arg(long, env = "NOTES_PUBLIC_URL")]
    public_url: Option<url::Url>,
    /// The app's SQLite file.
    #[arg(long, env = "NOTES_DATABASE", default_value = "notes.db")]
    database: PathBuf,
    /// acr values to ask facegate for, space-separated (e.g. urn:facegate:face:live).
    #[arg(long, env = "NOTES_ACR_VALUES", default_value = "")]
    acr_values: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let client_secret = match (&args.client_secret, &args.client_secret_file) {
        (Some(s), _) => Some(s.clone()),
        (None, Some(f)) => Some(
            std::fs::read_to_string(f)
                .with_context(|| format!("reading {}", f.display()))?
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_string(),
        ),
        (None, None) => None,
    }
    .filter(|s| !s.is_empty());
    let public_url = match args.public_url {
        Some(u) => u,
        None => url::Url::parse(&format!("http://localhost:{}/", args.listen.port()))?,
    };
    let config = notes::Config {
        issuer: args.issuer,
        client_id: args.client_id,
        client_secret,
        public_url,
        database: args.database,
        acr_values: args.acr_values.split_whitespace().map(String::from).collect(),
    };
    notes::run(config, args.listen).await
}
