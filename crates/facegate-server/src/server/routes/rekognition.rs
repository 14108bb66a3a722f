//! A Rekognition-compatible face API at `<issuer>/aws/rekognition`: the AWS JSON 1.1 protocol
//! (`POST`, `X-Amz-Target: RekognitionService.<Operation>`, `application/x-amz-json-1.1`) signed
//! with AWS Signature Version 4 by an access key facegate issued to an API client
//! (`facegate faces aws-key add`), so the AWS SDKs work unchanged with `endpoint_url` set here.
//!
//! Every operation maps onto the same services as `/v1` (the face API service, the face engine,
//! the liveness service) and the same limits: the key's client's scopes (`faces:read`,
//! `faces:write`, `liveness`), rate limit and monthly quota. Shapes are AWS's (PascalCase, boxes as
//! ratios of the image, confidences 0-100); errors are AWS's (`__type`, `message`, and the HTTP
//! status Rekognition uses). docs/rekognition.md has the details and what differs.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use facegate_core::face_api::ApiFaceView;
use facegate_oidc::scope::Scopes;
use facegate_vision::Face;
use serde_json::{Map, Value, json};

use crate::server::api_auth::{ApiCaller, admit};
use crate::server::aws_keys::{self, Lookup};
use crate::server::face_api::{Analysed, Found, IndexRequest, QualityFilter, valid_external_id};
use crate::server::problem::Problem;
use crate::server::sigv4::{self, Received, SigError};
use crate::server::state::AppState;

pub fn router(_state: &AppState) -> Router<AppState> {
    // Bodies are read (within FACEGATE_API_MAX_BODY) by the handler itself: the signature covers them.
    Router::new()
        .route("/aws/rekognition", post(handle))
        .route("/aws/rekognition/", post(handle))
        .layer(axum::extract::DefaultBodyLimit::disable())
}

// ---------------------------------------------------------------- errors

/// An error in AWS's shape: `{"__type": code, "message": ...}` with its HTTP status.
#[derive(Debug)]
pub struct AwsError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl AwsError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> AwsError {
        AwsError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    fn invalid(message: impl Into<String>) -> AwsError {
        AwsError::new(StatusCode::BAD_REQUEST, "InvalidParameterException", message)
    }

    fn not_found(message: impl Into<String>) -> AwsError {
        AwsError::new(StatusCode::BAD_REQUEST, "ResourceNotFoundException", message)
    }
}

impl From<SigError> for AwsError {
    fn from(e: SigError) -> AwsError {
        let (code, message) = e.aws();
        let status = match e {
            SigError::Missing => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        };
        AwsError::new(status, code, message)
    }
}

impl From<Problem> for AwsError {
    fn from(p: Problem) -> AwsError {
        let (status, code) = match p.kind {
            "invalid-request" | "pack-mismatch" | "face-not-found" => {
                (StatusCode::BAD_REQUEST, "InvalidParameterException")
            }
            "invalid-image" => (StatusCode::BAD_REQUEST, "InvalidImageFormatException"),
            "too-large" => (StatusCode::BAD_REQUEST, "ImageTooLargeException"),
            "no-face" => (StatusCode::BAD_REQUEST, "InvalidParameterException"),
            "collection-not-found" | "session-not-found" => {
                (StatusCode::BAD_REQUEST, "ResourceNotFoundException")
            }
            "collection-exists" => (StatusCode::BAD_REQUEST, "ResourceAlreadyExistsException"),
            "insufficient-scope" | "invalid-token" => (StatusCode::BAD_REQUEST, "AccessDeniedException"),
            "rate-limited" => (StatusCode::BAD_REQUEST, "ProvisionedThroughputExceededException"),
            "quota-exceeded" => (StatusCode::BAD_REQUEST, "LimitExceededException"),
            // facegate's rule: overload is 503 with Retry-After (AWS answers ThrottlingException
            // with 500; the SDKs retry on the code either way).
            "busy" => (StatusCode::SERVICE_UNAVAILABLE, "ThrottlingException"),
            "face-unavailable" => (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailableException"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError"),
        };
        let message = if p.kind == "insufficient-scope" {
            format!(
                "You are not authorized to perform this operation: {} (the access key's client lacks the scope)",
                p.detail
            )
        } else {
            p.detail.clone()
        };
        AwsError {
            status,
            code,
            message,
            retry_after: p.retry_after,
        }
    }
}

impl From<facegate_core::face_api::FaceApiError> for AwsError {
    fn from(e: facegate_core::face_api::FaceApiError) -> AwsError {
        AwsError::from(Problem::from(e))
    }
}

impl From<facegate_store::StoreError> for AwsError {
    fn from(e: facegate_store::StoreError) -> AwsError {
        AwsError::from(Problem::from(e))
    }
}

fn request_id() -> String {
    let t = facegate_core::secret::random_token(16);
    t.chars().filter(char::is_ascii_alphanumeric).collect()
}

fn aws_headers(h: &mut HeaderMap, id: &str) {
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(id) {
        h.insert("x-amzn-requestid", v);
    }
}

