//! The `/v1` face API: thin handlers. Each authorizes (token, scope, rate limit, quota), reads its
//! input (JSON with base64 images, or multipart), makes one call into `face_api`, and answers JSON;
//! every error is `application/problem+json` (docs/face-api.md). The OpenAPI document is
//! `openapi.json` beside this file, served as is.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, post};
use serde_json::{Value, json};

use super::api_input::{ApiInput, OneImage, OptionalParams, Params, TwoImages};
use crate::server::api_auth::{Bearer, FacesRead, FacesWrite};
use crate::server::face_api::{
    Analysed, FaceApi, IndexRequest, QualityFilter, bbox_json, keypoints_json, pose_json, quality_json,
    valid_external_id,
};
use crate::server::problem::Problem;
use crate::server::state::AppState;

/// The OpenAPI 3.1 document of these routes.
pub const OPENAPI: &str = include_str!("openapi.json");

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
        // A known path with a method it does not take: a problem+json 405 too.
        .method_not_allowed_fallback(method_not_allowed)
        // Bodies are read with this limit (and a too-large body answered as a problem) in `read_input`.
        .layer(DefaultBodyLimit::max(state.settings.api.max_body))
}

/// The answer to a method a `/v1` path does not take.
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        format!("{} does not take {method} (see /v1/openapi.json)", uri.path()),
    )
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

fn service(state: &AppState) -> Result<std::sync::Arc<facegate_vision::FaceEngine>, Problem> {
    state.face.as_ref().map(|f| f.engine()).ok_or_else(|| {
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
    crate::server::face_api::analyse(
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

async fn create_collection(
    State(state): State<AppState>,
    _: Bearer<FacesWrite>,
    ApiInput(input, _): ApiInput<Params>,
) -> ApiResult {
    input.only(&["collectionId"])?;
    let id = input
        .string("collectionId")?
        .ok_or_else(|| Problem::invalid_request("collectionId is required"))?;
    let c = state
        .face_api
        .create_collection(&state.store, &id, crate::server::now())
        .await?;
    Ok((StatusCode::CREATED, axum::Json(collection_json(&c))).into_response())
}

async fn list_collections(State(state): State<AppState>, _: Bearer<FacesRead>) -> ApiResult {
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
    _: Bearer<FacesRead>,
    Path(id): Path<String>,
) -> ApiResult {
    let c = state.face_api.collection(&state.store, &id).await?;
    let mut v = collection_json(&c);
    v["index"] = state.face_api.index_info(&id);
    ok(v)
}

async fn delete_collection(
    State(state): State<AppState>,
    _: Bearer<FacesWrite>,
    Path(id): Path<String>,
) -> ApiResult {
    state.face_api.delete_collection(&state.store, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---------------------------------------------------------------- faces

async fn index_faces(
    State(state): State<AppState>,
    _: Bearer<FacesWrite>,
    Path(id): Path<String>,
    ApiInput(mut input, _): ApiInput<OneImage>,
) -> ApiResult {
    state.face_api.usable_collection(&state.store, &id).await?;
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
            analysed.found(),
            IndexRequest {
                external_id: external_id.as_deref(),
                max_faces,
                filter,
                import_sha256: None,
            },
            crate::server::now(),
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
    _: Bearer<FacesRead>,
) -> ApiResult {
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

async fn delete_faces(
    State(state): State<AppState>,
    _: Bearer<FacesWrite>,
    Path(id): Path<String>,
    ApiInput(input, _): ApiInput<Params>,
) -> ApiResult {
    state.face_api.collection(&state.store, &id).await?;
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
    _: Bearer<FacesWrite>,
) -> ApiResult {
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
    _: Bearer<FacesRead>,
    ApiInput(input, _): ApiInput<OptionalParams>,
) -> ApiResult {
    state.face_api.usable_collection(&state.store, &id).await?;
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

async fn search_by_image(
    State(state): State<AppState>,
    _: Bearer<FacesRead>,
    Path(id): Path<String>,
    ApiInput(mut input, _): ApiInput<OneImage>,
) -> ApiResult {
    state.face_api.usable_collection(&state.store, &id).await?;
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

async fn compare(
    State(state): State<AppState>,
    _: Bearer<FacesRead>,
    ApiInput(mut input, _): ApiInput<TwoImages>,
) -> ApiResult {
    input.only(&["threshold"])?;
    let threshold = input.threshold()?;
    let source = input.image("sourceImage")?;
    let target = input.image("targetImage")?;
    // Both images at once: two workers halve the wait, and when one is shed the other is dropped
    // (a job whose caller has gone is skipped).
    let (source, target) = tokio::try_join!(
        analyse(&state, source, true, false),
        analyse(&state, target, true, false)
    )?;
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

async fn detect(
    State(state): State<AppState>,
    _: Bearer<FacesRead>,
    ApiInput(mut input, _): ApiInput<OneImage>,
) -> ApiResult {
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
