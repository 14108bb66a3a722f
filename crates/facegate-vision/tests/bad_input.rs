//! Bad input gets a specific error or result, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benches fail loudly by design

mod common;

use facegate_vision::{DecodeLimits, ErrorKind, VisionError, decode};

fn limits() -> DecodeLimits {
    DecodeLimits::default()
}

#[test]
fn empty_text_truncated_tiny_and_huge_inputs_get_specific_errors() {
    assert!(matches!(decode(b"", &limits()), Err(VisionError::EmptyImage)));
    let text = b"name,email\nalice,alice@example.com\n";
    assert!(matches!(decode(text, &limits()), Err(VisionError::UnknownFormat)));

    let jpeg = common::read("faces/deepface/person_img1/img10.jpg");
    for cut in [20, 600, jpeg.len() / 3] {
        let err = decode(&jpeg[..cut], &limits())
            .err()
            .unwrap_or_else(|| panic!("JPEG cut at {cut} bytes decoded"));
        assert_eq!(err.kind(), ErrorKind::BadImage, "cut at {cut}: {err}");
    }

    let mut one = Vec::new();
    image::RgbImage::new(1, 1)
        .write_to(&mut std::io::Cursor::new(&mut one), image::ImageFormat::Png)
        .unwrap();
    assert!(matches!(
        decode(&one, &limits()),
        Err(VisionError::ImageTooSmall { .. })
    ));

    // 20000x20000 claimed in a JPEG's frame header: refused from the header alone.
    let mut big = jpeg.clone();
    let sof = big
        .windows(2)
        .position(|w| w == [0xFF, 0xC0] || w == [0xFF, 0xC2])
        .expect("SOF marker");
    big[sof + 5..sof + 7].copy_from_slice(&20000u16.to_be_bytes());
    big[sof + 7..sof + 9].copy_from_slice(&20000u16.to_be_bytes());
    let Err(err) = decode(&big, &limits()) else {
        panic!("a 20000x20000 JPEG must be refused")
    };
    assert_eq!(err.kind(), ErrorKind::ImageTooLarge, "{err}");
}

#[test]
fn random_bytes_never_panic() {
    // A fixed xorshift stream: corrupt data after valid signatures of each format.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u8
    };
    let heads: [&[u8]; 5] = [
        b"\xFF\xD8\xFF\xE0",
        b"\x89PNG\r\n\x1a\n",
        b"RIFF\x00\x00\x00\x00WEBPVP8 ",
        b"GIF89a",
        b"P5\n",
    ];
    for head in heads {
        for len in [0usize, 10, 100, 5000] {
            let mut data = head.to_vec();
            data.extend((0..len).map(|_| next()));
            let _ = decode(&data, &limits());
        }
    }
}

#[test]
fn image_without_a_face_says_so() {
    let Some(pipeline) = common::pipeline(facegate_vision::DEFAULT_PACK) else {
        return;
    };
    // A smooth gradient with a few shapes: no face anywhere, even after the padding retry.
    let img = image::RgbImage::from_fn(640, 480, |x, y| {
        let ring = ((x as i32 - 320).pow(2) + (y as i32 - 240).pow(2) - 100 * 100).abs() < 800;
        if ring {
            image::Rgb([20, 20, 20])
        } else {
            image::Rgb([(x / 3) as u8, (y / 2) as u8, 140])
        }
    });
    assert!(pipeline.detect(&img).unwrap().is_empty());
    assert!(matches!(pipeline.embed_single(&img), Err(VisionError::NoFace)));
}

#[test]
fn image_with_several_faces_says_how_many() {
    let Some(pipeline) = common::pipeline(facegate_vision::DEFAULT_PACK) else {
        return;
    };
    // deepface img54: a person with two others in the background.
    let img = decode(&common::read("faces/deepface/person_img3/img54.jpg"), &limits()).unwrap();
    match pipeline.embed_single(&img) {
        Err(VisionError::MultipleFaces { count }) => assert_eq!(count, 3),
        other => panic!("expected MultipleFaces, got {other:?}"),
    }
    let faces = pipeline.detect(&img).unwrap();
    assert!(
        faces.windows(2).all(|w| w[0].bbox.area() >= w[1].bbox.area()),
        "largest first"
    );
}
