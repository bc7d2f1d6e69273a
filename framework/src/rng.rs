//! Seeded randomness for everything the framework draws itself: prompt initialisation, batch
//! order, augmentation parameters.
//!
//! candle's CPU generator cannot be seeded, so no code path may use `Tensor::randn`; tensors
//! are drawn here from a ChaCha stream whose state can be saved in checkpoints.

use candle_core::{Device, Result, Shape, Tensor};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal, Uniform};

/// The framework's random generator: reproducible across platforms, serialisable with serde.
pub type Rng = rand_chacha::ChaCha8Rng;

/// A generator seeded with `seed`.
pub fn seeded(seed: u64) -> Rng {
    Rng::seed_from_u64(seed)
}

/// A tensor of `shape` with entries from Normal(`mean`, `std`), f32 on `device`.
pub fn normal(
    shape: impl Into<Shape>,
    mean: f32,
    std: f32,
    rng: &mut Rng,
    device: &Device,
) -> Result<Tensor> {
    let shape = shape.into();
    let dist = Normal::new(mean, std)
        .map_err(|e| candle_core::Error::Msg(format!("normal({mean}, {std}): {e}")))?;
    let values: Vec<f32> = (0..shape.elem_count()).map(|_| dist.sample(rng)).collect();
    Tensor::from_vec(values, shape, device)
}

/// A tensor of `shape` with entries from Uniform[`low`, `high`), f32 on `device`.
pub fn uniform(
    shape: impl Into<Shape>,
    low: f32,
    high: f32,
    rng: &mut Rng,
    device: &Device,
) -> Result<Tensor> {
    let shape = shape.into();
    let dist = Uniform::new(low, high)
        .map_err(|e| candle_core::Error::Msg(format!("uniform({low}, {high}): {e}")))?;
    let values: Vec<f32> = (0..shape.elem_count()).map(|_| dist.sample(rng)).collect();
    Tensor::from_vec(values, shape, device)
}
