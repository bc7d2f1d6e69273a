//! CLIP's pre-LN residual attention block as one fused CPU op.
//!
//! Run op by op, a block is about twenty candle graph nodes, and candle's backward pass pays for
//! each: every gradient contribution is added into a freshly zeroed tensor (`or_insert` then
//! `add`), so each node costs an allocation and two extra passes over its activation, and every
//! intermediate result is a new allocation. The fused op is a single node whose forward and
//! backward are written out here on plain slices: GEMMs that start from the bias or the residual
//! stream instead of adding them afterwards, the LayerNorm, attention and activation kernels of
//! this module, and only the activations the backward needs kept (`qkv`, the residual stream
//! after attention, the MLP pre-activation). The backward returns the input gradient only: the
//! block's parameters are frozen. Weights are stored as `Wᵀ` (see
//! the model's `Linear` layer); the backward products transpose them back into a scratch
//! copy of one weight at a time ([`cpu::transpose`]). Without a gradient to track nothing is
//! kept and the activation runs in place.

use super::activation::{activate, activate_in_place, scale_by_derivative};
use super::attention::{backward_heads, forward_heads, AttentionMask, Geometry};
use super::cpu::{self, MatRef};
use super::layer_norm::{backward_rows, forward_rows};
use super::{fast_cpu, needs_grad};
use crate::ops::Activation;
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;
use std::sync::{Arc, Mutex};

/// LayerNorm epsilon of CLIP's blocks.
const EPS: f32 = 1e-5;

/// A frozen linear layer as the fused block reads it.
#[derive(Clone, Debug)]
pub struct BlockLinear {
    /// `Wᵀ (in, out)`, contiguous: the faster right-hand side of the forward product (the
    /// backward reads it transposed back).
    pub weight_t: Tensor,
    /// Bias `(out,)`.
    pub bias: Option<Tensor>,
}

/// The frozen parameters of one residual attention block:
/// `x += out(attn(in(ln_1(x)))); x += proj(act(fc(ln_2(x))))`.
#[derive(Clone, Debug)]
pub struct BlockParams {
    /// LayerNorm before attention, `(γ, β)`.
    pub ln_1: (Tensor, Tensor),
    /// Packed q/k/v projection.
    pub attn_in: BlockLinear,
    /// Attention output projection.
    pub attn_out: BlockLinear,
    /// LayerNorm before the MLP, `(γ, β)`.
    pub ln_2: (Tensor, Tensor),
    /// MLP expansion.
    pub mlp_fc: BlockLinear,
    /// MLP contraction.
    pub mlp_proj: BlockLinear,
    /// Attention heads.
    pub heads: usize,
    /// MLP activation.
    pub activation: Activation,
}

/// True when [`residual_block`] can run `params` on `x`: an f32 CPU input of rank 3 whose width
/// the heads divide, and every parameter frozen, f32, on the CPU and contiguous.
pub fn block_kernel_applies(x: &Tensor, params: &BlockParams) -> bool {
    fast_cpu(x)
        && x.rank() == 3
        && params.heads > 0
        && x.dims()[2].is_multiple_of(params.heads)
        && tensors(params)
            .iter()
            .all(|p| fast_cpu(p) && !needs_grad(p) && p.is_contiguous())
}

/// Runs the block on `x: (batch, len, width)` as one op (check [`block_kernel_applies`]
/// first). With `x` tracking a gradient the op keeps what its backward needs; otherwise it
/// keeps nothing.
pub fn residual_block(x: &Tensor, params: &BlockParams, mask: AttentionMask) -> Result<Tensor> {
    let x = x.contiguous()?;
    let (batch, len, width) = x.dims3()?;
    check_shapes(params, width)?;
    let geometry = Geometry::from_dims(batch, len, width, params.heads);
    if !needs_grad(&x) {
        let (output, _) = cpu::with_f32(&x, |xs| forward(params, &geometry, mask, xs, false))??;
        return Tensor::from_vec(output, x.shape(), x.device());
    }
    let op = FusedBlock {
        params: params.clone(),
        mask,
        saved: Mutex::new(None),
    };
    x.apply_op1_arc(Arc::new(Box::new(op)))
}

