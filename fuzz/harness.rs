//! The fuzz targets' bodies, shared by cargo-fuzz (fuzz_targets/*.rs) and the regression test that
//! replays the seed corpus and every crash found (crates/facegate-server/tests/fuzz_regressions.rs).
//! Each takes arbitrary bytes; any panic is a finding.
#![allow(dead_code, clippy::expect_used)]

use facegate_core::liveness::{ChallengeKind, Check, FaceObservation, Observation, Policy};
use facegate_oidc::client::{AuthMethod, Client};
use facegate_oidc::client_auth::{AssertionContext, presented, verify, verify_assertion};
use facegate_oidc::keys::{SigningAlg, SigningKey, generate};
use facegate_server::server::{self, AppState, Settings};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub mod image_decode {
    #![allow(unused_imports)]
    use super::*;

    /// Image decoding with the server's size limits: any bytes give an image within the limits or an
    /// error, never a panic, an abort or an allocation past the limits.
    pub fn image_decode(data: &[u8]) {
        let limits = facegate_vision::DecodeLimits {
            max_bytes: 1 << 20,
            max_side: 2048,
            max_pixels: 4_000_000,
            min_side: 32,
        };
        if let Ok(img) = facegate_vision::decode(data, &limits) {
            assert!(img.width() <= limits.max_side && img.height() <= limits.max_side);
            assert!((img.width() as u64) * (img.height() as u64) <= limits.max_pixels);
        }
    }
}

pub mod api_input {
    #![allow(unused_imports)]
    use super::*;

    struct World {
        rt: tokio::runtime::Runtime,
        state: AppState,
        _dir: tempfile::TempDir,
    }

    fn world() -> &'static World {
        static W: OnceLock<World> = OnceLock::new();
        W.get_or_init(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            let dir = tempfile::tempdir().expect("a folder");
            let mut settings = Settings::new(
                "127.0.0.1:9".parse().expect("an address"),
                "http://127.0.0.1:9".into(),
                dir.path().to_path_buf(),
                None,
            )
            .expect("settings");
            settings.face.enabled = false;
            settings.api.max_body = 256 * 1024;
            let state = rt.block_on(server::open(settings)).expect("a state");
            World { rt, state, _dir: dir }
        })
    }

    /// A `/v1` request body as the server reads it (routes/api_input.rs): JSON with base64 images,
    /// or multipart with image parts, within the body limit. The first byte picks the content type
    /// (JSON, multipart with the boundary "fuzz", or the raw header from the first line). Runs against
    /// a real server state (SQLite in a temporary folder, face login off).
    pub fn api_input(data: &[u8]) {
        let w = world();
        let Some((&pick, rest)) = data.split_first() else {
            return;
        };
        let (content_type, body) = match pick % 3 {
            0 => ("application/json".to_string(), rest),
            1 => ("multipart/form-data; boundary=fuzz".to_string(), rest),
            _ => match rest.iter().position(|b| *b == b'\n') {
                Some(i) => (String::from_utf8_lossy(&rest[..i]).into_owned(), &rest[i + 1..]),
                None => return,
            },
        };
        let Ok(req) = axum::http::Request::builder()
            .method("POST")
            .uri("/v1/compare")
            .header("content-type", content_type)
            .body(axum::body::Body::from(body.to_vec()))
        else {
            return;
        };
        let _ = w.rt.block_on(server::routes::api_input::read_input(
            &w.state,
            req,
            &["image", "sourceImage", "targetImage"],
            pick & 4 != 0,
        ));
    }
}

pub mod authorize_request {
    #![allow(unused_imports)]
    use super::*;

    fn client() -> Client {
        Client {
            client_id: "c1".into(),
            secret_hash: None,
            name: "fuzz".into(),
            redirect_uris: vec!["https://rp.example/cb".into(), "http://127.0.0.1/cb".into()],
            post_logout_redirect_uris: vec![],
            grant_types: vec![
                "authorization_code".into(),
                "refresh_token".into(),
                "implicit".into(),
            ],
            auth_method: AuthMethod::None,
            scope: "openid profile email offline_access".into(),
            jwks: None,
            skip_consent: false,
            id_token_alg: facegate_oidc::keys::SigningAlg::RS256,
            pairwise: false,
            created_at: 0,
            dynamic: false,
            resource_server: false,
            require_par: false,
            jwt_access_tokens: false,
            backchannel_logout_uri: None,
            backchannel_logout_session_required: false,
        }
    }

    /// The authorization request parser (query parameters) against a registered client.
    pub fn authorize_request(data: &[u8]) {
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(data).into_owned().collect();
        let _ = facegate_oidc::authorize::validate(&pairs, |id| (id == "c1").then(client));
    }
}

pub mod token_request {
    #![allow(unused_imports)]
    use super::*;

    /// The token endpoint's request parser: the first line is the Authorization header, the rest an
    /// application/x-www-form-urlencoded body.
    pub fn token_request(data: &[u8]) {
        let (header, body) = match data.iter().position(|b| *b == b'\n') {
            Some(i) => (
                Some(String::from_utf8_lossy(&data[..i]).into_owned()),
                &data[i + 1..],
            ),
            None => (None, data),
        };
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
        let _ = facegate_oidc::token::TokenRequest::parse(header.as_deref(), &pairs);
        let _ = facegate_oidc::token::TokenQuery::parse(header.as_deref(), &pairs);
    }
}

pub mod client_assertion {
    #![allow(unused_imports)]
    use super::*;