impl IntoResponse for AwsError {
    fn into_response(self) -> Response {
        let body = json!({"__type": self.code, "message": self.message}).to_string();
        let mut r = (self.status, body).into_response();
        aws_headers(r.headers_mut(), &request_id());
        r.headers_mut()
            .insert("x-amzn-errortype", HeaderValue::from_static(self.code));
        if let Some(s) = self.retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

type AwsResult = Result<Value, AwsError>;

// ---------------------------------------------------------------- the endpoint

async fn handle(State(state): State<AppState>, req: Request) -> Response {
    match serve(&state, req).await {
        Ok(v) => {
            let mut r = (StatusCode::OK, v.to_string()).into_response();
            aws_headers(r.headers_mut(), &request_id());
            r
        }
        Err(e) => {
            if e.status.is_server_error() && e.code == "InternalServerError" {
                tracing::error!("rekognition: {}", e.message);
            }
            e.into_response()
        }
    }
}

/// Which scope an operation needs, or `None` for an unknown one.
fn scope_of(op: &str) -> Option<&'static str> {
    Some(match op {
        "CreateCollection" | "DeleteCollection" | "IndexFaces" | "DeleteFaces" => "faces:write",
        "ListCollections" | "DescribeCollection" | "ListFaces" | "SearchFaces" | "SearchFacesByImage"
        | "CompareFaces" | "DetectFaces" => "faces:read",
        "CreateFaceLivenessSession" | "GetFaceLivenessSessionResults" => "liveness",
        _ => return None,
    })
}

async fn serve(state: &AppState, req: Request) -> AwsResult {
    let (parts, body) = req.into_parts();
    let limit = state.settings.api.max_body;
    let too_large = || {
        AwsError::new(
            StatusCode::BAD_REQUEST,
            "ImageTooLargeException",
            format!("the request body is larger than {limit} bytes"),
        )
    };
    if parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > limit)
    {
        return Err(too_large());
    }
    // The signature is checked before the body is parsed, and before anything else is said.
    // Header, date window and key first: a stale or unknown request is refused before its body is
    // read.
    let cred = sigv4::parse(&parts.headers)?;
    if !cred.signed_headers.iter().any(|h| h == "x-amz-target") {
        return Err(SigError::Incomplete("'x-amz-target' must be a signed header".into()).into());
    }
    let window = state.settings.api.aws_signature_window;
    sigv4::check_window(&cred, crate::server::now(), window)?;
    let (key, secret) = match aws_keys::lookup(&state.store, &state.settings.data_dir, &cred.access_key_id)
        .await
        .map_err(|e| {
            AwsError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                e.to_string(),
            )
        })? {
        Lookup::Found { key, secret } => (key, secret),
        Lookup::Unknown => return Err(SigError::UnknownKey.into()),
    };
    let body = axum::body::to_bytes(body, limit).await.map_err(|_| too_large())?;
    sigv4::verify(
        &cred,
        &Received {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query(),
            headers: &parts.headers,
            body: &body,
        },
        &secret,
        crate::server::now(),
        window,
    )?;
    drop(secret);
    if aws_keys::due_for_touch(&key.access_key_id, crate::server::now()) {
        let _ = state
            .store
            .touch_aws_key(&key.access_key_id, crate::server::now())
            .await;
    }
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let op = target.strip_prefix("RekognitionService.").ok_or_else(|| {
        AwsError::new(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            format!("X-Amz-Target {target:?} is not a RekognitionService operation"),
        )
    })?;
    let scope = scope_of(op).ok_or_else(|| {
        AwsError::new(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            format!("facegate does not implement the Rekognition operation {op} (docs/rekognition.md lists those it does)"),
        )
    })?;
    let ct = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/x-amz-json-1.1") && !ct.starts_with("application/x-amz-json-1.0") {
        return Err(AwsError::new(
            StatusCode::BAD_REQUEST,
            "SerializationException",
            format!("send Content-Type: application/x-amz-json-1.1, not {ct:?}"),
        ));
    }
    let params: Map<String, Value> = if body.is_empty() {
        Map::new()
    } else {
        match serde_json::from_slice(&body) {
            Ok(Value::Object(m)) => m,
            _ => {
                return Err(AwsError::new(
                    StatusCode::BAD_REQUEST,
                    "SerializationException",
                    "the body is not a JSON object",
                ));
            }
        }
    };
    // The key's client, with the scopes it may ask for, through the same limits as /v1.
    let client = state
        .store
        .client(&key.client_id)
        .await?
        .ok_or(SigError::UnknownKey)?;
    let caller = admit(
        state,
        ApiCaller {
            client_id: client.client_id.clone(),
            scopes: Scopes::parse(&client.scope),
        },
        scope,
    )
    .await?;
    let p = Params(params);
    let region = cred.region.as_str();
    match op {
        "CreateCollection" => create_collection(state, &p, region, &caller).await,
        "DeleteCollection" => delete_collection(state, &p).await,
        "ListCollections" => list_collections(state, &p).await,
        "DescribeCollection" => describe_collection(state, &p, region, &caller).await,
        "IndexFaces" => index_faces(state, p).await,
        "ListFaces" => list_faces(state, &p).await,
        "DeleteFaces" => delete_faces(state, &p).await,
        "SearchFaces" => search_faces(state, &p).await,
        "SearchFacesByImage" => search_faces_by_image(state, p).await,
        "CompareFaces" => compare_faces(state, p).await,
        "DetectFaces" => detect_faces(state, p).await,
        "CreateFaceLivenessSession" => create_liveness(state, &p, &caller).await,
        "GetFaceLivenessSessionResults" => liveness_results(state, &p, &caller).await,
        _ => Err(AwsError::invalid("unknown operation")),
    }
}

