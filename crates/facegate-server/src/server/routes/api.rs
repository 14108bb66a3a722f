//! The `/v1` face API: thin handlers. Each authorizes (token, scope, rate limit, quota), reads its
//! input (JSON with base64 images, or multipart), makes one call into `face_api`, and answers JSON;
//! every error is `application/problem+json` (docs/face-api.md). The OpenAPI document is
//! `openapi.json` beside this file, served as is.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, post};
use base64::Engine;
use serde_json::{Map, Value, json};

use crate::server::api_auth::authorize;
use crate::server::face_api::{
    Analysed, FaceApi, IndexRequest, QualityFilter, bbox_json, keypoints_json, pose_json, quality_json,
    valid_external_id,
};
use crate::server::problem::Problem;
use crate::server::state::AppState;

/// The OpenAPI 3.1 document of these routes.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Default similarity threshold (0-100) of searches and comparisons: FMR 1e-5.
const DEFAULT_THRESHOLD: f64 = 80.0;

pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/collections", get(list_collections).post(create_collection))
        .route(
            "/v1/collections/{id}",
            get(describe_collection).delete(delete_collection),
        )
        .route("/v1/collections/{id}/faces", get(list_faces).post(index_faces))
        .route("/v1/collections/{id}/faces/delete", post(delete_faces))
        .route("/v1/collections/{id}/faces/{face_id}", delete(delete_face))
        .route(
            "/v1/collections/{id}/faces/{face_id}/search",
            post(search_by_face),
        )
        .route("/v1/collections/{id}/search", post(search_by_image))
        .route("/v1/compare", post(compare))
        .route("/v1/detect", post(detect))
        // Anything else under /v1 is a problem+json 404 too, not a bare one.
        .route("/v1/{*rest}", any(unknown_route))
        // Bodies are read with this limit (and a too-large body answered as a problem) in `read_input`.
        .layer(DefaultBodyLimit::max(state.settings.api.max_body))
}

