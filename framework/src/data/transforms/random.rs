//! The random augmentations: torchvision's `RandomResizedCrop` and `RandomHorizontalFlip`.
//!
//! The algorithms are torchvision's, but the random numbers come from the caller's [`rand::Rng`],
//! not from torch's generator (which is not emulated): the same seed gives the same crops here,
//! not the crops torch would draw. To compare with torchvision, feed its drawn box to
//! [`resized_crop`].

use anyhow::ensure;
use rand::Rng;

use super::geometry::{crop, CropBox, ImageSize};
use super::resample::resize;
use super::Interpolation;
use crate::data::image::RgbImage8;

/// torchvision's default `scale` range of `RandomResizedCrop` (fraction of the image area).
pub const DEFAULT_SCALE: [f64; 2] = [0.08, 1.0];
/// torchvision's default `ratio` range of `RandomResizedCrop` (width / height).
pub const DEFAULT_RATIO: [f64; 2] = [3.0 / 4.0, 4.0 / 3.0];

/// How many random boxes `RandomResizedCrop` tries before its deterministic fallback.
const ATTEMPTS: usize = 10;

/// Crops `crop_box` and resizes it to `size` (torchvision `resized_crop` on a PIL image).
pub fn resized_crop(
    image: &RgbImage8,
    crop_box: CropBox,
    size: ImageSize,
    interpolation: Interpolation,
) -> RgbImage8 {
    resize(
        &crop(image, crop_box),
        size.width,
        size.height,
        interpolation,
    )
}

/// torchvision `RandomResizedCrop`: a random box of random area and aspect ratio, resized.
#[derive(Debug, Clone, PartialEq)]
pub struct RandomResizedCrop {
    size: ImageSize,
    scale: [f64; 2],
    log_ratio: [f64; 2],
    ratio: [f64; 2],
    interpolation: Interpolation,
}

impl RandomResizedCrop {
    /// Output `size`; `scale` bounds the box area as a fraction of the image, `ratio` its
    /// width / height; both are `[min, max]`.
    pub fn new(
        size: ImageSize,
        scale: [f64; 2],
        ratio: [f64; 2],
        interpolation: Interpolation,
    ) -> anyhow::Result<Self> {
        let size = size.ensure_positive("random_resized_crop")?;
        ensure!(
            scale[0] > 0.0 && scale[0] <= scale[1] && scale[1].is_finite(),
            "random_resized_crop: scale must be [min, max] with 0 < min <= max, got {scale:?}"
        );
        ensure!(
            ratio[0] > 0.0 && ratio[0] <= ratio[1] && ratio[1].is_finite(),
            "random_resized_crop: ratio must be [min, max] with 0 < min <= max, got {ratio:?}"
        );
        Ok(Self {
            size,
            scale,
            log_ratio: [ratio[0].ln(), ratio[1].ln()],
            ratio,
            interpolation,
        })
    }

    /// torchvision's `get_params`: up to ten tries of an area drawn uniformly from `scale` and an
    /// aspect ratio drawn log-uniformly from `ratio`, sides `round(sqrt(...))` (ties to even),
    /// kept if the box fits, at a uniformly drawn position. Otherwise a centred box: the whole
    /// image, or the widest/tallest box whose ratio is within `ratio`.
    pub fn sample_box<R: Rng + ?Sized>(
        &self,
        image_height: usize,
        image_width: usize,
        rng: &mut R,
    ) -> CropBox {
        let area = (image_height * image_width) as f64;
        for _ in 0..ATTEMPTS {
            let target_area = area * uniform(rng, self.scale);
            let aspect_ratio = uniform(rng, self.log_ratio).exp();
            let width = round_side((target_area * aspect_ratio).sqrt());
            let height = round_side((target_area / aspect_ratio).sqrt());
            if (1..=image_width).contains(&width) && (1..=image_height).contains(&height) {
                let top = rng.random_range(0..=image_height - height);
                let left = rng.random_range(0..=image_width - width);
                return CropBox {
                    top: top as i64,
                    left: left as i64,
                    height,
                    width,
                };
            }
        }
        self.fallback_box(image_height, image_width)
    }

    fn fallback_box(&self, image_height: usize, image_width: usize) -> CropBox {
        let in_ratio = image_width as f64 / image_height as f64;
        let (height, width) = if in_ratio < self.ratio[0] {
            (round_side(image_width as f64 / self.ratio[0]), image_width)
        } else if in_ratio > self.ratio[1] {
            (
                image_height,
                round_side(image_height as f64 * self.ratio[1]),
            )
        } else {
            (image_height, image_width)
        };
        CropBox {
            top: ((image_height - height) / 2) as i64,
            left: ((image_width - width) / 2) as i64,
            height,
            width,
        }
    }

    /// Draws a box with `rng` and returns that region resized to the output size.
    pub fn apply<R: Rng + ?Sized>(&self, image: &RgbImage8, rng: &mut R) -> RgbImage8 {
        let crop_box = self.sample_box(image.height(), image.width(), rng);
        resized_crop(image, crop_box, self.size, self.interpolation)
    }