// ---------------------------------------------------------------- parameters

struct Params(Map<String, Value>);

impl Params {
    fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    fn string(&self, name: &str) -> Result<Option<String>, AwsError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(AwsError::invalid(format!("{name} must be a string"))),
        }
    }

    fn required(&self, name: &str) -> Result<String, AwsError> {
        self.string(name)?
            .ok_or_else(|| AwsError::invalid(format!("{name} is required")))
    }

    fn collection(&self) -> Result<String, AwsError> {
        let id = self.required("CollectionId")?;
        if !crate::server::face_api::valid_collection_id(&id) {
            return Err(AwsError::invalid(
                "CollectionId must be 1-64 letters, digits, '_', '-' or '.'",
            ));
        }
        Ok(id)
    }

    fn number(&self, name: &str) -> Result<Option<f64>, AwsError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(_) => Err(AwsError::invalid(format!("{name} must be a number"))),
        }
    }

    fn count(&self, name: &str, min: u64, max: u64, default: u64) -> Result<u64, AwsError> {
        match self.number(name)? {
            None => Ok(default),
            Some(n) if n.fract() == 0.0 && n >= min as f64 && n <= max as f64 => Ok(n as u64),
            Some(_) => Err(AwsError::invalid(format!(
                "{name} must be a whole number from {min} to {max}"
            ))),
        }
    }

    fn percent(&self, name: &str, default: f64) -> Result<f64, AwsError> {
        match self.number(name)? {
            None => Ok(default),
            Some(n) if (0.0..=100.0).contains(&n) => Ok(n),
            Some(_) => Err(AwsError::invalid(format!("{name} must be from 0 to 100"))),
        }
    }

    /// `Image.Bytes` (base64 in JSON). `S3Object` is refused: facegate takes the bytes.
    fn image(&mut self, name: &str) -> Result<Vec<u8>, AwsError> {
        let Some(Value::Object(img)) = self.0.remove(name) else {
            return Err(AwsError::invalid(format!(
                "{name} is required: {{\"Bytes\": <base64 image>}}"
            )));
        };
        if img.get("S3Object").is_some_and(|v| !v.is_null()) {
            return Err(AwsError::invalid(format!(
                "{name}.S3Object is not supported: facegate has no S3; send the image itself as {name}.Bytes"
            )));
        }
        let Some(Value::String(b)) = img.get("Bytes") else {
            return Err(AwsError::invalid(format!("{name}.Bytes is required")));
        };
        let bytes = STANDARD
            .decode(b.as_bytes())
            .map_err(|_| AwsError::invalid(format!("{name}.Bytes is not base64")))?;
        if bytes.is_empty() {
            return Err(AwsError::invalid(format!("{name}.Bytes is empty")));
        }
        Ok(bytes)
    }

    /// `Attributes` / `DetectionAttributes`: whether `ALL` is asked for.
    fn all_attributes(&self, name: &str) -> Result<bool, AwsError> {
        match self.get(name) {
            None => Ok(false),
            Some(Value::Array(a)) => {
                let mut all = false;
                for v in a {
                    match v.as_str() {
                        Some("ALL") => all = true,
                        Some("DEFAULT") => {}
                        Some(other) => {
                            return Err(AwsError::invalid(format!(
                                "{name}: facegate returns DEFAULT or ALL, not {other:?}"
                            )));
                        }
                        None => return Err(AwsError::invalid(format!("{name} must be strings"))),
                    }
                }
                Ok(all)
            }
            Some(_) => Err(AwsError::invalid(format!("{name} must be a list"))),
        }
    }

    fn quality_filter(&self, default: QualityFilter) -> Result<QualityFilter, AwsError> {
        Ok(match self.string("QualityFilter")?.as_deref() {
            None => default,
            Some("NONE") => QualityFilter::None,
            Some("AUTO") => default,
            Some("LOW") => QualityFilter::Low,
            Some("MEDIUM") => QualityFilter::Medium,
            Some("HIGH") => QualityFilter::High,
            Some(_) => {
                return Err(AwsError::invalid(
                    "QualityFilter is one of NONE, AUTO, LOW, MEDIUM, HIGH",
                ));
            }
        })
    }
}

// ---------------------------------------------------------------- similarity

/// facegate's similarity (0-100, by false-match rate: 50 at 1e-2, 60 at 1e-3, 70 at 1e-4, 80 at
/// 1e-5) on the Rekognition scale: 80 at FMR 1e-4, 90 at 1e-5 (facegate's own strict default),
/// 99 at 1e-6. Linear between the knots; docs/rekognition.md has the table.
const KNOTS: [(f64, f64); 7] = [
    (0.0, 0.0),
    (50.0, 50.0),
    (60.0, 70.0),
    (70.0, 80.0),
    (80.0, 90.0),
    (90.0, 99.0),
    (100.0, 100.0),
];

