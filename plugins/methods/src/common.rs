//! Pieces the methods share: trainable linear layers with PyTorch's initialisers drawn from the
//! run's generator, prompt dropout with seeded per-image masks, and option checks.

use anyhow::{bail, Result};
use candle_core::{DType, Device, Tensor, Var};
use mvlpt_framework::method::StepContext;
use mvlpt_framework::model::layers::Linear;
use mvlpt_framework::ops;
use mvlpt_framework::rng::{self, Rng};

/// A variable drawn from Uniform(−`bound`, `bound`).
pub fn uniform_var(shape: &[usize], bound: f64, rng: &mut Rng, device: &Device) -> Result<Var> {
    let bound = bound as f32;
    Ok(Var::from_tensor(&rng::uniform(
        shape, -bound, bound, rng, device,
    )?)?)
}

/// A variable drawn from Normal(0, `std`).
pub fn normal_var(shape: &[usize], std: f64, rng: &mut Rng, device: &Device) -> Result<Var> {
    Ok(Var::from_tensor(&rng::normal(
        shape, 0.0, std as f32, rng, device,
    )?)?)
}

/// A trainable `y = x Wᵀ + b` with `W: (out, in)` as in PyTorch.
#[derive(Clone, Debug)]
pub struct TrainableLinear {
    /// Weight `(out, in)`.
    pub weight: Var,
    /// Bias `(out,)`.
    pub bias: Var,
}

impl TrainableLinear {
    /// `nn.Linear(inp, out)` as PyTorch initialises it: weight from `kaiming_uniform_(a=√5)` and
    /// bias from Uniform(±1/√inp), which are both Uniform(±1/√inp).
    pub fn pytorch_default(inp: usize, out: usize, rng: &mut Rng, device: &Device) -> Result<Self> {
        let bound = 1.0 / (inp as f64).sqrt();
        let weight = uniform_var(&[out, inp], bound, rng, device)?;
        let bias = uniform_var(&[out], bound, rng, device)?;
        Ok(Self { weight, bias })
    }

    /// `nn.Linear(inp, out)` whose weight is re-drawn with `kaiming_normal_(a=0, mode='fan_out')`
    /// (std √2/√out), as VPT's prompt projection; the bias keeps PyTorch's default.
    pub fn kaiming_normal_fan_out(
        inp: usize,
        out: usize,
        rng: &mut Rng,
        device: &Device,
    ) -> Result<Self> {
        let weight = normal_var(&[out, inp], (2.0 / out as f64).sqrt(), rng, device)?;
        let bias = uniform_var(&[out], 1.0 / (inp as f64).sqrt(), rng, device)?;
        Ok(Self { weight, bias })
    }

    /// The layer as the framework's [`Linear`] (sharing the variables' storage).
    pub fn layer(&self) -> Result<Linear> {
        Ok(Linear::new(
            self.weight.as_tensor().clone(),
            Some(self.bias.as_tensor().clone()),
        )?)
    }

    /// Applies the layer to the last dimension of `x` (computed in the weight's dtype).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = x.to_dtype(self.weight.dtype())?;
        Ok(ops::linear(
            &x,
            self.weight.as_tensor(),
            Some(self.bias.as_tensor()),
        )?)
    }

    /// The two tensors under `<prefix>.weight` and `<prefix>.bias`.
    pub fn named(&self, prefix: &str) -> [(String, Var); 2] {
        [
            (format!("{prefix}.weight"), self.weight.clone()),
            (format!("{prefix}.bias"), self.bias.clone()),
        ]
    }
}

/// `nn.Dropout(p)` on prompt tokens `x: (n, width)` that the reference expands to the batch
/// before dropping: in training each of the `step.batch` images gets its own mask (drawn from
/// the run's generator, kept entries scaled by 1/(1−p)), giving `(batch, n, width)`. In
/// evaluation, or with p = 0, `x` is returned unchanged.
pub fn prompt_dropout(x: &Tensor, p: f64, step: &mut StepContext<'_>) -> Result<Tensor> {
    if !step.train || p == 0.0 {
        return Ok(x.clone());
    }
    if step.batch == 0 {
        bail!("prompt dropout in training needs the batch size (StepContext::batch is 0)");
    }
    let (n, width) = x.dims2()?;
    let shape = [step.batch, n, width];
    let batched = x.unsqueeze(0)?.broadcast_as(shape.as_slice())?;
    if p >= 1.0 {
        return Ok(batched.zeros_like()?);
    }
    let draws = rng::uniform(shape.as_slice(), 0.0, 1.0, step.rng, x.device())?;
    let keep = draws.ge(p)?.to_dtype(DType::F32)?;
    let mask = (keep * (1.0 / (1.0 - p)))?.to_dtype(x.dtype())?;
    Ok(batched.mul(&mask)?)
}

/// Checks a dropout probability from an options table.
pub fn check_probability(name: &str, p: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&p) {
        bail!("{name} must lie in [0, 1], got {p}");
    }
    Ok(())
}

/// Class names of a label space must not be empty.
pub fn check_classes(method: &str, classnames: &[String]) -> Result<()> {
    if classnames.is_empty() {
        bail!("{method}: cannot bind to an empty label space");
    }
    Ok(())
}