/// Checks every parameter's shape against the input width (the kernels trust them).
fn check_shapes(p: &BlockParams, width: usize) -> Result<()> {
    if p.heads == 0 || !width.is_multiple_of(p.heads) {
        candle_core::bail!(
            "residual block: width {width} is not a multiple of {} heads",
            p.heads
        );
    }
    let hidden = p.mlp_fc.weight_t.dim(1)?;
    let expect = |t: &Tensor, dims: &[usize], what: &str| -> Result<()> {
        if t.dims() != dims {
            candle_core::bail!(
                "residual block: {what} has shape {:?}, expected {dims:?} for width {width}",
                t.dims()
            );
        }
        Ok(())
    };
    for (ln, name) in [(&p.ln_1, "ln_1"), (&p.ln_2, "ln_2")] {
        expect(&ln.0, &[width], name)?;
        expect(&ln.1, &[width], name)?;
    }
    for (l, name, out, inp) in [
        (&p.attn_in, "attn_in", 3 * width, width),
        (&p.attn_out, "attn_out", width, width),
        (&p.mlp_fc, "mlp_fc", hidden, width),
        (&p.mlp_proj, "mlp_proj", width, hidden),
    ] {
        expect(&l.weight_t, &[inp, out], name)?;
        if let Some(b) = &l.bias {
            expect(b, &[out], name)?;
        }
    }
    Ok(())
}

/// `(Wᵀ, bias)` of one linear layer as slices.
type LinearSlices<'a> = (&'a [f32], Option<&'a [f32]>);

/// The block's parameters as slices (their storage held by a [`cpu::Borrowed`]).
struct Slices<'a> {
    ln_1: (&'a [f32], &'a [f32]),
    ln_2: (&'a [f32], &'a [f32]),
    /// `(Wᵀ, bias)` of attn_in, attn_out, mlp_fc, mlp_proj.
    linears: [LinearSlices<'a>; 4],
}

/// Every tensor of the block in the order [`Slices::new`] reads them.
fn tensors(p: &BlockParams) -> Vec<&Tensor> {
    let mut all = vec![&p.ln_1.0, &p.ln_1.1, &p.ln_2.0, &p.ln_2.1];
    for l in [&p.attn_in, &p.attn_out, &p.mlp_fc, &p.mlp_proj] {
        all.push(&l.weight_t);
        all.extend(&l.bias);
    }
    all
}

impl<'a> Slices<'a> {
    fn new(p: &BlockParams, data: &'a cpu::Borrowed) -> Result<Self> {
        let mut next = 4;
        let mut linear = |l: &BlockLinear| -> Result<LinearSlices<'a>> {
            let wt = data.slice(next)?;
            next += 1;
            let bias = match l.bias {
                Some(_) => {
                    next += 1;
                    Some(data.slice(next - 1)?)
                }
                None => None,
            };
            Ok((wt, bias))
        };
        let linears = [
            linear(&p.attn_in)?,
            linear(&p.attn_out)?,
            linear(&p.mlp_fc)?,
            linear(&p.mlp_proj)?,
        ];
        Ok(Self {
            ln_1: (data.slice(0)?, data.slice(1)?),
            ln_2: (data.slice(2)?, data.slice(3)?),
            linears,
        })
    }
}

/// What the backward pass needs from the forward pass.
struct Saved {
    /// The packed attention input `(tokens, 3·width)`.
    qkv: Vec<f32>,
    /// The residual stream after attention `(tokens, width)`.
    mid: Vec<f32>,
    /// The MLP pre-activation `(tokens, hidden)`.
    pre: Vec<f32>,
}

