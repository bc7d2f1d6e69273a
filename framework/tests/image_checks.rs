//! Decoding refuses what PIL refuses, before it can hurt: a JPEG that ends early (PIL's
//! verdicts from tools/fixtures/truncated_jpeg.py) and an image whose header declares more
//! pixels than PIL's limit (refused from the header, without allocating the pixels).

use mvlpt_framework::data::image::{decode_bytes, decode_file, ExifOrientation, ImageError};
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/images/truncated"
    ))
}

#[test]
fn truncated_jpegs_are_refused_where_pil_refuses_them() {
    let verdicts: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("verdicts.json")).unwrap())
            .unwrap();
    let verdicts = verdicts.as_object().unwrap();
    assert_eq!(verdicts.len(), 16);
    for (file, verdict) in verdicts {
        let pil_ok = verdict["ok"].as_bool().unwrap();
        let ours = decode_file(&fixtures().join(file), ExifOrientation::Ignore);
        match (&ours, pil_ok) {
            (Ok(image), true) => assert_eq!((image.width(), image.height()), (64, 48), "{file}"),
            (Err(error), false) => {
                assert!(error.to_string().contains(file.as_str()), "{file}: {error}")
            }
            (Ok(_), false) => panic!("{file}: decoded, but PIL refuses it ({})", verdict["error"]),
            (Err(error), true) => panic!("{file}: refused ({error}), but PIL reads it"),
        }
    }
    // A complete file keeps its pixels: padding after the end marker changes nothing.
    let whole = decode_file(
        &fixtures().join("baseline-whole.jpg"),
        ExifOrientation::Ignore,
    );
    let padded = decode_file(
        &fixtures().join("baseline-trailing-bytes.jpg"),
        ExifOrientation::Ignore,
    );
    assert_eq!(whole.unwrap(), padded.unwrap());
}

/// A PNG whose header claims `width` × `height` RGB pixels, with almost no pixel data.
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        out.extend(kind);
        out.extend(data);
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend(crc.sum().to_be_bytes());
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::new();
    header.extend(width.to_be_bytes());
    header.extend(height.to_be_bytes());
    header.extend([8, 2, 0, 0, 0]); // 8-bit RGB, no interlace
    chunk(&mut png, b"IHDR", &header);
    chunk(
        &mut png,
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    chunk(&mut png, b"IEND", &[]);
    png
}

#[test]
fn an_image_declaring_too_many_pixels_is_refused_from_its_header() {
    // 100000 × 100000 RGB would need 30 GB.
    let error = decode_bytes(
        &png_claiming(100_000, 100_000),
        "bomb.png",
        ExifOrientation::Ignore,
    )
    .unwrap_err();
    assert!(matches!(error, ImageError::TooLarge { .. }), "{error:?}");
    let text = error.to_string();
    assert!(
        text.contains("bomb.png") && text.contains("100000x100000"),
        "{text}"
    );
    // Just under PIL's limit the header is accepted (decoding then fails on the missing data).
    let error = decode_bytes(
        &png_claiming(13_000, 13_000),
        "big.png",
        ExifOrientation::Ignore,
    )
    .unwrap_err();
    assert!(!matches!(error, ImageError::TooLarge { .. }), "{error:?}");
}
