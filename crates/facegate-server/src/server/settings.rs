//! Server settings: defaults, then `FACEGATE_*` environment variables, validated once into a typed
//! `Settings` that is passed down. Secrets are wrapped so they never print.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};

/// A secret that `Debug` and `Display` do not reveal.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    /// The issuer identifier: scheme, host, optional port and path, no trailing slash.
    pub issuer: String,
    pub data_dir: PathBuf,
    pub database_url: String,
    /// Initial access token for dynamic client registration (RFC 7591); registration is off without it.
    pub registration_token: Option<Secret>,
    /// Bearer token of the admin API; the admin API is off without it.
    pub admin_token: Option<Secret>,
    /// Take the client address from the last X-Forwarded-For entry (only behind a trusted proxy).
    pub trust_proxy: bool,
    pub lifetimes: Lifetimes,
    /// Logout revokes the refresh tokens issued in the session it ends (`FACEGATE_LOGOUT_REVOKES_REFRESH`,
    /// default on).
    pub logout_revokes_refresh: bool,
    pub face: super::face::FaceSettings,
    /// Limits of the /v1 APIs and the search index (`FACEGATE_API_*`, `FACEGATE_INDEX_*`).
    pub api: super::api_auth::ApiSettings,
}

pub use facegate_oidc::engine::Lifetimes;

impl Settings {
    /// Defaults overridden by the environment.
    pub fn from_env() -> anyhow::Result<Settings> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let listen: SocketAddr = var("FACEGATE_LISTEN")
            .unwrap_or_else(|| "127.0.0.1:8080".into())
            .parse()
            .context("FACEGATE_LISTEN must be an address like 127.0.0.1:8080")?;
        let data_dir = PathBuf::from(var("FACEGATE_DATA").unwrap_or_else(|| "./facegate-data".into()));
        let issuer = var("FACEGATE_ISSUER").unwrap_or_else(|| format!("http://localhost:{}", listen.port()));
        let checks = liveness_settings(&var)?;
        let refresh_token_absolute = match var("FACEGATE_REFRESH_TOKEN_MAX_AGE") {
            Some(v) => v
                .parse()
                .ok()
                .filter(|s: &i64| *s > 0)
                .context("FACEGATE_REFRESH_TOKEN_MAX_AGE must be a positive number of seconds")?,
            None => Lifetimes::default().refresh_token_absolute,
        };
        Settings::new(listen, issuer, data_dir, var("FACEGATE_DATABASE_URL")).map(|s| Settings {
            registration_token: var("FACEGATE_REGISTRATION_TOKEN").map(Secret::new),
            admin_token: var("FACEGATE_ADMIN_TOKEN").map(Secret::new),
            trust_proxy: var("FACEGATE_TRUST_PROXY").is_some_and(|v| v == "1" || v == "true"),
            logout_revokes_refresh: var("FACEGATE_LOGOUT_REVOKES_REFRESH")
                .is_none_or(|v| v != "0" && v != "false" && v != "off"),
            lifetimes: Lifetimes {
                refresh_token_absolute,
                ..Lifetimes::default()
            },
            face: super::face::FaceSettings {
                enabled: var("FACEGATE_FACE").is_none_or(|v| v != "off" && v != "0"),
                pack: var("FACEGATE_FACE_PACK").unwrap_or_else(|| facegate_vision::DEFAULT_PACK.into()),
                target_fmr: var("FACEGATE_FACE_FMR")
                    .and_then(|v| v.parse().ok())
                    .filter(|f: &f64| *f > 0.0 && *f < 1.0)
                    .unwrap_or(1e-5),
                liveness: if var("FACEGATE_LIVENESS").is_some_and(|v| v == "off") {
                    super::face::Liveness::Off
                } else {
                    super::face::Liveness::Required
                },
                signup: var("FACEGATE_FACE_SIGNUP").is_some_and(|v| v == "1" || v == "true"),
                second_factor: var("FACEGATE_FACE_2FA").is_some_and(|v| v == "1" || v == "true"),
                checks,
                ..Default::default()
            },
            api: super::api_auth::ApiSettings::from_env(),
            ..s
        })
    }

    pub fn new(
        listen: SocketAddr,
        issuer: String,
        data_dir: PathBuf,
        database_url: Option<String>,
    ) -> anyhow::Result<Settings> {
        let issuer = issuer.trim_end_matches('/').to_string();
        let u =
            url::Url::parse(&issuer).with_context(|| format!("FACEGATE_ISSUER {issuer:?} is not a URL"))?;
        let loopback = matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        if u.scheme() != "https" && !(u.scheme() == "http" && loopback) {
            bail!("FACEGATE_ISSUER must be https (http only for localhost), got {issuer}");
        }
        if u.query().is_some() || u.fragment().is_some() {
            bail!("FACEGATE_ISSUER may not have a query or fragment");
        }
        let database_url = database_url
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", data_dir.join("facegate.db").display()));
        Ok(Settings {
            listen,
            issuer,
            data_dir,
            database_url,
            registration_token: None,
            admin_token: None,
            trust_proxy: false,
            lifetimes: Lifetimes::default(),
            logout_revokes_refresh: true,
            face: super::face::FaceSettings::default(),
            api: super::api_auth::ApiSettings::default(),
        })
    }

    /// The issuer's origin (scheme, host, port), which a same-site form post names in `Origin`.
    pub fn issuer_origin(&self) -> String {
        url::Url::parse(&self.issuer)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default()
    }

    /// Cookies are `Secure` (and `__Host-` prefixed) when the issuer is https.
    pub fn secure_cookies(&self) -> bool {
        self.issuer.starts_with("https://")
    }
}

/// FACEGATE_LIVENESS_CHALLENGES (comma list of head-turns, nose-target, blink, smile),
/// FACEGATE_LIVENESS_SECONDS (time to finish a check), FACEGATE_LIVENESS_SEED (tests only: every
/// check gets the same challenge).
fn liveness_settings(
    var: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<super::liveness::LivenessSettings> {
    use facegate_core::liveness::ChallengeKind;
    let mut s = super::liveness::LivenessSettings::default();
    if let Some(list) = var("FACEGATE_LIVENESS_CHALLENGES") {
        s.kinds = list
            .split(',')
            .map(|k| {
                ChallengeKind::parse(k).with_context(|| {
                    format!("FACEGATE_LIVENESS_CHALLENGES: unknown challenge {k:?} (head-turns, nose-target, blink, smile)")
                })
            })
            .collect::<anyhow::Result<_>>()?;
        if s.kinds.is_empty() {
            bail!("FACEGATE_LIVENESS_CHALLENGES lists no challenge");
        }
    }
    if let Some(secs) = var("FACEGATE_LIVENESS_SECONDS") {
        let secs: u64 = secs
            .parse()
            .ok()
            .filter(|s| (1..=600).contains(s))
            .context("FACEGATE_LIVENESS_SECONDS must be 1-600")?;
        s.lifetime = std::time::Duration::from_secs(secs);
    }
    if let Some(seed) = var("FACEGATE_LIVENESS_SEED") {
        s.seed = Some(seed.parse().context("FACEGATE_LIVENESS_SEED must be a number")?);
    }
    Ok(s)
}
