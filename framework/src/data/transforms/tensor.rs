//! `ToTensor` and `Normalize`: RGB8 (HWC) to float CHW, and stacking into a candle batch.
//!
//! The arithmetic is torch's, in `f32`: `value / 255`, then `(x - mean) / std` with `mean` and
//! `std` rounded from the `f64` constants to `f32` as `torch.as_tensor(..., dtype=float32)` does.
//! It runs through a per-channel 256-entry table holding exactly those results.

use anyhow::{ensure, Context};
use candle_core::{Device, Tensor};

use crate::data::image::RgbImage8;

/// CLIP's normalisation mean (R, G, B), from OpenAI's preprocessing.
pub const CLIP_MEAN: [f64; 3] = [0.48145466, 0.4578275, 0.40821073];
/// CLIP's normalisation standard deviation (R, G, B).
pub const CLIP_STD: [f64; 3] = [0.26862954, 0.26130258, 0.27577711];
/// The usual ImageNet normalisation mean (R, G, B).
pub const IMAGENET_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
/// The usual ImageNet normalisation standard deviation (R, G, B).
pub const IMAGENET_STD: [f64; 3] = [0.229, 0.224, 0.225];

/// torchvision `Normalize(mean, std)`: per channel `(x - mean) / std`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalize {
    mean: [f32; 3],
    std: [f32; 3],
}

impl Normalize {
    /// Per-channel mean and standard deviation; every std must be finite and non-zero.
    pub fn new(mean: [f64; 3], std: [f64; 3]) -> anyhow::Result<Self> {
        ensure!(
            std.iter().all(|s| s.is_finite() && *s != 0.0) && mean.iter().all(|m| m.is_finite()),
            "normalize: std must be finite and non-zero and mean finite, got mean {mean:?}, std {std:?}"
        );
        Ok(Self {
            mean: mean.map(|m| m as f32),
            std: std.map(|s| s as f32),
        })
    }

    /// CLIP's normalisation ([`CLIP_MEAN`], [`CLIP_STD`]).
    pub fn clip() -> Self {
        Self {
            mean: CLIP_MEAN.map(|m| m as f32),
            std: CLIP_STD.map(|s| s as f32),
        }
    }
}

/// A 3-channel float image, channel-major (3 × height × width, "CHW").
#[derive(Debug, Clone, PartialEq)]
pub struct ImageTensor {
    height: usize,
    width: usize,
    data: Vec<f32>,
}

impl ImageTensor {
    /// `ToTensor` (scale to `[0, 1]`, HWC to CHW), then `normalize` if given.
    pub fn from_image(image: &RgbImage8, normalize: Option<&Normalize>) -> Self {
        let tables: [[f32; 256]; 3] = std::array::from_fn(|channel| {
            std::array::from_fn(|value| {
                let scaled = value as f32 / 255.0;
                match normalize {
                    Some(n) => (scaled - n.mean[channel]) / n.std[channel],
                    None => scaled,
                }
            })
        });
        let plane = image.width() * image.height();
        let mut data = vec![0f32; 3 * plane];
        let (red, rest) = data.split_at_mut(plane);
        let (green, blue) = rest.split_at_mut(plane);
        for (i, pixel) in image.as_raw().chunks_exact(3).enumerate() {
            red[i] = tables[0][usize::from(pixel[0])];
            green[i] = tables[1][usize::from(pixel[1])];
            blue[i] = tables[2][usize::from(pixel[2])];
        }
        Self {
            height: image.height(),
            width: image.width(),
            data,
        }
    }

    /// Rows.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Columns.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The CHW values.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// Consumes the tensor, returning its CHW values.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }
}

/// Stacks equally sized images into one `(batch, 3, height, width)` f32 tensor on `device`.
pub fn stack_batch(images: &[ImageTensor], device: &Device) -> anyhow::Result<Tensor> {
    let first = images.first().context("stack_batch: no images to stack")?;
    let (height, width) = (first.height, first.width);
    let mut data = Vec::with_capacity(images.len() * first.data.len());
    for (index, image) in images.iter().enumerate() {
        ensure!(
            (image.height, image.width) == (height, width),
            "stack_batch: image {index} is {}x{}, image 0 is {height}x{width} (height x width)",
            image.height,
            image.width
        );
        data.extend_from_slice(&image.data);
    }
    Tensor::from_vec(data, (images.len(), 3, height, width), device)
        .context("stack_batch: building the batch tensor")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_tensor_is_channel_major_and_scaled() {
        let image = RgbImage8::new(2, 1, vec![0, 51, 255, 255, 102, 0]).unwrap();
        let tensor = ImageTensor::from_image(&image, None);
        let expected = [0.0, 1.0, 0.2, 0.4, 1.0, 0.0];
        for (got, want) in tensor.as_slice().iter().zip(expected) {
            assert!((got - want).abs() < 1e-7, "{:?}", tensor.as_slice());
        }
    }

    #[test]
    fn zero_std_is_rejected() {
        assert!(Normalize::new([0.5; 3], [0.2, 0.0, 0.2]).is_err());
        assert_eq!(
            Normalize::new(CLIP_MEAN, CLIP_STD).unwrap(),
            Normalize::clip()
        );
    }

    #[test]
    fn batches_stack_and_mismatches_are_errors() {
        let a = ImageTensor::from_image(&RgbImage8::black(4, 2), None);
        let b = ImageTensor::from_image(&RgbImage8::new(4, 2, vec![255; 24]).unwrap(), None);
        let batch = stack_batch(&[a.clone(), b], &Device::Cpu).unwrap();
        assert_eq!(batch.dims(), [2, 3, 2, 4]);
        let sums = batch.sum((1, 2, 3)).unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(sums, [0.0, 24.0]);
        let c = ImageTensor::from_image(&RgbImage8::black(2, 4), None);
        let err = stack_batch(&[a, c], &Device::Cpu).unwrap_err();
        assert!(err.to_string().contains("image 1 is 4x2"), "{err}");
        assert!(stack_batch(&[], &Device::Cpu).is_err());
    }
}