/// `rows` rows of `width` values: `base` (or zeros) plus `bias` (or nothing) on every row.
fn rows_plus_bias(
    base: Option<&[f32]>,
    bias: Option<&[f32]>,
    rows: usize,
    width: usize,
) -> Vec<f32> {
    match (base, bias) {
        (None, None) => vec![0f32; rows * width],
        (None, Some(b)) => cpu::repeat_row(b, rows),
        (Some(base), None) => base[..rows * width].to_vec(),
        (Some(base), Some(b)) => {
            let mut out = vec![0f32; rows * width];
            cpu::par_rows(&mut out, width, |row0, block| {
                let src = &base[row0 * width..row0 * width + block.len()];
                for (o, s) in block.chunks_exact_mut(width).zip(src.chunks_exact(width)) {
                    for ((o, &s), &b) in o.iter_mut().zip(s).zip(b) {
                        *o = s + b;
                    }
                }
            });
            out
        }
    }
}

/// The block's output for `x`, and (when `keep`) what the backward needs.
fn forward(
    params: &BlockParams,
    g: &Geometry,
    mask: AttentionMask,
    x: &[f32],
    keep: bool,
) -> Result<(Vec<f32>, Option<Saved>)> {
    let guards = cpu::Borrowed::new(&tensors(params));
    let p = Slices::new(params, &guards)?;
    let [attn_in, attn_out, mlp_fc, mlp_proj] = p.linears;
    let (tokens, w) = (g.tokens(), g.width());
    let hidden = mlp_fc.0.len() / w;
    if x.len() != tokens * w {
        candle_core::bail!(
            "residual block: {} input values for {tokens} × {w}",
            x.len()
        );
    }

    // Attention half: mid = x + out(attention(in(ln_1(x)))).
    let mut normed = vec![0f32; tokens * w];
    forward_rows(x, p.ln_1.0, p.ln_1.1, EPS, &mut normed);
    let mut qkv = rows_plus_bias(None, attn_in.1, tokens, 3 * w);
    cpu::matmul(
        &mut qkv,
        attn_in.1.is_some(),
        MatRef::row_major(&normed, tokens, w)?,
        MatRef::row_major(attn_in.0, w, 3 * w)?,
    )?;
    let attended = &mut normed;
    forward_heads(&qkv, g, mask, attended);
    let mut mid = rows_plus_bias(Some(x), attn_out.1, tokens, w);
    cpu::matmul(
        &mut mid,
        true,
        MatRef::row_major(attended, tokens, w)?,
        MatRef::row_major(attn_out.0, w, w)?,
    )?;

    // MLP half: output = mid + proj(act(fc(ln_2(mid)))).
    let normed = attended;
    forward_rows(&mid, p.ln_2.0, p.ln_2.1, EPS, normed);
    let mut pre = rows_plus_bias(None, mlp_fc.1, tokens, hidden);
    cpu::matmul(
        &mut pre,
        mlp_fc.1.is_some(),
        MatRef::row_major(normed, tokens, w)?,
        MatRef::row_major(mlp_fc.0, w, hidden)?,
    )?;
    let activated = if keep {
        let mut activated = vec![0f32; pre.len()];
        cpu::par_rows(&mut activated, hidden, |row0, block| {
            let start = row0 * hidden;
            activate(params.activation, &pre[start..start + block.len()], block);
        });
        activated
    } else {
        cpu::par_rows(&mut pre, hidden, |_, block| {
            activate_in_place(params.activation, block)
        });
        std::mem::take(&mut pre)
    };
    let mut output = rows_plus_bias(Some(&mid), mlp_proj.1, tokens, w);
    cpu::matmul(
        &mut output,
        true,
        MatRef::row_major(&activated, tokens, hidden)?,
        MatRef::row_major(mlp_proj.0, hidden, w)?,
    )?;
    let saved = keep.then_some(Saved { qkv, mid, pre });
    Ok((output, saved))
}

