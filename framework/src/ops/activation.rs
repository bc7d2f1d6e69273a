//! QuickGELU, CLIP's activation: `x · σ(1.702 x)`, with a fused CPU kernel and backward.

use super::{cpu, fast_cpu};
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

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

fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + (-v).exp())
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
            .for_each(|(ys, xs)| {
                for (y, &x) in ys.iter_mut().zip(xs) {
                    *y = x * sigmoid(ALPHA * x);
                }
            });
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
                for ((dx, &x), &dy) in dxs.iter_mut().zip(xs).zip(dys) {
                    let s = sigmoid(ALPHA * x);
                    *dx = dy * (s + ALPHA * x * s * (1.0 - s));
                }
            });
        Ok((CpuStorage::F32(dx), xl.shape().clone()))
    }
}