    /// The output size.
    pub fn size(&self) -> ImageSize {
        self.size
    }
}

/// A uniform draw from `[range[0], range[1])` (a point range gives that point).
fn uniform<R: Rng + ?Sized>(rng: &mut R, range: [f64; 2]) -> f64 {
    range[0] + (range[1] - range[0]) * rng.random::<f64>()
}

/// Python's `int(round(x))` for a non-negative side length (round half to even).
fn round_side(x: f64) -> usize {
    x.round_ties_even() as usize
}

/// torchvision `RandomHorizontalFlip(p)`: flip when a uniform draw in `[0, 1)` is below `p`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomHorizontalFlip {
    p: f64,
}

impl RandomHorizontalFlip {
    /// Flips with probability `p` (in `[0, 1]`).
    pub fn new(p: f64) -> anyhow::Result<Self> {
        ensure!(
            (0.0..=1.0).contains(&p),
            "random_flip: p must be in [0, 1], got {p}"
        );
        Ok(Self { p })
    }

    /// Draws once from `rng`: whether to flip.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> bool {
        rng.random::<f64>() < self.p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn default_crop() -> RandomResizedCrop {
        RandomResizedCrop::new(
            ImageSize::square(224),
            DEFAULT_SCALE,
            DEFAULT_RATIO,
            Interpolation::Bicubic,
        )
        .unwrap()
    }

    #[test]
    fn boxes_fit_and_respect_scale_and_ratio() {
        let crop = default_crop();
        let mut rng = StdRng::seed_from_u64(7);
        for (height, width) in [(333, 500), (500, 333), (224, 224), (53, 37), (2, 3)] {
            for _ in 0..2000 {
                let b = crop.sample_box(height, width, &mut rng);
                assert!(b.top >= 0 && b.left >= 0, "{b:?}");
                assert!(b.top as usize + b.height <= height && b.left as usize + b.width <= width);
                assert!(b.height >= 1 && b.width >= 1);
                if height < 50 {
                    continue; // rounding dominates on tiny images
                }
                // Sides are rounded to integers: allow half a pixel on each side.
                let ratio_bounds = [
                    (b.width as f64 - 0.5) / (b.height as f64 + 0.5),
                    (b.width as f64 + 0.5) / (b.height as f64 - 0.5),
                ];
                let is_fallback = b.height == height || b.width == width;
                assert!(
                    is_fallback
                        || (ratio_bounds[1] >= DEFAULT_RATIO[0]
                            && ratio_bounds[0] <= DEFAULT_RATIO[1]),
                    "{b:?}"
                );
                let area = ((b.width + 1) * (b.height + 1)) as f64 / (height * width) as f64;
                assert!(area >= DEFAULT_SCALE[0], "{b:?}");
            }
        }
    }

    #[test]
    fn same_seed_same_boxes_and_flips() {
        let crop = default_crop();
        let flip = RandomHorizontalFlip::new(0.5).unwrap();
        let draw = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..20)
                .map(|_| (crop.sample_box(333, 500, &mut rng), flip.sample(&mut rng)))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
        let flips = draw(3).iter().filter(|(_, f)| *f).count();
        assert!((1..20).contains(&flips), "{flips} flips in 20");
    }

    #[test]
    fn exact_ratio_and_scale_give_the_whole_square() {
        let crop = RandomResizedCrop::new(
            ImageSize::square(8),
            [1.0, 1.0],
            [1.0, 1.0],
            Interpolation::Bilinear,
        )
        .unwrap();
        let mut rng = StdRng::seed_from_u64(0);
        let whole = CropBox {
            top: 0,
            left: 0,
            height: 64,
            width: 64,
        };
        assert_eq!(crop.sample_box(64, 64, &mut rng), whole);
    }

    #[test]
    fn flip_probability_extremes_are_deterministic() {
        let mut rng = StdRng::seed_from_u64(1);
        let never = RandomHorizontalFlip::new(0.0).unwrap();
        let always = RandomHorizontalFlip::new(1.0).unwrap();
        assert!((0..100).all(|_| !never.sample(&mut rng) && always.sample(&mut rng)));
        assert!(RandomHorizontalFlip::new(1.5).is_err());
    }

    #[test]
    fn invalid_ranges_are_rejected() {
        let size = ImageSize::square(4);
        let bicubic = Interpolation::Bicubic;
        assert!(RandomResizedCrop::new(size, [0.5, 0.1], DEFAULT_RATIO, bicubic).is_err());
        assert!(RandomResizedCrop::new(size, DEFAULT_SCALE, [0.0, 1.0], bicubic).is_err());
        assert!(RandomResizedCrop::new(
            ImageSize::square(0),
            DEFAULT_SCALE,
            DEFAULT_RATIO,
            bicubic
        )
        .is_err());
    }
}
