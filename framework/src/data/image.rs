//! Decoded 8-bit RGB images, read from a file or from bytes (e.g. a zip archive member).
//!
//! Decoding matches what the reference feeds torchvision: PIL's `Image.open(f).convert("RGB")`.
//! The format is recognised from the content, not the file name. Pixel layouts are reduced to RGB
//! the way PIL's `convert("RGB")` does it, which is not always the obvious scaling:
//! - grayscale (any bit depth below 8 is expanded to 0..=255 first) is replicated to R, G and B;
//! - alpha is dropped, never blended (PIL does not premultiply on `convert("RGB")`);
//! - palette images take the palette colour, transparent entries included;
//! - 16-bit grayscale opens in PIL as mode `I;16`, whose RGB conversion *clips* to 255
//!   (so 256..=65535 all become 255), while 16-bit RGB, RGBA and gray+alpha keep the high byte.
//!
//! EXIF orientation: PIL, torchvision and Dassl's `read_image` ignore it; ELEVATER's loader
//! (vision-datasets `PILImageLoader`) applies it. [`ExifOrientation`] selects either behaviour.
//!
//! Truncated JPEGs are refused as PIL refuses them (the decoder here would fill the missing
//! part with grey).
//!
//! Size limits: an image of more than [`MAX_PIXELS`] pixels is refused from its header, before
//! any pixel buffer is allocated, as PIL refuses it (`DecompressionBombError` above twice
//! `Image.MAX_IMAGE_PIXELS`); decoders are also held to [`MAX_DECODE_BYTES`] of allocation.
//!
//! Known decoder differences (not bit-exact): lossy JPEG and WebP come from different decoders
//! (zune-jpeg and image-webp here, libjpeg-turbo and libwebp in PIL), so pixels may differ by a few
//! levels; CMYK JPEGs use a different CMYK to RGB formula than PIL. Lossless formats are exact.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageReader, Limits};

/// Most pixels an image may have: PIL's decompression-bomb limit, `2 * Image.MAX_IMAGE_PIXELS`
/// (`2 * 89_478_485`), above which PIL refuses to open an image.
pub const MAX_PIXELS: u64 = 2 * 89_478_485;
/// Most bytes a decoder may allocate (a 16-bit RGBA image of [`MAX_PIXELS`] pixels).
pub const MAX_DECODE_BYTES: u64 = MAX_PIXELS * 8;

/// An 8-bit RGB image stored row-major, interleaved (height × width × 3, "HWC").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage8 {
    width: usize,
    height: usize,
    data: Vec<u8>,
}

impl RgbImage8 {
    /// Wraps interleaved RGB bytes; fails when `data` is not exactly `width * height * 3` long.
    pub fn new(width: usize, height: usize, data: Vec<u8>) -> Result<Self, ImageError> {
        let expected = width.checked_mul(height).and_then(|n| n.checked_mul(3));
        if expected != Some(data.len()) {
            return Err(ImageError::BufferSize {
                width,
                height,
                len: data.len(),
            });
        }
        Ok(Self {
            width,
            height,
            data,
        })
    }

    /// Wraps a buffer the caller has sized correctly (internal constructors of derived images).
    pub(crate) fn from_parts(width: usize, height: usize, data: Vec<u8>) -> Self {
        debug_assert_eq!(data.len(), width * height * 3);
        Self {
            width,
            height,
            data,
        }
    }

    /// A black image (all zeros), the fill PIL uses for padding and out-of-bounds crops.
    pub fn black(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            data: vec![0; width * height * 3],
        }
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The interleaved RGB bytes, row-major.
    pub fn as_raw(&self) -> &[u8] {
        &self.data
    }

    /// Mutable access to the interleaved RGB bytes, row-major.
    pub fn as_raw_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }

    /// Consumes the image, returning its interleaved RGB bytes.
    pub fn into_raw(self) -> Vec<u8> {
        self.data
    }

    /// The bytes of row `y` (`width * 3` of them).
    pub fn row(&self, y: usize) -> &[u8] {
        let stride = self.width * 3;
        &self.data[y * stride..(y + 1) * stride]
    }
}

