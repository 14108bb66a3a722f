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
    /// Bearer token a Prometheus scraper presents at `/metrics`; `/metrics` is off (404) without it.
    pub metrics_token: Option<Secret>,
    /// Take the client address from the last X-Forwarded-For entry (only behind a trusted proxy).
    pub trust_proxy: bool,
    pub lifetimes: Lifetimes,
    /// Logout revokes the refresh tokens issued in the session it ends (`FACEGATE_LOGOUT_REVOKES_REFRESH`,
    /// default on).
    pub logout_revokes_refresh: bool,
    pub face: super::face::FaceSettings,
    /// Limits of the /v1 APIs and the search index (`FACEGATE_API_*`, `FACEGATE_INDEX_*`).
    pub api: ApiSettings,
    /// Sign-up, email and the site's name (`FACEGATE_SIGNUP`, `FACEGATE_SMTP_URL`, ...).
    pub accounts: AccountSettings,
    /// The key that seals embeddings and secrets at rest (`FACEGATE_DATA_KEY`, `FACEGATE_DATA_KEY_FILE`).
    pub data_key: super::data_key::DataKeySource,
}

/// Who may open a password account on the sign-up page (`FACEGATE_SIGNUP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignupMode {
    /// No sign-up page (accounts come from the CLI, the admin page or face sign-up).
    #[default]
    Off,
    /// Anyone.
    Open,
    /// Whoever holds an invitation link (`facegate admin invite`).
    Invite,
}

/// Accounts and email.
#[derive(Debug, Clone)]
pub struct AccountSettings {
    pub signup: SignupMode,
    /// Seconds an account may sign in to applications before its email address is confirmed
    /// (`FACEGATE_UNCONFIRMED_GRACE`, default 0: confirm first).
    pub unconfirmed_grace: i64,
    /// The site's name in mails and pages (`FACEGATE_SITE_NAME`, default "facegate").
    pub site_name: String,
    /// The mails' sender (`FACEGATE_MAIL_FROM`, default `facegate <noreply@ISSUER HOST>`).
    pub mail_from: String,
    /// `smtps://user:pass@host:465` or `smtp://user:pass@host:587?tls=required`
    /// (`FACEGATE_SMTP_URL`); without it every mail is written to `<data dir>/outbox/`.
    pub smtp_url: Option<Secret>,
}

impl AccountSettings {
    fn defaults(issuer: &str) -> AccountSettings {
        let host = url::Url::parse(issuer)
            .ok()
            .and_then(|u| u.host_str().map(String::from))
            .unwrap_or_else(|| "localhost".into());
        AccountSettings {
            signup: SignupMode::Off,
            unconfirmed_grace: 0,
            site_name: "facegate".into(),
            mail_from: format!("facegate <noreply@{host}>"),
            smtp_url: None,
        }
    }
}

/// FACEGATE_SIGNUP, FACEGATE_UNCONFIRMED_GRACE, FACEGATE_SITE_NAME, FACEGATE_MAIL_FROM,
/// FACEGATE_SMTP_URL. An SMTP server other than this machine must be reached over TLS.
fn account_settings(var: &dyn Fn(&str) -> Option<String>, issuer: &str) -> anyhow::Result<AccountSettings> {
    let mut a = AccountSettings::defaults(issuer);
    a.signup = match var("FACEGATE_SIGNUP").as_deref().map(str::trim) {
        None | Some("off") => SignupMode::Off,
        Some("open") => SignupMode::Open,
        Some("invite") => SignupMode::Invite,
        Some(other) => bail!("FACEGATE_SIGNUP must be open, invite or off (got {other:?})"),
    };
    if let Some(v) = var("FACEGATE_UNCONFIRMED_GRACE") {
        a.unconfirmed_grace = v
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|s| (0..=30 * 86_400).contains(s))
            .context("FACEGATE_UNCONFIRMED_GRACE must be a number of seconds from 0 to 2592000")?;
    }
    if let Some(v) = var("FACEGATE_SITE_NAME") {
        a.site_name = v.trim().chars().take(80).collect();
    }
    if let Some(v) = var("FACEGATE_MAIL_FROM") {
        v.trim().parse::<lettre::message::Mailbox>().with_context(|| {
            format!("FACEGATE_MAIL_FROM must be an address like \"Site <noreply@example.com>\" (got {v:?})")
        })?;
        a.mail_from = v.trim().to_string();
    }
    if let Some(v) = var("FACEGATE_SMTP_URL") {
        let u = url::Url::parse(v.trim())
            .context("FACEGATE_SMTP_URL is not a URL (smtps://user:pass@host:465)")?;
        let tls = u.scheme() == "smtps" || u.query_pairs().any(|(k, v)| k == "tls" && v == "required");
        let local = matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        if !matches!(u.scheme(), "smtp" | "smtps") {
            bail!("FACEGATE_SMTP_URL must start with smtps:// or smtp://");
        }
        if !tls && !local {
            bail!(
                "FACEGATE_SMTP_URL: mail to another machine must use TLS: smtps://host:465, or smtp://host:587?tls=required"
            );
        }
        a.smtp_url = Some(Secret::new(v.trim()));
    }
    Ok(a)
}

