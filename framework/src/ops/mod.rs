//! Differentiable kernels for the frozen CLIP towers.
//!
//! Prompt tuning back-propagates through a frozen model into a few prompt tensors, so the cost
//! that matters is the backward pass with respect to *activations*. candle's generic ops fall
//! short there in two ways: its matmul backward also computes gradients for frozen weights
//! (doubling backward cost), and its fused `layer_norm` / `softmax_last_dim` have no backward at
//! all (a prompt upstream silently gets no gradient). This module provides the ops the towers use,
//! each with a backward:
//!
//! - a **fast path** (custom candle ops, hand-written CPU kernels, input gradients only) taken
//!   when the weights are frozen and the tensor is f32 on the CPU (the linear op also on CUDA);
//! - a **composite path** made of candle's differentiable primitives, taken everywhere else
//!   (CUDA, half precision, trainable weights such as UPT's projector). It is also the reference
//!   the fast path is tested against.
//!
//! A third source of cost is candle's backward itself: it adds every gradient contribution into
//! a freshly zeroed tensor, so each graph node costs an allocation and two passes over its
//! activation. On the CPU a whole frozen residual attention block therefore runs as one node
//! ([`residual_block`], built from the same kernels): on the 2-core development machine the
//! full-sequence ViT-B/32 CoOp step went from 0.87–1.0 s op by op to 0.69–0.78 s.

mod activation;
mod alloc;
mod attention;
mod block;
mod cpu;
mod layer_norm;
mod linear;
mod math;

pub use activation::{quick_gelu, quick_gelu_composite, Activation};
pub use alloc::tune_allocator;
pub use attention::{attention, attention_composite, AttentionMask};
pub use block::{block_kernel_applies, residual_block, BlockLinear, BlockParams};
pub use layer_norm::{layer_norm, layer_norm_composite};
pub use linear::{linear, linear_composite};

use candle_core::{DType, Tensor};

/// Softmax over the last dimension built from differentiable primitives (max-subtracted, like
/// PyTorch), for places that need a gradient through a softmax outside attention.
pub fn softmax_last_dim(x: &Tensor) -> candle_core::Result<Tensor> {
    let dim = x.rank() - 1;
    let max = x.max_keepdim(dim)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(dim)?)
}

/// True when the hand-written CPU kernels apply: f32 storage on the CPU.
fn fast_cpu(t: &Tensor) -> bool {
    t.device().is_cpu() && t.dtype() == DType::F32
}

/// True when a tensor takes part in gradient computation (a `Var` or derived from one).
fn needs_grad(t: &Tensor) -> bool {
    t.track_op()
}

#[cfg(test)]
mod tests;