async fn openapi() -> Response {
    let mut r = OPENAPI.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

type ApiResult = Result<Response, Problem>;

async fn unknown_route(uri: axum::http::Uri) -> Problem {
    Problem::not_found(
        "not-found",
        "No such endpoint",
        format!("{} is not a face API endpoint (see /v1/openapi.json)", uri.path()),
    )
}

fn ok(v: Value) -> ApiResult {
    Ok((StatusCode::OK, axum::Json(v)).into_response())
}

// ---------------------------------------------------------------- input

/// A request's images (decoded from base64 or taken from file parts) and its other parameters.
struct Input {
    images: HashMap<String, Vec<u8>>,
    params: Map<String, Value>,
}

impl Input {
    fn image(&mut self, name: &str) -> Result<Vec<u8>, Problem> {
        self.images
            .remove(name)
            .filter(|b| !b.is_empty())
            .ok_or_else(|| Problem::invalid_request(format!("the request has no {name}")))
    }

    fn number(&self, name: &str) -> Result<Option<f64>, Problem> {
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

    fn string(&self, name: &str) -> Result<Option<String>, Problem> {
        match self.params.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(Problem::invalid_request(format!("{name} must be a string"))),
        }
    }

    /// A whole number in `range`, or `default`.
    fn count(
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
    fn threshold(&self) -> Result<f32, Problem> {
        match self.number("threshold")? {
            None => Ok(DEFAULT_THRESHOLD as f32),
            Some(t) if (0.0..=100.0).contains(&t) => Ok(t as f32),
            Some(_) => Err(Problem::invalid_request(
                "threshold is a similarity from 0 to 100",
            )),
        }
    }

    /// Refuses parameters the endpoint does not know (a typo should not be silently ignored).
    fn only(&self, allowed: &[&str]) -> Result<(), Problem> {
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

/// Reads a JSON or multipart body within the size limit. `image_fields` name the images.
async fn read_input(
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

fn service(state: &AppState) -> Result<std::sync::Arc<facegate_vision::FacePipeline>, Problem> {
    state.face.as_ref().map(|f| f.pipeline()).ok_or_else(|| {
        Problem::unavailable("the face pipeline is off on this server (models missing or FACEGATE_FACE=off)")
            .with_retry_after(60)
    })
}

async fn analyse(
    state: &AppState,
    image: Vec<u8>,
    embed: bool,
    landmarks: bool,
) -> Result<Analysed, Problem> {
    FaceApi::analyse(
        service(state)?,
        image,
        state.settings.api.max_image,
        embed,
        landmarks,
    )
    .await
}

fn collection_json(c: &facegate_store::ApiCollection) -> Value {
    json!({
        "collectionId": c.id,
        "faceCount": c.face_count,
        "modelPack": c.pack,
        "createdAt": c.created_at,
    })
}

// ---------------------------------------------------------------- collections

async fn create_collection(State(state): State<AppState>, req: Request) -> ApiResult {
    authorize(&state, req.headers(), "faces:write").await?;
    let input = read_input(&state, req, &[], false).await?;
    input.only(&["collectionId"])?;
    let id = input
        .string("collectionId")?
        .ok_or_else(|| Problem::invalid_request("collectionId is required"))?;
    let c = state.face_api.create_collection(&state.store, &id).await?;
    Ok((StatusCode::CREATED, axum::Json(collection_json(&c))).into_response())
}

async fn list_collections(State(state): State<AppState>, headers: axum::http::HeaderMap) -> ApiResult {
    authorize(&state, &headers, "faces:read").await?;
    let list: Vec<Value> = state
        .store
        .collections()
        .await?
        .iter()
        .map(collection_json)
        .collect();
    ok(json!({ "collections": list }))
}

async fn describe_collection(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> ApiResult {
    authorize(&state, &headers, "faces:read").await?;
    let c = state.face_api.collection(&state.store, &id).await?;
    let mut v = collection_json(&c);
    v["index"] = state.face_api.index_info(&id);
    ok(v)
}

async fn delete_collection(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> ApiResult {
    authorize(&state, &headers, "faces:write").await?;
    state.face_api.delete_collection(&state.store, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---------------------------------------------------------------- faces

async fn index_faces(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> ApiResult {
    authorize(&state, req.headers(), "faces:write").await?;
    state.face_api.usable_collection(&state.store, &id).await?;
    let mut input = read_input(&state, req, &["image"], false).await?;
    input.only(&["externalId", "maxFaces", "qualityFilter"])?;
    let external_id = input.string("externalId")?;
    if let Some(e) = &external_id
        && !valid_external_id(e)
    {
        return Err(Problem::invalid_request(
            "externalId must be 1-255 characters without control characters",
        ));
    }
    let max_faces = input.count("maxFaces", 1..=100, 100)?;
    let filter = match input.string("qualityFilter")? {
        None => QualityFilter::Low,
        Some(f) => QualityFilter::parse(&f)
            .ok_or_else(|| Problem::invalid_request("qualityFilter is one of none, low, medium, high"))?,
    };
    let image = input.image("image")?;
    let analysed = analyse(&state, image, true, false).await?;
    if analysed.faces.is_empty() {
        return Err(Problem::no_face(
            "no face was found in the image; nothing was indexed",
        ));
    }
    let (width, height) = (analysed.width, analysed.height);
    let out = state
        .face_api
        .index_faces(
            &state.store,
            &id,
            analysed,
            IndexRequest {
                external_id: external_id.as_deref(),
                max_faces,
                filter,
                import_sha256: None,
            },
        )
        .await?;
    let records: Vec<Value> = out
        .indexed
        .iter()
        .map(|(r, f)| {
            json!({
                "faceId": r.id,
                "externalId": r.external_id,
                "boundingBox": r.bbox,
                "confidence": r.quality["confidence"],
                "pose": pose_json(f),
                "quality": r.quality,
            })
        })
        .collect();
    let unindexed: Vec<Value> = out
        .unindexed
        .iter()
        .map(|(f, reasons)| {
            json!({
                "reasons": reasons,
                "boundingBox": bbox_json(f),
                "pose": pose_json(f),
                "quality": quality_json(f),
            })
        })
        .collect();
    ok(json!({
        "faceRecords": records,
        "unindexedFaces": unindexed,
        "modelPack": state.face_api.pack(),
        "image": {"width": width, "height": height},
    }))
}

async fn list_faces(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
) -> ApiResult {
    authorize(&state, &headers, "faces:read").await?;
    state.face_api.collection(&state.store, &id).await?;
    let limit = match q.get("limit") {
        None => 100,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=1000).contains(l))
            .ok_or_else(|| Problem::invalid_request("limit must be a whole number from 1 to 1000"))?,
    };
    let after = q.get("nextToken").map(String::as_str).unwrap_or("");
    let faces = state.store.api_faces_page(&id, after, limit).await?;
    let next = (faces.len() as i64 == limit)
        .then(|| faces.last().map(|f| f.id.clone()))
        .flatten();
    let list: Vec<Value> = faces
        .iter()
        .map(|f| {
            json!({
                "faceId": f.id,
                "externalId": f.external_id,
                "boundingBox": f.bbox,
                "quality": f.quality,
                "createdAt": f.created_at,
            })
        })
        .collect();
    ok(json!({ "faces": list, "nextToken": next }))
}

async fn delete_faces(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> ApiResult {
    authorize(&state, req.headers(), "faces:write").await?;
    state.face_api.collection(&state.store, &id).await?;
    let input = read_input(&state, req, &[], false).await?;
    input.only(&["faceIds"])?;
    let ids: Vec<String> = match input.params.get("faceIds") {
        Some(Value::Array(a)) if !a.is_empty() && a.len() <= 4096 => a
            .iter()
            .map(|v| v.as_str().map(String::from))
            .collect::<Option<_>>()
            .ok_or_else(|| Problem::invalid_request("faceIds must be strings"))?,
        _ => {
            return Err(Problem::invalid_request(
                "faceIds must be a list of 1 to 4096 face ids",
            ));
        }
    };
    let deleted = state.face_api.delete_faces(&state.store, &id, &ids).await?;
    let unknown: Vec<&String> = ids.iter().filter(|i| !deleted.contains(i)).collect();
    ok(json!({ "deletedFaces": deleted, "unknownFaces": unknown }))
}

async fn delete_face(
    State(state): State<AppState>,
    Path((id, face_id)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
) -> ApiResult {
    authorize(&state, &headers, "faces:write").await?;
    state.face_api.collection(&state.store, &id).await?;
    let deleted = state
        .face_api
        .delete_faces(&state.store, &id, std::slice::from_ref(&face_id))
        .await?;
    if deleted.is_empty() {
        return Err(face_not_found(&id, &face_id));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn face_not_found(collection: &str, face: &str) -> Problem {
    Problem::not_found(
        "face-not-found",
        "Unknown face",
        format!("collection {collection} has no face {face:?}"),
    )
}

/// Searches off the async runtime: an exact scan of a large collection takes milliseconds.
async fn search(
    state: &AppState,
    collection: &str,
    probe: Vec<f32>,
    threshold: f32,
    max: usize,
    exclude: Option<String>,
) -> Result<Vec<crate::server::face_api::FaceMatch>, Problem> {
    let (state, collection) = (state.clone(), collection.to_string());
    tokio::task::spawn_blocking(move || {
        state
            .face_api
            .search(&collection, &probe, threshold, max, exclude.as_deref())
    })
    .await
    .map_err(Problem::internal)
}

fn matches_json(api: &FaceApi, matches: &[crate::server::face_api::FaceMatch]) -> Vec<Value> {
    matches
        .iter()
        .map(|m| {
            json!({
                "similarity": api.similarity(m.cosine),
                "face": {"faceId": m.face_id, "externalId": m.external_id},
            })
        })
        .collect()
}

async fn search_by_face(
    State(state): State<AppState>,
    Path((id, face_id)): Path<(String, String)>,
    req: Request,
) -> ApiResult {
    authorize(&state, req.headers(), "faces:read").await?;
    state.face_api.usable_collection(&state.store, &id).await?;
    let input = read_input(&state, req, &[], true).await?;
    input.only(&["threshold", "maxFaces"])?;
    let threshold = input.threshold()?;
    let max = input.count("maxFaces", 1..=1000, 10)?;
    let probe = state
        .face_api
        .embedding_of(&id, &face_id)
        .ok_or_else(|| face_not_found(&id, &face_id))?;
    let matches = search(&state, &id, probe, threshold, max, Some(face_id.clone())).await?;
    ok(json!({
        "searchedFaceId": face_id,
        "faceMatches": matches_json(&state.face_api, &matches),
        "modelPack": state.face_api.pack(),
    }))
}

async fn search_by_image(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> ApiResult {
    authorize(&state, req.headers(), "faces:read").await?;
    state.face_api.usable_collection(&state.store, &id).await?;
    let mut input = read_input(&state, req, &["image"], false).await?;
    input.only(&["threshold", "maxFaces"])?;
    let threshold = input.threshold()?;
    let max = input.count("maxFaces", 1..=1000, 10)?;
    let image = input.image("image")?;
    let analysed = analyse(&state, image, true, false).await?;
    // The largest face is searched (faces come largest first).
    let face = analysed
        .faces
        .first()
        .ok_or_else(|| Problem::no_face("no face was found in the image"))?;
    let probe = face
        .embedding
        .as_ref()
        .ok_or_else(|| Problem::internal("face without embedding"))?;
    let matches = search(&state, &id, probe.as_slice().to_vec(), threshold, max, None).await?;
    ok(json!({
        "searchedFace": {"boundingBox": bbox_json(face), "confidence": quality_json(face)["confidence"]},
        "facesInImage": analysed.faces.len(),
        "faceMatches": matches_json(&state.face_api, &matches),
        "modelPack": state.face_api.pack(),
    }))
}

// ---------------------------------------------------------------- images only

async fn compare(State(state): State<AppState>, req: Request) -> ApiResult {
    authorize(&state, req.headers(), "faces:read").await?;
    let mut input = read_input(&state, req, &["sourceImage", "targetImage"], false).await?;
    input.only(&["threshold"])?;
    let threshold = input.threshold()?;
    let source = input.image("sourceImage")?;
    let target = input.image("targetImage")?;
    let source = analyse(&state, source, true, false).await?;
    let target = analyse(&state, target, true, false).await?;
    let sface = source
        .faces
        .first()
        .ok_or_else(|| Problem::no_face("no face was found in the source image"))?;
    let Some(probe) = sface.embedding.as_ref() else {
        return Err(Problem::internal("face without embedding"));
    };
    let api = &state.face_api;
    let mut matched = Vec::new();
    let mut unmatched = Vec::new();
    for f in &target.faces {
        let Some(e) = f.embedding.as_ref() else { continue };
        let cos = probe.cosine(e);
        let sim = api.similarity(cos);
        let v = json!({
            "similarity": sim,
            "face": {"boundingBox": bbox_json(f), "confidence": quality_json(f)["confidence"]},
        });
        if sim >= f64::from(threshold) - 1e-3 {
            matched.push((sim, v));
        } else {
            unmatched.push((sim, v));
        }
    }
    matched.sort_by(|a, b| b.0.total_cmp(&a.0));
    unmatched.sort_by(|a, b| b.0.total_cmp(&a.0));
    ok(json!({
        "sourceFace": {"boundingBox": bbox_json(sface), "confidence": quality_json(sface)["confidence"]},
        "faceMatches": matched.into_iter().map(|m| m.1).collect::<Vec<_>>(),
        "unmatchedFaces": unmatched.into_iter().map(|m| m.1).collect::<Vec<_>>(),
        "modelPack": api.pack(),
    }))
}

async fn detect(State(state): State<AppState>, req: Request) -> ApiResult {
    authorize(&state, req.headers(), "faces:read").await?;
    let mut input = read_input(&state, req, &["image"], false).await?;
    input.only(&[])?;
    let image = input.image("image")?;
    let analysed = analyse(&state, image, false, true).await?;
    let faces: Vec<Value> = analysed
        .faces
        .iter()
        .map(|f| {
            json!({
                "boundingBox": bbox_json(f),
                "confidence": quality_json(f)["confidence"],
                "keypoints": keypoints_json(f),
                "pose": pose_json(f),
                "quality": quality_json(f),
            })
        })
        .collect();
    ok(json!({
        "faces": faces,
        "image": {"width": analysed.width, "height": analysed.height},
        "modelPack": state.face_api.pack(),
    }))
}
