//! `make soak`: mixed load on loopback against a real `facegate serve` for a set time (default 30
//! minutes), then a report: requests and errors per kind, p50/p99 latency per minute, the server's
//! RSS after warm-up and at the end (growth at most 10% passes), open file descriptors, database
//! size. Kinds: password and face logins through a relying party (authorize, login, code, token),
//! client_credentials token requests, /v1/compare, liveness sessions (create and read).
//!
//! Usage: soak [--bin target/release/facegate] [--minutes 30] [--testdata ../shared/testdata]
//! [--out target/soak.md]. Prints the report and writes it to --out.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;

const PASSWORD: &str = "correct horse battery staple";
const REDIRECT: &str = "http://127.0.0.1:9/cb";
const KINDS: &[&str] = &["password-login", "face-login", "token", "compare", "liveness"];

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

#[derive(Default)]
struct Stats {
    /// (kind, minute) -> latencies in ms; errors per kind.
    lat: BTreeMap<(&'static str, u64), Vec<f64>>,
    errors: BTreeMap<&'static str, u64>,
    last_error: BTreeMap<&'static str, String>,
}

fn cli(bin: &Path, dir: &Path, args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write;
    let mut c = std::process::Command::new(bin)
        .args(args)
        .env("FACEGATE_DATA", dir)
        .env("FACEGATE_LIVENESS", "off")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(s) = stdin {
        c.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    let out = c.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "facegate {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn value_after(text: &str, label: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(label))
        .map(|v| v.split_whitespace().next().unwrap_or("").to_string())
        .unwrap_or_else(|| panic!("no {label} in {text}"))
}

fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_string())
}

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

struct Site {
    base: String,
    rp: (String, String),
    api: (String, String),
    photos: Vec<Vec<u8>>,
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn authorize(b: &reqwest::Client, site: &Site) -> Result<String, String> {
    let url = format!(
        "{}/authorize?client_id={}&redirect_uri={}&response_type=code&scope=openid&state=s",
        site.base,
        site.rp.0,
        url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
    );
    let r = b.get(&url).send().await.map_err(|e| e.to_string())?;
    let login = location(&r);
    login
        .split("req=")
        .nth(1)
        .map(|r| r.split('&').next().unwrap_or(r).to_string())
        .ok_or_else(|| format!("authorize answered {} without a login redirect", r.status()))
}

/// Follows redirects inside the issuer to the client's redirect URI and exchanges the code.
async fn finish(b: &reqwest::Client, site: &Site, mut next: String) -> Result<(), String> {
    for _ in 0..6 {
        if next.starts_with(REDIRECT) {
            let code = url::Url::parse(&next)
                .map_err(|e| e.to_string())?
                .query_pairs()
                .find(|(k, _)| k == "code")
                .map(|(_, v)| v.into_owned())
                .ok_or("no code")?;
            let r = reqwest::Client::new()
                .post(format!("{}/token", site.base))
                .basic_auth(&site.rp.0, Some(&site.rp.1))
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", code.as_str()),
                    ("redirect_uri", REDIRECT),
                ])
                .send()
                .await
                .map_err(|e| e.to_string())?;
            return if r.status() == 200 {
                Ok(())
            } else {
                Err(format!("token {}", r.status()))
            };
        }
        let url = if next.starts_with('/') {
            format!("{}{next}", site.base)
        } else {
            next.clone()
        };
        let r = b.get(&url).send().await.map_err(|e| e.to_string())?;
        if !r.status().is_redirection() {
            return Err(format!("{url} answered {}", r.status()));
        }
        next = location(&r);
    }
    Err("too many redirects".into())
}

async fn password_login(site: &Site, user: &str) -> Result<(), String> {
    let b = browser();
    let req = authorize(&b, site).await?;
    let page = b
        .get(format!("{}/login?req={req}", site.base))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    let csrf = hidden(&page, "csrf").ok_or("no csrf")?;
    let r = b
        .post(format!("{}/login", site.base))
        .form(&[
            ("csrf", csrf.as_str()),
            ("req", req.as_str()),
            ("username", user),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !r.status().is_redirection() {
        return Err(format!("login {}", r.status()));
    }
    finish(&b, site, location(&r)).await
}

async fn face_login(site: &Site, user: &str, photo: &[u8]) -> Result<(), String> {
    let b = browser();
    let req = authorize(&b, site).await?;
    let page = b
        .get(format!("{}/login/face?req={req}", site.base))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    let csrf = hidden(&page, "csrf").ok_or("no csrf")?;
    let form = reqwest::multipart::Form::new()
        .text("csrf", csrf)
        .text("req", req)
        .text("username", user.to_string())
        .part(
            "image",
            reqwest::multipart::Part::bytes(photo.to_vec())
                .file_name("capture.jpg")
                .mime_str("image/jpeg")
                .unwrap(),
        );
    let r = b
        .post(format!("{}/login/face", site.base))
        .header("accept", "application/json")
        .multipart(form)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = r.status();
    let v: serde_json::Value = r.json().await.map_err(|e| e.to_string())?;
    let redirect = v["redirect"]
        .as_str()
        .ok_or_else(|| format!("face login {status}: {v}"))?;
    finish(&b, site, redirect.to_string()).await
}

async fn api_token(site: &Site, http: &reqwest::Client) -> Result<String, String> {
    let r = http
        .post(format!("{}/token", site.base))
        .basic_auth(&site.api.0, Some(&site.api.1))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "faces:read liveness"),
        ])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if r.status() != 200 {
        return Err(format!("token {}", r.status()));
    }
    let v: serde_json::Value = r.json().await.map_err(|e| e.to_string())?;
    Ok(v["access_token"].as_str().unwrap_or_default().to_string())
}

