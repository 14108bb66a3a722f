//! The fuzz targets' inputs replayed as ordinary tests: the seed corpus (fuzz/corpus/TARGET) and
//! every input a fuzzer found to crash (fuzz/regressions/TARGET, kept after the fix), through the
//! same bodies cargo-fuzz runs (fuzz/harness.rs). A panic here is a regression.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../fuzz/harness.rs"]
mod harness;

use std::path::PathBuf;

fn replay(target: &str, run: fn(&[u8])) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut n = 0;
    for kind in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(kind).join(target)) else {
            continue;
        };
        for e in entries {
            let path = e.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| run(&bytes));
            assert!(outcome.is_ok(), "{target}: {} panics", path.display());
            n += 1;
        }
    }
    assert!(n > 0, "{target} has no seed inputs");
}

#[test]
fn image_decode() {
    replay("image_decode", harness::image_decode::image_decode);
}

#[test]
fn api_input() {
    replay("api_input", harness::api_input::api_input);
}

#[test]
fn authorize_request() {
    replay("authorize_request", harness::authorize_request::authorize_request);
}

#[test]
fn token_request() {
    replay("token_request", harness::token_request::token_request);
}

#[test]
fn client_assertion() {
    replay("client_assertion", harness::client_assertion::client_assertion);
}

#[test]
fn liveness_frames() {
    replay("liveness_frames", harness::liveness_frames::liveness_frames);
}

#[test]
fn config_file() {
    replay("config_file", harness::config_file::config_file);
}