fn interpolate(x: f64, from: impl Fn(&(f64, f64)) -> f64, to: impl Fn(&(f64, f64)) -> f64) -> f64 {
    for w in KNOTS.windows(2) {
        if x <= from(&w[1]) {
            let t = (x - from(&w[0])) / (from(&w[1]) - from(&w[0]));
            return to(&w[0]) + t.clamp(0.0, 1.0) * (to(&w[1]) - to(&w[0]));
        }
    }
    100.0
}

/// A facegate similarity as a Rekognition one.
pub fn to_rekognition(s: f64) -> f64 {
    interpolate(s.clamp(0.0, 100.0), |k| k.0, |k| k.1)
}

/// A Rekognition threshold as a facegate similarity.
pub fn from_rekognition(r: f64) -> f64 {
    interpolate(r.clamp(0.0, 100.0), |k| k.1, |k| k.0)
}

fn rek_similarity(state: &AppState, cosine: f32) -> f64 {
    let s = f64::from(state.face_api.scale().similarity(cosine));
    (to_rekognition(s) * 1e5).round() / 1e5
}

// ---------------------------------------------------------------- face shapes

fn r4(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

fn bbox_ratio(face: &Face, w: u32, h: u32) -> Value {
    let b = &face.detection.bbox;
    let (w, h) = (f64::from(w.max(1)), f64::from(h.max(1)));
    json!({
        "Width": r4(f64::from(b.width()) / w),
        "Height": r4(f64::from(b.height()) / h),
        "Left": r4(f64::from(b.x1) / w),
        "Top": r4(f64::from(b.y1) / h),
    })
}

fn confidence(face: &Face) -> f64 {
    (f64::from(face.quality.detector_score) * 1e5).round() / 1e3
}

/// A yes/no measure with a confidence that grows with the distance from the threshold.
fn yes_no(value: f32, threshold: f32, scale: f32) -> Value {
    let d = ((value - threshold).abs() / scale).min(1.0);
    json!({"Value": value > threshold, "Confidence": (f64::from(50.0 + 50.0 * d) * 100.0).round() / 100.0})
}

/// AWS's FaceDetail. DEFAULT: box, confidence, landmarks, pose, quality; ALL adds what facegate
/// measures: eyes open, mouth open, smile (from the 106 landmarks).
fn face_detail(face: &Face, w: u32, h: u32, all: bool) -> Value {
    const NAMES: [&str; 5] = ["eyeLeft", "eyeRight", "nose", "mouthLeft", "mouthRight"];
    let (fw, fh) = (f64::from(w.max(1)), f64::from(h.max(1)));
    let landmarks: Vec<Value> = NAMES
        .iter()
        .zip(face.detection.keypoints)
        .map(|(n, p)| json!({"Type": n, "X": r4(f64::from(p.x) / fw), "Y": r4(f64::from(p.y) / fh)}))
        .collect();
    let q = &face.quality;
    // Brightness 0-255 as 0-100; sharpness (variance of the Laplacian, ~40 visibly blurred) as
    // 100 s / (s + 40): 50 at the blur line.
    let sharp = f64::from(q.sharpness.max(0.0));
    let mut v = json!({
        "BoundingBox": bbox_ratio(face, w, h),
        "Confidence": confidence(face),
        "Landmarks": landmarks,
        "Pose": {
            "Roll": crate::server::face_json::round1(face.pose.roll),
            "Yaw": crate::server::face_json::round1(face.pose.yaw),
            "Pitch": crate::server::face_json::round1(face.pose.pitch),
        },
        "Quality": {
            "Brightness": ((f64::from(q.brightness) / 255.0 * 100.0) * 100.0).round() / 100.0,
            "Sharpness": ((100.0 * sharp / (sharp + 40.0)) * 100.0).round() / 100.0,
        },
    });
    if all && let Some(e) = &face.expression {
        v["EyesOpen"] = yes_no((e.left_eye + e.right_eye) / 2.0, 0.2, 0.1);
        v["MouthOpen"] = yes_no(e.mouth_open, 0.08, 0.08);
        v["Smile"] = yes_no(e.corner_lift, 0.03, 0.05);
    }
    v
}

fn model_version(state: &AppState) -> String {
    state.face_api.pack().to_string()
}

fn arn(region: &str, caller: &ApiCaller, collection: &str) -> String {
    format!(
        "aws:rekognition:{region}:{}:collection/{collection}",
        caller.client_id
    )
}

async fn analyse(
    state: &AppState,
    image: Vec<u8>,
    embed: bool,
    landmarks: bool,
) -> Result<Analysed, AwsError> {
    let engine = state.face.as_ref().map(|f| f.engine()).ok_or_else(|| {
        AwsError::from(
            Problem::unavailable(
                "the face pipeline is off on this server (models missing or FACEGATE_FACE=off)",
            )
            .with_retry_after(60),
        )
    })?;
    Ok(
        crate::server::face_api::analyse(engine, image, state.settings.api.max_image, embed, landmarks)
            .await?,
    )
}

const NO_FACE: &str = "There are no faces in the image. Should be at least 1.";

// ---------------------------------------------------------------- collections

async fn create_collection(state: &AppState, p: &Params, region: &str, caller: &ApiCaller) -> AwsResult {
    let id = p.collection()?;
    state
        .face_api
        .create_collection(&state.store, &id, crate::server::now())
        .await
        .map_err(|e| match e {
            facegate_core::face_api::FaceApiError::CollectionExists(_) => AwsError::new(
                StatusCode::BAD_REQUEST,
                "ResourceAlreadyExistsException",
                format!("The collection id: {id} already exists"),
            ),
            e => e.into(),
        })?;
    Ok(json!({
        "StatusCode": 200,
        "CollectionArn": arn(region, caller, &id),
        "FaceModelVersion": model_version(state),
    }))
}

fn not_found(id: &str) -> AwsError {
    AwsError::not_found(format!("The collection id: {id} does not exist"))
}

async fn delete_collection(state: &AppState, p: &Params) -> AwsResult {
    let id = p.collection()?;
    state
        .face_api
        .delete_collection(&state.store, &id)
        .await
        .map_err(|_| not_found(&id))?;
    Ok(json!({"StatusCode": 200}))
}

async fn list_collections(state: &AppState, p: &Params) -> AwsResult {
    let max = p.count("MaxResults", 0, 4096, 1000)? as usize;
    let after = p.string("NextToken")?.unwrap_or_default();
    let all = state.store.collections().await?;
    let page: Vec<_> = all
        .iter()
        .filter(|c| c.id.as_str() > after.as_str())
        .take(max.max(1))
        .collect();
    let more = all.iter().filter(|c| c.id.as_str() > after.as_str()).count() > page.len();
    let mut v = json!({
        "CollectionIds": page.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
        "FaceModelVersions": page.iter().map(|c| c.pack.clone()).collect::<Vec<_>>(),
    });
    if more && let Some(last) = page.last() {
        v["NextToken"] = json!(last.id);
    }
    Ok(v)
}

async fn describe_collection(state: &AppState, p: &Params, region: &str, caller: &ApiCaller) -> AwsResult {
    let id = p.collection()?;
    let c = state
        .face_api
        .collection(&state.store, &id)
        .await
        .map_err(|_| not_found(&id))?;
    Ok(json!({
        "FaceCount": c.face_count,
        "UserCount": 0,
        "FaceModelVersion": c.pack,
        "CollectionARN": arn(region, caller, &id),
        "CreationTimestamp": c.created_at,
    }))
}

async fn usable(state: &AppState, id: &str) -> Result<(), AwsError> {
    match state.face_api.usable_collection(&state.store, id).await {
        Ok(_) => Ok(()),
        Err(facegate_core::face_api::FaceApiError::CollectionNotFound(_)) => Err(not_found(id)),
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------- faces

/// A face found in an image of known size: stored with the image's size beside its pixel box, so
/// that ListFaces can give the box as ratios too.
struct Sized {
    face: Found,
    width: u32,
    height: u32,
}

impl ApiFaceView for Sized {
    fn embedding(&self) -> Option<&[f32]> {
        self.face.embedding()
    }

    fn bbox(&self) -> Value {
        let mut b = self.face.bbox();
        b["imageWidth"] = json!(self.width);
        b["imageHeight"] = json!(self.height);
        b
    }

    fn quality(&self) -> Value {
        self.face.quality()
    }

    fn issues(&self, filter: QualityFilter) -> Vec<String> {
        self.face.issues(filter)
    }
}

/// facegate's quality issues as Rekognition's reasons.
fn reason(issue: &str) -> &'static str {
    match issue {
        "too_small" => "SMALL_BOUNDING_BOX",
        "blurry" => "LOW_SHARPNESS",
        "too_dark" | "too_bright" => "LOW_BRIGHTNESS",
        "not_frontal" | "tilted" => "EXTREME_POSE",
        "exceeds_max_faces" => "EXCEEDS_MAX_FACES",
        _ => "LOW_FACE_QUALITY",
    }
}

/// A stored face as AWS's Face (the box as ratios when the image's size was kept).
fn stored_face(state: &AppState, f: &facegate_store::ApiFace) -> Value {
    let mut v = json!({
        "FaceId": f.id,
        "IndexFacesModelVersion": f.pack,
    });
    if let Some(e) = &f.external_id {
        v["ExternalImageId"] = json!(e);
    }
    if let Some(c) = f.quality["confidence"].as_f64() {
        v["Confidence"] = json!((c * 1e5).round() / 1e3);
    }
    let b = &f.bbox;
    if let (Some(l), Some(t), Some(w), Some(h), Some(iw), Some(ih)) = (
        b["left"].as_f64(),
        b["top"].as_f64(),
        b["width"].as_f64(),
        b["height"].as_f64(),
        b["imageWidth"].as_f64().filter(|x| *x > 0.0),
        b["imageHeight"].as_f64().filter(|x| *x > 0.0),
    ) {
        v["BoundingBox"] =
            json!({"Width": r4(w / iw), "Height": r4(h / ih), "Left": r4(l / iw), "Top": r4(t / ih)});
    }
    let _ = state;
    v
}

async fn index_faces(state: &AppState, mut p: Params) -> AwsResult {
    let id = p.collection()?;
    usable(state, &id).await?;
    let external = p.string("ExternalImageId")?;
    if let Some(e) = &external
        && !valid_external_id(e)
    {
        return Err(AwsError::invalid(
            "ExternalImageId must be 1-255 characters without control characters",
        ));
    }
    let max_faces = p.count("MaxFaces", 1, 100, 100)? as usize;
    let filter = p.quality_filter(QualityFilter::Low)?;
    let all = p.all_attributes("DetectionAttributes")?;
    let image = p.image("Image")?;
    let analysed = analyse(state, image, true, all).await?;
    let (w, h) = (analysed.width, analysed.height);
    let faces: Vec<Sized> = analysed
        .found()
        .into_iter()
        .map(|face| Sized {
            face,
            width: w,
            height: h,
        })
        .collect();
    let image_id = uuid_like();
    let out = if faces.is_empty() {
        // Rekognition indexes nothing and says so with empty lists, not an error.
        facegate_core::face_api::IndexOutcome {
            indexed: Vec::new(),
            unindexed: Vec::new(),
        }
    } else {
        state
            .face_api
            .index_faces(
                &state.store,
                &id,
                faces,
                IndexRequest {
                    external_id: external.as_deref(),
                    max_faces,
                    filter,
                    import_sha256: None,
                },
                crate::server::now(),
            )
            .await?
    };
    let records: Vec<Value> = out
        .indexed
        .iter()
        .map(|(r, f)| {
            let mut face = json!({
                "FaceId": r.id,
                "BoundingBox": bbox_ratio(&f.face, w, h),
                "ImageId": image_id,
                "Confidence": confidence(&f.face),
            });
            if let Some(e) = &r.external_id {
                face["ExternalImageId"] = json!(e);
            }
            json!({"Face": face, "FaceDetail": face_detail(&f.face, w, h, all)})
        })
        .collect();
    let unindexed: Vec<Value> = out
        .unindexed
        .iter()
        .map(|(f, reasons)| {
            let mut rs: Vec<&str> = reasons.iter().map(|r| reason(r)).collect();
            rs.dedup();
            json!({"Reasons": rs, "FaceDetail": face_detail(&f.face, w, h, all)})
        })
        .collect();
    Ok(json!({
        "FaceRecords": records,
        "UnindexedFaces": unindexed,
        "FaceModelVersion": model_version(state),
    }))
}

fn uuid_like() -> String {
    let hex = sigv4::hex(&facegate_core::secret::random_u64().to_be_bytes())
        + &sigv4::hex(&facegate_core::secret::random_u64().to_be_bytes());
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

async fn list_faces(state: &AppState, p: &Params) -> AwsResult {
    let id = p.collection()?;
    state
        .face_api
        .collection(&state.store, &id)
        .await
        .map_err(|_| not_found(&id))?;
    let max = p.count("MaxResults", 0, 4096, 1000)?.max(1) as i64;
    let after = p.string("NextToken")?.unwrap_or_default();
    let faces = state.store.api_faces_page(&id, &after, max + 1).await?;
    let more = faces.len() as i64 > max;
    let page = &faces[..faces.len().min(max as usize)];
    let mut v = json!({
        "Faces": page.iter().map(|f| stored_face(state, f)).collect::<Vec<_>>(),
        "FaceModelVersion": model_version(state),
    });
    if more && let Some(last) = page.last() {
        v["NextToken"] = json!(last.id);
    }
    Ok(v)
}

async fn delete_faces(state: &AppState, p: &Params) -> AwsResult {
    let id = p.collection()?;
    state
        .face_api
        .collection(&state.store, &id)
        .await
        .map_err(|_| not_found(&id))?;
    let ids: Vec<String> = match p.get("FaceIds") {
        Some(Value::Array(a)) if !a.is_empty() && a.len() <= 4096 => a
            .iter()
            .map(|v| v.as_str().map(String::from))
            .collect::<Option<_>>()
            .ok_or_else(|| AwsError::invalid("FaceIds must be strings"))?,
        _ => return Err(AwsError::invalid("FaceIds must be a list of 1 to 4096 face ids")),
    };
    let deleted = state.face_api.delete_faces(&state.store, &id, &ids).await?;
    let failed: Vec<Value> = ids
        .iter()
        .filter(|i| !deleted.contains(i))
        .map(|i| json!({"FaceId": i, "Reasons": ["FACE_NOT_FOUND"]}))
        .collect();
    Ok(json!({"DeletedFaces": deleted, "UnsuccessfulFaceDeletions": failed}))
}

async fn search(
    state: &AppState,
    collection: &str,
    probe: Vec<f32>,
    threshold: f64,
    max: usize,
    exclude: Option<String>,
) -> Result<Vec<Value>, AwsError> {
    let (s, c) = (state.clone(), collection.to_string());
    let threshold = from_rekognition(threshold) as f32;
    let matches = tokio::task::spawn_blocking(move || {
        s.face_api.search(&c, &probe, threshold, max, exclude.as_deref())
    })
    .await
    .map_err(Problem::internal)?;
    let pack = model_version(state);
    Ok(matches
        .iter()
        .map(|m| {
            let mut face = json!({"FaceId": m.face_id, "IndexFacesModelVersion": pack});
            if let Some(e) = &m.external_id {
                face["ExternalImageId"] = json!(e);
            }
            json!({"Similarity": rek_similarity(state, m.cosine), "Face": face})
        })
        .collect())
}

async fn search_faces(state: &AppState, p: &Params) -> AwsResult {
    let id = p.collection()?;
    usable(state, &id).await?;
    let face_id = p.required("FaceId")?;
    let max = p.count("MaxFaces", 1, 4096, 80)? as usize;
    let threshold = p.percent("FaceMatchThreshold", 80.0)?;
    let probe = state.face_api.embedding_of(&id, &face_id).ok_or_else(|| {
        AwsError::invalid(format!(
            "The face id: {face_id} does not exist in collection {id}"
        ))
    })?;
    let matches = search(state, &id, probe, threshold, max, Some(face_id.clone())).await?;
    Ok(json!({
        "SearchedFaceId": face_id,
        "FaceMatches": matches,
        "FaceModelVersion": model_version(state),
    }))
}

async fn search_faces_by_image(state: &AppState, mut p: Params) -> AwsResult {
    let id = p.collection()?;
    usable(state, &id).await?;
    let max = p.count("MaxFaces", 1, 4096, 80)? as usize;
    let threshold = p.percent("FaceMatchThreshold", 80.0)?;
    let filter = p.quality_filter(QualityFilter::None)?;
    let image = p.image("Image")?;
    let analysed = analyse(state, image, true, false).await?;
    // The largest face is searched (faces come largest first).
    let face = analysed.faces.first().ok_or_else(|| AwsError::invalid(NO_FACE))?;
    if !Found(face.clone()).issues(filter).is_empty() {
        return Err(AwsError::invalid(
            "The largest face in the image does not pass the QualityFilter",
        ));
    }
    let probe = face
        .embedding
        .as_ref()
        .ok_or_else(|| Problem::internal("face without embedding"))?;
    let matches = search(state, &id, probe.as_slice().to_vec(), threshold, max, None).await?;
    Ok(json!({
        "SearchedFaceBoundingBox": bbox_ratio(face, analysed.width, analysed.height),
        "SearchedFaceConfidence": confidence(face),
        "FaceMatches": matches,
        "FaceModelVersion": model_version(state),
    }))
}

// ---------------------------------------------------------------- images only

fn compared_face(face: &Face, w: u32, h: u32) -> Value {
    let mut v = face_detail(face, w, h, false);
    if let Some(o) = v.as_object_mut() {
        o.retain(|k, _| {
            matches!(
                k.as_str(),
                "BoundingBox" | "Confidence" | "Landmarks" | "Pose" | "Quality"
            )
        });
    }
    v
}

async fn compare_faces(state: &AppState, mut p: Params) -> AwsResult {
    let threshold = p.percent("SimilarityThreshold", 80.0)?;
    let filter = p.quality_filter(QualityFilter::None)?;
    let source = p.image("SourceImage")?;
    let target = p.image("TargetImage")?;
    let (source, target) = tokio::try_join!(
        analyse(state, source, true, false),
        analyse(state, target, true, false)
    )?;
    let sface = source
        .faces
        .first()
        .ok_or_else(|| AwsError::invalid(format!("{NO_FACE} (source image)")))?;
    let Some(probe) = sface.embedding.as_ref() else {
        return Err(Problem::internal("face without embedding").into());
    };
    let mut matched = Vec::new();
    let mut unmatched = Vec::new();
    for f in target
        .faces
        .iter()
        .filter(|f| Found((*f).clone()).issues(filter).is_empty())
    {
        let Some(e) = f.embedding.as_ref() else { continue };
        let sim = rek_similarity(state, probe.cosine(e));
        let face = compared_face(f, target.width, target.height);
        if sim >= threshold - 1e-6 {
            matched.push((sim, json!({"Similarity": sim, "Face": face})));
        } else {
            unmatched.push((sim, face));
        }
    }
    matched.sort_by(|a, b| b.0.total_cmp(&a.0));
    unmatched.sort_by(|a, b| b.0.total_cmp(&a.0));
    Ok(json!({
        "SourceImageFace": {
            "BoundingBox": bbox_ratio(sface, source.width, source.height),
            "Confidence": confidence(sface),
        },
        "FaceMatches": matched.into_iter().map(|m| m.1).collect::<Vec<_>>(),
        "UnmatchedFaces": unmatched.into_iter().map(|m| m.1).collect::<Vec<_>>(),
    }))
}

async fn detect_faces(state: &AppState, mut p: Params) -> AwsResult {
    let all = p.all_attributes("Attributes")?;
    let image = p.image("Image")?;
    let analysed = analyse(state, image, false, all).await?;
    let faces: Vec<Value> = analysed
        .faces
        .iter()
        .map(|f| face_detail(f, analysed.width, analysed.height, all))
        .collect();
    Ok(json!({"FaceDetails": faces}))
}

// ---------------------------------------------------------------- liveness

fn liveness(state: &AppState) -> Result<&crate::server::liveness::LivenessService, AwsError> {
    state.face.as_ref().map(|f| &f.liveness).ok_or_else(|| {
        AwsError::from(
            Problem::unavailable("liveness is off on this server (models missing or FACEGATE_FACE=off)")
                .with_retry_after(60),
        )
    })
}

/// A facegate check id (16 random bytes, base64url) as the UUID Rekognition's SessionId is.
fn session_uuid(id: &str) -> Option<String> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let b = URL_SAFE_NO_PAD
        .decode(id.as_bytes())
        .ok()
        .filter(|b| b.len() == 16)?;
    let h = sigv4::hex(&b);
    Some(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

/// The facegate check id of a SessionId.
fn session_id(uuid: &str) -> Option<String> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let hex: String = uuid.chars().filter(|c| *c != '-').collect();
    if uuid.len() != 36 || hex.len() != 32 {
        return None;
    }
    let b: Option<Vec<u8>> = (0..16)
        .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    Some(URL_SAFE_NO_PAD.encode(b?))
}

/// CreateFaceLivenessSession: a facegate liveness check owned by the key's client. Beside AWS's
/// `SessionId` the answer carries facegate's `Challenge` and first `FrameToken`: the frames go to
/// `/v1/liveness/sessions/{SessionId}/frames` (docs/rekognition.md).
async fn create_liveness(state: &AppState, p: &Params, caller: &ApiCaller) -> AwsResult {
    let crt = p.string("ClientRequestToken")?;
    if let Some(t) = &crt
        && (t.is_empty() || t.len() > 64 || !t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    {
        return Err(AwsError::invalid(
            "ClientRequestToken must be 1-64 letters, digits or '-'",
        ));
    }
    if p.get("KmsKeyId").is_some() {
        return Err(AwsError::invalid(
            "KmsKeyId is not supported: facegate keeps no audit images to encrypt",
        ));
    }
    let live = liveness(state)?;
    let started = live
        .start(
            crate::server::liveness::Owner::Client(caller.client_id.clone()),
            crt,
            true,
        )
        .map_err(|e| AwsError::from(Problem::unavailable(e.to_string()).with_retry_after(60)))?;
    if !started.existing && !crate::server::liveness_share::push(state, live, &started.id, None).await {
        return Err(Problem::unavailable("the session could not be stored")
            .with_retry_after(5)
            .into());
    }
    let uuid =
        session_uuid(&started.id).ok_or_else(|| Problem::internal("a liveness check id is not 16 bytes"))?;
    let mut v = json!({
        "SessionId": uuid,
        "FacegateSessionId": started.id,
        "Challenge": {"Kind": started.kind, "Params": started.params, "Prompt": started.prompt},
        "ExpiresIn": started.expires_in,
    });
    if let Some(t) = started.frame_token {
        v["FrameToken"] = json!(t);
    }
    Ok(v)
}

async fn liveness_results(state: &AppState, p: &Params, caller: &ApiCaller) -> AwsResult {
    let uuid = p.required("SessionId")?;
    let not_found = || {
        AwsError::new(
            StatusCode::BAD_REQUEST,
            "SessionNotFoundException",
            format!("The session {uuid} does not exist (or it expired long ago)"),
        )
    };
    let id = session_id(&uuid).ok_or_else(not_found)?;
    let live = liveness(state)?;
    let owner = crate::server::liveness::Owner::Client(caller.client_id.clone());
    crate::server::liveness_share::pull(state, live, &id).await;
    let r = live.report(&owner, &id).map_err(|_| not_found())?;
    let mut v = json!({"SessionId": uuid, "Status": r.status});
    if let Some(d) = &r.decision {
        v["Confidence"] = json!(f64::from(d.confidence));
    }
    if let Some(img) = &r.reference {
        v["ReferenceImage"] = json!({"Bytes": STANDARD.encode(img)});
    }
    v["AuditImages"] = json!([]);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_similarity_map_is_monotone_and_pins_90_to_facegates_strict_default() {
        assert_eq!(to_rekognition(80.0), 90.0);
        assert_eq!(from_rekognition(90.0), 80.0);
        assert_eq!(to_rekognition(70.0), 80.0);
        assert_eq!(from_rekognition(99.0), 90.0);
        let mut last = -1.0;
        for i in 0..=1000 {
            let s = f64::from(i) / 10.0;
            let r = to_rekognition(s);
            assert!(r >= last);
            assert!((from_rekognition(r) - s).abs() < 1e-9, "{s}");
            last = r;
        }
    }

    #[test]
    fn session_ids_are_uuids_both_ways() {
        let id = facegate_core::secret::random_token(16);
        let uuid = session_uuid(&id).unwrap();
        assert_eq!(uuid.len(), 36);
        assert_eq!(session_id(&uuid), Some(id));
        assert_eq!(session_id("not-a-uuid"), None);
        assert_eq!(session_id("zzzzzzzz-0000-0000-0000-000000000000"), None);
    }

    #[test]
    fn every_operation_has_a_scope() {
        for op in [
            "CreateCollection",
            "DeleteCollection",
            "ListCollections",
            "DescribeCollection",
            "IndexFaces",
            "ListFaces",
            "DeleteFaces",
            "SearchFaces",
            "SearchFacesByImage",
            "CompareFaces",
            "DetectFaces",
            "CreateFaceLivenessSession",
            "GetFaceLivenessSessionResults",
        ] {
            assert!(scope_of(op).is_some(), "{op}");
        }
        assert_eq!(scope_of("DeleteUser"), None);
    }
}
