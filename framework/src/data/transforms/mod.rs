//! Image transforms that reproduce torchvision 0.29 on PIL images, and the config-facing pipeline.
//!
//! The reference feeds CLIP with torchvision transforms applied to PIL images; every step here
//! gives the same uint8 pixels as that path (see `framework/tests/transforms.rs` and the fixtures
//! from `tools/fixtures/transforms.py`), then the same `f32` values after `ToTensor`/`Normalize`.
//! Random steps use the caller's [`rand::Rng`] (torch's generator is not emulated).
//!
//! A [`Pipeline`] is built from a list of [`TransformSpec`]s, as written in configs:
//!
//! ```toml
//! transforms = [
//!     { type = "random_resized_crop", size = 224 },   # scale [0.08, 1], ratio [3/4, 4/3], bicubic
//!     { type = "random_flip" },                       # p = 0.5
//!     { type = "normalize" },                         # CLIP mean and std
//! ]
//! ```
//!
//! `ToTensor` is implicit at the end; `normalize`, when present, must be the last entry.

mod geometry;
mod random;
mod resample;
mod tensor;

use std::borrow::Cow;

use anyhow::{bail, Context};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::data::image::RgbImage8;

pub use geometry::{
    center_crop, center_crop_box, crop, hflip_in_place, short_side_output_size, CropBox, ImageSize,
};
pub use random::{
    resized_crop, RandomHorizontalFlip, RandomResizedCrop, DEFAULT_RATIO, DEFAULT_SCALE,
};
pub use resample::resize;
pub use tensor::{
    stack_batch, ImageTensor, Normalize, CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD,
};

/// PIL's resampling filters as torchvision names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interpolation {
    /// Nearest neighbour (PIL `NEAREST`).
    Nearest,
    /// Triangle filter, antialiased when downscaling (PIL `BILINEAR`).
    Bilinear,
    /// Cubic convolution with a = -0.5, antialiased when downscaling (PIL `BICUBIC`). The default
    /// here because CLIP and all reference configs use it (torchvision's own default is bilinear).
    #[default]
    Bicubic,
}

/// One configured transform step (`type = "..."` in configs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TransformSpec {
    /// torchvision `RandomResizedCrop(size, scale, ratio, interpolation)`.
    RandomResizedCrop {
        /// Output size.
        size: ImageSize,
        /// Area range as a fraction of the image (Dassl's `INPUT.RRCROP_SCALE`).
        #[serde(default = "default_scale")]
        scale: [f64; 2],
        /// Aspect-ratio (width / height) range.
        #[serde(default = "default_ratio")]
        ratio: [f64; 2],
        /// Resampling filter.
        #[serde(default)]
        interpolation: Interpolation,
    },
    /// torchvision `RandomHorizontalFlip(p)`.
    RandomFlip {
        /// Flip probability.
        #[serde(default = "default_flip_probability")]
        p: f64,
    },
    /// torchvision `Resize(size)` with an integer: the short side becomes `size`.
    Resize {
        /// Short-side length.
        size: usize,
        /// Optional cap on the long side (torchvision's `max_size`).
        #[serde(default)]
        max_size: Option<usize>,
        /// Resampling filter.
        #[serde(default)]
        interpolation: Interpolation,
    },
    /// torchvision `Resize((h, w))`: stretch to exactly this size, ignoring the aspect ratio.
    SquashResize {
        /// Output size.
        size: ImageSize,
        /// Resampling filter.
        #[serde(default)]
        interpolation: Interpolation,
    },
    /// torchvision `CenterCrop(size)` (pads with black when the image is smaller).
    CenterCrop {
        /// Crop size.
        size: ImageSize,
    },
    /// torchvision `Normalize(mean, std)` after `ToTensor`; defaults to CLIP's constants.
    Normalize {
        /// Per-channel mean (R, G, B).
        #[serde(default = "default_mean")]
        mean: [f64; 3],
        /// Per-channel standard deviation (R, G, B).
        #[serde(default = "default_std")]
        std: [f64; 3],
    },
}