/// Whether decoding applies the EXIF orientation tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExifOrientation {
    /// Keep the stored pixel order, as PIL's `Image.open`, torchvision and Dassl/CoOp do.
    #[default]
    Ignore,
    /// Rotate/flip to the display orientation, as ELEVATER's vision-datasets loader does.
    Apply,
}

/// Why an image could not be read; every variant names the file or archive member.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The file could not be read from disk.
    #[error("cannot read image file {name}: {source}")]
    Read {
        /// The path as given.
        name: String,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// The content matches none of the supported formats (JPEG, PNG, BMP, GIF, WebP, TIFF).
    #[error("cannot decode image {name}: not a JPEG, PNG, BMP, GIF, WebP or TIFF file")]
    UnknownFormat {
        /// The file or archive member.
        name: String,
    },
    /// The decoder rejected the data (truncated, corrupt, over the memory limits...).
    #[error("cannot decode image {name} ({format}): {source}")]
    Decode {
        /// The file or archive member.
        name: String,
        /// The format recognised from the content.
        format: String,
        /// The decoder's error.
        source: image::ImageError,
    },
    /// A pixel layout with no RGB conversion here (floating-point TIFF, for instance).
    #[error("cannot convert image {name} to RGB: unsupported pixel layout {layout}")]
    UnsupportedLayout {
        /// The file or archive member.
        name: String,
        /// The decoder's colour type.
        layout: String,
    },
    /// The header declares more pixels than [`MAX_PIXELS`] (a decompression bomb, or a
    /// corrupt header); refused before decoding.
    #[error(
        "image {name} declares {width}x{height} pixels, more than the {limit} PIL accepts; \
         refusing to decode it"
    )]
    TooLarge {
        /// The file or archive member.
        name: String,
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// [`MAX_PIXELS`].
        limit: u64,
    },
    /// The file ends early (PIL: "image file is truncated"); see [`super::truncation`].
    #[error("cannot decode image {name}: {reason}")]
    Truncated {
        /// The file or archive member.
        name: String,
        /// What is missing.
        reason: String,
    },
    /// [`RgbImage8::new`] was given a buffer of the wrong length.
    #[error("an RGB image of {width}x{height} needs {} bytes, got {len}", width * height * 3)]
    BufferSize {
        /// Requested width.
        width: usize,
        /// Requested height.
        height: usize,
        /// Length of the buffer given.
        len: usize,
    },
}

/// Reads and decodes an image file; see the module docs for the RGB conversion rules.
pub fn decode_file(path: &Path, orientation: ExifOrientation) -> Result<RgbImage8, ImageError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| match std::fs::read_link(path) {
        Ok(target) if !path.exists() => ImageError::Read {
            name: format!(
                "{name} (a symbolic link to {}, which does not exist)",
                target.display()
            ),
            source,
        },
        _ => ImageError::Read {
            name: name.clone(),
            source,
        },
    })?;
    decode_bytes(&bytes, &name, orientation)
}

/// Decodes an image held in memory; `name` (a path or an archive member) only labels errors.
pub fn decode_bytes(
    bytes: &[u8],
    name: &str,
    orientation: ExifOrientation,
) -> Result<RgbImage8, ImageError> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|source| ImageError::Read {
            name: name.to_string(),
            source,
        })?;
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let Some(format) = reader.format() else {
        return Err(ImageError::UnknownFormat {
            name: name.to_string(),
        });
    };
    let decode_error = |source| ImageError::Decode {
        name: name.to_string(),
        format: format!("{format:?}"),
        source,
    };
    let mut decoder = reader.into_decoder().map_err(decode_error)?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > MAX_PIXELS || decoder.total_bytes() > MAX_DECODE_BYTES
    {
        return Err(ImageError::TooLarge {
            name: name.to_string(),
            width,
            height,
            limit: MAX_PIXELS,
        });
    }
    if format == image::ImageFormat::Jpeg {
        if let Some(reason) = super::truncation::jpeg_truncation(bytes) {
            return Err(ImageError::Truncated {
                name: name.to_string(),
                reason,
            });
        }
    }
    let exif_orientation = match orientation {
        ExifOrientation::Ignore => None,
        ExifOrientation::Apply => Some(decoder.orientation().map_err(decode_error)?),
    };
    let mut decoded = DynamicImage::from_decoder(decoder).map_err(decode_error)?;
    if let Some(exif_orientation) = exif_orientation {
        decoded.apply_orientation(exif_orientation);
    }
    to_rgb8_like_pil(decoded, name)
}

