//! QuickGELU, CLIP's activation: `x · σ(1.702 x)`, with a fused CPU kernel and backward, and
//! the slice kernels of both MLP activations for the fused block ([`super::block`]).

use super::{cpu, fast_cpu, math};
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// The MLP activation of the transformer blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `x · σ(1.702 x)`, OpenAI's CLIP.
    #[default]
    QuickGelu,
    /// The exact (erf) GELU, used by most open_clip LAION models.
    Gelu,
}

const ALPHA: f32 = 1.702;

/// `x · σ(1.702 x)` elementwise.
pub fn quick_gelu(x: &Tensor) -> Result<Tensor> {
    if !fast_cpu(x) {
        return quick_gelu_composite(x);
    }
    x.contiguous()?.apply_op1(QuickGelu)
}

/// QuickGELU from candle primitives.
pub fn quick_gelu_composite(x: &Tensor) -> Result<Tensor> {
    x * candle_nn::ops::sigmoid(&(x * ALPHA as f64)?)?
}

#[inline(always)]
fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + math::exp(-v))
}

/// QuickGELU of one value.
#[inline(always)]
fn quick_gelu_value(x: f32) -> f32 {
    x * sigmoid(ALPHA * x)
}

/// Derivative of QuickGELU: `σ(αx) + αx · σ(αx) · (1 − σ(αx))`.
#[inline(always)]
fn quick_gelu_derivative(x: f32) -> f32 {
    let s = sigmoid(ALPHA * x);
    s + ALPHA * x * s * (1.0 - s)
}

/// The exact GELU `x · Φ(x)` of one value, as candle's `gelu_erf` computes it.
#[inline]
fn gelu_erf_value(x: f32) -> f32 {
    (candle_core::cpu::erf::erf_f32(x * std::f32::consts::FRAC_1_SQRT_2) + 1.0) * 0.5 * x
}

/// Derivative of the exact GELU: `Φ(x) + x · φ(x)`.
#[inline]
fn gelu_erf_derivative(x: f32) -> f32 {
    // 1/√(2π) = (2/√π) · (1/√2) / 2.
    const INV_SQRT_2PI: f32 =
        0.5 * std::f32::consts::FRAC_2_SQRT_PI * std::f32::consts::FRAC_1_SQRT_2;
    let cdf = (candle_core::cpu::erf::erf_f32(x * std::f32::consts::FRAC_1_SQRT_2) + 1.0) * 0.5;
    cdf + x * math::exp(-0.5 * x * x) * INV_SQRT_2PI
}

/// `values[i] = act(values[i])`, in place.
pub(crate) fn activate_in_place(activation: Activation, values: &mut [f32]) {
    match activation {
        Activation::QuickGelu => values.iter_mut().for_each(|v| *v = quick_gelu_value(*v)),
        Activation::Gelu => values.iter_mut().for_each(|v| *v = gelu_erf_value(*v)),
    }
}

/// `out[i] = act(pre[i])` (equal lengths).
pub(crate) fn activate(activation: Activation, pre: &[f32], out: &mut [f32]) {
    let pairs = out.iter_mut().zip(pre);
    match activation {
        Activation::QuickGelu => pairs.for_each(|(o, &z)| *o = quick_gelu_value(z)),
        Activation::Gelu => pairs.for_each(|(o, &z)| *o = gelu_erf_value(z)),
    }
}

/// `grad[i] *= act'(pre[i])`: the gradient through the activation, in place.
pub(crate) fn scale_by_derivative(activation: Activation, pre: &[f32], grad: &mut [f32]) {
    let pairs = grad.iter_mut().zip(pre);
    match activation {
        Activation::QuickGelu => pairs.for_each(|(g, &z)| *g *= quick_gelu_derivative(z)),
        Activation::Gelu => pairs.for_each(|(g, &z)| *g *= gelu_erf_derivative(z)),
    }
}

const CHUNK: usize = 16_384;

struct QuickGelu;

impl CustomOp1 for QuickGelu {
    fn name(&self) -> &'static str {
        "quick-gelu"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = cpu::f32_slice(storage, layout)?;
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(|(ys, xs)| activate(Activation::QuickGelu, xs, ys));
        Ok((CpuStorage::F32(y), layout.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, grad_y: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(
            x.apply_op2_no_bwd(&grad_y.contiguous()?, &QuickGeluGrad)?,
        ))
    }
}

/// dL/dx = dy · (σ(αx) + αx · σ(αx) · (1 − σ(αx))).
struct QuickGeluGrad;

impl CustomOp2 for QuickGeluGrad {
    fn name(&self) -> &'static str {
        "quick-gelu-grad"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = cpu::f32_slice(xs, xl)?;
        let dy = cpu::f32_slice(gs, gl)?;
        let mut dx = vec![0f32; x.len()];
        dx.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK).zip(dy.par_chunks(CHUNK)))
            .for_each(|(dxs, (xs, dys))| {
                dxs.copy_from_slice(dys);
                scale_by_derivative(Activation::QuickGelu, xs, dxs);
            });
        Ok((CpuStorage::F32(dx), xl.shape().clone()))
    }
}
