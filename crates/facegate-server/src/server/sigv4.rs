//! AWS Signature Version 4, verified (the `Authorization: AWS4-HMAC-SHA256 ...` header form), for
//! the Rekognition-compatible API, and the sealing of the secret access keys it needs.
//!
//! The server rebuilds the canonical request from what it received (method, path, query, the
//! headers the client says it signed, the SHA-256 of the body it read), derives the signing key
//! from the key's secret and the credential scope (date, region, service), and compares the HMAC
//! with the one sent in constant time (`aws_lc_rs::hmac::verify`). A signature is good for
//! `window` seconds either side of its `X-Amz-Date` (AWS's 15 minutes by default); the body hash
//! is always computed here, never taken from `X-Amz-Content-Sha256`.
//!
//! SigV4 needs the secret itself (the signing key is derived from it for every date, region and
//! service), so it cannot be kept as a one-way hash. It is sealed with AES-256-GCM under a
//! key-encryption key (`FACEGATE_AWS_KEK`, or the file `aws-kek` in the data folder), with the
//! access key id as associated data; docs/rekognition.md says what that protects against.

use std::path::Path;

use anyhow::{Context, bail};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use axum::http::HeaderMap;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// What is wrong with a request's signature, in AWS's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigError {
    /// No `Authorization` header (AWS: MissingAuthenticationTokenException).
    Missing,
    /// A malformed `Authorization` header or date (AWS: IncompleteSignatureException).
    Incomplete(String),
    /// The access key id is unknown (AWS: UnrecognizedClientException).
    UnknownKey,
    /// The signature is older or newer than the window (AWS: InvalidSignatureException).
    Expired(String),
    /// The signature does not match (AWS: InvalidSignatureException).
    Mismatch,
}

