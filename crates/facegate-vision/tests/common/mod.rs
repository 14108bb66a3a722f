//! Shared by the integration tests: where the test data and the models are.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benches fail loudly by design
#![allow(dead_code)]

use std::path::PathBuf;

use facegate_vision::{FacePipeline, RuntimeOptions};

/// `FACEGATE_TESTDATA`, else `../shared/testdata` beside the repository.
pub fn testdata() -> PathBuf {
    if let Some(p) = std::env::var_os("FACEGATE_TESTDATA") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata")
}

pub fn read(rel: &str) -> Vec<u8> {
    let path = testdata().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "test data {} missing ({e}); set FACEGATE_TESTDATA",
            path.display()
        )
    })
}

/// The pipeline for `pack`, or `None` (with the reason printed) when the models are not installed.
/// With `FACEGATE_REQUIRE_MODELS=1` (as CI sets) a missing pack fails the test instead.
pub fn pipeline(pack: &str) -> Option<FacePipeline> {
    pipeline_with(pack, None)
}

pub fn pipeline_with(pack: &str, det_size: Option<u32>) -> Option<FacePipeline> {
    let models = facegate_vision::default_models_dir();
    let mut manifest = facegate_vision::PackManifest::builtin(pack).expect("builtin pack");
    if let (Some(s), Some(d)) = (det_size, manifest.detector.as_mut()) {
        d.input_size = s;
    }
    match FacePipeline::load_manifest(&models, manifest, &RuntimeOptions::default()) {
        Ok(p) => Some(p),
        Err(e) if std::env::var("FACEGATE_REQUIRE_MODELS").as_deref() == Ok("1") => {
            panic!("pack {pack} is required (FACEGATE_REQUIRE_MODELS=1) but could not load: {e}")
        }
        Err(e) => {
            eprintln!("SKIPPED: pack {pack} not available ({e}); run `facegate models fetch --pack {pack}`");
            None
        }
    }
}

/// The embedding of the largest face in `faces/<rel>` (as the reference and `facegate eval` do).
pub fn embed_largest(pipeline: &FacePipeline, rel: &str) -> facegate_vision::Embedding {
    let img = facegate_vision::decode(&read(&format!("faces/{rel}")), &Default::default()).unwrap();
    let opts = facegate_vision::AnalyzeOptions {
        max_faces: Some(1),
        ..Default::default()
    };
    let face = pipeline.analyze(&img, &opts).unwrap().into_iter().next();
    face.unwrap_or_else(|| panic!("no face in {rel}"))
        .embedding
        .unwrap()
}
