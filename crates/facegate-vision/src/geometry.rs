//! Points, boxes, 2-D similarity transforms, and the pixel resampling every model's preprocessing
//! is built from. Sampling follows OpenCV's conventions (pixel centres at +0.5, bilinear, black border)
//! so that models trained on OpenCV-preprocessed data see what they expect.

use image::RgbImage;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, serde::Deserialize)]
pub struct Point {
    pub x: f32,
    pub y: f32,
}

impl Point {
    pub const fn new(x: f32, y: f32) -> Self {
        Self { x, y }
    }

    pub fn distance(self, other: Point) -> f32 {
        ((self.x - other.x).powi(2) + (self.y - other.y).powi(2)).sqrt()
    }

    pub fn midpoint(self, other: Point) -> Point {
        Point::new((self.x + other.x) / 2.0, (self.y + other.y) / 2.0)
    }
}

/// An axis-aligned box in image pixels, corners (x1, y1) top-left and (x2, y2) bottom-right.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, serde::Deserialize)]
pub struct BBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl BBox {
    pub fn width(&self) -> f32 {
        (self.x2 - self.x1).max(0.0)
    }

    pub fn height(&self) -> f32 {
        (self.y2 - self.y1).max(0.0)
    }

    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }

    pub fn center(&self) -> Point {
        Point::new((self.x1 + self.x2) / 2.0, (self.y1 + self.y2) / 2.0)
    }

    pub fn iou(&self, other: &BBox) -> f32 {
        let ix = (self.x2.min(other.x2) - self.x1.max(other.x1)).max(0.0);
        let iy = (self.y2.min(other.y2) - self.y1.max(other.y1)).max(0.0);
        let inter = ix * iy;
        let union = self.area() + other.area() - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }

    /// Moves and scales the box: `p -> p * scale + offset`.
    pub fn map(&self, scale: f32, dx: f32, dy: f32) -> BBox {
        BBox {
            x1: self.x1 * scale + dx,
            y1: self.y1 * scale + dy,
            x2: self.x2 * scale + dx,
            y2: self.y2 * scale + dy,
        }
    }
}

/// A 2x3 affine matrix `[a b tx; c d ty]` mapping (x, y) to (a x + b y + tx, c x + d y + ty).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Affine(pub [f64; 6]);