impl SigError {
    /// AWS's error code and message.
    pub fn aws(&self) -> (&'static str, String) {
        match self {
            SigError::Missing => (
                "MissingAuthenticationTokenException",
                "Missing Authentication Token".into(),
            ),
            SigError::Incomplete(m) => ("IncompleteSignatureException", m.clone()),
            SigError::UnknownKey => (
                "UnrecognizedClientException",
                "The security token included in the request is invalid.".into(),
            ),
            SigError::Expired(m) => ("InvalidSignatureException", m.clone()),
            SigError::Mismatch => (
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.".into(),
            ),
        }
    }
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256` header and the request's date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub access_key_id: String,
    /// YYYYMMDD of the credential scope.
    pub date: String,
    pub region: String,
    pub service: String,
    /// Lower-case names, as sent (`;`-separated in the header).
    pub signed_headers: Vec<String>,
    pub signature: Vec<u8>,
    /// `X-Amz-Date` as sent (YYYYMMDD'T'HHMMSS'Z').
    pub amz_date: String,
    /// `amz_date` as Unix time.
    pub time: i64,
}

/// Reads the `Authorization` header and `X-Amz-Date`; no secret is needed for this.
pub fn parse(headers: &HeaderMap) -> Result<Credential, SigError> {
    let auth = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or(SigError::Missing)?
        .to_str()
        .map_err(|_| SigError::Incomplete("the Authorization header is not ASCII".into()))?;
    let rest = auth.strip_prefix("AWS4-HMAC-SHA256 ").ok_or_else(|| {
        SigError::Incomplete(
            "Authorization header requires the AWS4-HMAC-SHA256 algorithm (Signature Version 4)".into(),
        )
    })?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let incomplete = |what: &str| {
        SigError::Incomplete(format!(
            "Authorization header requires '{what}' parameter. Authorization={auth_prefix}",
            auth_prefix = "AWS4-HMAC-SHA256"
        ))
    };
    let credential = credential.ok_or_else(|| incomplete("Credential"))?;
    let signed = signed.ok_or_else(|| incomplete("SignedHeaders"))?;
    let signature = signature.ok_or_else(|| incomplete("Signature"))?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [key, date, region, service, terminator] = scope.as_slice() else {
        return Err(SigError::Incomplete(format!(
            "Credential should be scoped to a valid region, date, service and terminator: {credential}"
        )));
    };
    if *terminator != "aws4_request" || key.is_empty() || region.is_empty() {
        return Err(SigError::Incomplete(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'"
        )));
    }
    if *service != "rekognition" {
        return Err(SigError::Incomplete(format!(
            "Credential should be scoped to correct service: 'rekognition', not '{service}'"
        )));
    }
    let signature = hex_decode(signature)
        .filter(|s| s.len() == 32)
        .ok_or_else(|| SigError::Incomplete("the Signature is not 64 hex digits".into()))?;
    let signed_headers: Vec<String> = signed.split(';').map(str::to_ascii_lowercase).collect();
    for required in ["host", "x-amz-date"] {
        if !signed_headers.iter().any(|h| h == required) {
            return Err(SigError::Incomplete(format!(
                "'{required}' must be a signed header (SignedHeaders={signed})"
            )));
        }
    }
    let amz_date = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| SigError::Incomplete("the request has no X-Amz-Date header".into()))?
        .to_string();
    let time = parse_amz_date(&amz_date)
        .ok_or_else(|| SigError::Incomplete(format!("X-Amz-Date {amz_date:?} is not YYYYMMDDTHHMMSSZ")))?;
    if !amz_date.starts_with(date) || date.len() != 8 {
        return Err(SigError::Incomplete(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{date}' != '{}'",
            amz_date.get(..8).unwrap_or("")
        )));
    }
    Ok(Credential {
        access_key_id: key.to_string(),
        date: date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        signed_headers,
        signature,
        amz_date,
        time,
    })
}

/// What was received, as the signature covers it.
#[derive(Debug)]
pub struct Received<'a> {
    pub method: &'a str,
    /// The path as sent (percent-encoded).
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// Checks the date window, then the signature, with the key's secret.
pub fn verify(
    cred: &Credential,
    req: &Received<'_>,
    secret: &str,
    now: i64,
    window: i64,
) -> Result<(), SigError> {
    check_window(cred, now, window)?;
    let to_sign = string_to_sign(cred, req)?;
    let key = signing_key(secret, &cred.date, &cred.region, &cred.service);
    hmac::verify(&key, to_sign.as_bytes(), &cred.signature).map_err(|_| SigError::Mismatch)
}

/// The signature's date is within `window` seconds of `now` (checked again by [`verify`]; early,
/// so a stale request is refused before its body is read).
pub fn check_window(cred: &Credential, now: i64, window: i64) -> Result<(), SigError> {
    if cred.time < now - window {
        return Err(SigError::Expired(format!(
            "Signature expired: {} is now earlier than {} ({} - {} min.)",
            cred.amz_date,
            amz_date(now - window),
            amz_date(now),
            window / 60
        )));
    }
    if cred.time > now + window {
        return Err(SigError::Expired(format!(
            "Signature not yet current: {} is still later than {} ({} + {} min.)",
            cred.amz_date,
            amz_date(now + window),
            amz_date(now),
            window / 60
        )));
    }
    Ok(())
}

/// The string to sign (AWS's "StringToSign").
pub fn string_to_sign(cred: &Credential, req: &Received<'_>) -> Result<String, SigError> {
    let canonical = canonical_request(&cred.signed_headers, req)?;
    Ok(format!(
        "AWS4-HMAC-SHA256\n{}\n{}/{}/{}/aws4_request\n{}",
        cred.amz_date,
        cred.date,
        cred.region,
        cred.service,
        hex(digest(&SHA256, canonical.as_bytes()).as_ref())
    ))
}

/// The canonical request over the headers named in `signed`.
pub fn canonical_request(signed: &[String], req: &Received<'_>) -> Result<String, SigError> {
    let mut names: Vec<&String> = signed.iter().collect();
    names.sort();
    names.dedup();
    let mut headers = String::new();
    for name in &names {
        let values: Vec<String> = req
            .headers
            .get_all(name.as_str())
            .iter()
            .map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        if values.is_empty() {
            return Err(SigError::Incomplete(format!(
                "the signed header {name} is not in the request"
            )));
        }
        headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let signed_list = names.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(";");
    Ok(format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        canonical_path(req.path),
        canonical_query(req.query.unwrap_or("")),
        headers,
        signed_list,
        hex(digest(&SHA256, req.body).as_ref())
    ))
}

/// Each segment of the (already encoded) path encoded again, as every SDK does for services other
/// than S3.
fn canonical_path(path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    path.split('/').map(uri_encode).collect::<Vec<_>>().join("/")
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (uri_encode(&k), uri_encode(&v)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// RFC 3986 encoding with AWS's unreserved set.
fn uri_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request").
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> hmac::Key {
    let step = |key: &[u8], data: &str| {
        hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes())
            .as_ref()
            .to_vec()
    };
    let k = step(format!("AWS4{secret}").as_bytes(), date);
    let k = step(&k, region);
    let k = step(&k, service);
    let k = step(&k, "aws4_request");
    hmac::Key::new(hmac::HMAC_SHA256, &k)
}

/// Signs `to_sign` (tests, and the client side of the unit tests).
pub fn sign(secret: &str, date: &str, region: &str, service: &str, to_sign: &str) -> String {
    hex(hmac::sign(&signing_key(secret, date, region, service), to_sign.as_bytes()).as_ref())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes().all(|c| c.is_ascii_digit()).then(|| t.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, se) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A Unix time as `X-Amz-Date` (YYYYMMDD'T'HHMMSS'Z').
pub fn amz_date(unix: i64) -> String {
    let (y, m, d) = super::api_auth::civil_from_days(unix.div_euclid(86_400));
    let s = unix.rem_euclid(86_400);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

// ---------------------------------------------------------------- sealing the secrets

/// The key-encryption key of the secret access keys.
pub struct Kek(LessSafeKey);

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(..)")
    }
}

const KEK_FILE: &str = "aws-kek";
const KEK_VAR: &str = "FACEGATE_AWS_KEK";

impl Kek {
    fn from_bytes(b: &[u8]) -> anyhow::Result<Kek> {
        if b.len() != 32 {
            bail!("the key-encryption key must be 32 bytes (base64 of 32 random bytes)");
        }
        let k = UnboundKey::new(&AES_256_GCM, b).map_err(|_| anyhow::anyhow!("bad AES-256 key"))?;
        Ok(Kek(LessSafeKey::new(k)))
    }

    fn decode(text: &str, from: &str) -> anyhow::Result<Kek> {
        let b = STANDARD
            .decode(text.trim())
            .with_context(|| format!("{from} is not base64"))?;
        Kek::from_bytes(&b).with_context(|| from.to_string())
    }

    /// `FACEGATE_AWS_KEK` (base64 of 32 bytes) if set, else `<data>/aws-kek`; `None` when neither
    /// exists (no key was ever made on this server).
    pub fn load(data_dir: &Path) -> anyhow::Result<Option<Kek>> {
        if let Some(v) = std::env::var_os(KEK_VAR) {
            let v = v.to_str().context("FACEGATE_AWS_KEK is not UTF-8")?.to_string();
            return Kek::decode(&v, KEK_VAR).map(Some);
        }
        let path = data_dir.join(KEK_FILE);
        match std::fs::read_to_string(&path) {
            Ok(t) => Kek::decode(&t, &path.display().to_string()).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// [`Kek::load`], creating `<data>/aws-kek` (mode 0600) when there is none.
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<Kek> {
        if let Some(k) = Kek::load(data_dir)? {
            return Ok(k);
        }
        let mut b = [0u8; 32];
        SystemRandom::new()
            .fill(&mut b)
            .map_err(|_| anyhow::anyhow!("the system random number generator failed"))?;
        std::fs::create_dir_all(data_dir)?;
        let path = data_dir.join(KEK_FILE);
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        use std::io::Write as _;
        let mut f = opts
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        f.write_all(STANDARD.encode(b).as_bytes())?;
        f.sync_all()?;
        Kek::from_bytes(&b)
    }

    /// `v1:` + base64(nonce || ciphertext || tag), bound to `access_key_id`.
    pub fn seal(&self, access_key_id: &str, secret: &str) -> anyhow::Result<String> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| anyhow::anyhow!("the system random number generator failed"))?;
        let mut data = secret.as_bytes().to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(access_key_id.as_bytes()),
                &mut data,
            )
            .map_err(|_| anyhow::anyhow!("sealing failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(format!("v1:{}", STANDARD.encode(out)))
    }

    /// The secret of a sealed text; `None` if it was sealed under another key, for another id, or
    /// has been changed.
    pub fn open(&self, access_key_id: &str, sealed: &str) -> Option<String> {
        let raw = STANDARD.decode(sealed.strip_prefix("v1:")?).ok()?;
        if raw.len() < NONCE_LEN + 16 {
            return None;
        }
        let (nonce, rest) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut data = rest.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(access_key_id.as_bytes()), &mut data)
            .ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    /// AWS's published example (docs: "Create a signed AWS API request", IAM ListUsers, GET).
    #[test]
    fn aws_example_signing_key_and_signature() {
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("iam.amazonaws.com"));
        h.insert(
            "content-type",
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        h.insert("x-amz-date", HeaderValue::from_static("20150830T123600Z"));
        let req = Received {
            method: "GET",
            path: "/",
            query: Some("Action=ListUsers&Version=2010-05-08"),
            headers: &h,
            body: b"",
        };
        let signed: Vec<String> = ["content-type", "host", "x-amz-date"].map(String::from).into();
        let canonical = canonical_request(&signed, &req).unwrap();
        assert_eq!(
            hex(digest(&SHA256, canonical.as_bytes()).as_ref()),
            "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
        );
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\n{}",
            hex(digest(&SHA256, canonical.as_bytes()).as_ref())
        );
        assert_eq!(
            sign(secret, "20150830", "us-east-1", "iam", &to_sign),
            "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
    }

    fn signed_request(secret: &str, date: &str, body: &[u8]) -> (HeaderMap, String) {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("127.0.0.1:8080"));
        h.insert("x-amz-date", HeaderValue::from_str(date).unwrap());
        h.insert(
            "x-amz-target",
            HeaderValue::from_static("RekognitionService.ListCollections"),
        );
        let signed: Vec<String> = ["host", "x-amz-date", "x-amz-target"].map(String::from).into();
        let req = Received {
            method: "POST",
            path: "/aws/rekognition/",
            query: None,
            headers: &h,
            body,
        };
        let cred = Credential {
            access_key_id: "FGAKEXAMPLE".into(),
            date: date[..8].into(),
            region: "eu-west-1".into(),
            service: "rekognition".into(),
            signed_headers: signed,
            signature: vec![],
            amz_date: date.into(),
            time: 0,
        };
        let sig = sign(
            secret,
            &date[..8],
            "eu-west-1",
            "rekognition",
            &string_to_sign(&cred, &req).unwrap(),
        );
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=FGAKEXAMPLE/{}/eu-west-1/rekognition/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature={sig}",
            &date[..8]
        );
        h.insert("authorization", HeaderValue::from_str(&auth).unwrap());
        (h, auth)
    }

    fn check(h: &HeaderMap, body: &[u8], secret: &str, now: i64) -> Result<(), SigError> {
        let cred = parse(h)?;
        verify(
            &cred,
            &Received {
                method: "POST",
                path: "/aws/rekognition/",
                query: None,
                headers: h,
                body,
            },
            secret,
            now,
            900,
        )
    }

    #[test]
    fn attacks_on_the_signature_fail() {
        let t = parse_amz_date("20261201T120000Z").unwrap();
        assert_eq!(amz_date(t), "20261201T120000Z");
        let (h, _) = signed_request("s3cret", "20261201T120000Z", b"{}");
        assert_eq!(check(&h, b"{}", "s3cret", t + 10), Ok(()));
        // The wrong secret, a changed body, a changed signed header.
        assert_eq!(check(&h, b"{}", "other", t), Err(SigError::Mismatch));
        assert_eq!(
            check(&h, b"{\"MaxResults\":1}", "s3cret", t),
            Err(SigError::Mismatch)
        );
        let mut h2 = h.clone();
        h2.insert(
            "x-amz-target",
            HeaderValue::from_static("RekognitionService.DeleteCollection"),
        );
        assert_eq!(check(&h2, b"{}", "s3cret", t), Err(SigError::Mismatch));
        // Replayed 16 minutes later, or dated in the future.
        assert!(matches!(
            check(&h, b"{}", "s3cret", t + 16 * 60),
            Err(SigError::Expired(m)) if m.starts_with("Signature expired")
        ));
        assert!(matches!(
            check(&h, b"{}", "s3cret", t - 16 * 60),
            Err(SigError::Expired(_))
        ));
        // No header, another algorithm, a date that does not match the scope.
        assert_eq!(parse(&HeaderMap::new()), Err(SigError::Missing));
        let mut h3 = h.clone();
        h3.insert("authorization", HeaderValue::from_static("Bearer abc"));
        assert!(matches!(parse(&h3), Err(SigError::Incomplete(_))));
        let mut h4 = h.clone();
        h4.insert("x-amz-date", HeaderValue::from_static("20261202T120000Z"));
        assert!(matches!(parse(&h4), Err(SigError::Incomplete(_))));
        assert_eq!(parse_amz_date("2026-12-01T12:00:00Z"), None);
    }

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_id() {
        let dir = tempfile::tempdir().unwrap();
        let k = Kek::load_or_create(dir.path()).unwrap();
        let sealed = k.seal("FGAK1", "the secret").unwrap();
        assert!(!sealed.contains("the secret"));
        assert_eq!(k.open("FGAK1", &sealed).as_deref(), Some("the secret"));
        assert_eq!(k.open("FGAK2", &sealed), None, "bound to its id");
        let again = Kek::load(dir.path()).unwrap().unwrap();
        assert_eq!(again.open("FGAK1", &sealed).as_deref(), Some("the secret"));
        let other = Kek::load_or_create(tempfile::tempdir().unwrap().path()).unwrap();
        assert_eq!(other.open("FGAK1", &sealed), None, "another server's key");
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push('A');
        assert_eq!(k.open("FGAK1", &tampered), None);
    }
}
