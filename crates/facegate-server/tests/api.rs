//! The /v1 face API, black-box: every endpoint with real photos from ../shared/testdata/faces, bad input
//! (no face, corrupt image, too large, wrong content type, unknown collection, unknown parameters),
//! auth (no token, wrong token, missing scope), rate limit and monthly quota, the OpenAPI document
//! against the router, exact vs approximate search on the real photos, and `facegate faces import`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use base64::Engine;
use common::{TestApp, spawn_with};
use facegate_server::server::{self, Settings};
use serde_json::{Value, json};

fn testdata() -> PathBuf {
    std::env::var_os("FACEGATE_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata"))
}

fn photo(rel: &str) -> Vec<u8> {
    std::fs::read(testdata().join("faces").join(rel)).unwrap()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn png(img: &image::RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

fn no_face_png() -> Vec<u8> {
    png(&image::RgbImage::from_fn(640, 480, |x, y| {
        image::Rgb([(x / 3) as u8, (y / 2) as u8, 120])
    }))
}

/// Fails under FACEGATE_REQUIRE_MODELS=1, else says it skips.
fn models_missing(app: &TestApp) -> bool {
    if app.state.face.is_some() {
        return false;
    }
    if std::env::var("FACEGATE_REQUIRE_MODELS").as_deref() == Ok("1") {
        panic!(
            "the face API needs the default model pack (FACEGATE_REQUIRE_MODELS=1): run facegate models fetch"
        );
    }
    eprintln!("SKIPPED: default model pack not installed (facegate models fetch)");
    true
}

async fn face_app(adjust: impl FnOnce(&mut Settings)) -> Option<TestApp> {
    let app = spawn_with(|s| {
        s.face.enabled = true;
        adjust(s);
    })
    .await;
    (!models_missing(&app)).then_some(app)
}

/// A client_credentials token with `scope`.
async fn token(app: &TestApp, scope: &str) -> String {
    token_at(&app.issuer, &app.state, scope).await
}

async fn token_at(issuer: &str, state: &facegate_server::server::AppState, scope: &str) -> String {
    common::client_token(issuer, state, scope).await.1
}

struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    fn new(app: &TestApp, token: String) -> Self {
        Self::at(&app.issuer, token)
    }

    fn at(base: &str, token: String) -> Self {
        Self {
            base: base.to_string(),
            token,
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send(&self, rb: reqwest::RequestBuilder) -> (u16, Value) {
        let r = rb.bearer_auth(&self.token).send().await.unwrap();
        let status = r.status().as_u16();
        if status >= 400 {
            let ct = r.headers()["content-type"].to_str().unwrap().to_string();
            assert_eq!(ct, "application/problem+json", "status {status}");
        }
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.http.get(self.url(path))).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(self.http.post(self.url(path)).json(&body)).await
    }

    async fn delete(&self, path: &str) -> (u16, Value) {
        self.send(self.http.delete(self.url(path))).await
    }

    async fn multipart(
        &self,
        path: &str,
        images: &[(&str, Vec<u8>)],
        fields: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut form = reqwest::multipart::Form::new();
        for (name, bytes) in images {
            form = form.part(
                name.to_string(),
                reqwest::multipart::Part::bytes(bytes.clone()).file_name("photo.jpg"),
            );
        }
        for (k, v) in fields {
            form = form.text(k.to_string(), v.to_string());
        }
        self.send(self.http.post(self.url(path)).multipart(form)).await
    }

    async fn index(&self, collection: &str, rel: &str, external: &str) -> Value {
        let (s, v) = self
            .post(
                &format!("/v1/collections/{collection}/faces"),
                json!({"image": b64(&photo(rel)), "externalId": external}),
            )
            .await;
        assert_eq!(s, 200, "{rel}: {v}");
        v
    }
}

fn problem_type(v: &Value) -> &str {
    v["type"]
        .as_str()
        .unwrap_or("")
        .trim_start_matches("https://facegate.dev/problems/")
}

/// Two faces side by side: `big` at its size, `small` scaled to half its height.
fn two_faces(big: &str, small: &str) -> image::RgbImage {
    let a = image::load_from_memory(&photo(big)).unwrap().to_rgb8();
    let a = image::imageops::resize(
        &a,
        400,
        400 * a.height() / a.width(),
        image::imageops::FilterType::Triangle,
    );
    let b = image::load_from_memory(&photo(small)).unwrap().to_rgb8();
    let b = image::imageops::resize(
        &b,
        200,
        200 * b.height() / b.width(),
        image::imageops::FilterType::Triangle,
    );
    let mut out = image::RgbImage::from_pixel(640, a.height().max(b.height()), image::Rgb([128, 128, 128]));
    image::imageops::replace(&mut out, &a, 0, 0);
    image::imageops::replace(&mut out, &b, 420, 0);
    out
}

#[tokio::test]
async fn collections_index_search_compare_and_detect() {
    let Some(app) = face_app(|s| s.api.burst = 1000).await else {
        return;
    };
    let api = Api::new(&app, token(&app, "faces:read faces:write").await);

    // Collections.
    let (s, c) = api
        .post("/v1/collections", json!({"collectionId": "staff"}))
        .await;
    assert_eq!(s, 201, "{c}");
    assert_eq!(c["modelPack"], "insightface-s");
    assert_eq!(c["faceCount"], 0);
    let (s, c) = api
        .post("/v1/collections", json!({"collectionId": "staff"}))
        .await;
    assert_eq!((s, problem_type(&c)), (409, "collection-exists"));
    let (s, c) = api
        .post("/v1/collections", json!({"collectionId": "no/slash"}))
        .await;
    assert_eq!((s, problem_type(&c)), (400, "invalid-request"));
    let (s, c) = api
        .post("/v1/collections", json!({"collectionId": "other"}))
        .await;
    assert_eq!(s, 201, "{c}");

    // Index: JSON with base64, and multipart.
    let alice1 = api.index("staff", "deepface/person_img1/img1.jpg", "alice").await;
    let rec = &alice1["faceRecords"][0];
    assert_eq!(alice1["faceRecords"].as_array().unwrap().len(), 1, "{alice1}");
    assert_eq!(rec["externalId"], "alice");
    assert!(rec["boundingBox"]["width"].as_f64().unwrap() > 100.0, "{rec}");
    assert!(rec["quality"]["eyeDistancePx"].as_f64().unwrap() > 40.0);
    assert!(rec["confidence"].as_f64().unwrap() > 0.5);
    let alice_face = rec["faceId"].as_str().unwrap().to_string();
    let (s, v) = api
        .multipart(
            "/v1/collections/staff/faces",
            &[("image", photo("deepface/person_img1/img2.jpg"))],
            &[("externalId", "alice"), ("qualityFilter", "medium")],
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["faceRecords"][0]["externalId"], "alice");
    api.index("staff", "deepface/person_img3/img3.jpg", "bob").await;
    api.index("staff", "deepface/person_img3/img53.jpg", "bob").await;
    api.index("staff", "deepface/person_img8/img8.jpg", "carol").await;

    // maxFaces keeps the largest face; the other is reported with its reason.
    let pair = png(&two_faces(
        "deepface/person_img1/img10.jpg",
        "deepface/person_img3/img12.jpg",
    ));
    let (s, v) = api
        .post(
            "/v1/collections/other/faces",
            json!({"image": b64(&pair), "maxFaces": 1, "externalId": "pair"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["faceRecords"].as_array().unwrap().len(), 1, "{v}");
    assert!(
        v["faceRecords"][0]["boundingBox"]["left"].as_f64().unwrap() < 400.0,
        "largest first: {v}"
    );
    assert_eq!(v["unindexedFaces"][0]["reasons"], json!(["exceeds_max_faces"]));
    // qualityFilter=high refuses a 92x112 ORL crop (eyes ~30 px apart), saying why.
    let (s, v) = api
        .post(
            "/v1/collections/other/faces",
            json!({"image": b64(&photo("orl_att/s1/1.pgm")), "qualityFilter": "high"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["faceRecords"].as_array().unwrap().is_empty(), "{v}");
    assert!(
        v["unindexedFaces"][0]["reasons"]
            .as_array()
            .unwrap()
            .contains(&json!("too_small")),
        "{v}"
    );

    // Describe and list.
    let (s, d) = api.get("/v1/collections/staff").await;
    assert_eq!(s, 200);
    assert_eq!(d["faceCount"], 5);
    assert_eq!(d["index"]["kind"], "exact");
    let (_, l) = api.get("/v1/collections").await;
    let ids: Vec<&str> = l["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["collectionId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["other", "staff"]);
    let mut seen = BTreeSet::new();
    let mut next = String::new();
    loop {
        let (s, page) = api
            .get(&format!("/v1/collections/staff/faces?limit=2&nextToken={next}"))
            .await;
        assert_eq!(s, 200, "{page}");
        for f in page["faces"].as_array().unwrap() {
            assert!(f.get("embedding").is_none(), "embeddings are never returned");
            seen.insert(f["faceId"].as_str().unwrap().to_string());
        }
        match page["nextToken"].as_str() {
            Some(n) => next = n.to_string(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);

    // Search by image: another photo of alice finds alice's two faces, nobody else.
    let (s, v) = api
        .post(
            "/v1/collections/staff/search",
            json!({"image": b64(&photo("deepface/person_img1/img4.jpg"))}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let matches = v["faceMatches"].as_array().unwrap();
    assert_eq!(matches.len(), 2, "{v}");
    assert!(matches.iter().all(|m| m["face"]["externalId"] == "alice"));
    assert!(matches[0]["similarity"].as_f64().unwrap() >= matches[1]["similarity"].as_f64().unwrap());
    assert!(matches[1]["similarity"].as_f64().unwrap() >= 80.0);
    // With threshold 0 every face comes back, best first, impostors well below 80.
    let (_, v) = api
        .multipart(
            "/v1/collections/staff/search",
            &[("image", photo("deepface/person_img3/img54.jpg"))],
            &[("threshold", "0"), ("maxFaces", "10")],
        )
        .await;
    let all = v["faceMatches"].as_array().unwrap();
    assert_eq!(all.len(), 5, "{v}");
    assert_eq!(all[0]["face"]["externalId"], "bob");
    assert_eq!(all[1]["face"]["externalId"], "bob");
    assert!(all[2]["similarity"].as_f64().unwrap() < 80.0, "{v}");

    // Search by face id: alice's other face, not the face itself.
    let (s, v) = api
        .post(
            &format!("/v1/collections/staff/faces/{alice_face}/search"),
            json!({"maxFaces": 5}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let m = v["faceMatches"].as_array().unwrap();
    assert_eq!(m.len(), 1, "{v}");
    assert_eq!(m[0]["face"]["externalId"], "alice");
    assert_ne!(m[0]["face"]["faceId"], alice_face.as_str());
    let (s, v) = api
        .post("/v1/collections/staff/faces/nope/search", json!({}))
        .await;
    assert_eq!((s, problem_type(&v)), (404, "face-not-found"));

    // Compare: the same similarity scale as search.
    let (s, v) = api
        .post(
            "/v1/compare",
            json!({"sourceImage": b64(&photo("deepface/person_img1/img4.jpg")), "targetImage": b64(&pair)}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["faceMatches"].as_array().unwrap().len(), 1, "{v}");
    assert!(
        v["faceMatches"][0]["face"]["boundingBox"]["left"]
            .as_f64()
            .unwrap()
            < 400.0
    );
    assert_eq!(v["unmatchedFaces"].as_array().unwrap().len(), 1, "{v}");
    assert!(
        v["unmatchedFaces"][0]["similarity"].as_f64().unwrap() < 60.0,
        "{v}"
    );
    let (_, again) = api
        .multipart(
            "/v1/compare",
            &[
                ("sourceImage", photo("deepface/person_img1/img4.jpg")),
                ("targetImage", photo("deepface/person_img1/img1.jpg")),
            ],
            &[],
        )
        .await;
    let (_, searched) = api
        .post(
            "/v1/collections/staff/search",
            json!({"image": b64(&photo("deepface/person_img1/img4.jpg"))}),
        )
        .await;
    let by_search = searched["faceMatches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["face"]["faceId"] == alice_face.as_str())
        .unwrap()["similarity"]
        .as_f64()
        .unwrap();
    let by_compare = again["faceMatches"][0]["similarity"].as_f64().unwrap();
    assert!(
        (by_search - by_compare).abs() < 0.05,
        "{by_search} vs {by_compare}"
    );

    // Detect: both faces, largest first, with keypoints, pose and quality.
    let (s, v) = api.post("/v1/detect", json!({"image": b64(&pair)})).await;
    assert_eq!(s, 200, "{v}");
    let faces = v["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 2, "{v}");
    assert!(faces[0]["boundingBox"]["width"].as_f64() > faces[1]["boundingBox"]["width"].as_f64());
    assert_eq!(faces[0]["keypoints"].as_array().unwrap().len(), 5);
    assert!(faces[0]["pose"]["yaw"].as_f64().unwrap().abs() < 30.0, "{v}");
    assert!(faces[0]["quality"]["sharpness"].as_f64().is_some());
    let (s, v) = api
        .post("/v1/detect", json!({"image": b64(&no_face_png())}))
        .await;
    assert_eq!(s, 200);
    assert!(v["faces"].as_array().unwrap().is_empty());

    // Deleting faces.
    let (s, _) = api
        .delete(&format!("/v1/collections/staff/faces/{alice_face}"))
        .await;
    assert_eq!(s, 204);
    let (s, v) = api
        .delete(&format!("/v1/collections/staff/faces/{alice_face}"))
        .await;
    assert_eq!((s, problem_type(&v)), (404, "face-not-found"));
    let some: Vec<String> = seen
        .iter()
        .filter(|f| **f != alice_face)
        .take(2)
        .cloned()
        .collect();
    let (s, v) = api
        .post(
            "/v1/collections/staff/faces/delete",
            json!({"faceIds": [some[0], some[1], "missing"]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["deletedFaces"].as_array().unwrap().len(), 2);
    assert_eq!(v["unknownFaces"], json!(["missing"]));
    let (_, d) = api.get("/v1/collections/staff").await;
    assert_eq!(d["faceCount"], 2);
    // Deleted faces are gone from search too.
    let (_, v) = api
        .post(
            "/v1/collections/staff/search",
            json!({"image": b64(&photo("deepface/person_img1/img4.jpg")), "threshold": 0}),
        )
        .await;
    assert_eq!(v["faceMatches"].as_array().unwrap().len(), 2);

    // Deleting a collection.
    let (s, _) = api.delete("/v1/collections/staff").await;
    assert_eq!(s, 204);
    let (s, v) = api.get("/v1/collections/staff").await;
    assert_eq!((s, problem_type(&v)), (404, "collection-not-found"));
    let (s, v) = api.delete("/v1/collections/staff").await;
    assert_eq!((s, problem_type(&v)), (404, "collection-not-found"));
}

#[tokio::test]
async fn bad_input_is_answered_with_a_problem() {
    let Some(app) = face_app(|s| {
        s.api.max_body = 3 * 1024 * 1024;
        s.api.burst = 1000;
    })
    .await
    else {
        return;
    };
    let api = Api::new(&app, token(&app, "faces:read faces:write").await);
    assert_eq!(
        api.post("/v1/collections", json!({"collectionId": "c"})).await.0,
        201
    );
    let face = b64(&photo("deepface/person_img1/img10.jpg"));
    let truncated = b64(&photo("deepface/person_img1/img10.jpg")[..3000]);
    let cases: Vec<(&str, &str, Value, u16, &str)> = vec![
        (
            "no face",
            "/v1/collections/c/faces",
            json!({"image": b64(&no_face_png())}),
            422,
            "no-face",
        ),
        (
            "no face, search",
            "/v1/collections/c/search",
            json!({"image": b64(&no_face_png())}),
            422,
            "no-face",
        ),
        (
            "no face, compare",
            "/v1/compare",
            json!({"sourceImage": b64(&no_face_png()), "targetImage": face}),
            422,
            "no-face",
        ),
        (
            "corrupt image",
            "/v1/collections/c/faces",
            json!({"image": truncated}),
            400,
            "invalid-image",
        ),
        (
            "not an image",
            "/v1/detect",
            json!({"image": b64(b"hello, world")}),
            400,
            "invalid-image",
        ),
        (
            "not base64",
            "/v1/detect",
            json!({"image": "***"}),
            400,
            "invalid-request",
        ),
        (
            "image not a string",
            "/v1/detect",
            json!({"image": 5}),
            400,
            "invalid-request",
        ),
        (
            "no image",
            "/v1/collections/c/faces",
            json!({"externalId": "x"}),
            400,
            "invalid-request",
        ),
        (
            "unknown parameter",
            "/v1/collections/c/faces",
            json!({"image": face, "maxfaces": 1}),
            400,
            "invalid-request",
        ),
        (
            "bad maxFaces",
            "/v1/collections/c/faces",
            json!({"image": face, "maxFaces": 0}),
            400,
            "invalid-request",
        ),
        (
            "bad qualityFilter",
            "/v1/collections/c/faces",
            json!({"image": face, "qualityFilter": "auto"}),
            400,
            "invalid-request",
        ),
        (
            "bad threshold",
            "/v1/collections/c/search",
            json!({"image": face, "threshold": 101}),
            400,
            "invalid-request",
        ),
        (
            "unknown collection",
            "/v1/collections/nope/faces",
            json!({"image": face}),
            404,
            "collection-not-found",
        ),
        (
            "unknown collection, search",
            "/v1/collections/nope/search",
            json!({"image": face}),
            404,
            "collection-not-found",
        ),
        (
            "too large",
            "/v1/detect",
            json!({"image": b64(&vec![0u8; 3 * 1024 * 1024])}),
            413,
            "too-large",
        ),
    ];
    for (name, path, body, status, kind) in cases {
        let (s, v) = api.post(path, body).await;
        assert_eq!((s, problem_type(&v)), (status, kind), "{name}: {v}");
        assert_eq!(v["status"], status, "{name}");
        assert!(!v["detail"].as_str().unwrap().is_empty(), "{name}");
    }
    // Not JSON, wrong content type, malformed JSON, oversized multipart.
    let http = reqwest::Client::new();
    let send = |rb: reqwest::RequestBuilder| api.send(rb);
    let (s, v) = send(
        http.post(app.url("/v1/detect"))
            .header("content-type", "text/plain")
            .body("hello"),
    )
    .await;
    assert_eq!((s, problem_type(&v)), (415, "unsupported-media-type"), "{v}");
    let (s, v) = send(
        http.post(app.url("/v1/detect"))
            .header("content-type", "image/jpeg")
            .body(photo("deepface/person_img1/img10.jpg")),
    )
    .await;
    assert_eq!((s, problem_type(&v)), (415, "unsupported-media-type"), "{v}");
    let (s, v) = send(
        http.post(app.url("/v1/detect"))
            .header("content-type", "application/json")
            .body("{\"image\":"),
    )
    .await;
    assert_eq!((s, problem_type(&v)), (400, "invalid-request"), "{v}");
    let (s, v) = api
        .multipart("/v1/detect", &[("image", vec![7u8; 4 * 1024 * 1024])], &[])
        .await;
    assert_eq!((s, problem_type(&v)), (413, "too-large"), "{v}");
    // An image over the decoder's pixel limit (a 20000x20000 PNG header).
    let mut bomb = png(&image::RgbImage::new(64, 64));
    bomb[16..20].copy_from_slice(&20000u32.to_be_bytes());
    bomb[20..24].copy_from_slice(&20000u32.to_be_bytes());
    let (s, v) = api.post("/v1/detect", json!({"image": b64(&bomb)})).await;
    assert!(
        matches!((s, problem_type(&v)), (413, "too-large") | (400, "invalid-image")),
        "{s} {v}"
    );
    // A collection made by another model pack cannot be searched or added to with this one.
    app.state.store.create_collection("old", "open", 0).await.unwrap();
    let (s, v) = api
        .post("/v1/collections/old/faces", json!({"image": face}))
        .await;
    assert_eq!((s, problem_type(&v)), (409, "pack-mismatch"), "{v}");
    let (s, v) = api.get("/v1/collections/old").await;
    assert_eq!((s, v["modelPack"].as_str()), (200, Some("open")));
    // Nothing was indexed by any of this.
    let (_, d) = api.get("/v1/collections/c").await;
    assert_eq!(d["faceCount"], 0);
}

#[tokio::test]
async fn tokens_scopes_rate_limit_and_quota() {
    // No models needed: authorization comes first.
    let app = spawn_with(|s| {
        s.api.monthly_quota = 4;
        s.api.burst = 100;
    })
    .await;
    let http = reqwest::Client::new();
    let r = http.get(app.url("/v1/collections")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "https://facegate.dev/problems/invalid-token");
    let bogus = Api::new(&app, "not-a-token".into());
    let (s, v) = bogus.get("/v1/collections").await;
    assert_eq!((s, problem_type(&v)), (401, "invalid-token"));

    let reader = Api::new(&app, token(&app, "faces:read").await);
    let (s, v) = reader.post("/v1/collections", json!({"collectionId": "x"})).await;
    assert_eq!((s, problem_type(&v)), (403, "insufficient-scope"));
    assert_eq!(v["requiredScope"], "faces:write");
    let liveness_only = Api::new(&app, token(&app, "liveness").await);
    let (s, v) = liveness_only.get("/v1/collections").await;
    assert_eq!((s, problem_type(&v)), (403, "insufficient-scope"));
    // The face pipeline is off in this app: image endpoints say so (after authorization).
    let (s, v) = reader.post("/v1/detect", json!({"image": "AAAA"})).await;
    assert_eq!((s, problem_type(&v)), (503, "face-unavailable"), "{v}");

    // Quota: 4 requests a month for this client (the refused 403 above did not count).
    let (s, _) = reader.get("/v1/collections").await;
    assert_eq!(s, 200);
    let (s, _) = reader.get("/v1/collections").await;
    assert_eq!(s, 200);
    let (s, _) = reader.get("/v1/collections").await;
    assert_eq!(s, 200, "the fourth counted request");
    let r = http
        .get(app.url("/v1/collections"))
        .bearer_auth(&reader.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let retry: i64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry > 0 && retry <= 31 * 86_400, "until next month: {retry}");
    let v: Value = r.json().await.unwrap();
    assert_eq!(problem_type(&v), "quota-exceeded");
    // Other clients have their own quota, and a client's own limits override the defaults.
    let other = Api::new(&app, token(&app, "faces:read").await);
    assert_eq!(other.get("/v1/collections").await.0, 200);
    let (newest, generous_token) = common::client_token(&app.issuer, &app.state, "faces:read").await;
    let generous = Api::new(&app, generous_token);
    server::api_auth::set_client_limits(
        &app.state.store,
        &newest,
        &server::api_auth::ClientLimits {
            monthly_quota: Some(6),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    for _ in 0..6 {
        assert_eq!(
            generous.get("/v1/collections").await.0,
            200,
            "a quota of 6 for this client"
        );
    }
    assert_eq!(generous.get("/v1/collections").await.0, 429);

    // Rate limit: a burst of 3, then 0.5 a second.
    let app = spawn_with(|s| {
        s.api.rate_per_sec = 0.5;
        s.api.burst = 3;
    })
    .await;
    let api = Api::new(&app, token(&app, "faces:read").await);
    for _ in 0..3 {
        assert_eq!(api.get("/v1/collections").await.0, 200);
    }
    let r = http
        .get(app.url("/v1/collections"))
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "2");
    let v: Value = r.json().await.unwrap();
    assert_eq!(problem_type(&v), "rate-limited");
    let other = Api::new(&app, token(&app, "faces:read").await);
    assert_eq!(other.get("/v1/collections").await.0, 200, "limits are per client");
}

/// Every `.route(...)` of the /v1 routers (face API and liveness sessions), as (METHOD, path) with `{param}` names normalised.
fn router_routes() -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    let sources = [
        include_str!("../src/server/routes/api.rs"),
        include_str!("../src/server/routes/liveness_api.rs"),
    ];
    for chunk in sources.iter().flat_map(|src| src.split(".route(").skip(1)) {
        let path = chunk.split('"').nth(1).unwrap().to_string();
        // The handler calls end before the next `.route(` (the split) or the router's `.layer(`.
        let call = chunk.split(".layer(").next().unwrap();
        for m in ["get", "post", "delete", "put", "patch"] {
            if call.contains(&format!("{m}(")) {
                out.insert((m.to_uppercase(), normalise(&path)));
            }
        }
    }
    out
}

fn normalise(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') { "{}" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn openapi_document_matches_the_router() {
    let app = spawn_with(|_| {}).await;
    let r = reqwest::get(app.url("/v1/openapi.json")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let doc: Value = r.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in ["get", "post", "delete", "put", "patch"] {
            if item.get(m).is_some() {
                documented.insert((m.to_uppercase(), normalise(path)));
            }
        }
    }
    let routed = router_routes();
    assert!(routed.len() >= 12, "{routed:?}");
    assert_eq!(documented, routed, "openapi.json and the router differ");
    let r = reqwest::get(app.url("/v1/nothing/here")).await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    // A known path with a method it does not take.
    for path in ["/v1/compare", "/v1/liveness/sessions"] {
        let r = reqwest::Client::new().delete(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 405, "{path}");
        assert_eq!(r.headers()["content-type"], "application/problem+json", "{path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["type"], "https://facegate.dev/problems/method-not-allowed");
    }
    // And the server really answers each documented operation (not 404/405).
    let http = reqwest::Client::new();
    for (m, path) in &documented {
        let url = app.url(&path.replace("{}", "x"));
        let method = reqwest::Method::from_bytes(m.as_bytes()).unwrap();
        let s = http.request(method, &url).send().await.unwrap().status().as_u16();
        assert!(
            s != 404 && s != 405 || path.contains("{}") && s == 404,
            "{m} {path}: {s}"
        );
    }
    // Every problem type the code can send is documented in docs/face-api.md.
    let docs = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/face-api.md"))
        .unwrap();
    let code = [
        include_str!("../src/server/problem.rs"),
        include_str!("../src/server/face_api.rs"),
        include_str!("../src/server/api_auth.rs"),
        include_str!("../src/server/routes/api.rs"),
    ]
    .concat();
    let mut kinds = BTreeSet::new();
    for part in code.split('"').skip(1).step_by(2) {
        if part.len() > 3 && part.chars().all(|c| c.is_ascii_lowercase() || c == '-') && part.contains('-') {
            kinds.insert(part.to_string());
        }
    }
    for k in [
        "invalid-request",
        "invalid-image",
        "too-large",
        "unsupported-media-type",
        "no-face",
        "invalid-token",
        "insufficient-scope",
        "face-unavailable",
        "rate-limited",
        "quota-exceeded",
        "collection-exists",
        "collection-not-found",
        "face-not-found",
        "pack-mismatch",
        "not-found",
        "internal",
    ] {
        assert!(
            kinds.contains(k) || k == "internal",
            "{k} is listed here but not in the code"
        );
        assert!(
            docs.contains(&format!("`{k}`")),
            "docs/face-api.md does not document {k}"
        );
    }
}

/// A server on an existing data directory (to restart on the same database).
async fn spawn_on(
    dir: &Path,
    adjust: impl FnOnce(&mut Settings),
) -> (String, facegate_server::server::AppState) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let issuer = format!("http://127.0.0.1:{}", addr.port());
    let mut settings = Settings::new(addr, issuer.clone(), dir.to_path_buf(), None).unwrap();
    adjust(&mut settings);
    let state = server::open(settings).await.unwrap();
    tokio::spawn(server::serve(state.clone(), listener));
    (issuer, state)
}

#[tokio::test]
async fn exact_and_approximate_search_agree_on_the_test_photos() {
    // The deepface photos (61 images, 13 people) indexed through the API into a collection whose
    // index is IVF (exact_max 16, 4 of 8 lists probed); then the same database opened by a second
    // server whose index is built from the store at start and searched exactly.
    let Some(app) = face_app(|s| {
        s.api.index_exact_max = 16;
        s.api.index_nprobe = 4;
        s.api.burst = 1000;
        s.api.rate_per_sec = 1000.0;
    })
    .await
    else {
        return;
    };
    let api = Api::new(&app, token(&app, "faces:read faces:write").await);
    assert_eq!(
        api.post("/v1/collections", json!({"collectionId": "d"})).await.0,
        201
    );
    let root = testdata().join("faces/deepface");
    let mut people: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    people.sort();
    let mut faces: HashMap<String, String> = HashMap::new();
    for dir in &people {
        let person = dir.file_name().unwrap().to_str().unwrap().to_string();
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files {
            let (s, v) = api
                .post(
                    "/v1/collections/d/faces",
                    json!({"image": b64(&std::fs::read(&f).unwrap()), "externalId": person, "maxFaces": 1}),
                )
                .await;
            assert_eq!(s, 200, "{}: {v}", f.display());
            if let Some(id) = v["faceRecords"][0]["faceId"].as_str() {
                faces.insert(id.to_string(), person.clone());
            }
        }
    }
    assert!(faces.len() >= 55, "{} faces indexed", faces.len());
    let (_, d) = api.get("/v1/collections/d").await;
    assert_eq!(d["index"]["kind"], "ivf", "{d}");

    let (issuer, exact_state) = spawn_on(app.state.settings.data_dir.as_path(), |s| {
        s.face.enabled = false;
        s.api.index_exact_max = 100_000;
        s.api.burst = 1000;
        s.api.rate_per_sec = 1000.0;
    })
    .await;
    let exact = Api::at(&issuer, token_at(&issuer, &exact_state, "faces:read").await);
    let (_, d) = exact.get("/v1/collections/d").await;
    assert_eq!(d["index"]["kind"], "exact", "{d}");
    assert_eq!(d["faceCount"].as_u64().unwrap() as usize, faces.len());

    let (mut agree, mut total, mut same_person, mut same_top) = (0, 0, 0, 0);
    for (id, person) in &faces {
        let body = json!({"threshold": 50, "maxFaces": 20});
        let path = format!("/v1/collections/d/faces/{id}/search");
        let (s1, a) = api.post(&path, body.clone()).await;
        let (s2, e) = exact.post(&path, body).await;
        assert_eq!((s1, s2), (200, 200));
        let ids = |v: &Value| -> Vec<String> {
            v["faceMatches"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["face"]["faceId"].as_str().unwrap().to_string())
                .collect()
        };
        let (a, e) = (ids(&a), ids(&e));
        total += e.len();
        agree += e.iter().filter(|x| a.contains(x)).count();
        if let Some(top) = e.first() {
            same_person += usize::from(&faces[top] == person);
            same_top += usize::from(a.first() == Some(top));
        }
    }
    let recall = agree as f64 / total.max(1) as f64;
    eprintln!(
        "exact vs IVF on {} deepface faces: {agree}/{total} matches (similarity >= 50) found by both (recall {recall:.3}); the same top match for {same_top}; top-1 the same person for {same_person}",
        faces.len()
    );
    assert!(recall >= 0.95, "recall {recall}");
    assert!(
        same_top as f64 >= 0.95 * faces.len() as f64,
        "same top match for {same_top}"
    );
    assert!(same_person as f64 >= 0.95 * faces.len() as f64);
}

#[test]
fn faces_import_indexes_a_folder_resumably_and_reports_failures() {
    let td = testdata().join("faces");
    if !td.exists() {
        panic!("test data missing at {}", td.display());
    }
    let models = facegate_vision::default_models_dir();
    if facegate_vision::pack::check_installed(
        &facegate_vision::PackManifest::builtin(facegate_vision::DEFAULT_PACK).unwrap(),
        &facegate_vision::pack::pack_dir(&models, facegate_vision::DEFAULT_PACK),
    )
    .is_err()
    {
        if std::env::var("FACEGATE_REQUIRE_MODELS").as_deref() == Ok("1") {
            panic!("faces import needs the default model pack (FACEGATE_REQUIRE_MODELS=1)");
        }
        eprintln!("SKIPPED: default model pack not installed");
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    // One subfolder per person: links to the test photos (never copies), plus bad files.
    std::os::unix::fs::symlink(td.join("deepface/person_img1"), src.path().join("alice")).unwrap();
    std::fs::create_dir(src.path().join("bob")).unwrap();
    for f in ["img3.jpg", "img53.jpg"] {
        std::os::unix::fs::symlink(
            td.join("deepface/person_img3").join(f),
            src.path().join("bob").join(f),
        )
        .unwrap();
    }
    std::fs::write(src.path().join("bob/notes.txt"), "not an image").unwrap();
    std::fs::write(
        src.path().join("bob/broken.jpg"),
        &photo("deepface/person_img3/img3.jpg")[..2000],
    )
    .unwrap();
    std::fs::write(src.path().join("bob/empty.png"), no_face_png()).unwrap();
    std::fs::write(src.path().join("stray.jpg"), b"ignored: not in a person's folder").unwrap();
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_facegate"))
            .args(["faces", "import"])
            .arg(src.path())
            .args(["--collection", "people"])
            .env("FACEGATE_DATA", data.path())
            .env("FACEGATE_MODELS", &models)
            .output()
            .unwrap()
    };
    let first = run();
    let out = String::from_utf8_lossy(&first.stdout).to_string();
    let err = String::from_utf8_lossy(&first.stderr).to_string();
    assert!(first.status.success(), "{out}\n{err}");
    assert!(
        out.contains("13 files: 10 imported, 0 already done, 3 failed"),
        "{out}"
    );
    assert!(out.contains("broken.jpg") && out.contains("corrupt"), "{out}");
    assert!(out.contains("empty.png") && out.contains("no face"), "{out}");
    assert!(out.contains("notes.txt"), "{out}");
    assert!(err.contains("13/13"), "progress on stderr: {err}");
    let second = run();
    let out2 = String::from_utf8_lossy(&second.stdout).to_string();
    assert!(
        out2.contains("13 files: 0 imported, 10 already done, 3 failed"),
        "{out2}"
    );
    // The faces are in the store, labelled by folder.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let url = format!("sqlite://{}?mode=rwc", data.path().join("facegate.db").display());
        // The embeddings are sealed under the data key that the first run made (data.key).
        let key = std::fs::read_to_string(data.path().join("data.key")).unwrap();
        let keys = facegate_store::DataKeys::new(facegate_store::DataKey::from_hex(&key).unwrap(), vec![]);
        let store = facegate_store::Store::open_with_keys(&url, Some(keys))
            .await
            .unwrap();
        let faces = store.api_faces_page("people", "", 1000).await.unwrap();
        assert_eq!(faces.len(), 10);
        assert_eq!(
            faces
                .iter()
                .filter(|f| f.external_id.as_deref() == Some("alice"))
                .count(),
            8
        );
        assert_eq!(
            faces
                .iter()
                .filter(|f| f.external_id.as_deref() == Some("bob"))
                .count(),
            2
        );
    });
}
