//! Crops, flips and torchvision's output-size rules, on [`RgbImage8`].

use anyhow::{bail, ensure};
use serde::{Deserialize, Serialize};

use crate::data::image::RgbImage8;

/// A height and width in pixels. In configs: one integer for a square, or `[height, width]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "SizeRepr", into = "SizeRepr")]
pub struct ImageSize {
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
}

impl ImageSize {
    /// A `side × side` square.
    pub fn square(side: usize) -> Self {
        Self {
            height: side,
            width: side,
        }
    }

    /// Fails unless both sides are positive; `what` names the setting in the message.
    pub fn ensure_positive(self, what: &str) -> anyhow::Result<Self> {
        ensure!(
            self.height > 0 && self.width > 0,
            "{what}: size must be positive, got {}x{} (height x width)",
            self.height,
            self.width
        );
        Ok(self)
    }
}

/// The config spelling of [`ImageSize`]: `224` or `[224, 224]`, as torchvision accepts.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum SizeRepr {
    Square(usize),
    HeightWidth([usize; 2]),
}

impl From<SizeRepr> for ImageSize {
    fn from(repr: SizeRepr) -> Self {
        match repr {
            SizeRepr::Square(side) => Self::square(side),
            SizeRepr::HeightWidth([height, width]) => Self { height, width },
        }
    }
}

impl From<ImageSize> for SizeRepr {
    fn from(size: ImageSize) -> Self {
        if size.height == size.width {
            Self::Square(size.height)
        } else {
            Self::HeightWidth([size.height, size.width])
        }
    }
}

/// A crop rectangle in source pixels. It may reach outside the image: PIL's `crop` fills the
/// outside with black, and torchvision's padded centre crop amounts to the same thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CropBox {
    /// First source row (negative: rows of padding above the image).
    pub top: i64,
    /// First source column (negative: columns of padding left of the image).
    pub left: i64,
    /// Rows in the crop.
    pub height: usize,
    /// Columns in the crop.
    pub width: usize,
}

/// Cuts `crop_box` out of `image`, black where the box leaves the image (PIL `Image.crop`).
pub fn crop(image: &RgbImage8, crop_box: CropBox) -> RgbImage8 {
    let mut out = RgbImage8::black(crop_box.width, crop_box.height);
    if crop_box.width == 0 {
        return out;
    }
    // Columns of the box that overlap the image, in source and in output coordinates.
    let source_start = crop_box.left.clamp(0, image.width() as i64);
    let source_end = (crop_box.left + crop_box.width as i64).clamp(0, image.width() as i64);
    if source_end <= source_start {
        return out;
    }
    let (source_start, source_end) = (source_start as usize, source_end as usize);
    let out_start = (source_start as i64 - crop_box.left) as usize;
    let out_stride = crop_box.width * 3;
    for (out_y, out_row) in out.as_raw_mut().chunks_exact_mut(out_stride).enumerate() {
        let source_y = crop_box.top + out_y as i64;
        if !(0..image.height() as i64).contains(&source_y) {
            continue;
        }
        let source_row = image.row(source_y as usize);
        let len = (source_end - source_start) * 3;
        out_row[out_start * 3..out_start * 3 + len]
            .copy_from_slice(&source_row[source_start * 3..source_end * 3]);
    }
    out
}

/// torchvision's `center_crop` box: an axis the crop exceeds is padded with black (the smaller half
/// before), then the offset is Python's `round((padded - crop) / 2)` (ties to even) on each axis.
pub fn center_crop_box(image_height: usize, image_width: usize, crop: ImageSize) -> CropBox {
    CropBox {
        top: center_offset(image_height, crop.height),
        left: center_offset(image_width, crop.width),
        height: crop.height,
        width: crop.width,
    }
}

/// Where a centred crop starts along one axis, in unpadded source coordinates.
fn center_offset(image: usize, crop: usize) -> i64 {
    let (image, crop) = (image as i64, crop as i64);
    let padding_before = if crop > image { (crop - image) / 2 } else { 0 };
    let padding_after = if crop > image {
        (crop - image + 1) / 2
    } else {
        0
    };
    let padded = image + padding_before + padding_after;
    let offset_in_padded = ((padded - crop) as f64 / 2.0).round_ties_even() as i64;
    offset_in_padded - padding_before
}

