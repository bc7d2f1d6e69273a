//! `y = x Wᵀ + b` whose backward returns only the input gradient when `W` and `b` are frozen.

use super::{cpu, fast_cpu, needs_grad};
use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Applies a linear layer to the last dimension of `x` (any rank ≥ 2). `weight` is `(out, in)`
/// as in PyTorch. With frozen weights the backward skips the weight gradient entirely; with a
/// trainable weight or bias it falls back to [`linear_composite`].
pub fn linear(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let frozen = !needs_grad(weight) && !bias.is_some_and(needs_grad);
    let on_cpu_f32 = fast_cpu(x) && fast_cpu(weight);
    if !frozen || !(on_cpu_f32 || x.device().is_cuda()) {
        return linear_composite(x, weight, bias);
    }
    let dims = x.dims().to_vec();
    let (out_features, in_features) = weight.dims2()?;
    let rows = x.elem_count() / in_features.max(1);
    let x2 = x.reshape((rows, in_features))?.contiguous()?;
    let fused_bias = if on_cpu_f32 { bias.cloned() } else { None };
    let mut y = x2.apply_op2_arc(
        weight,
        std::sync::Arc::new(Box::new(FrozenLinear { bias: fused_bias })),
    )?;
    if !on_cpu_f32 {
        if let Some(b) = bias {
            y = y.broadcast_add(b)?;
        }
    }
    let mut out_dims = dims;
    *out_dims.last_mut().expect("rank >= 1") = out_features;
    y.reshape(out_dims)
}

/// The same layer from candle primitives (computes weight gradients too).
pub fn linear_composite(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let y = x.broadcast_matmul(&weight.t()?)?;
    match bias {
        Some(b) => y.broadcast_add(b),
        None => Ok(y),
    }
}

/// The custom op: arguments `(x: (rows, in), weight: (out, in))`, output `(rows, out)`.
struct FrozenLinear {
    /// Bias added inside the CPU kernel (None on CUDA, where it is added afterwards).
    bias: Option<Tensor>,
}

/// Shared forward for every backend: `x @ weightᵀ` through the backend's own GEMM.
fn matmul_transposed<S: BackendStorage>(
    x: &S,
    xl: &Layout,
    w: &S,
    wl: &Layout,
) -> Result<(S, Shape)> {
    let (rows, k) = xl.shape().dims2()?;
    let (out, k2) = wl.shape().dims2()?;
    if k != k2 {
        candle_core::bail!("linear: input has {k} features but the weight expects {k2}");
    }
    let y = x.matmul(w, (1, rows, out, k), xl, &wl.transpose(0, 1)?)?;
    Ok((y, Shape::from((rows, out))))
}

impl CustomOp2 for FrozenLinear {
    fn name(&self) -> &'static str {
        "frozen-linear"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        xl: &Layout,
        w: &CpuStorage,
        wl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (mut y, shape) = matmul_transposed(x, xl, w, wl)?;
        if let Some(bias) = &self.bias {
            let out = shape.dims()[1];
            let CpuStorage::F32(values) = &mut y else {
                candle_core::bail!("frozen-linear: fused bias needs f32");
            };
            cpu::with_f32(bias, |b| {
                let chunk = cpu::rows_per_task(values.len() / out.max(1), out) * out;
                values.par_chunks_mut(chunk.max(out)).for_each(|rows| {
                    for row in rows.chunks_exact_mut(out) {
                        row.iter_mut().zip(b).for_each(|(v, b)| *v += b);
                    }
                })
            })?;
        }
        Ok((y, shape))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &candle_core::CudaStorage,
        xl: &Layout,
        w: &candle_core::CudaStorage,
        wl: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        matmul_transposed(x, xl, w, wl)
    }

    fn bwd(
        &self,
        _x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        grad_y: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        // dL/dx = dL/dy · W; the frozen weight gets no gradient at all.
        Ok((Some(grad_y.matmul(w)?), None))
    }
}