fn default_scale() -> [f64; 2] {
    DEFAULT_SCALE
}
fn default_ratio() -> [f64; 2] {
    DEFAULT_RATIO
}
fn default_flip_probability() -> f64 {
    0.5
}
fn default_mean() -> [f64; 3] {
    CLIP_MEAN
}
fn default_std() -> [f64; 3] {
    CLIP_STD
}

/// A validated step on the uint8 image.
#[derive(Debug, Clone)]
enum Step {
    RandomResizedCrop(RandomResizedCrop),
    RandomFlip(RandomHorizontalFlip),
    Resize {
        size: usize,
        max_size: Option<usize>,
        interpolation: Interpolation,
    },
    SquashResize {
        size: ImageSize,
        interpolation: Interpolation,
    },
    CenterCrop(ImageSize),
}

impl Step {
    fn is_random(&self) -> bool {
        matches!(self, Step::RandomResizedCrop(_) | Step::RandomFlip(_))
    }

    fn apply<'a, R: Rng + ?Sized>(
        &self,
        image: Cow<'a, RgbImage8>,
        rng: &mut R,
    ) -> anyhow::Result<Cow<'a, RgbImage8>> {
        Ok(match self {
            Step::RandomResizedCrop(crop) => Cow::Owned(crop.apply(&image, rng)),
            Step::RandomFlip(flip) => {
                if flip.sample(rng) {
                    let mut flipped = image.into_owned();
                    hflip_in_place(&mut flipped);
                    Cow::Owned(flipped)
                } else {
                    image
                }
            }
            Step::Resize {
                size,
                max_size,
                interpolation,
            } => {
                let out = short_side_output_size(image.height(), image.width(), *size, *max_size)?;
                if (out.height, out.width) == (image.height(), image.width()) {
                    image
                } else {
                    Cow::Owned(resize(&image, out.width, out.height, *interpolation))
                }
            }
            Step::SquashResize {
                size,
                interpolation,
            } => Cow::Owned(resize(&image, size.width, size.height, *interpolation)),
            Step::CenterCrop(size) => Cow::Owned(center_crop(&image, *size)),
        })
    }
}

/// A validated transform list: uint8 steps, then `ToTensor`, then optional `Normalize`.
///
/// (De)serialises as its list of [`TransformSpec`]s, validating on the way in.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "Vec<TransformSpec>", into = "Vec<TransformSpec>")]
pub struct Pipeline {
    specs: Vec<TransformSpec>,
    steps: Vec<Step>,
    normalize: Option<Normalize>,
}

impl TryFrom<Vec<TransformSpec>> for Pipeline {
    type Error = anyhow::Error;

    fn try_from(specs: Vec<TransformSpec>) -> anyhow::Result<Self> {
        Self::new(specs)
    }
}

impl From<Pipeline> for Vec<TransformSpec> {
    fn from(pipeline: Pipeline) -> Self {
        pipeline.specs
    }
}

impl Pipeline {
    /// Validates `specs` (sizes, ranges, `normalize` only last) and builds the pipeline.
    pub fn new(specs: Vec<TransformSpec>) -> anyhow::Result<Self> {
        let mut steps = Vec::with_capacity(specs.len());
        let mut normalize = None;
        for (index, spec) in specs.iter().enumerate() {
            if normalize.is_some() {
                bail!("transform {index}: `normalize` must be the last transform");
            }
            let context = || format!("transform {index} ({spec:?})");
            match spec {
                TransformSpec::Normalize { mean, std } => {
                    normalize = Some(Normalize::new(*mean, *std).with_context(context)?);
                }
                other => steps.push(build_step(other).with_context(context)?),
            }
        }
        Ok(Self {
            specs,
            steps,
            normalize,
        })
    }

    /// CLIP's own preprocessing: short side to `size` (bicubic), centre crop, CLIP normalisation.
    pub fn clip_test(size: usize) -> anyhow::Result<Self> {
        Self::new(vec![
            TransformSpec::Resize {
                size,
                max_size: None,
                interpolation: Interpolation::Bicubic,
            },
            TransformSpec::CenterCrop {
                size: ImageSize::square(size),
            },
            clip_normalize(),
        ])
    }

