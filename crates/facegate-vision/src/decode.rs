//! Turning untrusted bytes into an upright RGB image, with limits against decompression bombs.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageError, ImageReader, RgbImage};

use crate::error::{Result, VisionError};

/// Limits applied before any pixel is decoded.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    /// Largest accepted encoded size in bytes.
    pub max_bytes: usize,
    /// Largest accepted width or height in pixels.
    pub max_side: u32,
    /// Largest accepted width x height.
    pub max_pixels: u64,
    /// Smallest accepted width or height: below this no face detector can work.
    pub min_side: u32,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_bytes: 15 * 1024 * 1024,
            max_side: 8192,
            max_pixels: 40_000_000,
            min_side: 32,
        }
    }
}

/// Decodes JPEG, PNG, WebP, GIF (first frame) or PNM bytes into an RGB image, upright according to the
/// EXIF orientation, refusing anything over `limits` before allocating pixel memory for it.
pub fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<RgbImage> {
    crate::timed("decode", || decode_untimed(bytes, limits))
}

fn decode_untimed(bytes: &[u8], limits: &DecodeLimits) -> Result<RgbImage> {
    if bytes.is_empty() {
        return Err(VisionError::EmptyImage);
    }
    if bytes.len() > limits.max_bytes {
        return Err(VisionError::FileTooLarge {
            bytes: bytes.len(),
            max_bytes: limits.max_bytes,
        });
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| VisionError::CorruptImage(e.to_string()))?;
    match reader.format() {
        None => return Err(VisionError::UnknownFormat),
        Some(image::ImageFormat::Jpeg) if !jpeg_is_complete(bytes) => {
            return Err(VisionError::CorruptImage(
                "the JPEG data ends before the end-of-image marker".into(),
            ));
        }
        Some(_) => {}
    }
    let mut image_limits = image::Limits::default();
    image_limits.max_image_width = Some(limits.max_side);
    image_limits.max_image_height = Some(limits.max_side);
    // RGBA at 8 bits plus decoder scratch: four bytes a pixel is a generous bound.
    image_limits.max_alloc = Some(limits.max_pixels.saturating_mul(4).saturating_add(16 << 20));
    reader.limits(image_limits);

    let mut decoder = reader.into_decoder().map_err(|e| map_image_error(e, limits))?;
    let (width, height) = decoder.dimensions();
    check_dimensions(width, height, limits)?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| map_image_error(e, limits))?;
    img.apply_orientation(orientation);
    Ok(img.into_rgb8())
}

/// A JPEG is complete when an end-of-image marker (FF D9) follows its last start-of-scan (FF DA).
/// The decoder itself pads a truncated scan with grey and reports success, which would let half an
/// image through. Entropy-coded data cannot hold FF D9 (0xFF is stuffed as FF 00), and an EXIF
/// thumbnail's own markers come before the main image's scan.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let last = |marker: u8| bytes.windows(2).rposition(|w| w[0] == 0xFF && w[1] == marker);
    match (last(0xDA), last(0xD9)) {
        (Some(sos), Some(eoi)) => eoi > sos,
        _ => false,
    }
}

fn check_dimensions(width: u32, height: u32, limits: &DecodeLimits) -> Result<()> {
    if width > limits.max_side
        || height > limits.max_side
        || u64::from(width) * u64::from(height) > limits.max_pixels
    {
        return Err(VisionError::ImageTooLarge {
            width,
            height,
            max_side: limits.max_side,
            max_pixels: limits.max_pixels,
        });
    }
    if width < limits.min_side || height < limits.min_side {
        return Err(VisionError::ImageTooSmall {
            width,
            height,
            min_side: limits.min_side,
        });
    }
    Ok(())
}

fn map_image_error(e: ImageError, limits: &DecodeLimits) -> VisionError {
    match e {
        // The decoder refused before allocating: report it as too large, with the limits we set.
        ImageError::Limits(_) => VisionError::ImageTooLarge {
            width: 0,
            height: 0,
            max_side: limits.max_side,
            max_pixels: limits.max_pixels,
        },
        ImageError::Unsupported(u) => VisionError::CorruptImage(format!("unsupported image variant: {u}")),
        other => VisionError::CorruptImage(other.to_string()),
    }
}

/// Adds a black border of `fraction` of each side around the image, returning the new image and the
/// offset of the original's top-left corner. Tight face crops give detectors no context; a border does.
pub fn pad(img: &RgbImage, fraction: f32) -> (RgbImage, u32, u32) {
    let px = (img.width() as f32 * fraction).round() as u32;
    let py = (img.height() as f32 * fraction).round() as u32;
    let mut out = RgbImage::new(img.width() + 2 * px, img.height() + 2 * py);
    image::imageops::replace(&mut out, img, i64::from(px), i64::from(py));
    (out, px, py)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_bytes(w: u32, h: u32) -> Vec<u8> {
        let img = RgbImage::from_pixel(w, h, image::Rgb([10, 20, 30]));
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn empty_and_text_are_refused() {
        assert!(matches!(
            decode(b"", &DecodeLimits::default()),
            Err(VisionError::EmptyImage)
        ));
        let text = b"hello, this is certainly not an image\n";
        assert!(matches!(
            decode(text, &DecodeLimits::default()),
            Err(VisionError::UnknownFormat)
        ));
    }

    #[test]
    fn one_pixel_image_is_too_small() {
        let err = decode(&png_bytes(1, 1), &DecodeLimits::default()).unwrap_err();
        assert!(
            matches!(
                err,
                VisionError::ImageTooSmall {
                    width: 1,
                    height: 1,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn truncated_png_is_corrupt() {
        let bytes = png_bytes(64, 64);
        let err = decode(&bytes[..bytes.len() / 2], &DecodeLimits::default()).unwrap_err();
        assert!(matches!(err, VisionError::CorruptImage(_)), "{err}");
    }

    #[test]
    fn huge_png_header_is_refused_without_allocating() {
        // A valid PNG signature and IHDR claiming 20000x20000 RGB, and nothing after it.
        let mut bytes = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(b"IHDR");
        ihdr.extend_from_slice(&20000u32.to_be_bytes());
        ihdr.extend_from_slice(&20000u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        bytes.extend_from_slice(&13u32.to_be_bytes());
        bytes.extend_from_slice(&ihdr);
        bytes.extend_from_slice(&crc32(&ihdr).to_be_bytes());
        let err = decode(&bytes, &DecodeLimits::default()).unwrap_err();
        assert!(matches!(err, VisionError::ImageTooLarge { .. }), "{err}");
    }

    #[test]
    fn file_over_byte_limit_is_refused() {
        let limits = DecodeLimits {
            max_bytes: 100,
            ..DecodeLimits::default()
        };
        let err = decode(&png_bytes(64, 64), &limits).unwrap_err();
        assert!(matches!(err, VisionError::FileTooLarge { .. }), "{err}");
    }

    #[test]
    fn pad_places_image_in_the_middle() {
        let img = RgbImage::from_pixel(10, 20, image::Rgb([255, 255, 255]));
        let (out, px, py) = pad(&img, 0.5);
        assert_eq!((out.width(), out.height(), px, py), (20, 40, 5, 10));
        assert_eq!(out.get_pixel(4, 9).0, [0, 0, 0]);
        assert_eq!(out.get_pixel(5, 10).0, [255, 255, 255]);
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
}