/// The input gradient of the block given the output gradient `dy`.
fn backward(
    params: &BlockParams,
    g: &Geometry,
    mask: AttentionMask,
    x: &[f32],
    saved: &Saved,
    dy: &[f32],
) -> Result<Vec<f32>> {
    let guards = cpu::Borrowed::new(&tensors(params));
    let p = Slices::new(params, &guards)?;
    let [attn_in, attn_out, mlp_fc, mlp_proj] = p.linears;
    let (tokens, w) = (g.tokens(), g.width());
    let hidden = mlp_fc.0.len() / w;

    // MLP half: d_pre = (dy · W_proj) ∘ act'(pre), then back through fc and ln_2, plus dy
    // along the residual path.
    let mut d_pre = vec![0f32; tokens * hidden];
    cpu::matmul(
        &mut d_pre,
        false,
        MatRef::row_major(dy, tokens, w)?,
        MatRef::row_major(&cpu::transpose(mlp_proj.0, hidden, w), w, hidden)?,
    )?;
    d_pre
        .par_chunks_mut(cpu::rows_per_task(tokens, hidden) * hidden)
        .zip(
            saved
                .pre
                .par_chunks(cpu::rows_per_task(tokens, hidden) * hidden),
        )
        .for_each(|(d, pre)| scale_by_derivative(params.activation, pre, d));
    let mut d_normed = vec![0f32; tokens * w];
    cpu::matmul(
        &mut d_normed,
        false,
        MatRef::row_major(&d_pre, tokens, hidden)?,
        MatRef::row_major(&cpu::transpose(mlp_fc.0, w, hidden), hidden, w)?,
    )?;
    drop(d_pre);
    let mut d_mid = vec![0f32; tokens * w];
    backward_rows(&saved.mid, p.ln_2.0, EPS, &d_normed, Some(dy), &mut d_mid);

    // Attention half, the same way.
    let d_attended = &mut d_normed;
    cpu::matmul(
        d_attended,
        false,
        MatRef::row_major(&d_mid, tokens, w)?,
        MatRef::row_major(&cpu::transpose(attn_out.0, w, w), w, w)?,
    )?;
    let mut d_qkv = vec![0f32; tokens * 3 * w];
    backward_heads(&saved.qkv, d_attended, g, mask, &mut d_qkv);
    let d_normed = d_attended;
    cpu::matmul(
        d_normed,
        false,
        MatRef::row_major(&d_qkv, tokens, 3 * w)?,
        MatRef::row_major(&cpu::transpose(attn_in.0, w, 3 * w), 3 * w, w)?,
    )?;
    let mut dx = vec![0f32; tokens * w];
    backward_rows(x, p.ln_1.0, EPS, d_normed, Some(&d_mid), &mut dx);
    Ok(dx)
}

/// The fused block as a candle op on `x`; its forward keeps what its backward needs.
struct FusedBlock {
    params: BlockParams,
    mask: AttentionMask,
    saved: Mutex<Option<Arc<Saved>>>,
}

impl FusedBlock {
    fn geometry(&self, shape: &Shape) -> Result<Geometry> {
        let (batch, len, width) = shape.dims3()?;
        Ok(Geometry::from_dims(batch, len, width, self.params.heads))
    }

    fn saved(&self) -> Result<std::sync::MutexGuard<'_, Option<Arc<Saved>>>> {
        self.saved
            .lock()
            .map_err(|_| candle_core::Error::Msg("fused block: poisoned state".into()))
    }
}

impl CustomOp1 for FusedBlock {
    fn name(&self) -> &'static str {
        "fused-residual-attention-block"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = cpu::f32_slice(storage, layout)?;
        let g = self.geometry(layout.shape())?;
        let (output, saved) = forward(&self.params, &g, self.mask, x, true)?;
        *self.saved()? = saved.map(Arc::new);
        Ok((CpuStorage::F32(output), layout.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, grad_y: &Tensor) -> Result<Option<Tensor>> {
        let saved = self.saved()?.clone().ok_or_else(|| {
            candle_core::Error::Msg("fused block: backward before forward".into())
        })?;
        let g = self.geometry(x.shape())?;
        let (x, grad_y) = (x.contiguous()?, grad_y.contiguous()?);
        let inputs = cpu::Borrowed::new(&[&x, &grad_y]);
        let dx = backward(
            &self.params,
            &g,
            self.mask,
            inputs.slice(0)?,
            &saved,
            inputs.slice(1)?,
        )?;
        Ok(Some(Tensor::from_vec(dx, x.shape(), x.device())?))
    }
}