/// Reduces any decoded layout to RGB8 the way PIL's `convert("RGB")` would after `Image.open`.
fn to_rgb8_like_pil(decoded: DynamicImage, name: &str) -> Result<RgbImage8, ImageError> {
    let (width, height) = (decoded.width() as usize, decoded.height() as usize);
    let data = match decoded {
        DynamicImage::ImageRgb8(buffer) => buffer.into_raw(),
        DynamicImage::ImageRgba8(buffer) => {
            expand::<u8, 4>(buffer.as_raw(), |p| [p[0], p[1], p[2]])
        }
        DynamicImage::ImageLuma8(buffer) => expand::<u8, 1>(buffer.as_raw(), |p| [p[0]; 3]),
        DynamicImage::ImageLumaA8(buffer) => expand::<u8, 2>(buffer.as_raw(), |p| [p[0]; 3]),
        // PIL opens these as "I;16" and clips, rather than scales, to 8 bits.
        DynamicImage::ImageLuma16(buffer) => {
            expand::<u16, 1>(buffer.as_raw(), |p| [p[0].min(255) as u8; 3])
        }
        // PIL's 16-bit raw modes ("LA;16B", "RGB;16B", "RGBA;16B") keep the high byte.
        DynamicImage::ImageLumaA16(buffer) => {
            expand::<u16, 2>(buffer.as_raw(), |p| [high_byte(p[0]); 3])
        }
        DynamicImage::ImageRgb16(buffer) => expand::<u16, 3>(buffer.as_raw(), |p| {
            [high_byte(p[0]), high_byte(p[1]), high_byte(p[2])]
        }),
        DynamicImage::ImageRgba16(buffer) => expand::<u16, 4>(buffer.as_raw(), |p| {
            [high_byte(p[0]), high_byte(p[1]), high_byte(p[2])]
        }),
        other => {
            return Err(ImageError::UnsupportedLayout {
                name: name.to_string(),
                layout: format!("{:?}", other.color()),
            })
        }
    };
    RgbImage8::new(width, height, data)
}

fn high_byte(value: u16) -> u8 {
    (value >> 8) as u8
}

/// Maps each `CHANNELS`-sample pixel of `samples` to one RGB pixel.
fn expand<T: Copy, const CHANNELS: usize>(
    samples: &[T],
    to_rgb: impl Fn(&[T]) -> [u8; 3],
) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(samples.len() / CHANNELS * 3);
    for pixel in samples.chunks_exact(CHANNELS) {
        rgb.extend_from_slice(&to_rgb(pixel));
    }
    rgb
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_buffer_length_is_rejected() {
        let err = RgbImage8::new(2, 2, vec![0; 11]).unwrap_err();
        assert!(err.to_string().contains("needs 12 bytes, got 11"), "{err}");
    }

    #[test]
    fn errors_name_the_member_and_the_problem() {
        let err = decode_bytes(
            b"not an image",
            "train.zip@a/b.jpg",
            ExifOrientation::Ignore,
        )
        .unwrap_err();
        assert!(matches!(err, ImageError::UnknownFormat { .. }));
        assert!(err.to_string().contains("train.zip@a/b.jpg"), "{err}");

        let truncated_png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0";
        let err = decode_bytes(truncated_png, "member.png", ExifOrientation::Ignore).unwrap_err();
        assert!(matches!(err, ImageError::Decode { .. }), "{err:?}");
        assert!(err.to_string().contains("member.png (Png)"), "{err}");

        let missing = Path::new("/nonexistent/dir/img.png");
        let err = decode_file(missing, ExifOrientation::Ignore).unwrap_err();
        assert!(matches!(err, ImageError::Read { .. }));
        assert!(
            err.to_string().contains("/nonexistent/dir/img.png"),
            "{err}"
        );
    }
}
