//! `facegate analyze`: what the pipeline sees in images — boxes, keypoints, pose, quality, expression.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use facegate_vision::{AnalyzeOptions, DecodeLimits, Face};
use serde::Serialize;

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Image files.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    #[arg(long, default_value = facegate_vision::DEFAULT_PACK)]
    pack: String,
    /// Include the 106 landmark points in the JSON.
    #[arg(long)]
    points: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct ImageResult {
    image: String,
    width: u32,
    height: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    faces: Vec<Face>,
}

pub fn run(args: AnalyzeArgs, models_dir: &Path) -> anyhow::Result<()> {
    let pipeline = super::load_pipeline(models_dir, &args.pack, None, 1)?;
    let mut results = Vec::new();
    for path in &args.images {
        let bytes = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
        let image = path.display().to_string();
        let img = match facegate_vision::decode(&bytes, &DecodeLimits::default()) {
            Ok(img) => img,
            Err(e) => {
                results.push(ImageResult {
                    image,
                    width: 0,
                    height: 0,
                    error: Some(e.to_string()),
                    faces: vec![],
                });
                continue;
            }
        };
        let opts = AnalyzeOptions {
            embed: false,
            landmarks: true,
            max_faces: None,
        };
        let mut faces = pipeline.analyze(&img, &opts)?;
        if !args.points {
            faces.iter_mut().for_each(|f| f.landmarks = None);
        }
        results.push(ImageResult {
            image,
            width: img.width(),
            height: img.height(),
            error: None,
            faces,
        });
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
        return Ok(());
    }
    for r in &results {
        match &r.error {
            Some(e) => println!("{}: {e}", r.image),
            None => println!(
                "{} ({}x{}): {} face(s)",
                r.image,
                r.width,
                r.height,
                r.faces.len()
            ),
        }
        for f in &r.faces {
            let b = &f.detection.bbox;
            println!(
                "  box ({:.0},{:.0})-({:.0},{:.0}) score {:.2}  yaw {:+.0} pitch {:+.0} roll {:+.0}  eyes {:.0}px sharpness {:.0} brightness {:.0}",
                b.x1,
                b.y1,
                b.x2,
                b.y2,
                f.detection.score,
                f.pose.yaw,
                f.pose.pitch,
                f.pose.roll,
                f.quality.eye_distance_px,
                f.quality.sharpness,
                f.quality.brightness
            );
            if let Some(e) = &f.expression {
                println!(
                    "  eyes open {:.2}/{:.2}  mouth open {:.2}  mouth width {:.2}  corner lift {:+.3}",
                    e.left_eye, e.right_eye, e.mouth_open, e.mouth_width, e.corner_lift
                );
            }
        }
    }
    Ok(())
}
