//! Liveness end to end over HTTP, with real video: the login page's check (start, frames, login),
//! the real head-turn video passing, photo and screen attacks refused, and replayed, late or foreign
//! frames and tokens refused. Frames come from ../shared/testdata/liveness through ffmpeg (as a
//! webcam would give them); the challenge's seed is fixed to match what the video does.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::Path;
use std::process::Command;

use common::face::*;
use common::{TestApp, browser, field};
use facegate_server::server::face::Liveness;
use serde_json::Value;

/// Seeds (FACEGATE_LIVENESS_SEED) whose challenges are checked by facegate-core's seed test.
const HEAD_TURNS_RIGHT_LEFT: u64 = 6;
const NOSE_TARGET: u64 = 1;
const SMILE: u64 = 7;

fn ffmpeg_ok() -> bool {
    let ok = Command::new("ffmpeg")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("FACEGATE_REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!(
                "the liveness video tests need ffmpeg (FACEGATE_REQUIRE_BROWSER=1): apt-get install ffmpeg"
            );
        }
        eprintln!("SKIPPED: ffmpeg not installed (apt-get install ffmpeg)");
    }
    ok
}

/// JPEG frames made by ffmpeg from `input_args` (then `-vf filter`), in order.
fn frames(input_args: &[&str], filter: &str, limit: usize) -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("ffmpeg")
        .args(["-y", "-loglevel", "error"])
        .args(input_args)
        .args([
            if filter.contains(';') {
                "-filter_complex"
            } else {
                "-vf"
            },
            filter,
        ])
        .args(["-q:v", "4", "-frames:v", &limit.to_string()])
        .arg(dir.path().join("f%04d.jpg"))
        .status()
        .unwrap();
    assert!(status.success(), "ffmpeg {input_args:?}");
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    names.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

fn liveness_file(name: &str) -> String {
    testdata().join("liveness").join(name).display().to_string()
}

/// The real video as a 640x360 webcam at 15 frames a second. (Not fewer: the check compares how
/// far the head moved between frames with the time between them, and the test sends frames no
/// slower than the server answers; 8 frames a second sent that fast is a head moving at twice its
/// speed, which the continuity check refuses as it should.)
fn real_video() -> Vec<Vec<u8>> {
    frames(
        &["-i", &liveness_file("live_head_turn/real.webm")],
        "fps=15,scale=640:360",
        300,
    )
}

/// A still picture held in front of the camera for `secs` seconds: the same picture with sensor
/// noise on every frame (so no two frames are byte-identical).
fn still(path: &Path, secs: u32) -> Vec<Vec<u8>> {
    frames(
        &[
            "-loop",
            "1",
            "-t",
            &secs.to_string(),
            "-i",
            &path.display().to_string(),
        ],
        "scale=640:480:force_original_aspect_ratio=decrease,pad=640:480:(ow-iw)/2:(oh-ih)/2,noise=alls=6:allf=t,fps=8",
        200,
    )
}

/// A photo slid across the frame, left to right and back, as one moves a printout by hand.
fn slid(path: &Path, secs: u32) -> Vec<Vec<u8>> {
    frames(
        &[
            "-f",
            "lavfi",
            "-i",
            &format!("color=c=gray:s=640x480:d={secs}"),
            "-loop",
            "1",
            "-t",
            &secs.to_string(),
            "-i",
            &path.display().to_string(),
        ],
        "[1:v]scale=-2:300[p];[0:v][p]overlay=x='170+120*sin(t*1.6)':y=90,noise=alls=6:allf=t,fps=8",
        200,
    )
}

async fn live_app(seed: u64, adjust: impl FnOnce(&mut facegate_server::server::Settings)) -> Option<TestApp> {
    if !ffmpeg_ok() {
        return None;
    }
    face_app(Liveness::Required, |s| {
        s.face.checks.seed = Some(seed);
        // The seeds below are for every kind enabled (the default leaves smile out).
        s.face.checks.kinds = facegate_core::liveness::ChallengeKind::CLASSIC.to_vec();
        adjust(s);
    })
    .await
}