    /// Dassl/CoOp source-stage training (reference §4.3): `RandomResizedCrop(size, (0.08, 1),
    /// (3/4, 4/3), bicubic)`, horizontal flip with p = 0.5, CLIP normalisation.
    pub fn dassl_train(size: usize) -> anyhow::Result<Self> {
        Self::new(vec![
            TransformSpec::RandomResizedCrop {
                size: ImageSize::square(size),
                scale: DEFAULT_SCALE,
                ratio: DEFAULT_RATIO,
                interpolation: Interpolation::Bicubic,
            },
            TransformSpec::RandomFlip { p: 0.5 },
            clip_normalize(),
        ])
    }

    /// Dassl/CoOp testing (reference §4.3): the same steps as [`Pipeline::clip_test`].
    pub fn dassl_test(size: usize) -> anyhow::Result<Self> {
        Self::clip_test(size)
    }

    /// ELEVATER target stage (reference §3.3 item 5), for train, val and test alike: bicubic
    /// squash to `size × size`; with `center_crop`, short side to `size` then a centre crop.
    pub fn elevater(size: usize, center_crop: bool) -> anyhow::Result<Self> {
        if center_crop {
            return Self::clip_test(size);
        }
        Self::new(vec![
            TransformSpec::SquashResize {
                size: ImageSize::square(size),
                interpolation: Interpolation::Bicubic,
            },
            clip_normalize(),
        ])
    }

    /// The specs this pipeline was built from (for recording the resolved config).
    pub fn specs(&self) -> &[TransformSpec] {
        &self.specs
    }

    /// True when no step draws random numbers: the output depends on the image only, so
    /// features computed from it can be cached.
    pub fn is_deterministic(&self) -> bool {
        !self.steps.iter().any(Step::is_random)
    }

    /// The output size when it does not depend on the input (the last resizing or cropping step
    /// fixes it); `None` after a short-side `resize` that nothing follows.
    pub fn output_size(&self) -> Option<ImageSize> {
        self.steps.iter().fold(None, |size, step| match step {
            Step::RandomResizedCrop(crop) => Some(crop.size()),
            Step::SquashResize { size, .. } | Step::CenterCrop(size) => Some(*size),
            Step::Resize { .. } => None,
            Step::RandomFlip(_) => size,
        })
    }

    /// Runs the uint8 steps (everything before `ToTensor`), drawing random numbers from `rng`
    /// in step order.
    pub fn apply_image<R: Rng + ?Sized>(
        &self,
        image: &RgbImage8,
        rng: &mut R,
    ) -> anyhow::Result<RgbImage8> {
        Ok(self.run_steps(image, rng)?.into_owned())
    }

    /// Runs the whole pipeline: uint8 steps, `ToTensor`, then `Normalize` if configured.
    pub fn apply<R: Rng + ?Sized>(
        &self,
        image: &RgbImage8,
        rng: &mut R,
    ) -> anyhow::Result<ImageTensor> {
        let transformed = self.run_steps(image, rng)?;
        Ok(ImageTensor::from_image(
            &transformed,
            self.normalize.as_ref(),
        ))
    }

    fn run_steps<'a, R: Rng + ?Sized>(
        &self,
        image: &'a RgbImage8,
        rng: &mut R,
    ) -> anyhow::Result<Cow<'a, RgbImage8>> {
        let mut current = Cow::Borrowed(image);
        for (index, step) in self.steps.iter().enumerate() {
            current = step
                .apply(current, rng)
                .with_context(|| format!("transform {index} ({:?})", self.specs[index]))?;
        }
        Ok(current)
    }
}

fn clip_normalize() -> TransformSpec {
    TransformSpec::Normalize {
        mean: CLIP_MEAN,
        std: CLIP_STD,
    }
}

