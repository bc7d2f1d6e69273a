//! The building blocks shared by both towers: LayerNorm, Linear, the pre-LN residual attention
//! block and the block stack. Parameters are plain tensors (frozen) or `Var` tensors (trainable,
//! e.g. UPT's projector); the ops in [`crate::ops`] pick the cheapest correct backward for each.

use super::config::Activation;
use crate::ops::{self, AttentionMask};
use candle_core::{Result, Tensor};
use std::sync::{Arc, OnceLock};

/// LayerNorm with CLIP's epsilon (1e-5), computed in f32.
#[derive(Clone, Debug)]
pub struct LayerNorm {
    /// Scale γ, shape `(width,)`.
    pub weight: Tensor,
    /// Shift β, shape `(width,)`.
    pub bias: Tensor,
}

impl LayerNorm {
    /// CLIP's LayerNorm epsilon.
    pub const EPS: f64 = 1e-5;

    /// Normalises the last dimension.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        ops::layer_norm(x, &self.weight, &self.bias, Self::EPS)
    }
}

/// A linear layer, `y = x Wᵀ + b`, with `W` of shape `(out, in)` as in PyTorch.
///
/// A frozen f32 layer on the CPU keeps a contiguous copy of `Wᵀ`, made on its first forward,
/// because the CPU GEMM runs faster on it (see [`crate::ops::linear_transposed`]); the copy
/// costs the weight's memory once more and is shared by clones of the layer.
#[derive(Clone, Debug)]
pub struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
    transposed: Arc<OnceLock<Tensor>>,
}

impl Linear {
    /// A layer over `weight (out, in)` and an optional `bias (out,)`.
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self {
            weight,
            bias,
            transposed: Arc::default(),
        }
    }

    /// Weight `(out, in)`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// Bias `(out,)`, if any.
    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// `Wᵀ (in, out)`, contiguous: made on the first call and kept (for the CPU kernels).
    pub fn weight_transposed(&self) -> Result<&Tensor> {
        if let Some(t) = self.transposed.get() {
            return Ok(t);
        }
        // A race only makes a second, identical copy that `set` drops.
        let _ = self.transposed.set(self.weight.t()?.contiguous()?);
        self.transposed
            .get()
            .ok_or_else(|| candle_core::Error::Msg("transposed weight not cached".into()))
    }

    /// Applies the layer to the last dimension of `x`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let bias = self.bias.as_ref();
        if !ops::linear_uses_cpu_kernel(x, &self.weight, bias) {
            return ops::linear(x, &self.weight, bias);
        }
        ops::linear_transposed(x, &self.weight, self.weight_transposed()?, bias)
    }

    /// The layer as the fused block kernel reads it.
    fn block_linear(&self) -> Result<ops::BlockLinear> {
        Ok(ops::BlockLinear {
            weight: self.weight.clone(),
            weight_t: self.weight_transposed()?.clone(),
            bias: self.bias.clone(),
        })
    }
}

/// CLIP's `ResidualAttentionBlock`: `x += attn(ln_1(x)); x += mlp(ln_2(x))`.
#[derive(Clone, Debug)]
pub struct ResidualAttentionBlock {
    /// LayerNorm before attention.
    pub ln_1: LayerNorm,
    /// Packed q/k/v projection (`in_proj_weight`, `in_proj_bias`), `(3·width, width)`.
    pub attn_in: Linear,
    /// Attention output projection, `(width, width)`.
    pub attn_out: Linear,
    /// LayerNorm before the MLP.
    pub ln_2: LayerNorm,
    /// MLP expansion `c_fc`, `(4·width, width)`.
    pub mlp_fc: Linear,
    /// MLP contraction `c_proj`, `(width, 4·width)`.
    pub mlp_proj: Linear,
    /// Attention heads.
    pub heads: usize,
    /// MLP activation.
    pub activation: Activation,
}

impl ResidualAttentionBlock {
    /// Runs the block on `x: (batch, len, width)`: as one fused op when its parameters are
    /// frozen and everything is f32 on the CPU ([`ops::residual_block`]), op by op otherwise.
    pub fn forward(&self, x: &Tensor, mask: AttentionMask) -> Result<Tensor> {
        if ops::block_kernel_applies(x, self.heads, &self.parameters()) {
            return ops::residual_block(x, &self.fused_params()?, mask);
        }
        self.forward_per_op(x, mask)
    }

    /// The block op by op through [`crate::ops`] (each op picks its own kernel): the path for
    /// trainable parameters, CUDA and half precision, and the reference for the fused op.
    pub fn forward_per_op(&self, x: &Tensor, mask: AttentionMask) -> Result<Tensor> {
        let qkv = self.attn_in.forward(&self.ln_1.forward(x)?)?;
        let attended = ops::attention(&qkv, self.heads, mask)?;
        let x = (x + self.attn_out.forward(&attended)?)?;
        let hidden = self.mlp_fc.forward(&self.ln_2.forward(&x)?)?;
        let hidden = match self.activation {
            Activation::QuickGelu => ops::quick_gelu(&hidden)?,
            Activation::Gelu => hidden.gelu_erf()?,
        };
        x + self.mlp_proj.forward(&hidden)?
    }

    /// Every parameter tensor of the block.
    fn parameters(&self) -> Vec<&Tensor> {
        let mut all = vec![
            &self.ln_1.weight,
            &self.ln_1.bias,
            &self.ln_2.weight,
            &self.ln_2.bias,
        ];
        for l in [&self.attn_in, &self.attn_out, &self.mlp_fc, &self.mlp_proj] {
            all.push(&l.weight);
            all.extend(&l.bias);
        }
        all
    }