/// Opens the face login page (for `req`) and starts a check: (csrf, check id, first token, answer).
async fn start_check(b: &reqwest::Client, app: &TestApp, req: &str) -> (String, String, String, Value) {
    let page = common::get_text(b, &app.url(&format!("/login/face?req={req}"))).await;
    assert!(page.contains("data-liveness=\"/login/face/liveness\""), "{page}");
    let csrf = field(&page, "csrf");
    let form = reqwest::multipart::Form::new()
        .text("csrf", csrf.clone())
        .text("req", req.to_string());
    let r = b
        .post(app.url("/login/face/liveness"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let id = v["id"].as_str().unwrap().to_string();
    let token = v["token"].as_str().unwrap().to_string();
    (csrf, id, token, v)
}

async fn send_frame(
    b: &reqwest::Client,
    app: &TestApp,
    id: &str,
    token: &str,
    jpeg: Vec<u8>,
) -> (u16, Value) {
    let r = b
        .post(app.url(&format!("/login/face/liveness/{id}/frame?token={token}")))
        .header("content-type", "image/jpeg")
        .body(jpeg)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// Streams frames until the check is final or the frames run out. Returns the last answer and the
/// number of frames in which exactly one face was seen.
async fn run_check(
    b: &reqwest::Client,
    app: &TestApp,
    id: &str,
    mut token: String,
    frames: Vec<Vec<u8>>,
) -> (Value, usize) {
    let mut last = Value::Null;
    let mut with_face = 0;
    for f in frames {
        let (status, v) = send_frame(b, app, id, &token, f).await;
        assert_eq!(status, 200, "{v}");
        if v["issue"].is_null() {
            with_face += 1;
        }
        let done = v["status"] != "IN_PROGRESS";
        last = v;
        if done {
            break;
        }
        token = last["token"].as_str().unwrap().to_string();
    }
    (last, with_face)
}

async fn login_with_check(
    b: &reqwest::Client,
    app: &TestApp,
    csrf: &str,
    req: &str,
    username: &str,
    id: &str,
) -> (u16, Value) {
    let form = reqwest::multipart::Form::new()
        .text("csrf", csrf.to_string())
        .text("req", req.to_string())
        .text("username", username.to_string())
        .text("liveness", id.to_string());
    let r = b
        .post(app.url("/login/face"))
        .header("accept", "application/json")
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: {text}")),
    )
}

#[tokio::test]
async fn the_real_head_turn_video_passes_and_signs_in_only_as_its_own_person() {
    // The same recording twice in one server is a replay (refused: see the frame memory's test
    // below); this test is about whose face a passed check is, so the memory is off here.
    let Some(app) = live_app(HEAD_TURNS_RIGHT_LEFT, |s| s.face.checks.remember_frames = false).await else {
        return;
    };
    let video = real_video();
    assert!(video.len() > 80, "{} frames", video.len());
    let alice = app.add_user("alice").await;
    app.add_user("bob").await;
    let (client_id, secret) = app.confidential_client(REDIRECT).await;
    // Alice enrols with a full-size frame of the video; bob with someone else's photo.
    let full = frames(
        &["-i", &liveness_file("live_head_turn/real.webm")],
        "select=eq(n\\,3)",
        1,
    );
    enrol_images(&app, "alice", vec![full[0].clone()]).await;
    enrol_from_account_page(&app, "bob", &["deepface/person_img1/img1.jpg"]).await;

    let (b, req) = start_authorization(&app, &client_id).await;
    let (csrf, id, token, started) = start_check(&b, &app, &req).await;
    assert_eq!(started["kind"], "head-turns");
    assert_eq!(
        started["params"]["sequence"],
        serde_json::json!(["right", "left"])
    );
    let (last, with_face) = run_check(&b, &app, &id, token, video.clone()).await;
    assert_eq!(last["status"], "SUCCEEDED", "{last}");
    assert!(with_face > 20);
    assert!(last["token"].is_null(), "no token after the end: {last}");

    let (status, body) = login_with_check(&b, &app, &csrf, &req, "alice", &id).await;
    assert_eq!(status, 200, "{body}");
    let claims = finish(
        &b,
        &app,
        body["redirect"].as_str().unwrap(),
        (&client_id, &secret),
    )
    .await;
    assert_eq!(claims["sub"], alice);
    assert_eq!(claims["amr"], serde_json::json!(["face", "user"]));
    assert_eq!(claims["acr"], "urn:facegate:face:live");

    // The check is used up (a direct sign-in, no relying party this time).
    let (status, body) = login_with_check(&b, &app, &csrf, "", "alice", &id).await;
    assert_eq!(status, 403, "{body}");

    // A new check with the same live person, for bob's account: live, but not bob.
    let (b, req) = start_authorization(&app, &client_id).await;
    let (csrf, id, token, _) = start_check(&b, &app, &req).await;
    let (last, _) = run_check(&b, &app, &id, token, video).await;
    assert_eq!(last["status"], "SUCCEEDED", "{last}");
    let (status, body) = login_with_check(&b, &app, &csrf, &req, "bob", &id).await;
    assert_eq!(status, 401, "{body}");
}

#[tokio::test]
async fn a_passed_check_serves_only_the_sign_in_it_was_made_for() {
    let Some(app) = live_app(HEAD_TURNS_RIGHT_LEFT, |_| {}).await else {
        return;
    };
    let full = frames(
        &["-i", &liveness_file("live_head_turn/real.webm")],
        "select=eq(n\\,3)",
        1,
    );
    app.add_user("alice").await;
    enrol_images(&app, "alice", vec![full[0].clone()]).await;
    let (client_id, _) = app.confidential_client(REDIRECT).await;
    // The attack: pass a check for one pending sign-in, then spend it on another one (a request the
    // attacker started for a different application, or the same one started again).
    let (b, first) = start_authorization(&app, &client_id).await;
    let (csrf, id, token, _) = start_check(&b, &app, &first).await;
    let (last, _) = run_check(&b, &app, &id, token, real_video()).await;
    assert_eq!(last["status"], "SUCCEEDED", "{last}");
    let r = b
        .get(format!(
            "{}/authorize?client_id={client_id}&redirect_uri={}&response_type=code&scope=openid&state=2",
            app.issuer,
            url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
        ))
        .send()
        .await
        .unwrap();
    let second = common::location(&r).split("req=").nth(1).unwrap().to_string();
    let (status, body) = login_with_check(&b, &app, &csrf, &second, "alice", &id).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("another sign-in"),
        "{body}"
    );
    // The refusal spent nothing: the check still serves the sign-in it was made for, once.
    let (status, body) = login_with_check(&b, &app, &csrf, &first, "alice", &id).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = login_with_check(&b, &app, &csrf, &first, "alice", &id).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn the_real_video_passes_a_smile_challenge() {
    let Some(app) = live_app(SMILE, |_| {}).await else {
        return;
    };
    let (client_id, _) = app.confidential_client(REDIRECT).await;
    let (b, req) = start_authorization(&app, &client_id).await;
    let (_, id, token, started) = start_check(&b, &app, &req).await;
    assert_eq!(started["kind"], "smile");
    let (last, _) = run_check(&b, &app, &id, token, real_video()).await;
    assert_eq!(last["status"], "SUCCEEDED", "{last}");
}

#[tokio::test]
async fn photos_held_or_moved_in_front_of_the_camera_are_refused() {
    let attacks: Vec<(&str, Vec<Vec<u8>>)> = {
        if !ffmpeg_ok() {
            return;
        }
        let sf = |n: &str| testdata().join("liveness/silent_face").join(n);
        vec![
            ("live still photo", still(&sf("image_T1.jpg"), 5)),
            ("printed photo (F1)", still(&sf("image_F1.jpg"), 5)),
            ("photo on a screen (F2)", still(&sf("image_F2.jpg"), 5)),
            (
                "photo slid across the frame",
                slid(&testdata().join("faces/deepface/person_img1/img1.jpg"), 5),
            ),
            (
                "printed photo slid across the frame",
                slid(&sf("image_F1.jpg"), 5),
            ),
        ]
    };
    for seed in [HEAD_TURNS_RIGHT_LEFT, NOSE_TARGET, SMILE] {
        // Each photo is shown to several checks: the frame memory would end them at their third
        // frame (a replay); this test is about what the challenges make of a photo.
        let Some(app) = live_app(seed, |s| s.face.checks.remember_frames = false).await else {
            return;
        };
        app.add_user("alice").await;
        let (client_id, _) = app.confidential_client(REDIRECT).await;
        for (name, frames) in &attacks {
            let (b, req) = start_authorization(&app, &client_id).await;
            let (csrf, id, token, started) = start_check(&b, &app, &req).await;
            let (last, with_face) = run_check(&b, &app, &id, token, frames.clone()).await;
            assert!(
                with_face * 2 > frames.len().min(40),
                "{name}: the face should be visible in most frames ({with_face} of {})",
                frames.len()
            );
            eprintln!("{} / {name}: {last}", started["kind"]);
            assert_ne!(
                last["status"], "SUCCEEDED",
                "{name} passed {}: {last}",
                started["kind"]
            );
            let (status, body) = login_with_check(&b, &app, &csrf, &req, "alice", &id).await;
            assert_eq!(status, 403, "{name}: {body}");
        }
    }
}

#[tokio::test]
async fn replayed_late_and_foreign_frames_and_tokens_are_refused() {
    let Some(app) = live_app(HEAD_TURNS_RIGHT_LEFT, |s| {
        s.face.checks.lifetime = std::time::Duration::from_secs(3);
    })
    .await
    else {
        return;
    };
    let video = real_video();
    let (client_id, _) = app.confidential_client(REDIRECT).await;
    let (b, req) = start_authorization(&app, &client_id).await;
    let (_, a, a_token, _) = start_check(&b, &app, &req).await;
    let (_, other, other_token, _) = start_check(&b, &app, &req).await;

    let (status, v) = send_frame(&b, &app, &a, &a_token, video[0].clone()).await;
    assert_eq!(status, 200, "{v}");
    let next = v["token"].as_str().unwrap().to_string();
    // The same frame again, with a valid token: a replay.
    let (status, v) = send_frame(&b, &app, &a, &next, video[0].clone()).await;
    assert_eq!((status, v["refusal"].as_str()), (409, Some("Replayed")), "{v}");
    // The spent token, and the other check's token.
    let (status, v) = send_frame(&b, &app, &a, &a_token, video[1].clone()).await;
    assert_eq!((status, v["refusal"].as_str()), (409, Some("BadToken")), "{v}");
    let (status, v) = send_frame(&b, &app, &a, &other_token, video[1].clone()).await;
    assert_eq!((status, v["refusal"].as_str()), (409, Some("BadToken")), "{v}");
    // Another browser cannot even see the check.
    let stranger = browser();
    stranger
        .get(app.url(&format!("/login/face?req={req}")))
        .send()
        .await
        .unwrap();
    let (status, _) = send_frame(&stranger, &app, &a, &next, video[1].clone()).await;
    assert_eq!(status, 404);
    // After the deadline: late, and the check has expired.
    tokio::time::sleep(std::time::Duration::from_millis(3300)).await;
    let (status, v) = send_frame(&b, &app, &a, &next, video[2].clone()).await;
    assert_eq!((status, v["refusal"].as_str()), (409, Some("Late")), "{v}");
    // Starting checks is rate-limited per address (two a second): of five quick starts some are refused.
    let page = common::get_text(&b, &app.url(&format!("/login/face?req={req}"))).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let form = reqwest::multipart::Form::new().text("csrf", field(&page, "csrf"));
        let r = b
            .post(app.url("/login/face/liveness"))
            .multipart(form)
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    // Not an image at all.
    let r = b
        .post(app.url(&format!("/login/face/liveness/{other}/frame?token={other_token}")))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
}

#[tokio::test]
async fn a_broken_frame_is_answered_and_the_check_goes_on() {
    let Some(app) = live_app(HEAD_TURNS_RIGHT_LEFT, |_| {}).await else {
        return;
    };
    let (client_id, _) = app.confidential_client(REDIRECT).await;
    let (b, req) = start_authorization(&app, &client_id).await;
    let (_, id, token, _) = start_check(&b, &app, &req).await;
    let (status, v) = send_frame(
        &b,
        &app,
        &id,
        &token,
        b"\xff\xd8\xff\xe0 not really a jpeg".to_vec(),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "IN_PROGRESS");
    assert_eq!(v["issue"], "no-face");
    assert!(v["token"].is_string());
}

/// A client_credentials client and a token with `scope` for it.
async fn api_token(app: &TestApp, scope: &str) -> String {
    common::client_token(&app.issuer, &app.state, scope).await.1
}

async fn api(app: &TestApp, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let c = reqwest::Client::new();
    let mut r = match method {
        "GET" => c.get(app.url(path)),
        _ => c.post(app.url(path)),
    }
    .bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// One frame to the liveness sessions API, as JSON with the image in base64.
async fn api_frame(app: &TestApp, token: &str, path: &str, frame_token: &str, jpeg: &[u8]) -> (u16, Value) {
    let body = serde_json::json!({"frameToken": frame_token, "image": b64(jpeg)});
    api(app, token, "POST", path, Some(body)).await
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn liveness_sessions_api_runs_a_check_for_an_application() {
    let Some(app) = live_app(HEAD_TURNS_RIGHT_LEFT, |_| {}).await else {
        return;
    };
    let video = real_video();
    let token = api_token(&app, "liveness").await;

    // Create, idempotently.
    let body = serde_json::json!({"clientRequestToken": "order-1", "returnReferenceImage": true});
    let (status, created) = api(&app, &token, "POST", "/v1/liveness/sessions", Some(body.clone())).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "CREATED");
    assert_eq!(created["challenge"]["kind"], "head-turns");
    let id = created["sessionId"].as_str().unwrap().to_string();
    let (status, again) = api(&app, &token, "POST", "/v1/liveness/sessions", Some(body)).await;
    assert_eq!(
        (status, again["sessionId"].as_str()),
        (200, Some(id.as_str())),
        "{again}"
    );
    assert_eq!(
        again["frameToken"], created["frameToken"],
        "no frame sent yet: the same first token"
    );
    let (_, other) = api(&app, &token, "POST", "/v1/liveness/sessions", None).await;
    assert_ne!(other["sessionId"], created["sessionId"]);

    // Frames until it is decided; a replayed frame is refused on the way.
    let frames_path = format!("/v1/liveness/sessions/{id}/frames");
    let mut frame_token = created["frameToken"].as_str().unwrap().to_string();
    let (status, first) = api_frame(&app, &token, &frames_path, &frame_token, &video[0]).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["status"], "IN_PROGRESS");
    frame_token = first["nextFrameToken"].as_str().unwrap().to_string();
    let (status, replay) = api_frame(&app, &token, &frames_path, &frame_token, &video[0]).await;
    assert_eq!(status, 409, "{replay}");
    assert_eq!(replay["type"], "https://facegate.dev/problems/frame-refused");
    assert_eq!(replay["refusal"], "replayed");
    let (status, during) = api(&app, &token, "GET", &format!("/v1/liveness/sessions/{id}"), None).await;
    assert_eq!((status, during["status"].as_str()), (200, Some("IN_PROGRESS")));
    let mut last = Value::Null;
    for f in &video[1..] {
        let (status, v) = api_frame(&app, &token, &frames_path, &frame_token, f).await;
        assert_eq!(status, 200, "{v}");
        last = v;
        if last["status"] != "IN_PROGRESS" {
            break;
        }
        frame_token = last["nextFrameToken"].as_str().unwrap().to_string();
    }
    assert_eq!(last["status"], "SUCCEEDED", "{last}");
    let (status, result) = api(&app, &token, "GET", &format!("/v1/liveness/sessions/{id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(result["status"], "SUCCEEDED");
    assert!(result["confidence"].as_u64().unwrap() >= 50, "{result}");
    assert_eq!(result["referenceImage"]["contentType"], "image/jpeg");
    assert!(result["referenceImage"]["bytes"].as_str().unwrap().len() > 1000);
    // Single use: no more frames.
    let (status, v) = api_frame(&app, &token, &frames_path, &frame_token, &video[60]).await;
    assert_eq!((status, v["refusal"].as_str()), (409, Some("finished")), "{v}");

    // Another client cannot see it; a token without the scope cannot use the API at all.
    let stranger = api_token(&app, "liveness").await;
    let (status, v) = api(
        &app,
        &stranger,
        "GET",
        &format!("/v1/liveness/sessions/{id}"),
        None,
    )
    .await;
    assert_eq!(
        (status, v["type"].as_str()),
        (404, Some("https://facegate.dev/problems/session-not-found"))
    );
    let reader = api_token(&app, "faces:read").await;
    let (status, v) = api(&app, &reader, "POST", "/v1/liveness/sessions", None).await;
    assert_eq!(
        (status, v["type"].as_str()),
        (403, Some("https://facegate.dev/problems/insufficient-scope"))
    );
    let (status, _) = api(&app, "not-a-token", "POST", "/v1/liveness/sessions", None).await;
    assert_eq!(status, 401);
    // Bad input: no token field, not base64, unknown parameter.
    let (status, v) = api(
        &app,
        &token,
        "POST",
        "/v1/liveness/sessions",
        Some(serde_json::json!({"color": "blue"})),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    let oid = other["sessionId"].as_str().unwrap();
    let (status, v) = api(
        &app,
        &token,
        "POST",
        &format!("/v1/liveness/sessions/{oid}/frames"),
        Some(serde_json::json!({"image": b64(&video[0])})),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    let (status, v) = api(
        &app,
        &token,
        "POST",
        &format!("/v1/liveness/sessions/{oid}/frames"),
        Some(serde_json::json!({"frameToken": "x", "image": "%%%"})),
    )
    .await;
    assert_eq!(status, 400, "{v}");
}

// ---------------------------------------------------------------------------------------------
// Issue 12: a recording cannot pass.

/// The seed whose `moves` challenge (2 moves) is "turn right, then left", what the video does.
fn seed_for_right_left() -> u64 {
    use facegate_core::liveness::{Direction, Move, Moves, Rng};
    (0..10_000u64)
        .find(|s| {
            let mut r = Rng::seeded(*s);
            r.below(1);
            Moves::random(&mut r, 2).sequence == [Move::Turn(Direction::Right), Move::Turn(Direction::Left)]
        })
        .unwrap()
}

/// The same JPEG with one byte changed near its end (the picture still decodes): new bytes, the
/// same picture.
fn one_byte_changed(jpeg: &[u8], n: u8) -> Vec<u8> {
    let mut b = jpeg.to_vec();
    let i = b.len() - 4;
    b[i] = b[i].wrapping_add(1 + n % 7);
    if b[i] == 0xff {
        b[i] = 0xfe;
    }
    b
}

#[tokio::test]
async fn the_live_video_passes_once_and_the_same_recording_in_a_fresh_check_is_refused() {
    let Some(app) = live_app(0, |s| {
        s.face.checks.seed = Some(seed_for_right_left());
        s.face.checks.kinds = vec![facegate_core::liveness::ChallengeKind::Moves];
        s.face.checks.moves = 2;
    })
    .await
    else {
        return;
    };
    let video = real_video();
    let (client_id, _) = app.confidential_client(REDIRECT).await;
    // The person: the live video passes the default kind of challenge (moves) with every
    // mechanism on (frame memory, continuity, identity on turned frames, passive score).
    let (b, req) = start_authorization(&app, &client_id).await;
    let (_, id, token, started) = start_check(&b, &app, &req).await;
    assert_eq!(started["kind"], "moves");
    assert!(
        started["params"].get("sequence").is_none(),
        "the sequence is not told in advance: {started}"
    );
    let (last, _) = run_check(&b, &app, &id, token, video.clone()).await;
    assert_eq!(last["status"], "SUCCEEDED", "{last}");

    // The attacker captured those frames and sends them again in fresh checks: as they were, with
    // one byte changed per frame, and through the API.
    for (name, frames) in [
        ("same bytes", video.clone()),
        (
            "one byte changed",
            video
                .iter()
                .enumerate()
                .map(|(i, f)| one_byte_changed(f, i as u8))
                .collect(),
        ),
    ] {
        let (b, req) = start_authorization(&app, &client_id).await;
        let (_, id, token, _) = start_check(&b, &app, &req).await;
        let (last, _) = run_check(&b, &app, &id, token, frames).await;
        assert_eq!(last["status"], "FAILED", "{name}: {last}");
        assert_eq!(last["reason"], "replayed", "{name}: {last}");
    }
    let api_token = api_token(&app, "liveness").await;
    let (_, created) = api(&app, &api_token, "POST", "/v1/liveness/sessions", None).await;
    let path = format!(
        "/v1/liveness/sessions/{}/frames",
        created["sessionId"].as_str().unwrap()
    );
    let mut frame_token = created["frameToken"].as_str().unwrap().to_string();
    let mut last = Value::Null;
    for (i, f) in video.iter().enumerate() {
        let (status, v) = api_frame(
            &app,
            &api_token,
            &path,
            &frame_token,
            &one_byte_changed(f, 3 + i as u8),
        )
        .await;
        assert_eq!(status, 200, "{v}");
        assert!(v.get("progress").is_none(), "no numeric progress: {v}");
        last = v;
        if last["status"] != "IN_PROGRESS" {
            break;
        }
        frame_token = last["nextFrameToken"].as_str().unwrap().to_string();
    }
    assert_eq!(
        (last["status"].as_str(), last["reason"].as_str()),
        (Some("FAILED"), Some("replayed")),
        "{last}"
    );
}

/// The same picture with new bytes every send: a JPEG comment holding a counter after the start
/// marker (as good as re-encoding, for an exact-bytes replay guard).
fn fresh_bytes(jpeg: &[u8], n: u64) -> Vec<u8> {
    let mut b = jpeg[..2].to_vec();
    b.extend_from_slice(&[0xff, 0xfe, 0x00, 0x0a]);
    b.extend_from_slice(&n.to_be_bytes());
    b.extend_from_slice(&jpeg[2..]);
    b
}

/// What the attacker's script measures on each frame of its recording (it runs a face model too).
struct Measured {
    yaw: f32,
    pitch: f32,
    eyes: f32,
    nose: (f32, f32),
}

fn measure(frames: &[Vec<u8>]) -> Vec<Option<Measured>> {
    let pipeline = facegate_vision::FacePipeline::load(
        &facegate_vision::default_models_dir(),
        facegate_vision::DEFAULT_PACK,
        &Default::default(),
    )
    .unwrap();
    frames
        .iter()
        .map(|f| {
            let o = facegate_vision::observe::observe_frame(&pipeline, None, f, 0.0).ok()?;
            o.face.filter(|_| o.faces == 1).map(|m| Measured {
                yaw: m.yaw,
                pitch: m.pitch,
                eyes: m.eyes,
                nose: m.nose,
            })
        })
        .collect()
}

/// The frame of the recording that best answers the prompt (from anywhere in it).
fn best_for(prompt: &str, params: &Value, frames: &[Option<Measured>], closed: bool) -> usize {
    let p = prompt.to_lowercase();
    let score = |m: &Measured| -> f32 {
        let frontal = -(m.yaw.abs() + m.pitch.abs());
        if p.contains("turn your head left") {
            m.yaw
        } else if p.contains("turn your head right") {
            -m.yaw
        } else if p.contains("turn your head up") {
            m.pitch - m.yaw.abs()
        } else if p.contains("turn your head down") {
            -m.pitch - m.yaw.abs()
        } else if p.contains("blink") {
            frontal / 10.0 + if closed { -100.0 * m.eyes } else { 100.0 * m.eyes }
        } else if p.contains("circle") || p.contains("hold still") {
            let t = &params["target"];
            let (x, y) = (
                t["x"].as_f64().unwrap_or(0.5) as f32,
                t["y"].as_f64().unwrap_or(0.5) as f32,
            );
            -((m.nose.0 - x).powi(2) + (m.nose.1 - y).powi(2))
        } else {
            frontal
        }
    };
    frames
        .iter()
        .enumerate()
        .filter_map(|(i, m)| m.as_ref().map(|m| (i, score(m))))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map_or(0, |x| x.0)
}

/// The script against `checks` checks of `app`'s liveness API: the last answer of each.
async fn frame_picking_script(
    app: &TestApp,
    video: &[Vec<u8>],
    measured: &[Option<Measured>],
    checks: u64,
) -> Vec<Value> {
    let token = api_token(app, "liveness").await;
    let mut outcomes = Vec::new();
    for check in 0..checks {
        let (status, created) = api(app, &token, "POST", "/v1/liveness/sessions", None).await;
        assert_eq!(status, 201, "{created}");
        let params = created["challenge"]["params"].clone();
        let path = format!(
            "/v1/liveness/sessions/{}/frames",
            created["sessionId"].as_str().unwrap()
        );
        let mut frame_token = created["frameToken"].as_str().unwrap().to_string();
        let mut prompt = created["challenge"]["prompt"].as_str().unwrap().to_string();
        let mut closed = true;
        let mut last = Value::Null;
        for n in 0..120u64 {
            let i = best_for(&prompt, &params, measured, closed);
            closed = !closed;
            // Re-encoded, as it were: no two sends have the same bytes.
            let (status, v) = api_frame(
                app,
                &token,
                &path,
                &frame_token,
                &fresh_bytes(&video[i], check * 1000 + n),
            )
            .await;
            assert_eq!(status, 200, "{v}");
            last = v;
            if last["status"] != "IN_PROGRESS" {
                break;
            }
            prompt = last["prompt"].as_str().unwrap().to_string();
            frame_token = last["nextFrameToken"].as_str().unwrap().to_string();
        }
        eprintln!("check {check}: {last}");
        outcomes.push(last);
    }
    outcomes
}

#[tokio::test]
async fn a_script_sending_the_recorded_frame_that_best_answers_each_prompt_is_refused() {
    if !ffmpeg_ok() {
        return;
    }
    // Liveness as configured by default: random challenges from the system's generator.
    let Some(app) = face_app(Liveness::Required, |_| {}).await else {
        return;
    };
    let video = real_video();
    let measured = measure(&video);
    let outcomes = frame_picking_script(&app, &video, &measured, 6).await;
    assert!(
        outcomes.iter().all(|v| v["status"] != "SUCCEEDED"),
        "the script passed: {outcomes:?}"
    );
    // The first check met a server that had never seen these frames: the challenge and the
    // continuity of the frames refused it, not the frame memory; later ones meet the memory too.
    assert_ne!(outcomes[0]["reason"], "replayed", "{}", outcomes[0]);
    // With the frame memory off, the challenge and continuity alone refuse every check.
    let Some(app) = face_app(Liveness::Required, |s| s.face.checks.remember_frames = false).await else {
        return;
    };
    let outcomes = frame_picking_script(&app, &video, &measured, 6).await;
    assert!(
        outcomes.iter().all(|v| v["status"] != "SUCCEEDED"),
        "the script passed: {outcomes:?}"
    );
}

/// Issue 14: two instances on one PostgreSQL database; the frames of one liveness session
/// alternate between them (as a round-robin load balancer sends them) and the session passes;
/// its result reads the same on both; a frame token used on one is refused on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_liveness_session_whose_frames_alternate_between_instances_passes() {
    let Some(pg) = facegate_store::testing::TempPostgres::for_test("the liveness cluster test") else {
        return;
    };
    let db = pg.database("live").unwrap();
    let Some(a) = live_app(HEAD_TURNS_RIGHT_LEFT, |s| {
        s.database_url = db.clone();
        s.data_key = common::shared_data_key();
    })
    .await
    else {
        return;
    };
    let Some(b) = live_app(HEAD_TURNS_RIGHT_LEFT, |s| {
        s.database_url = db.clone();
        s.data_key = common::shared_data_key();
    })
    .await
    else {
        return;
    };
    let video = real_video();
    let token = api_token(&a, "liveness").await;
    let (status, created) = api(&a, &token, "POST", "/v1/liveness/sessions", None).await;
    assert_eq!(status, 201, "{created}");
    let id = created["sessionId"].as_str().unwrap().to_string();
    let path = format!("/v1/liveness/sessions/{id}/frames");
    let mut frame_token = created["frameToken"].as_str().unwrap().to_string();
    let mut last = Value::Null;
    for (i, f) in video.iter().enumerate() {
        let (here, there) = if i % 2 == 0 { (&b, &a) } else { (&a, &b) };
        let (status, v) = api_frame(here, &token, &path, &frame_token, f).await;
        assert_eq!(status, 200, "frame {i} on {}: {v}", here.issuer);
        if i == 3 {
            // The token just used on `here`, tried on `there`: refused.
            let (status, again) = api_frame(there, &token, &path, &frame_token, &video[i + 1]).await;
            assert_eq!(
                (status, again["refusal"].as_str()),
                (409, Some("bad-token")),
                "{again}"
            );
        }
        last = v;
        if last["status"] != "IN_PROGRESS" {
            break;
        }
        frame_token = last["nextFrameToken"].as_str().unwrap().to_string();
    }
    assert_eq!(
        last["status"], "SUCCEEDED",
        "the check passes across instances: {last}"
    );
    for app in [&a, &b] {
        let (status, r) = api(app, &token, "GET", &format!("/v1/liveness/sessions/{id}"), None).await;
        assert_eq!((status, r["status"].as_str()), (200, Some("SUCCEEDED")), "{r}");
    }
}

/// Issue 14: the frame memory is shared too. The live video passes a session on instance A; the
/// same recording sent to instance B in a fresh session is refused as a replay, though B itself
/// never saw it (A announced its frames).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_recording_seen_by_one_instance_is_refused_as_a_replay_by_another() {
    let Some(pg) = facegate_store::testing::TempPostgres::for_test("the shared frame memory test") else {
        return;
    };
    let db = pg.database("memory").unwrap();
    let Some(a) = live_app(HEAD_TURNS_RIGHT_LEFT, |s| {
        s.database_url = db.clone();
        s.data_key = common::shared_data_key();
    })
    .await
    else {
        return;
    };
    let Some(b) = live_app(HEAD_TURNS_RIGHT_LEFT, |s| {
        s.database_url = db.clone();
        s.data_key = common::shared_data_key();
    })
    .await
    else {
        return;
    };
    // Let B's listener start.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let video = real_video();
    let token = api_token(&a, "liveness").await;
    let first = run_session(&a, &token, &video).await;
    assert_eq!(first["status"], "SUCCEEDED", "the live person on A: {first}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let replay = run_session(&b, &token, &video).await;
    assert_eq!(
        (replay["status"].as_str(), replay["reason"].as_str()),
        (Some("FAILED"), Some("replayed")),
        "the recording replayed to B: {replay}"
    );
}

/// A whole session on one instance with these frames: the last answer.
async fn run_session(app: &TestApp, token: &str, video: &[Vec<u8>]) -> Value {
    let (_, created) = api(app, token, "POST", "/v1/liveness/sessions", None).await;
    let id = created["sessionId"].as_str().unwrap().to_string();
    let path = format!("/v1/liveness/sessions/{id}/frames");
    let mut frame_token = created["frameToken"].as_str().unwrap().to_string();
    for f in video {
        let (status, v) = api_frame(app, token, &path, &frame_token, f).await;
        assert_eq!(status, 200, "{v}");
        if v["status"] != "IN_PROGRESS" {
            return v;
        }
        frame_token = v["nextFrameToken"].as_str().unwrap().to_string();
    }
    Value::Null
}