async fn compare(site: &Site, http: &reqwest::Client, token: &str) -> Result<(), String> {
    let e = |b: &Vec<u8>| base64::engine::general_purpose::STANDARD.encode(b);
    let r = http
        .post(format!("{}/v1/compare", site.base))
        .bearer_auth(token)
        .json(&serde_json::json!({"sourceImage": e(&site.photos[0]), "targetImage": e(&site.photos[1])}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if r.status() == 200 {
        Ok(())
    } else {
        Err(format!("compare {}", r.status()))
    }
}

async fn liveness(site: &Site, http: &reqwest::Client, token: &str) -> Result<(), String> {
    let r = http
        .post(format!("{}/v1/liveness/sessions", site.base))
        .bearer_auth(token)
        .json(&serde_json::json!({}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if r.status() != 201 {
        return Err(format!("liveness create {}", r.status()));
    }
    let v: serde_json::Value = r.json().await.map_err(|e| e.to_string())?;
    let id = v["sessionId"].as_str().unwrap_or_default();
    let r = http
        .get(format!("{}/v1/liveness/sessions/{id}", site.base))
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if r.status() == 200 {
        Ok(())
    } else {
        Err(format!("liveness read {}", r.status()))
    }
}

fn proc_value(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

fn db_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with("facegate.db"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let bin = PathBuf::from(arg("--bin", "target/release/facegate"));
    let minutes: f64 = arg("--minutes", "30").parse().expect("--minutes is a number");
    let testdata = PathBuf::from(arg("--testdata", "../shared/testdata"));
    let out = PathBuf::from(arg("--out", "target/soak.md"));
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let photo = |p: &str| std::fs::read(testdata.join("faces").join(p)).unwrap();
    let photos = vec![
        photo("deepface/person_img1/img1.jpg"),
        photo("deepface/person_img1/img2.jpg"),
        photo("deepface/person_img1/img10.jpg"),
    ];

    // The site: a person with a password and an enrolled face, a relying party, an API client.
    let d = dir.path();
    cli(
        &bin,
        d,
        &["user", "add", "--username", "alice", "--password-stdin"],
        Some(PASSWORD),
    );
    let enrol_photo = testdata.join("faces/deepface/person_img1/img1.jpg");
    cli(
        &bin,
        d,
        &[
            "user",
            "enroll",
            "--username",
            "alice",
            enrol_photo.to_str().unwrap(),
        ],
        None,
    );
    let rp = cli(
        &bin,
        d,
        &[
            "client",
            "add",
            "--name",
            "rp",
            "--redirect-uri",
            REDIRECT,
            "--skip-consent",
        ],
        None,
    );
    let api = cli(
        &bin,
        d,
        &[
            "client",
            "add",
            "--name",
            "api",
            "--grant-types",
            "client_credentials",
            "--scope",
            "faces:read liveness",
        ],
        None,
    );
    let mut server = std::process::Command::new(&bin)
        .arg("serve")
        .env("FACEGATE_DATA", d)
        .env("FACEGATE_LISTEN", format!("127.0.0.1:{port}"))
        .env("FACEGATE_ISSUER", &base)
        .env("FACEGATE_LIVENESS", "off")
        .env("FACEGATE_API_RATE", "10000")
        .env("FACEGATE_API_BURST", "10000")
        .env("FACEGATE_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = server.id();
    for _ in 0..600 {
        if reqwest::get(format!("{base}/readyz"))
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let site = Arc::new(Site {
        base,
        rp: (value_after(&rp, "client_id:"), value_after(&rp, "client_secret:")),
        api: (
            value_after(&api, "client_id:"),
            value_after(&api, "client_secret:"),
        ),
        photos,
    });
    let stats = Arc::new(Mutex::new(Stats::default()));
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(minutes * 60.0);
    let warmup = Duration::from_secs_f64((minutes * 60.0 / 10.0).clamp(5.0, 120.0));
    eprintln!(
        "soak: {minutes} min against pid {pid}; warm-up {} s",
        warmup.as_secs()
    );

    // One worker per kind, two for tokens; each runs its kind in a loop until the end.
    let mut workers = tokio::task::JoinSet::new();
    for (w, kind) in KINDS.iter().chain(["token"].iter()).enumerate() {
        let (site, stats) = (site.clone(), stats.clone());
        let kind: &'static str = kind;
        workers.spawn(async move {
            let http = reqwest::Client::new();
            let mut token = String::new();
            let mut i = w;
            while Instant::now() < end {
                i += 1;
                if token.is_empty() || i % 50 == 0 {
                    token = api_token(&site, &http).await.unwrap_or_default();
                }
                let t0 = Instant::now();
                let r = match kind {
                    "password-login" => password_login(&site, "alice").await,
                    "face-login" => face_login(&site, "alice", &site.photos[i % site.photos.len()]).await,
                    "token" => api_token(&site, &http).await.map(|_| ()),
                    "compare" => compare(&site, &http, &token).await,
                    _ => liveness(&site, &http, &token).await,
                };
                let ms = t0.elapsed().as_secs_f64() * 1000.0;
                let minute = start.elapsed().as_secs() / 60;
                let mut s = stats.lock().unwrap();
                match r {
                    Ok(()) => s.lat.entry((kind, minute)).or_default().push(ms),
                    Err(e) => {
                        *s.errors.entry(kind).or_default() += 1;
                        s.last_error.insert(kind, e);
                    }
                }
            }
        });
    }
    tokio::time::sleep(warmup).await;
    let rss_warm = proc_value(pid, "VmRSS:");
    let fds_warm = fds(pid);
    while workers.join_next().await.is_some() {}
    let rss_end = proc_value(pid, "VmRSS:");
    let fds_end = fds(pid);
    let hwm = proc_value(pid, "VmHWM:");
    let db = db_size(d);
    let _ = server.kill();
    let _ = server.wait();

    let s = stats.lock().unwrap();
    let mut report = String::new();
    let elapsed = start.elapsed().as_secs_f64();
    report.push_str(&format!(
        "# Soak report\n\n{:.1} minutes of mixed load on loopback ({} workers), facegate pid {pid}.\n\n",
        elapsed / 60.0,
        KINDS.len() + 1
    ));
    report.push_str("| kind | requests | errors | per s | p50 ms | p99 ms |\n|---|---|---|---|---|---|\n");
    for kind in KINDS {
        let mut all: Vec<f64> = s
            .lat
            .iter()
            .filter(|((k, _), _)| k == kind)
            .flat_map(|(_, v)| v.iter().copied())
            .collect();
        let errors = s.errors.get(kind).copied().unwrap_or(0);
        report.push_str(&format!(
            "| {kind} | {} | {errors} | {:.1} | {:.1} | {:.1} |\n",
            all.len() as u64 + errors,
            all.len() as f64 / elapsed,
            pct(&mut all, 0.5),
            pct(&mut all, 0.99)
        ));
    }
    report.push_str("\np50 / p99 ms per minute:\n\n| minute |");
    for kind in KINDS {
        report.push_str(&format!(" {kind} |"));
    }
    report.push_str("\n|---|");
    for _ in KINDS {
        report.push_str("---|");
    }
    let minutes_seen = s.lat.keys().map(|(_, m)| *m).max().unwrap_or(0);
    for m in 0..=minutes_seen {
        report.push_str(&format!("\n| {m} |"));
        for kind in KINDS {
            let mut v = s.lat.get(&(*kind, m)).cloned().unwrap_or_default();
            report.push_str(&format!(" {:.0} / {:.0} |", pct(&mut v, 0.5), pct(&mut v, 0.99)));
        }
    }
    let growth = if rss_warm > 0 {
        (rss_end as f64 / rss_warm as f64 - 1.0) * 100.0
    } else {
        0.0
    };
    report.push_str(&format!(
        "\n\nRSS after warm-up {} MiB, at the end {} MiB ({growth:+.1}%; peak {} MiB): {}.\n\
         Open file descriptors: {fds_warm} after warm-up, {fds_end} at the end. Database: {:.1} MiB.\n",
        rss_warm / 1024,
        rss_end / 1024,
        hwm / 1024,
        if growth <= 10.0 {
            "within 10%"
        } else {
            "GREW MORE THAN 10%"
        },
        db as f64 / (1024.0 * 1024.0)
    ));
    for (k, e) in &s.last_error {
        report.push_str(&format!("\nLast {k} error: {e}"));
    }
    println!("{report}");
    if let Some(p) = out.parent() {
        let _ = std::fs::create_dir_all(p);
    }
    std::fs::write(&out, &report).unwrap();
    if growth > 10.0 {
        std::process::exit(1);
    }
}