    fn client() -> &'static Client {
        static CLIENT: OnceLock<Client> = OnceLock::new();
        CLIENT.get_or_init(|| {
            let der = generate(SigningAlg::ES256).expect("a key");
            let key = SigningKey::from_pkcs8(SigningAlg::ES256, &der).expect("a key");
            let jwks = serde_json::json!({ "keys": [key.public_jwk()] });
            Client {
                client_id: "c1".into(),
                secret_hash: None,
                name: "fuzz".into(),
                redirect_uris: vec![],
                post_logout_redirect_uris: vec![],
                grant_types: vec!["client_credentials".into()],
                auth_method: AuthMethod::PrivateKeyJwt,
                scope: "faces:read".into(),
                jwks: Some(jwks),
                skip_consent: false,
                id_token_alg: SigningAlg::RS256,
                pairwise: false,
                created_at: 0,
                dynamic: false,
                resource_server: false,
                require_par: false,
                jwt_access_tokens: false,
                backchannel_logout_uri: None,
                backchannel_logout_session_required: false,
            }
        })
    }

    /// Client authentication with a private_key_jwt assertion: the first line is the Authorization
    /// header, the rest a form body (client_assertion_type, client_assertion, client_id, ...). Every
    /// assertion reaches the JWT parser, against a client with a real ES256 public key.
    pub fn client_assertion(data: &[u8]) {
        let (header, body) = match data.iter().position(|b| *b == b'\n') {
            Some(i) => (
                Some(String::from_utf8_lossy(&data[..i]).into_owned()),
                &data[i + 1..],
            ),
            None => (None, data),
        };
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
        let field = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let ctx = AssertionContext {
            audiences: &["https://id.example/token", "https://id.example"],
            now: 1_800_000_000,
        };
        if let Ok(p) = presented(header.as_deref(), field) {
            let _ = verify(client(), &p, true, &ctx);
        }
        // The raw JWT parser, whatever the form said.
        if let Some(jwt) = field("client_assertion") {
            let _ = verify_assertion(client(), jwt, &ctx);
        }
        let _ = verify_assertion(client(), &String::from_utf8_lossy(body), &ctx);
    }
}

pub mod liveness_frames {
    #![allow(unused_imports)]
    use super::*;

    struct Bytes<'a>(&'a [u8]);

    impl Bytes<'_> {
        fn u8(&mut self) -> u8 {
            let (b, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
            self.0 = rest;
            b
        }
        fn f32(&mut self) -> f32 {
            let b = [self.u8(), self.u8(), self.u8(), self.u8()];
            // Half the time a plausible value, else any bit pattern (NaN, infinities, huge).
            if b[0] & 1 == 0 {
                f32::from(b[1]) / 128.0 - 1.0
            } else {
                f32::from_le_bytes(b)
            }
        }
    }

    /// A liveness check fed frames: each frame's bytes go through `accept` (token, replay memory) and
    /// are read as the observation the vision pipeline would make of them (faces, pose, landmarks
    /// measures, embedding, hash, with NaN and infinities allowed), into `record`. The check must end
    /// in a decision or keep waiting, never panic.
    pub fn liveness_frames(data: &[u8]) {
        let mut b = Bytes(data);
        let kinds = ChallengeKind::ALL;
        let kind = kinds[b.u8() as usize % kinds.len()];
        let mut rng = facegate_core::liveness::Rng::seeded(u64::from(b.u8()));
        let start = Instant::now();
        let mut check = Check::new(kind.create(&mut rng), Policy::default(), start);
        let mut t = start;
        let mut n = 0u32;
        let mut next = check.first_token().map(String::from);
        while !b.0.is_empty() && n < 400 {
            n += 1;
            t += Duration::from_millis(u64::from(b.u8()) * 4);
            let len = (b.u8() as usize).min(b.0.len());
            let (frame, rest) = b.0.split_at(len);
            b.0 = rest;
            let token = if b.u8() % 16 == 0 {
                "forged".to_string()
            } else {
                next.clone().unwrap_or_default()
            };
            if check.accept(&token, frame, t).is_err() {
                continue;
            }
            let faces = (b.u8() % 4) as usize;
            let face = (faces > 0).then(|| FaceObservation {
                nose: (b.f32(), b.f32()),
                size: b.f32(),
                yaw: b.f32() * 90.0,
                pitch: b.f32() * 90.0,
                roll: b.f32() * 90.0,
                parallax: b.f32(),
                eyes: b.f32(),
                mouth_width: b.f32(),
                corner_lift: b.f32(),
                live_score: (b.u8() % 2 == 0).then(|| b.f32()),
                center: (b.f32(), b.f32()),
                width: b.f32(),
            });
            let dim = [0usize, 1, 8, 512][(b.u8() % 4) as usize];
            let embedding = (dim > 0).then(|| (0..dim).map(|_| b.f32()).collect::<Vec<f32>>());
            let phash = (b.u8() % 2 == 0).then(|| {
                let mut h = [0u64; 4];
                for w in &mut h {
                    *w = u64::from_le_bytes([b.u8(), b.u8(), b.u8(), b.u8(), b.u8(), b.u8(), b.u8(), b.u8()]);
                }
                h
            });
            let obs = (b.u8() % 8 != 0).then_some(Observation {
                faces,
                face,
                embedding,
                phash,
            });
            next = check.record(obs, t).next_token;
        }
        let _ = check.status(t + Duration::from_secs(60));
    }
}

pub mod config_file {
    #![allow(unused_imports)]
    use super::*;

    /// The config file: any text parses into settings or an error, never a panic.
    pub fn config_file(data: &[u8]) {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        if let Ok(table) = facegate_server::server::settings::parse_config(text) {
            let _ = facegate_server::server::Settings::layered(&table, None, |_| None);
        }
    }
}