fn build_step(spec: &TransformSpec) -> anyhow::Result<Step> {
    Ok(match *spec {
        TransformSpec::RandomResizedCrop {
            size,
            scale,
            ratio,
            interpolation,
        } => Step::RandomResizedCrop(RandomResizedCrop::new(size, scale, ratio, interpolation)?),
        TransformSpec::RandomFlip { p } => Step::RandomFlip(RandomHorizontalFlip::new(p)?),
        TransformSpec::Resize {
            size,
            max_size,
            interpolation,
        } => {
            if size == 0 || max_size.is_some_and(|max| max <= size) {
                bail!("resize: need 0 < size < max_size, got size {size}, max_size {max_size:?}");
            }
            Step::Resize {
                size,
                max_size,
                interpolation,
            }
        }
        TransformSpec::SquashResize {
            size,
            interpolation,
        } => Step::SquashResize {
            size: size.ensure_positive("squash_resize")?,
            interpolation,
        },
        TransformSpec::CenterCrop { size } => {
            Step::CenterCrop(size.ensure_positive("center_crop")?)
        }
        TransformSpec::Normalize { .. } => bail!("normalize is not an image step"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn specs_parse_from_toml_with_defaults() {
        #[derive(Deserialize)]
        struct Config {
            transforms: Pipeline,
        }
        let config: Config = toml::from_str(
            r#"transforms = [
                { type = "random_resized_crop", size = 224 },
                { type = "random_flip" },
                { type = "normalize" },
            ]"#,
        )
        .unwrap();
        let expected = Pipeline::dassl_train(224).unwrap();
        assert_eq!(config.transforms.specs(), expected.specs());
        assert!(!config.transforms.is_deterministic());
        assert_eq!(
            config.transforms.output_size(),
            Some(ImageSize::square(224))
        );

        let squash: TransformSpec =
            toml::from_str("type = 'squash_resize'\nsize = [10, 20]\ninterpolation = 'bilinear'")
                .unwrap();
        assert_eq!(
            squash,
            TransformSpec::SquashResize {
                size: ImageSize {
                    height: 10,
                    width: 20
                },
                interpolation: Interpolation::Bilinear
            }
        );
    }

    #[test]
    fn bad_specs_are_rejected_with_their_position() {
        let unknown = toml::from_str::<TransformSpec>("type = 'resize'\nsize = 3\nsise = 4");
        assert!(unknown.is_err());
        let err = Pipeline::new(vec![clip_normalize(), TransformSpec::RandomFlip { p: 0.5 }])
            .unwrap_err();
        assert!(err.to_string().contains("transform 1"), "{err}");
        let err = Pipeline::new(vec![TransformSpec::CenterCrop {
            size: ImageSize::square(0),
        }])
        .unwrap_err();
        assert!(format!("{err:#}").contains("transform 0"), "{err:#}");
        assert!(Pipeline::clip_test(0).is_err());
    }

    #[test]
    fn presets_know_whether_they_are_deterministic() {
        assert!(Pipeline::clip_test(224).unwrap().is_deterministic());
        assert!(Pipeline::dassl_test(224).unwrap().is_deterministic());
        assert!(Pipeline::elevater(224, false).unwrap().is_deterministic());
        assert!(Pipeline::elevater(224, true).unwrap().is_deterministic());
        assert!(!Pipeline::dassl_train(224).unwrap().is_deterministic());
        let resize_only = Pipeline::new(vec![TransformSpec::Resize {
            size: 32,
            max_size: None,
            interpolation: Interpolation::Bicubic,
        }])
        .unwrap();
        assert_eq!(resize_only.output_size(), None);
    }

    #[test]
    fn pipeline_output_has_the_configured_shape() {
        let image = RgbImage8::new(30, 20, (0..1800).map(|i| (i % 256) as u8).collect()).unwrap();
        let mut rng = StdRng::seed_from_u64(0);
        for pipeline in [
            Pipeline::dassl_train(16).unwrap(),
            Pipeline::clip_test(16).unwrap(),
            Pipeline::elevater(16, false).unwrap(),
        ] {
            let tensor = pipeline.apply(&image, &mut rng).unwrap();
            assert_eq!((tensor.height(), tensor.width()), (16, 16));
            assert_eq!(tensor.as_slice().len(), 3 * 16 * 16);
        }
    }
}