    /// The parameters as the fused kernel reads them.
    fn fused_params(&self) -> Result<ops::BlockParams> {
        Ok(ops::BlockParams {
            ln_1: (self.ln_1.weight.clone(), self.ln_1.bias.clone()),
            attn_in: self.attn_in.block_linear()?,
            attn_out: self.attn_out.block_linear()?,
            ln_2: (self.ln_2.weight.clone(), self.ln_2.bias.clone()),
            mlp_fc: self.mlp_fc.block_linear()?,
            mlp_proj: self.mlp_proj.block_linear()?,
            heads: self.heads,
            activation: self.activation,
        })
    }

    /// Multiply-adds of one forward pass over `tokens` tokens of sequences of length `len`
    /// (projections plus the two attention products), for FLOP reports.
    pub fn forward_macs(width: usize, tokens: usize, len: usize) -> u64 {
        let (w, t, l) = (width as u64, tokens as u64, len as u64);
        t * w * (3 * w + w + 4 * w + 4 * w) + 2 * t * l * w
    }
}

/// A stack of residual attention blocks with per-layer prompt replacement.
#[derive(Clone, Debug)]
pub struct Transformer {
    /// The blocks, in order.
    pub blocks: Vec<ResidualAttentionBlock>,
}

impl Transformer {
    /// Runs all blocks. Before block `i`, if `deep[i]` is set, rows `[start, start + n)` of the
    /// sequence are replaced by those prompt tokens (`(n, width)`, broadcast over the batch, or
    /// `(batch, n, width)`): the deep-prompt hook of VPT, MaPLe and similar methods.
    pub fn forward(&self, x: &Tensor, mask: AttentionMask, deep: &DeepPrompts) -> Result<Tensor> {
        let mut x = x.clone();
        for (i, block) in self.blocks.iter().enumerate() {
            if let Some(prompt) = deep.layer(i) {
                x = replace_rows(&x, deep.start_for(&x, prompt)?, prompt)?;
            }
            x = block.forward(&x, mask)?;
        }
        Ok(x)
    }
}

/// Where per-layer prompt tokens go in a tower's hidden sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PromptRows {
    /// Rows starting at this index (1 = right after the class / start-of-text token).
    From(usize),
    /// The last `n` rows of the sequence (MaPLe/IVLP's appended visual prompts).
    Last,
}

/// Per-layer prompt replacements for a [`Transformer`]: `layers[i]` replaces the prompt rows
/// before block `i` (entry 0 is normally empty: the first layer's prompts are inserted with the
/// input).
#[derive(Clone, Debug)]
pub struct DeepPrompts {
    /// Where the prompt rows sit.
    pub rows: PromptRows,
    /// One optional `(n, width)` or `(batch, n, width)` tensor per block.
    pub layers: Vec<Option<Tensor>>,
}

impl DeepPrompts {
    /// No deep prompts.
    pub fn none() -> Self {
        Self {
            rows: PromptRows::From(1),
            layers: Vec::new(),
        }
    }

    fn layer(&self, i: usize) -> Option<&Tensor> {
        self.layers.get(i).and_then(Option::as_ref)
    }

    fn start_for(&self, x: &Tensor, prompt: &Tensor) -> Result<usize> {
        let n = prompt.dims()[prompt.rank() - 2];
        match self.rows {
            PromptRows::From(start) => Ok(start),
            PromptRows::Last => Ok(x.dim(1)? - n),
        }
    }
}

/// Replaces rows `[start, start + n)` of `x: (batch, len, width)` with `prompt` (`(n, width)`
/// broadcast over the batch, or `(batch, n, width)`), keeping gradients flowing to both.
pub fn replace_rows(x: &Tensor, start: usize, prompt: &Tensor) -> Result<Tensor> {
    let (batch, len, width) = x.dims3()?;
    let prompt = expand_to_batch(prompt, batch, width)?.to_dtype(x.dtype())?;
    let n = prompt.dim(1)?;
    if start + n > len {
        candle_core::bail!(
            "prompt rows [{start}, {}) exceed the sequence length {len}",
            start + n
        );
    }
    let mut parts = Vec::with_capacity(3);
    if start > 0 {
        parts.push(x.narrow(1, 0, start)?);
    }
    parts.push(prompt);
    if start + n < len {
        parts.push(x.narrow(1, start + n, len - start - n)?);
    }
    Tensor::cat(&parts, 1)
}

/// Inserts `prompt` rows at `position` of `x`, growing the sequence.
pub fn insert_rows(x: &Tensor, position: usize, prompt: &Tensor) -> Result<Tensor> {
    let (batch, len, width) = x.dims3()?;
    let prompt = expand_to_batch(prompt, batch, width)?.to_dtype(x.dtype())?;
    let mut parts = Vec::with_capacity(3);
    if position > 0 {
        parts.push(x.narrow(1, 0, position)?);
    }
    parts.push(prompt);
    if position < len {
        parts.push(x.narrow(1, position, len - position)?);
    }
    Tensor::cat(&parts, 1)
}

/// `(n, width)` → `(batch, n, width)`; `(batch, n, width)` is checked and returned as is.
fn expand_to_batch(prompt: &Tensor, batch: usize, width: usize) -> Result<Tensor> {
    let prompt = match prompt.rank() {
        2 => prompt
            .unsqueeze(0)?
            .broadcast_as((batch, prompt.dim(0)?, prompt.dim(1)?))?,
        3 => prompt.clone(),
        r => candle_core::bail!(
            "prompt tokens must be (n, width) or (batch, n, width), got rank {r}"
        ),
    };
    let (b, _, w) = prompt.dims3()?;
    if w != width || b != batch {
        candle_core::bail!(
            "prompt tokens of shape {:?} do not fit a (batch {batch}, width {width}) sequence",
            prompt.dims()
        );
    }
    Ok(prompt)
}
