//! Passive anti-spoofing: a small classifier that looks at the face and its surroundings (the box
//! grown 2.7x, where paper edges, screen bezels and moire show) and says how likely the face is live.
//! One cue of the liveness check, never the whole decision (docs/liveness.md has its measured limits).

use std::path::{Path, PathBuf};

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::error::{Result, VisionError};
use crate::geometry::{BBox, PixelNorm, resize_bilinear, to_tensor};
use crate::pack::{PackManifest, check_installed, pack_dir};
use crate::runtime::{Model, RuntimeOptions, locate_library};

/// Name of the pack that carries the model.
pub const PACK: &str = "antispoof";

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AntiSpoofSpec {
    pub file: String,
    pub input_size: u32,
    /// The crop is the face box grown by this factor (less where the image ends).
    pub crop_scale: f32,
    /// Index of the "live" class in the softmax output.
    pub live_class: usize,
    pub norm: PixelNorm,
}

#[derive(Debug)]
pub struct AntiSpoof {
    spec: AntiSpoofSpec,
    model: Model,
}

/// The crop the model sees, as (x, y, width, height) in whole pixels: the box grown by `scale` around
/// its centre (never more than the image allows), shifted back inside the image.
pub fn crop_rect(img_w: u32, img_h: u32, bbox: &BBox, scale: f32) -> Option<(u32, u32, u32, u32)> {
    let (w, h) = (bbox.width(), bbox.height());
    if w < 1.0 || h < 1.0 || img_w < 2 || img_h < 2 {
        return None;
    }
    let (iw, ih) = (img_w as f32 - 1.0, img_h as f32 - 1.0);
    let scale = scale.min(ih / h).min(iw / w);
    let (nw, nh) = (w * scale, h * scale);
    let c = bbox.center();
    let (mut l, mut t, mut r, mut b) = (c.x - nw / 2.0, c.y - nh / 2.0, c.x + nw / 2.0, c.y + nh / 2.0);
    if l < 0.0 {
        r -= l;
        l = 0.0;
    }
    if t < 0.0 {
        b -= t;
        t = 0.0;
    }
    if r > iw {
        l -= r - iw;
        r = iw;
    }
    if b > ih {
        t -= b - ih;
        b = ih;
    }
    let x = l.max(0.0) as u32;
    let y = t.max(0.0) as u32;
    let cw = ((r - l) as u32).min(img_w - x).max(1);
    let ch = ((b - t) as u32).min(img_h - y).max(1);
    Some((x, y, cw, ch))
}

impl AntiSpoof {
    /// Loads the model from the installed `antispoof` pack.
    pub fn load(models_dir: &Path, opts: &RuntimeOptions) -> Result<AntiSpoof> {
        let manifest = PackManifest::builtin(PACK)?;
        let dir = pack_dir(models_dir, PACK);
        check_installed(&manifest, &dir)?;
        let library: PathBuf = locate_library(opts.library.as_deref(), models_dir).ok_or_else(|| {
            VisionError::Runtime(format!(
                "the ONNX Runtime library is not installed in {}: run `facegate models fetch`",
                models_dir.display()
            ))
        })?;
        let spec = manifest
            .antispoof
            .ok_or_else(|| VisionError::Pack("pack antispoof has no [antispoof] section".into()))?;
        let model = Model::load(&dir.join(&spec.file), &library, opts)?;
        Ok(AntiSpoof { spec, model })
    }

    /// Probability (0-1) that the face in `bbox` is live.
    pub fn live_score(&self, img: &RgbImage, bbox: &BBox) -> Result<f32> {
        crate::timed("antispoof", || self.live_score_untimed(img, bbox))
    }

    fn live_score_untimed(&self, img: &RgbImage, bbox: &BBox) -> Result<f32> {
        let (x, y, w, h) = crop_rect(img.width(), img.height(), bbox, self.spec.crop_scale)
            .ok_or_else(|| self.model.bad_output("degenerate face box"))?;
        let crop = image::imageops::crop_imm(img, x, y, w, h).to_image();
        let size = self.spec.input_size;
        let input = resize_bilinear(&crop, size, size);
        let s = size as usize;
        let mut tensor = vec![0f32; 3 * s * s];
        to_tensor(&input, &self.spec.norm, &mut tensor);
        let outputs = self.model.run(&[1, 3, s, s], &tensor)?;
        let out = outputs
            .first()
            .ok_or_else(|| self.model.bad_output("no output"))?;
        let logits = &out.data;
        if logits.len() <= self.spec.live_class {
            return Err(self
                .model
                .bad_output(format!("expected class scores, got {}", logits.len())));
        }
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let sum: f32 = logits.iter().map(|v| (v - max).exp()).sum();
        Ok((logits[self.spec.live_class] - max).exp() / sum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_stays_inside_the_image() {
        let b = BBox {
            x1: 10.0,
            y1: 20.0,
            x2: 110.0,
            y2: 150.0,
        };
        let (x, y, w, h) = crop_rect(640, 480, &b, 2.7).unwrap_or_default();
        assert!(x + w <= 640 && y + h <= 480, "{x} {y} {w} {h}");
        // The box is 130 high: 2.7x would be 351, within 479.
        assert!((h as i32 - 351).abs() <= 1, "{h}");
        assert!(crop_rect(640, 480, &BBox::default(), 2.7).is_none());
    }
}
