//! Criterion benchmarks of the hot paths: preprocessing alone (always), and detection / embedding on a
//! real selfie when the default pack is installed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benches fail loudly by design

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use facegate_vision::embed::{ARCFACE_TEMPLATE, align};
use facegate_vision::geometry::{Letterbox, PixelNorm};
use facegate_vision::{Detection, FacePipeline, RuntimeOptions};

fn selfie() -> Option<image::RgbImage> {
    let root = std::env::var_os("FACEGATE_TESTDATA")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata")
        });
    let bytes = std::fs::read(root.join("liveness/silent_face/image_T1.jpg")).ok()?;
    facegate_vision::decode(&bytes, &Default::default()).ok()
}

fn preprocessing(c: &mut Criterion) {
    let img = selfie().unwrap_or_else(|| image::RgbImage::from_pixel(480, 640, image::Rgb([90, 120, 150])));
    let norm = PixelNorm {
        bgr: false,
        mean: 127.5,
        std: 128.0,
        nhwc: false,
    };
    for size in [320u32, 640] {
        let mut lb = Letterbox::fit(img.width(), img.height(), size);
        lb.size = size;
        let mut out = vec![0f32; (size * size * 3) as usize];
        c.bench_function(&format!("letterbox_tensor_{size}"), |b| {
            b.iter(|| lb.write_tensor(black_box(&img), &norm, &mut out))
        });
    }
    let det = Detection {
        bbox: Default::default(),
        score: 1.0,
        keypoints: ARCFACE_TEMPLATE
            .map(|p| facegate_vision::geometry::Point::new(p.x * 1.6 + 150.0, p.y * 1.6 + 200.0)),
    };
    c.bench_function("align_112", |b| b.iter(|| align(black_box(&img), &det)));
    c.bench_function("decode_jpeg_640x480", |b| {
        let root = std::env::var_os("FACEGATE_TESTDATA")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata")
            });
        let bytes = std::fs::read(root.join("liveness/silent_face/image_T1.jpg")).unwrap_or_default();
        b.iter(|| facegate_vision::decode(black_box(&bytes), &Default::default()))
    });
}

fn models(c: &mut Criterion) {
    let (Some(img), Ok(pipeline)) = (
        selfie(),
        FacePipeline::load(
            &facegate_vision::default_models_dir(),
            facegate_vision::DEFAULT_PACK,
            &RuntimeOptions::default(),
        ),
    ) else {
        eprintln!("model benchmarks skipped: default pack or test data missing (facegate models fetch)");
        return;
    };
    let det = pipeline.detect(&img).ok().and_then(|d| d.into_iter().next());
    let Some(det) = det else { return };
    let aligned = pipeline.align(&img, &det).ok();
    c.bench_function("detect_640x480", |b| b.iter(|| pipeline.detect(black_box(&img))));
    if let Some(aligned) = aligned {
        c.bench_function("embed_1", |b| b.iter(|| pipeline.embed(&[black_box(&aligned)])));
        let four = [&aligned, &aligned, &aligned, &aligned];
        c.bench_function("embed_batch_4", |b| b.iter(|| pipeline.embed(black_box(&four))));
    }
    c.bench_function("landmarks_106", |b| {
        b.iter(|| pipeline.landmarks(black_box(&img), &det))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = preprocessing, models
}
criterion_main!(benches);
