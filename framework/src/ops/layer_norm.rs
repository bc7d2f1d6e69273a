//! LayerNorm over the last dimension, computed in f32 as CLIP's `LayerNorm` subclass does, with
//! a backward pass (candle's fused `layer_norm` has none).

use super::{cpu, fast_cpu, math, needs_grad};
use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Tensor};

/// Normalises the last dimension of `x` and applies `weight`/`bias`. Frozen parameters with f32
/// CPU data take the fused kernel; anything else the composite path.
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    if needs_grad(weight) || needs_grad(bias) || !fast_cpu(x) || !fast_cpu(weight) {
        return layer_norm_composite(x, weight, bias, eps);
    }
    let op = LayerNormOp {
        weight: weight.clone(),
        bias: bias.clone(),
        eps: eps as f32,
    };
    x.contiguous()?.apply_op1(op)
}

/// LayerNorm from candle primitives, computed in f32 for half-precision inputs (and in f64 for
/// f64 inputs), cast back afterwards.
pub fn layer_norm_composite(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    eps: f64,
) -> Result<Tensor> {
    let dtype = x.dtype();
    let compute = if dtype == DType::F64 {
        DType::F64
    } else {
        DType::F32
    };
    let x = x.to_dtype(compute)?;
    let dim = x.rank() - 1;
    let mean = x.mean_keepdim(dim)?;
    let centred = x.broadcast_sub(&mean)?;
    let var = centred.sqr()?.mean_keepdim(dim)?;
    let normed = centred.broadcast_div(&(var + eps)?.sqrt()?)?;
    let y = normed
        .broadcast_mul(&weight.to_dtype(compute)?)?
        .broadcast_add(&bias.to_dtype(compute)?)?;
    y.to_dtype(dtype)
}

/// Mean and reciprocal standard deviation of one row (two-pass, like PyTorch's CPU kernel).
#[inline]
fn row_stats(row: &[f32], eps: f32) -> (f32, f32) {
    let n = row.len();
    let mean = math::sum_by(n, |i| row[i]) / n as f32;
    let var = math::sum_by(n, |i| (row[i] - mean) * (row[i] - mean)) / n as f32;
    (mean, 1.0 / (var + eps).sqrt())
}

/// LayerNorm of each `gamma.len()`-wide row of `x` into `y`, in parallel over rows.
pub(crate) fn forward_rows(x: &[f32], gamma: &[f32], beta: &[f32], eps: f32, y: &mut [f32]) {
    let d = gamma.len();
    cpu::par_rows(y, d, |row0, ys| {
        let xs = &x[row0 * d..row0 * d + ys.len()];
        for (yr, xr) in ys.chunks_exact_mut(d).zip(xs.chunks_exact(d)) {
            let (mean, rstd) = row_stats(xr, eps);
            for (((y, &x), &g), &b) in yr.iter_mut().zip(xr).zip(gamma).zip(beta) {
                *y = (x - mean) * rstd * g + b;
            }
        }
    });
}

/// Input gradient of LayerNorm with a frozen scale `gamma`, row by row in parallel:
/// `dx = rstd · (ĝ − mean(ĝ) − x̂ · mean(ĝ · x̂))` with `ĝ = dy · γ`, plus `residual` (the
/// gradient arriving through a skip connection around the norm) when given.
pub(crate) fn backward_rows(
    x: &[f32],
    gamma: &[f32],
    eps: f32,
    dy: &[f32],
    residual: Option<&[f32]>,
    dx: &mut [f32],
) {
    let d = gamma.len();
    cpu::par_rows(dx, d, |row0, dxs| {
        let start = row0 * d;
        for (r, dxr) in dxs.chunks_exact_mut(d).enumerate() {
            let range = start + r * d..start + (r + 1) * d;
            let (xr, dyr) = (&x[range.clone()], &dy[range.clone()]);
            let (mean, rstd) = row_stats(xr, eps);
            let (sum_g, sum_gx) = math::sum2_by(d, |i| {
                let gi = dyr[i] * gamma[i];
                (gi, gi * (xr[i] - mean))
            });
            let (mg, mgx) = (sum_g / d as f32, sum_gx * rstd / d as f32);
            let inputs = dxr.iter_mut().zip(xr).zip(dyr).zip(gamma);
            match residual {
                Some(res) => {
                    for ((((dx, &x), &dy), &g), &res) in inputs.zip(&res[range]) {
                        *dx = rstd * (dy * g - mg - (x - mean) * rstd * mgx) + res;
                    }
                }
                None => {
                    for (((dx, &x), &dy), &g) in inputs {
                        *dx = rstd * (dy * g - mg - (x - mean) * rstd * mgx);
                    }
                }
            }
        }
    });
}

struct LayerNormOp {
    weight: Tensor,
    bias: Tensor,
    eps: f32,
}

impl CustomOp1 for LayerNormOp {
    fn name(&self) -> &'static str {
        "layer-norm"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = cpu::f32_slice(storage, layout)?;
        let mut y = vec![0f32; x.len()];
        let params = cpu::Borrowed::new(&[&self.weight, &self.bias]);
        forward_rows(x, params.slice(0)?, params.slice(1)?, self.eps, &mut y);
        Ok((CpuStorage::F32(y), layout.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, grad_y: &Tensor) -> Result<Option<Tensor>> {
        let op = LayerNormInputGrad {
            weight: self.weight.clone(),
            eps: self.eps,
        };
        Ok(Some(x.apply_op2_no_bwd(&grad_y.contiguous()?, &op)?))
    }
}

/// dL/dx of LayerNorm with frozen affine parameters (see [`backward_rows`]).
struct LayerNormInputGrad {
    weight: Tensor,
    eps: f32,
}

impl CustomOp2 for LayerNormInputGrad {
    fn name(&self) -> &'static str {
        "layer-norm-input-grad"
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
        cpu::with_f32(&self.weight, |g| {
            backward_rows(x, g, self.eps, dy, None, &mut dx)
        })?;
        Ok((CpuStorage::F32(dx), xl.shape().clone()))
    }
}
