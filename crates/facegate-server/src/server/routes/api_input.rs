//! Reading a `/v1` request: JSON with base64 images or multipart with image files, within the body
//! limit, and typed access to its parameters. Every failure is a [`Problem`].

use std::collections::HashMap;

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{StatusCode, header};
use base64::Engine;
use serde_json::{Map, Value};

use crate::server::problem::Problem;
use crate::server::state::AppState;

/// Default similarity threshold (0-100) of searches and comparisons: FMR 1e-5.
pub const DEFAULT_THRESHOLD: f64 = 80.0;

/// A request's images (decoded from base64 or taken from file parts) and its other parameters.
pub struct Input {
    pub images: HashMap<String, Vec<u8>>,
    pub params: Map<String, Value>,
}

impl std::fmt::Debug for Input {
    // Images are photos of people: only their names and sizes print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let images: Vec<(&String, usize)> = self.images.iter().map(|(k, v)| (k, v.len())).collect();
        write!(
            f,
            "Input(images {images:?}, params {:?})",
            self.params.keys().collect::<Vec<_>>()
        )
    }
}

impl Input {
    pub fn image(&mut self, name: &str) -> Result<Vec<u8>, Problem> {
        self.images
            .remove(name)
            .filter(|b| !b.is_empty())
            .ok_or_else(|| Problem::invalid_request(format!("the request has no {name}")))
    }

    pub fn number(&self, name: &str) -> Result<Option<f64>, Problem> {
        match self.params.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(Value::String(s)) => s
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(Some)
                .ok_or_else(|| Problem::invalid_request(format!("{name} must be a number"))),
            Some(_) => Err(Problem::invalid_request(format!("{name} must be a number"))),
        }
    }

    pub fn string(&self, name: &str) -> Result<Option<String>, Problem> {
        match self.params.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(Problem::invalid_request(format!("{name} must be a string"))),
        }
    }

    /// A whole number in `range`, or `default`.
    pub fn count(
        &self,
        name: &str,
        range: std::ops::RangeInclusive<usize>,
        default: usize,
    ) -> Result<usize, Problem> {
        match self.number(name)? {
            None => Ok(default),
            Some(n) if n.fract() == 0.0 && n >= *range.start() as f64 && n <= *range.end() as f64 => {
                Ok(n as usize)
            }
            Some(_) => Err(Problem::invalid_request(format!(
                "{name} must be a whole number from {} to {}",
                range.start(),
                range.end()
            ))),
        }
    }

    /// A similarity threshold 0-100, or the default.
    pub fn threshold(&self) -> Result<f32, Problem> {
        match self.number("threshold")? {
            None => Ok(DEFAULT_THRESHOLD as f32),
            Some(t) if (0.0..=100.0).contains(&t) => Ok(t as f32),
            Some(_) => Err(Problem::invalid_request(
                "threshold is a similarity from 0 to 100",
            )),
        }
    }

    /// Refuses parameters the endpoint does not know (a typo should not be silently ignored).
    pub fn only(&self, allowed: &[&str]) -> Result<(), Problem> {
        let unknown: Vec<&str> = self
            .params
            .keys()
            .map(String::as_str)
            .filter(|k| !allowed.contains(k))
            .collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(Problem::invalid_request(format!(
                "unknown parameter(s): {}; this endpoint takes {}",
                unknown.join(", "),
                allowed.join(", ")
            )))
        }
    }
}

fn base64_image(name: &str, s: &str) -> Result<Vec<u8>, Problem> {
    // Accept a data: URL as well as bare base64.
    let data = match s.split_once(";base64,") {
        Some((prefix, rest)) if prefix.starts_with("data:") => rest,
        _ => s,
    };
    let data: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(data.as_bytes())
        .map_err(|e| Problem::invalid_request(format!("{name} is not valid base64: {e}")))
}

fn multipart_problem(e: axum::extract::multipart::MultipartError) -> Problem {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Problem::too_large(format!("the request body is too large: {}", e.body_text()))
    } else {
        Problem::invalid_request(format!("malformed multipart body: {}", e.body_text()))
    }
}