pub use facegate_oidc::engine::Lifetimes;

impl Settings {
    /// Defaults overridden by the environment.
    /// The settings in force: defaults, then the config file (`--config FILE` or
    /// `FACEGATE_CONFIG`), then `FACEGATE_*` environment variables. Validated once, here.
    pub fn from_env() -> anyhow::Result<Settings> {
        let file = CONFIG_FILE
            .get()
            .cloned()
            .or_else(|| std::env::var_os("FACEGATE_CONFIG").map(PathBuf::from));
        let table = match &file {
            Some(path) => read_config(path)?,
            None => Vec::new(),
        };
        Settings::layered(&table, file.as_deref(), |k| std::env::var(k).ok())
    }

    /// `from_vars` over the environment (`env`) layered on a config file's settings (`file`, as
    /// `FACEGATE_*` names). A key of the file that no setting reads stops start-up.
    pub fn layered(
        file: &[(String, String)],
        path: Option<&std::path::Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Settings> {
        let read = std::cell::RefCell::new(std::collections::HashSet::new());
        let settings = Settings::from_vars(|k| {
            read.borrow_mut().insert(k.to_string());
            env(k).or_else(|| file.iter().find(|(name, _)| name == k).map(|(_, v)| v.clone()))
        });
        let where_ = path.map_or_else(|| "the config file".to_string(), |p| p.display().to_string());
        for (name, _) in file {
            if !read.borrow().contains(name) {
                let key = name.trim_start_matches("FACEGATE_").to_lowercase();
                bail!("{where_}: unknown setting {key:?} (docs/configuration.md lists them)");
            }
        }
        settings.with_context(|| format!("settings (from {where_} and the environment)"))
    }

    /// Defaults overridden by `FACEGATE_*` variables as `lookup` finds them (the environment, or a
    /// test's table). A value that does not parse stops start-up with a message naming it.
    pub fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Settings> {
        let var = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        let listen: SocketAddr = var("FACEGATE_LISTEN")
            .unwrap_or_else(|| "127.0.0.1:8080".into())
            .parse()
            .context("FACEGATE_LISTEN must be an address like 127.0.0.1:8080")?;
        let data_dir = PathBuf::from(var("FACEGATE_DATA").unwrap_or_else(|| "./facegate-data".into()));
        let issuer = var("FACEGATE_ISSUER").unwrap_or_else(|| format!("http://localhost:{}", listen.port()));
        let checks = liveness_settings(&var)?;
        let data_key = super::data_key::DataKeySource::from_vars(var, &data_dir)?;
        let rate = |k: &str, default: f64| -> anyhow::Result<f64> {
            match var(k) {
                None => Ok(default),
                Some(v) => v
                    .parse::<f64>()
                    .ok()
                    .filter(|f| *f > 0.0 && *f < 1.0)
                    .with_context(|| format!("{k} must be a rate between 0 and 1, like 1e-5 (got {v:?})")),
            }
        };
        let target_fmr = rate("FACEGATE_FACE_FMR", 1e-5)?;
        let target_fmr_1n = rate("FACEGATE_FACE_FMR_1N", 1e-3)?;
        let identify_margin = match var("FACEGATE_FACE_MARGIN") {
            None => 0.05,
            Some(v) => v
                .parse::<f32>()
                .ok()
                .filter(|m| (0.0..1.0).contains(m))
                .with_context(|| {
                    format!("FACEGATE_FACE_MARGIN must be a cosine margin in [0, 1) (got {v:?})")
                })?,
        };
        let role = match var("FACEGATE_FACE_MODE").as_deref() {
            None | Some("login") => facegate_core::login::FaceRole::Login,
            Some("second-factor") => facegate_core::login::FaceRole::SecondFactorOnly,
            Some(other) => bail!("FACEGATE_FACE_MODE must be login or second-factor (got {other:?})"),
        };
        let flag_or = |k: &str, default: bool| -> anyhow::Result<bool> {
            match var(k).as_deref().map(str::trim) {
                None => Ok(default),
                Some("0" | "false" | "off") => Ok(false),
                Some("1" | "true" | "on") => Ok(true),
                Some(other) => bail!("{k} must be 1 or 0 (got {other:?})"),
            }
        };
        let flag = |k: &str| flag_or(k, false);
        let second_factor =
            flag("FACEGATE_FACE_2FA")? || role == facegate_core::login::FaceRole::SecondFactorOnly;
        let signup = flag("FACEGATE_FACE_SIGNUP")?;
        let token = |k: &str| -> anyhow::Result<Option<Secret>> {
            match var(k) {
                None => Ok(None),
                Some(t) if token_bits(&t) < 128.0 => bail!(
                    "{k} is too weak ({:.0} bits): use at least 128 bits, e.g. `openssl rand -base64 32`",
                    token_bits(&t)
                ),
                Some(t) => Ok(Some(Secret::new(t))),
            }
        };
        let registration_token = token("FACEGATE_REGISTRATION_TOKEN")?;
        let admin_token = token("FACEGATE_ADMIN_TOKEN")?;
        let metrics_token = token("FACEGATE_METRICS_TOKEN")?;
        let api = ApiSettings::from_vars(&var)?;
        // Face workers (0 or unset: one per core) and the queue bound (0 or unset: 8 per worker).
        let count = |name: &str| -> anyhow::Result<usize> {
            var(name).map_or(Ok(0), |v| {
                v.trim()
                    .parse::<usize>()
                    .map_err(|_| anyhow::anyhow!("{name} must be a whole number, not {v:?}"))
            })
        };
        let engine = facegate_vision::EngineConfig {
            workers: count("FACEGATE_FACE_WORKERS")?,
            queue: count("FACEGATE_FACE_QUEUE")?,
            ..Default::default()
        };
        let refresh_token_absolute = match var("FACEGATE_REFRESH_TOKEN_MAX_AGE") {
            Some(v) => v
                .parse()
                .ok()
                .filter(|s: &i64| *s > 0)
                .context("FACEGATE_REFRESH_TOKEN_MAX_AGE must be a positive number of seconds")?,
            None => Lifetimes::default().refresh_token_absolute,
        };
        let trust_proxy = flag("FACEGATE_TRUST_PROXY")?;
        let logout_revokes_refresh = flag_or("FACEGATE_LOGOUT_REVOKES_REFRESH", true)?;
        let face_enabled = flag_or("FACEGATE_FACE", true)?;
        let liveness = match var("FACEGATE_LIVENESS").as_deref().map(str::trim) {
            None | Some("required" | "on" | "1") => super::face::Liveness::Required,
            Some("off" | "0") => super::face::Liveness::Off,
            Some(other) => bail!("FACEGATE_LIVENESS must be required or off (got {other:?})"),
        };
        let device_code = match var("FACEGATE_DEVICE_CODE_SECONDS") {
            Some(v) => v
                .parse()
                .ok()
                .filter(|s: &i64| (1..=86_400).contains(s))
                .context("FACEGATE_DEVICE_CODE_SECONDS must be a number of seconds from 1 to 86400")?,
            None => Lifetimes::default().device_code,
        };
        let accounts = account_settings(&var, &issuer)?;
        Settings::new(listen, issuer, data_dir, var("FACEGATE_DATABASE_URL")).map(|s| Settings {
            registration_token,
            admin_token,
            metrics_token,
            trust_proxy,
            logout_revokes_refresh,
            lifetimes: Lifetimes {
                refresh_token_absolute,
                device_code,
                ..Lifetimes::default()
            },
            face: super::face::FaceSettings {
                enabled: face_enabled,
                pack: var("FACEGATE_FACE_PACK").unwrap_or_else(|| facegate_vision::DEFAULT_PACK.into()),
                target_fmr,
                target_fmr_1n,
                identify_margin,
                role,
                liveness,
                signup,
                second_factor,
                checks,
                engine,
                ..Default::default()
            },
            api,
            accounts,
            data_key,
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
            database_url,
            registration_token: None,
            admin_token: None,
            metrics_token: None,
            trust_proxy: false,
            lifetimes: Lifetimes::default(),
            logout_revokes_refresh: true,
            face: super::face::FaceSettings::default(),
            api: ApiSettings::default(),
            accounts: AccountSettings::defaults(&issuer),
            data_key: super::data_key::DataKeySource::File(data_dir.join("data.key")),
            issuer,
            data_dir,
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

/// FACEGATE_LIVENESS_CHALLENGES (comma list of moves, head-turns, nose-target, blink, smile),
/// FACEGATE_LIVENESS_SECONDS (time to finish a check), FACEGATE_LIVENESS_SEED (tests only: every
/// check gets the same challenge), FACEGATE_LIVENESS_FRAME_MEMORY (tests only: off).
fn liveness_settings(
    var: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<super::liveness::LivenessSettings> {
    use facegate_core::liveness::ChallengeKind;
    let mut s = super::liveness::LivenessSettings::default();
    let insecure_testing = var("FACEGATE_INSECURE_TESTING").as_deref() == Some("1");
    if let Some(list) = var("FACEGATE_LIVENESS_CHALLENGES") {
        s.kinds = list
            .split(',')
            .map(|k| {
                ChallengeKind::parse(k).with_context(|| {
                    format!("FACEGATE_LIVENESS_CHALLENGES: unknown challenge {k:?} (moves, head-turns, nose-target, blink, smile)")
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
        // A fixed seed makes every challenge known in advance: only for tests, said out loud.
        if !insecure_testing {
            bail!(
                "FACEGATE_LIVENESS_SEED makes every liveness challenge predictable; it is refused unless FACEGATE_INSECURE_TESTING=1 (tests only)"
            );
        }
        s.seed = Some(seed.parse().context("FACEGATE_LIVENESS_SEED must be a number")?);
    }
    if let Some(v) = var("FACEGATE_LIVENESS_FRAME_MEMORY") {
        // Off lets the same recording pass again in a new check: tests that show one video twice.
        match v.as_str() {
            "on" => s.remember_frames = true,
            "off" if insecure_testing => s.remember_frames = false,
            "off" => bail!(
                "FACEGATE_LIVENESS_FRAME_MEMORY=off lets a replayed recording pass; it is refused unless FACEGATE_INSECURE_TESTING=1 (tests only)"
            ),
            _ => bail!("FACEGATE_LIVENESS_FRAME_MEMORY must be on or off"),
        }
    }
    Ok(s)
}

/// A conservative estimate of a token's entropy: its length times the bits of the smallest
/// alphabet (digits, hex, lowercase, base64, printable ASCII) that holds all its characters.
pub fn token_bits(t: &str) -> f64 {
    let alphabet: f64 = if t.chars().all(|c| c.is_ascii_digit()) {
        10.0
    } else if t.chars().all(|c| c.is_ascii_hexdigit()) {
        16.0
    } else if t
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        37.0
    } else if t
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "+/=_-".contains(c))
    {
        64.0
    } else {
        95.0
    };
    t.chars().count() as f64 * alphabet.log2()
}

/// Limits of the `/v1` APIs (`FACEGATE_API_*`).
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Sustained requests per second per client (`FACEGATE_API_RATE`, default 10).
    pub rate_per_sec: f64,
    /// Requests a client may make at once above the rate (`FACEGATE_API_BURST`, default 20).
    pub burst: u32,
    /// Requests per client per calendar month (UTC); 0 means no quota (`FACEGATE_API_MONTHLY_QUOTA`,
    /// default 100000).
    pub monthly_quota: i64,
    /// Largest request body in bytes (`FACEGATE_API_MAX_BODY`, default 16 MiB: a 12 MB image in base64).
    pub max_body: usize,
    /// Largest encoded image in bytes (`FACEGATE_API_MAX_IMAGE`, default 12 MiB).
    pub max_image: usize,
    /// Collections up to this many faces are searched exactly; larger ones by IVF
    /// (`FACEGATE_INDEX_EXACT_MAX`, default 20000).
    pub index_exact_max: usize,
    /// IVF lists probed per search, 0 for automatic (`FACEGATE_INDEX_NPROBE`).
    pub index_nprobe: usize,
    /// Seconds an AWS Signature V4 stays good either side of its date, in the Rekognition-compatible
    /// API (`FACEGATE_AWS_SIGNATURE_WINDOW`, default 900: AWS's 15 minutes).
    pub aws_signature_window: i64,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            rate_per_sec: 10.0,
            burst: 20,
            monthly_quota: 100_000,
            max_body: 16 * 1024 * 1024,
            max_image: 12 * 1024 * 1024,
            index_exact_max: 20_000,
            index_nprobe: 0,
            aws_signature_window: 900,
        }
    }
}

impl ApiSettings {
    /// `FACEGATE_API_*` and `FACEGATE_INDEX_*` over the defaults; a value that does not parse (or is
    /// out of range) is an error naming it, not a silent default.
    pub fn from_vars(var: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<ApiSettings> {
        fn get<T: std::str::FromStr>(
            var: &dyn Fn(&str) -> Option<String>,
            k: &str,
            ok: impl Fn(&T) -> bool,
            default: T,
        ) -> anyhow::Result<T> {
            match var(k) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse::<T>()
                    .ok()
                    .filter(|x| ok(x))
                    .with_context(|| format!("{k}: {v:?} is not a valid value")),
            }
        }
        let d = ApiSettings::default();
        Ok(ApiSettings {
            rate_per_sec: get(var, "FACEGATE_API_RATE", |r: &f64| *r > 0.0, d.rate_per_sec)?,
            burst: get(var, "FACEGATE_API_BURST", |b: &u32| *b > 0, d.burst)?,
            monthly_quota: get(
                var,
                "FACEGATE_API_MONTHLY_QUOTA",
                |q: &i64| *q >= 0,
                d.monthly_quota,
            )?,
            max_body: get(var, "FACEGATE_API_MAX_BODY", |b: &usize| *b > 0, d.max_body)?,
            max_image: get(var, "FACEGATE_API_MAX_IMAGE", |b: &usize| *b > 0, d.max_image)?,
            index_exact_max: get(
                var,
                "FACEGATE_INDEX_EXACT_MAX",
                |_: &usize| true,
                d.index_exact_max,
            )?,
            index_nprobe: get(var, "FACEGATE_INDEX_NPROBE", |_: &usize| true, d.index_nprobe)?,
            aws_signature_window: get(
                var,
                "FACEGATE_AWS_SIGNATURE_WINDOW",
                |w: &i64| (1..=3600).contains(w),
                d.aws_signature_window,
            )?,
        })
    }
}

static CONFIG_FILE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// The config file named on the command line (`--config`), for every later `Settings::from_env`.
pub fn use_config_file(path: PathBuf) {
    let _ = CONFIG_FILE.set(path);
}

/// A TOML config file's settings as `FACEGATE_*` names: `database_url = "postgres://..."` is
/// `FACEGATE_DATABASE_URL`. Values are strings, numbers or booleans; anything else is an error.
pub fn read_config(path: &std::path::Path) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_config(&text).with_context(|| format!("in {}", path.display()))
}

pub fn parse_config(text: &str) -> anyhow::Result<Vec<(String, String)>> {
    let table: toml::Table = text.parse().context("not valid TOML")?;
    table
        .into_iter()
        .map(|(key, value)| {
            if !key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                bail!("setting names are lower_case_with_underscores, not {key:?}");
            }
            let v = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => if b { "1" } else { "0" }.to_string(),
                _ => bail!("{key} must be a string, a number or a boolean"),
            };
            Ok((format!("FACEGATE_{}", key.to_uppercase()), v))
        })
        .collect()
}

#[cfg(test)]
mod config_tests {
    use super::*;

    fn with(file: &str, env: &[(&str, &str)]) -> anyhow::Result<Settings> {
        let table = parse_config(file)?;
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::layered(&table, None, move |k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn a_config_file_is_layered_under_the_environment() {
        let s = with(
            "listen = \"127.0.0.1:9000\"\ndatabase_url = \"postgres://f@db/f\"\nface = false\napi_burst = 7\n",
            &[("FACEGATE_API_BURST", "9")],
        )
        .unwrap();
        assert_eq!(s.listen.port(), 9000);
        assert_eq!(s.database_url, "postgres://f@db/f");
        assert!(!s.face.enabled);
        assert_eq!(s.api.burst, 9, "the environment wins over the file");
    }

    #[test]
    fn an_unknown_key_or_a_bad_value_stops_start_up_naming_it() {
        let e = with("lisen = \"127.0.0.1:9000\"\n", &[]).unwrap_err().to_string();
        assert!(e.contains("unknown setting \"lisen\""), "{e}");
        let e = format!("{:#}", with("trust_proxy = \"yes\"\n", &[]).unwrap_err());
        assert!(e.contains("FACEGATE_TRUST_PROXY"), "{e}");
        let e = format!("{:#}", with("", &[("FACEGATE_LIVENESS", "of")]).unwrap_err());
        assert!(e.contains("FACEGATE_LIVENESS"), "{e}");
        let e = format!("{:#}", with("", &[("FACEGATE_FACE", "no")]).unwrap_err());
        assert!(e.contains("FACEGATE_FACE"), "{e}");
        let e = format!("{:#}", with("[face]\npack = \"open\"\n", &[]).unwrap_err());
        assert!(e.contains("string, a number or a boolean"), "{e}");
        assert!(parse_config("not toml = = =").is_err());
    }
}