/// torchvision `CenterCrop(size)` on a PIL image.
pub fn center_crop(image: &RgbImage8, size: ImageSize) -> RgbImage8 {
    crop(image, center_crop_box(image.height(), image.width(), size))
}

/// Mirrors the image left to right, in place (torchvision `hflip`).
pub fn hflip_in_place(image: &mut RgbImage8) {
    let width = image.width();
    if width == 0 {
        return;
    }
    for row in image.as_raw_mut().chunks_exact_mut(width * 3) {
        for x in 0..width / 2 {
            let mirror = width - 1 - x;
            for channel in 0..3 {
                row.swap(x * 3 + channel, mirror * 3 + channel);
            }
        }
    }
}

/// torchvision's `Resize(size)` rule for an integer size: the short side becomes `size`, the long
/// side `int(size * long / short)` (truncated). With `max_size`, a long side over it is capped and
/// the short side scaled down to `int(max_size * short / long)`.
pub fn short_side_output_size(
    height: usize,
    width: usize,
    size: usize,
    max_size: Option<usize>,
) -> anyhow::Result<ImageSize> {
    ensure!(
        height > 0 && width > 0 && size > 0,
        "resize: cannot resize a {height}x{width} image so its short side is {size}"
    );
    let (short, long) = if width <= height {
        (width, height)
    } else {
        (height, width)
    };
    let mut new_short = size;
    let mut new_long = ((size * long) as f64 / short as f64) as usize;
    if let Some(max_size) = max_size {
        if max_size <= size {
            bail!("resize: max_size = {max_size} must be greater than the short-side size {size}");
        }
        if new_long > max_size {
            new_short = ((max_size * new_short) as f64 / new_long as f64) as usize;
            new_long = max_size;
        }
    }
    ensure!(
        new_short > 0,
        "resize: {height}x{width} with size {size} and max_size {max_size:?} gives an empty side"
    );
    Ok(if width <= height {
        ImageSize {
            height: new_long,
            width: new_short,
        }
    } else {
        ImageSize {
            height: new_short,
            width: new_long,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(width: usize, height: usize) -> RgbImage8 {
        let data = (0..width * height * 3).map(|i| (i % 251) as u8).collect();
        RgbImage8::new(width, height, data).unwrap()
    }

    #[test]
    fn crop_outside_the_image_is_black() {
        let image = numbered(4, 3);
        let out = crop(
            &image,
            CropBox {
                top: -1,
                left: 2,
                height: 3,
                width: 4,
            },
        );
        assert_eq!(out.row(0), [0u8; 12]);
        assert_eq!(&out.row(1)[..6], &image.row(0)[6..12]);
        assert_eq!(&out.row(1)[6..], [0u8; 6]);
        let far_away = CropBox {
            top: 10,
            left: -20,
            height: 2,
            width: 2,
        };
        assert_eq!(crop(&image, far_away).as_raw(), [0u8; 12]);
        let empty = CropBox {
            top: 0,
            left: 0,
            height: 2,
            width: 0,
        };
        assert_eq!(crop(&image, empty), RgbImage8::black(0, 2));
    }

    #[test]
    fn double_flip_is_identity() {
        let image = numbered(5, 2);
        let mut flipped = image.clone();
        hflip_in_place(&mut flipped);
        assert_eq!(&flipped.row(0)[..3], &image.row(0)[12..15]);
        hflip_in_place(&mut flipped);
        assert_eq!(flipped, image);
        let mut empty = RgbImage8::black(0, 3);
        hflip_in_place(&mut empty);
        assert_eq!(empty, RgbImage8::black(0, 3));
    }

    #[test]
    fn size_accepts_an_integer_or_height_width() {
        let square: ImageSize = serde_json::from_str("224").unwrap();
        assert_eq!(square, ImageSize::square(224));
        let rect: ImageSize = serde_json::from_str("[10, 20]").unwrap();
        assert_eq!((rect.height, rect.width), (10, 20));
        assert!(serde_json::from_str::<ImageSize>("[1, 2, 3]").is_err());
        assert_eq!(serde_json::to_string(&rect).unwrap(), "[10,20]");
    }

    #[test]
    fn bad_sizes_are_errors() {
        assert!(short_side_output_size(10, 10, 0, None).is_err());
        assert!(short_side_output_size(10, 10, 5, Some(5)).is_err());
        let err = short_side_output_size(1, 1000, 1, Some(2)).unwrap_err();
        assert!(err.to_string().contains("empty side"), "{err}");
    }
}
