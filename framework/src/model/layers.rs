//! The building blocks shared by both towers: LayerNorm, Linear, the pre-LN residual attention
//! block and the block stack. Parameters are plain tensors (frozen) or `Var` tensors (trainable,
//! e.g. UPT's projector); the ops in [`crate::ops`] pick the cheapest correct backward for each.

use super::config::Activation;
use crate::ops::{self, AttentionMask};
use candle_core::{Result, Tensor};

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
/// A frozen f32 weight on the CPU is stored transposed, as a contiguous `Wᵀ (in, out)`, because
/// the CPU GEMM runs the forward product faster on it (see [`crate::ops::linear`]);
/// [`Linear::weight`] is then a transposed view of that storage, so the layer holds one copy.
#[derive(Clone, Debug)]
pub struct Linear {
    /// `W (out, in)`: the tensor given, or a view of `transposed`.
    weight: Tensor,
    bias: Option<Tensor>,
    /// `Wᵀ (in, out)`, contiguous, for frozen f32 weights on the CPU.
    transposed: Option<Tensor>,
}

impl Linear {
    /// A layer over `weight (out, in)` and an optional `bias (out,)`. A frozen f32 CPU weight is
    /// copied into the transposed layout (the given tensor is not kept).
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Result<Self> {
        let store_transposed = weight.device().is_cpu()
            && weight.dtype() == candle_core::DType::F32
            && weight.rank() == 2
            && !weight.track_op();
        let (weight, transposed) = if store_transposed {
            let transposed = weight.t()?.contiguous()?;
            (transposed.t()?, Some(transposed))
        } else {
            (weight, None)
        };
        Ok(Self {
            weight,
            bias,
            transposed,
        })
    }

    /// Weight `(out, in)` (possibly a transposed view; call `contiguous` where a copy in
    /// row-major order is needed).
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// Bias `(out,)`, if any.
    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// Applies the layer to the last dimension of `x`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        ops::linear(x, &self.weight, self.bias.as_ref())
    }

    /// The layer as the fused block kernel reads it (None without a transposed weight).
    fn block_linear(&self) -> Option<ops::BlockLinear> {
        Some(ops::BlockLinear {
            weight_t: self.transposed.clone()?,
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
        match self.fused_params() {
            Some(params) if ops::block_kernel_applies(x, &params) => {
                ops::residual_block(x, &params, mask)
            }
            _ => self.forward_per_op(x, mask),
        }
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

    /// The parameters as the fused kernel reads them (None if a linear layer does not store
    /// its weight transposed, i.e. is not a frozen f32 CPU layer).
    fn fused_params(&self) -> Option<ops::BlockParams> {
        Some(ops::BlockParams {
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
