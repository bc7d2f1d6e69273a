//! LayerNorm over the last dimension, computed in f32 as CLIP's `LayerNorm` subclass does, with
//! a backward pass (candle's fused `layer_norm` has none).

use super::{cpu, fast_cpu, needs_grad};
use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

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
fn row_stats(row: &[f32], eps: f32) -> (f32, f32) {
    let n = row.len() as f32;
    let mean = row.iter().sum::<f32>() / n;
    let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    (mean, 1.0 / (var + eps).sqrt())
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
        let d = *layout.dims().last().unwrap_or(&1);
        let mut y = vec![0f32; x.len()];
        cpu::with_f32(&self.weight, |g| {
            cpu::with_f32(&self.bias, |b| {
                let chunk = cpu::rows_per_task(x.len() / d.max(1), d) * d;
                y.par_chunks_mut(chunk.max(d))
                    .zip(x.par_chunks(chunk.max(d)))
                    .for_each(|(ys, xs)| {
                        for (yr, xr) in ys.chunks_exact_mut(d).zip(xs.chunks_exact(d)) {
                            let (mean, rstd) = row_stats(xr, self.eps);
                            for i in 0..d {
                                yr[i] = (xr[i] - mean) * rstd * g[i] + b[i];
                            }
                        }
                    })
            })
        })??;
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

/// dL/dx of LayerNorm with frozen affine parameters:
/// `dx = rstd · (ĝ − mean(ĝ) − x̂ · mean(ĝ · x̂))` with `ĝ = dy · γ`.
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
        let d = *xl.dims().last().unwrap_or(&1);
        let mut dx = vec![0f32; x.len()];
        cpu::with_f32(&self.weight, |g| {
            let chunk = cpu::rows_per_task(x.len() / d.max(1), d) * d;
            dx.par_chunks_mut(chunk.max(d))
                .zip(x.par_chunks(chunk.max(d)).zip(dy.par_chunks(chunk.max(d))))
                .for_each(|(dxs, (xs, dys))| {
                    for ((dxr, xr), dyr) in dxs
                        .chunks_exact_mut(d)
                        .zip(xs.chunks_exact(d))
                        .zip(dys.chunks_exact(d))
                    {
                        let (mean, rstd) = row_stats(xr, self.eps);
                        let (mut sum_g, mut sum_gx) = (0f32, 0f32);
                        for i in 0..d {
                            let gi = dyr[i] * g[i];
                            sum_g += gi;
                            sum_gx += gi * (xr[i] - mean) * rstd;
                        }
                        let (mg, mgx) = (sum_g / d as f32, sum_gx / d as f32);
                        for i in 0..d {
                            let xhat = (xr[i] - mean) * rstd;
                            dxr[i] = rstd * (dyr[i] * g[i] - mg - xhat * mgx);
                        }
                    }
                })
        })?;
        Ok((CpuStorage::F32(dx), xl.shape().clone()))
    }
}