/// Which fields of a `/v1` body are images, and whether the body may be empty, as a type.
pub trait Shape: Send + Sync + 'static {
    const IMAGES: &'static [&'static str];
    const ALLOW_EMPTY: bool = false;
}

/// Parameters only.
#[derive(Debug)]
pub struct Params;
impl Shape for Params {
    const IMAGES: &'static [&'static str] = &[];
}

/// Parameters only, and no body at all is fine.
#[derive(Debug)]
pub struct OptionalParams;
impl Shape for OptionalParams {
    const IMAGES: &'static [&'static str] = &[];
    const ALLOW_EMPTY: bool = true;
}

/// One image, `image`.
#[derive(Debug)]
pub struct OneImage;
impl Shape for OneImage {
    const IMAGES: &'static [&'static str] = &["image"];
}

/// Two images, `sourceImage` and `targetImage`.
#[derive(Debug)]
pub struct TwoImages;
impl Shape for TwoImages {
    const IMAGES: &'static [&'static str] = &["sourceImage", "targetImage"];
}

/// The extractor of a `/v1` body of shape `S`: malformed, oversized or mistyped bodies are refused
/// as problem+json here, once for every route.
#[derive(Debug)]
pub struct ApiInput<S>(pub Input, pub std::marker::PhantomData<S>);

impl<S: Shape> FromRequest<AppState> for ApiInput<S> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Problem> {
        Ok(ApiInput(
            read_input(state, req, S::IMAGES, S::ALLOW_EMPTY).await?,
            std::marker::PhantomData,
        ))
    }
}

/// Reads a JSON or multipart body within the size limit. `image_fields` name the images.
pub async fn read_input(
    state: &AppState,
    req: Request,
    image_fields: &[&str],
    allow_empty: bool,
) -> Result<Input, Problem> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let limit = state.settings.api.max_body;
    let too_large = || Problem::too_large(format!("the request body is larger than {limit} bytes"));
    if req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > limit)
    {
        return Err(too_large());
    }
    let mut input = Input {
        images: HashMap::new(),
        params: Map::new(),
    };
    if ct.starts_with("application/json") {
        let bytes = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|_| too_large())?;
        if bytes.is_empty() && allow_empty {
            return Ok(input);
        }
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| Problem::invalid_request(format!("the body is not valid JSON: {e}")))?;
        let Value::Object(mut map) = v else {
            return Err(Problem::invalid_request("the body must be a JSON object"));
        };
        for f in image_fields {
            match map.remove(*f) {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) => {
                    input.images.insert(f.to_string(), base64_image(f, &s)?);
                }
                Some(_) => {
                    return Err(Problem::invalid_request(format!("{f} must be a base64 string")));
                }
            }
        }
        input.params = map;
        Ok(input)
    } else if ct.starts_with("multipart/form-data") {
        let mut mp = Multipart::from_request(req, state)
            .await
            .map_err(|e| Problem::invalid_request(format!("malformed multipart body: {}", e.body_text())))?;
        while let Some(field) = mp.next_field().await.map_err(multipart_problem)? {
            let name = field.name().unwrap_or_default().to_string();
            if image_fields.contains(&name.as_str()) {
                let bytes = field.bytes().await.map_err(multipart_problem)?;
                input.images.insert(name, bytes.to_vec());
            } else {
                let text = field.text().await.map_err(multipart_problem)?;
                input.params.insert(name, Value::String(text));
            }
        }
        Ok(input)
    } else if ct.is_empty() && allow_empty {
        let bytes = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|_| too_large())?;
        if bytes.is_empty() {
            Ok(input)
        } else {
            Err(Problem::unsupported_media_type(
                "send application/json (or no body)",
            ))
        }
    } else {
        Err(Problem::unsupported_media_type(format!(
            "send application/json (images as base64) or multipart/form-data (images as files), not {:?}",
            if ct.is_empty() {
                "no content type"
            } else {
                ct.as_str()
            }
        )))
    }
}