impl Affine {
    pub const IDENTITY: Affine = Affine([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);

    pub fn scale_translate(scale: f64, tx: f64, ty: f64) -> Affine {
        Affine([scale, 0.0, tx, 0.0, scale, ty])
    }

    pub fn apply(&self, p: Point) -> Point {
        let [a, b, tx, c, d, ty] = self.0;
        let (x, y) = (f64::from(p.x), f64::from(p.y));
        Point::new((a * x + b * y + tx) as f32, (c * x + d * y + ty) as f32)
    }

    /// The inverse transform, or `None` when the matrix is singular.
    pub fn invert(&self) -> Option<Affine> {
        let [a, b, tx, c, d, ty] = self.0;
        let det = a * d - b * c;
        if det.abs() < 1e-12 || !det.is_finite() {
            return None;
        }
        let (ia, ib, ic, id) = (d / det, -b / det, -c / det, a / det);
        Some(Affine([
            ia,
            ib,
            -(ia * tx + ib * ty),
            ic,
            id,
            -(ic * tx + id * ty),
        ]))
    }

    /// The uniform scale of a similarity transform.
    pub fn scale(&self) -> f64 {
        let [a, _, _, c, _, _] = self.0;
        (a * a + c * c).sqrt()
    }
}

/// The least-squares similarity transform (rotation, uniform scale, translation; no reflection) taking
/// `src` onto `dst` — Umeyama's estimate, which in 2-D has this closed form. `None` if the points are
/// degenerate (all equal) or the slices differ in length.
pub fn similarity_transform(src: &[Point], dst: &[Point]) -> Option<Affine> {
    if src.len() != dst.len() || src.len() < 2 {
        return None;
    }
    let n = src.len() as f64;
    let mean = |pts: &[Point]| {
        let (sx, sy) = pts.iter().fold((0.0, 0.0), |(sx, sy), p| {
            (sx + f64::from(p.x), sy + f64::from(p.y))
        });
        (sx / n, sy / n)
    };
    let (msx, msy) = mean(src);
    let (mdx, mdy) = mean(dst);
    let (mut num_a, mut num_b, mut den) = (0.0, 0.0, 0.0);
    for (s, d) in src.iter().zip(dst) {
        let (x, y) = (f64::from(s.x) - msx, f64::from(s.y) - msy);
        let (u, v) = (f64::from(d.x) - mdx, f64::from(d.y) - mdy);
        num_a += x * u + y * v;
        num_b += x * v - y * u;
        den += x * x + y * y;
    }
    if den < 1e-12 {
        return None;
    }
    let (a, b) = (num_a / den, num_b / den);
    let tx = mdx - (a * msx - b * msy);
    let ty = mdy - (b * msx + a * msy);
    Some(Affine([a, -b, tx, b, a, ty]))
}

/// Warps `src` into a `width` x `height` image: each output pixel (x, y) takes the bilinear sample of
/// `src` at `inverse(x, y)` (pixel centres on integers, as OpenCV's `warpAffine`), black outside.
pub fn warp_affine(src: &RgbImage, inverse: &Affine, width: u32, height: u32) -> RgbImage {
    let mut out = RgbImage::new(width, height);
    let [a, b, tx, c, d, ty] = inverse.0;
    let (sw, sh) = (src.width() as i64, src.height() as i64);
    let raw = src.as_raw();
    let out_raw: &mut [u8] = &mut out;
    for oy in 0..height as usize {
        for ox in 0..width as usize {
            let (fx, fy) = (ox as f64, oy as f64);
            let sx = a * fx + b * fy + tx;
            let sy = c * fx + d * fy + ty;
            let px = sample_bilinear(raw, sw, sh, sx, sy);
            let o = (oy * width as usize + ox) * 3;
            out_raw[o..o + 3].copy_from_slice(&px);
        }
    }
    out
}

#[inline]
fn sample_bilinear(raw: &[u8], w: i64, h: i64, x: f64, y: f64) -> [u8; 3] {
    let x0 = x.floor();
    let y0 = y.floor();
    let (fx, fy) = ((x - x0) as f32, (y - y0) as f32);
    let (x0, y0) = (x0 as i64, y0 as i64);
    let mut acc = [0f32; 3];
    for (dy, wy) in [(0, 1.0 - fy), (1, fy)] {
        for (dx, wx) in [(0, 1.0 - fx), (1, fx)] {
            let (xx, yy) = (x0 + dx, y0 + dy);
            let weight = wx * wy;
            if weight == 0.0 || xx < 0 || yy < 0 || xx >= w || yy >= h {
                continue;
            }
            let i = ((yy * w + xx) * 3) as usize;
            for ch in 0..3 {
                acc[ch] += weight * f32::from(raw[i + ch]);
            }
        }
    }
    acc.map(|v| v.round().clamp(0.0, 255.0) as u8)
}

/// Resizes with OpenCV's `INTER_LINEAR` convention (half-pixel centres, edge clamp, no antialiasing).
pub fn resize_bilinear(src: &RgbImage, width: u32, height: u32) -> RgbImage {
    let mut out = RgbImage::new(width, height);
    if width == 0 || height == 0 || src.width() == 0 || src.height() == 0 {
        return out;
    }
    let sx = src.width() as f32 / width as f32;
    let sy = src.height() as f32 / height as f32;
    let taps = |n: u32, scale: f32, limit: u32| -> Vec<(usize, usize, f32)> {
        (0..n)
            .map(|i| {
                let f = ((i as f32 + 0.5) * scale - 0.5).max(0.0);
                let i0 = (f.floor() as u32).min(limit - 1);
                let i1 = (i0 + 1).min(limit - 1);
                (i0 as usize, i1 as usize, f - i0 as f32)
            })
            .collect()
    };
    let xs = taps(width, sx, src.width());
    let ys = taps(height, sy, src.height());
    let raw = src.as_raw();
    let stride = src.width() as usize * 3;
    let out_raw: &mut [u8] = &mut out;
    for (oy, &(y0, y1, wy)) in ys.iter().enumerate() {
        let (r0, r1) = (&raw[y0 * stride..], &raw[y1 * stride..]);
        for (ox, &(x0, x1, wx)) in xs.iter().enumerate() {
            let o = (oy * width as usize + ox) * 3;
            for ch in 0..3 {
                let top = f32::from(r0[x0 * 3 + ch]) * (1.0 - wx) + f32::from(r0[x1 * 3 + ch]) * wx;
                let bottom = f32::from(r1[x0 * 3 + ch]) * (1.0 - wx) + f32::from(r1[x1 * 3 + ch]) * wx;
                out_raw[o + ch] = (top * (1.0 - wy) + bottom * wy).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

/// How a model wants its pixels: channel order, per-channel `(v - mean) / std`, and tensor layout.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize, Serialize)]
pub struct PixelNorm {
    #[serde(default)]
    pub bgr: bool,
    pub mean: f32,
    pub std: f32,
    #[serde(default)]
    pub nhwc: bool,
}

/// Writes `img` into `out` (length 3*w*h) normalised and laid out as `norm` says.
pub fn to_tensor(img: &RgbImage, norm: &PixelNorm, out: &mut [f32]) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let plane = w * h;
    debug_assert_eq!(out.len(), plane * 3);
    let inv_std = 1.0 / norm.std;
    for (i, px) in img.as_raw().chunks_exact(3).enumerate() {
        for ch in 0..3 {
            let src_ch = if norm.bgr { 2 - ch } else { ch };
            let v = (f32::from(px[src_ch]) - norm.mean) * inv_std;
            let idx = if norm.nhwc { i * 3 + ch } else { ch * plane + i };
            out[idx] = v;
        }
    }
}

/// Letterbox geometry: the image is scaled by `scale` to `resized_w` x `resized_h` and pasted at the
/// top-left of a `size` x `size` square.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    pub size: u32,
    pub scale: f32,
    pub resized_w: u32,
    pub resized_h: u32,
}

impl Letterbox {
    /// Keeps the aspect ratio; the longer side becomes `size`. Matches insightface's SCRFD preprocessing
    /// to the pixel, including its rounding (`int(size / (h / w))` in double precision) and its single
    /// scale `resized_h / h` for both axes.
    pub fn fit(width: u32, height: u32, size: u32) -> Letterbox {
        let (w, h) = (f64::from(width.max(1)), f64::from(height.max(1)));
        let ratio = h / w;
        let (resized_w, resized_h) = if ratio > 1.0 {
            ((f64::from(size) / ratio) as u32, size)
        } else {
            (size, (f64::from(size) * ratio) as u32)
        };
        let (resized_w, resized_h) = (resized_w.max(1), resized_h.max(1));
        Letterbox {
            size,
            scale: (f64::from(resized_h) / h) as f32,
            resized_w,
            resized_h,
        }
    }

    /// Fills a `size` x `size` image: the resized source top-left, zeros elsewhere.
    pub fn apply(&self, img: &RgbImage) -> RgbImage {
        let resized = resize_bilinear(img, self.resized_w, self.resized_h);
        let mut canvas = RgbImage::new(self.size, self.size);
        image::imageops::replace(&mut canvas, &resized, 0, 0);
        canvas
    }

    /// Writes the letterboxed image straight into a model input tensor (`3 * size * size` values),
    /// normalised as `norm` says; the padding is black, normalised like any black pixel. Equal to
    /// `to_tensor(&self.apply(img), ..)` without the two intermediate images.
    pub fn write_tensor(&self, img: &RgbImage, norm: &PixelNorm, out: &mut [f32]) {
        let size = self.size as usize;
        debug_assert_eq!(out.len(), size * size * 3);
        let (rw, rh) = (
            self.resized_w.min(self.size) as usize,
            self.resized_h.min(self.size) as usize,
        );
        let inv_std = 1.0 / norm.std;
        out.fill(-norm.mean * inv_std);
        let plane = size * size;
        let mut put = |x: usize, y: usize, px: [u8; 3]| {
            let i = y * size + x;
            for ch in 0..3 {
                let v = (f32::from(px[if norm.bgr { 2 - ch } else { ch }]) - norm.mean) * inv_std;
                out[if norm.nhwc { i * 3 + ch } else { ch * plane + i }] = v;
            }
        };
        if rw as u32 == img.width() && rh as u32 == img.height() {
            for (y, row) in img.as_raw().chunks_exact(img.width() as usize * 3).enumerate() {
                for (x, px) in row.chunks_exact(3).enumerate() {
                    put(x, y, [px[0], px[1], px[2]]);
                }
            }
        } else {
            let resized = resize_bilinear(img, rw as u32, rh as u32);
            for (y, row) in resized.as_raw().chunks_exact(rw * 3).enumerate() {
                for (x, px) in row.chunks_exact(3).enumerate() {
                    put(x, y, [px[0], px[1], px[2]]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similarity_recovers_a_known_transform() {
        let truth = Affine([
            0.8 * 0.3f64.cos(),
            -0.8 * 0.3f64.sin(),
            12.0,
            0.8 * 0.3f64.sin(),
            0.8 * 0.3f64.cos(),
            -7.0,
        ]);
        let src = [
            Point::new(10.0, 20.0),
            Point::new(50.0, 22.0),
            Point::new(30.0, 40.0),
            Point::new(15.0, 60.0),
        ];
        let dst: Vec<Point> = src.iter().map(|p| truth.apply(*p)).collect();
        let est = similarity_transform(&src, &dst).unwrap();
        for (e, t) in est.0.iter().zip(truth.0) {
            assert!((e - t).abs() < 1e-4, "{est:?} vs {truth:?}");
        }
        let back = est.invert().unwrap().apply(dst[2]);
        assert!(back.distance(src[2]) < 1e-3);
    }

    #[test]
    fn degenerate_points_give_no_transform() {
        let p = [Point::new(1.0, 1.0); 5];
        assert!(similarity_transform(&p, &p).is_none());
    }

    #[test]
    fn letterbox_keeps_aspect_ratio() {
        let lb = Letterbox::fit(640, 480, 320);
        assert_eq!((lb.resized_w, lb.resized_h), (320, 240));
        assert!((lb.scale - 0.5).abs() < 1e-6);
        let lb = Letterbox::fit(480, 640, 640);
        assert_eq!((lb.resized_w, lb.resized_h), (480, 640));
    }

    #[test]
    fn fused_letterbox_tensor_equals_the_two_step_one() {
        let img = RgbImage::from_fn(50, 30, |x, y| {
            image::Rgb([x as u8 * 5, y as u8 * 7, (x + y) as u8])
        });
        let norm = PixelNorm {
            bgr: true,
            mean: 127.5,
            std: 128.0,
            nhwc: false,
        };
        for size in [50, 64, 32] {
            let lb = Letterbox::fit(50, 30, size);
            let mut fused = vec![0.0; (size * size * 3) as usize];
            lb.write_tensor(&img, &norm, &mut fused);
            let mut two_step = vec![0.0; (size * size * 3) as usize];
            to_tensor(&lb.apply(&img), &norm, &mut two_step);
            assert_eq!(fused, two_step, "size {size}");
        }
    }

    #[test]
    fn resize_identity_is_exact() {
        let img = RgbImage::from_fn(7, 5, |x, y| image::Rgb([x as u8 * 30, y as u8 * 40, 7]));
        assert_eq!(resize_bilinear(&img, 7, 5), img);
    }

    #[test]
    fn tensor_layouts() {
        let img = RgbImage::from_fn(2, 1, |x, _| image::Rgb([x as u8, 10, 20]));
        let mut out = vec![0.0; 6];
        to_tensor(
            &img,
            &PixelNorm {
                bgr: false,
                mean: 0.0,
                std: 1.0,
                nhwc: false,
            },
            &mut out,
        );
        assert_eq!(out, vec![0.0, 1.0, 10.0, 10.0, 20.0, 20.0]);
        to_tensor(
            &img,
            &PixelNorm {
                bgr: true,
                mean: 0.0,
                std: 1.0,
                nhwc: true,
            },
            &mut out,
        );
        assert_eq!(out, vec![20.0, 10.0, 0.0, 20.0, 10.0, 1.0]);
        to_tensor(
            &img,
            &PixelNorm {
                bgr: false,
                mean: 127.5,
                std: 127.5,
                nhwc: false,
            },
            &mut out,
        );
        assert!((out[0] + 1.0).abs() < 1e-6);
    }
}
