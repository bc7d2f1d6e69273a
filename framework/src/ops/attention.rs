//! Multi-head scaled dot-product attention on a packed `qkv` tensor, fused on the CPU.
//!
//! The input is the output of the `in_proj` linear, `(batch, len, 3·width)` with the query, key
//! and value blocks side by side and the heads inside each block, exactly as PyTorch's
//! `nn.MultiheadAttention` packs them. The CPU kernel reads each head in place through strides
//! (no permute copies), runs one small GEMM pair per (batch, head) in parallel, and in the
//! backward pass recomputes the attention probabilities instead of storing them, which keeps the
//! memory of a ViT backward independent of `len²` per layer.

use super::{cpu, fast_cpu, math, softmax_last_dim};
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor, D};
use gemm::{gemm, Parallelism};
use rayon::prelude::*;

/// Which key positions a query may attend to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttentionMask {
    /// Every position attends to every position (vision tower, UPT projector).
    None,
    /// Position `i` attends to `j ≤ i` (CLIP's text tower: additive −∞ above the diagonal).
    Causal,
}

/// Attention over `qkv: (batch, len, 3·width)` with `heads` heads; returns `(batch, len, width)`
/// (before the output projection).
pub fn attention(qkv: &Tensor, heads: usize, mask: AttentionMask) -> Result<Tensor> {
    let (_, _, width3) = qkv.dims3()?;
    if !width3.is_multiple_of(3 * heads) {
        candle_core::bail!(
            "attention: packed width {width3} is not 3 × a multiple of {heads} heads"
        );
    }
    if !fast_cpu(qkv) {
        return attention_composite(qkv, heads, mask);
    }
    qkv.contiguous()?.apply_op1(FusedAttention { heads, mask })
}

/// The same computation from candle primitives (the CUDA / half-precision path and the test
/// reference).
pub fn attention_composite(qkv: &Tensor, heads: usize, mask: AttentionMask) -> Result<Tensor> {
    let (b, len, width3) = qkv.dims3()?;
    let width = width3 / 3;
    let head_dim = width / heads;
    let split = |i: usize| -> Result<Tensor> {
        qkv.narrow(D::Minus1, i * width, width)?
            .reshape((b, len, heads, head_dim))?
            .transpose(1, 2)?
            .contiguous()
    };
    let (q, k, v) = (split(0)?, split(1)?, split(2)?);
    let scale = 1.0 / (head_dim as f64).sqrt();
    let mut scores = (q.matmul(&k.t()?)? * scale)?;
    if mask == AttentionMask::Causal {
        let upper: Vec<f32> = (0..len * len)
            .map(|ij| {
                if ij % len > ij / len {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
            .collect();
        let upper = Tensor::from_vec(upper, (len, len), qkv.device())?.to_dtype(qkv.dtype())?;
        scores = scores.broadcast_add(&upper)?;
    }
    let probs = softmax_last_dim(&scores)?;
    probs.matmul(&v)?.transpose(1, 2)?.reshape((b, len, width))
}

/// Geometry of one packed qkv tensor.
#[derive(Clone, Copy)]
pub(crate) struct Geometry {
    batch: usize,
    len: usize,
    width: usize,
    heads: usize,
    head_dim: usize,
    scale: f32,
}

impl Geometry {
    fn new(layout: &Layout, heads: usize) -> Result<Self> {
        let (batch, len, width3) = layout.shape().dims3()?;
        Ok(Self::from_dims(batch, len, width3 / 3, heads))
    }

    /// `batch` sequences of `len` positions, `width` features split into `heads` heads.
    pub(crate) fn from_dims(batch: usize, len: usize, width: usize, heads: usize) -> Self {
        let head_dim = width / heads;
        Self {
            batch,
            len,
            width,
            heads,
            head_dim,
            scale: 1.0 / (head_dim as f32).sqrt(),
        }
    }

    /// Rows of the packed input: `batch · len`.
    pub(crate) fn tokens(&self) -> usize {
        self.batch * self.len
    }

    /// Features per token, all heads together.
    pub(crate) fn width(&self) -> usize {
        self.width
    }

    /// Offset of block `which` (0 = q, 1 = k, 2 = v) of head `h` in batch item `b` of qkv.
    fn qkv_offset(&self, b: usize, h: usize, which: usize) -> usize {
        b * self.len * 3 * self.width + which * self.width + h * self.head_dim
    }
    /// Offset of head `h` of batch item `b` in a `(batch, len, width)` tensor.
    fn out_offset(&self, b: usize, h: usize) -> usize {
        b * self.len * self.width + h * self.head_dim
    }
}

/// `dst (m×n) = beta · lhs (m×k) · rhs (k×n)`, all strided, single-threaded (callers
/// parallelise over heads). Strides are `(row, col)` in elements.
#[allow(clippy::too_many_arguments)]
unsafe fn small_gemm(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    dst_rs: usize,
    lhs: *const f32,
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: *const f32,
    (rhs_rs, rhs_cs): (usize, usize),
    beta: f32,
) {
    gemm(
        m,
        n,
        k,
        dst,
        1,
        dst_rs as isize,
        false,
        lhs,
        lhs_cs as isize,
        lhs_rs as isize,
        rhs,
        rhs_cs as isize,
        rhs_rs as isize,
        0.0,
        beta,
        false,
        false,
        false,
        Parallelism::None,
    )
}

/// Scores `S = scale · Q Kᵀ` for one head, then a row softmax in place (masked entries get 0).
fn head_probabilities(
    g: &Geometry,
    qkv: &[f32],
    b: usize,
    h: usize,
    mask: AttentionMask,
    probs: &mut [f32],
) {
    let (len, row) = (g.len, 3 * g.width);
    // SAFETY: q and k point inside qkv with `len` rows of `row` stride; probs holds len².
    unsafe {
        small_gemm(
            (len, len, g.head_dim),
            probs.as_mut_ptr(),
            len,
            qkv.as_ptr().add(g.qkv_offset(b, h, 0)),
            (row, 1),
            qkv.as_ptr().add(g.qkv_offset(b, h, 1)),
            (1, row),
            g.scale,
        );
    }
    for (i, scores) in probs.chunks_exact_mut(len).enumerate() {
        let visible = if mask == AttentionMask::Causal {
            i + 1
        } else {
            len
        };
        let max = scores[..visible]
            .iter()
            .fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        for s in &mut scores[..visible] {
            *s = math::exp(*s - max);
        }
        let inv = 1.0 / scores[..visible].iter().sum::<f32>();
        scores[..visible].iter_mut().for_each(|s| *s *= inv);
        scores[visible..].iter_mut().for_each(|s| *s = 0.0);
    }
}

/// Attention of every (batch, head) pair of a packed `qkv` into `out (batch, len, width)`, in
/// parallel over pairs.
pub(crate) fn forward_heads(qkv: &[f32], g: &Geometry, mask: AttentionMask, out: &mut [f32]) {
    // The unsafe head products below rely on these extents.
    assert!(qkv.len() >= g.tokens() * 3 * g.width && out.len() >= g.tokens() * g.width);
    let out_ptr = cpu::SharedMut(out.as_mut_ptr());
    (0..g.batch * g.heads).into_par_iter().for_each_init(
        || vec![0f32; g.len * g.len],
        |probs, bh| {
            let (b, h) = (bh / g.heads, bh % g.heads);
            head_probabilities(g, qkv, b, h, mask, probs);
            // SAFETY: each (b, h) writes only its own head_dim columns of its own rows.
            unsafe {
                small_gemm(
                    (g.len, g.head_dim, g.len),
                    out_ptr.get().add(g.out_offset(b, h)),
                    g.width,
                    probs.as_ptr(),
                    (g.len, 1),
                    qkv.as_ptr().add(g.qkv_offset(b, h, 2)),
                    (3 * g.width, 1),
                    1.0,
                );
            }
        },
    );
}

/// Gradient of [`forward_heads`] with respect to `qkv`, given the gradient `d_out` of its
/// output; `d_qkv` has the shape of `qkv`. Probabilities are recomputed, not stored.
pub(crate) fn backward_heads(
    qkv: &[f32],
    d_out: &[f32],
    g: &Geometry,
    mask: AttentionMask,
    d_qkv: &mut [f32],
) {
    // The unsafe head products below rely on these extents.
    let qkv_len = g.tokens() * 3 * g.width;
    assert!(qkv.len() >= qkv_len && d_qkv.len() >= qkv_len);
    assert!(d_out.len() >= g.tokens() * g.width);
    let row = 3 * g.width;
    let d_ptr = cpu::SharedMut(d_qkv.as_mut_ptr());
    (0..g.batch * g.heads).into_par_iter().for_each_init(
        || (vec![0f32; g.len * g.len], vec![0f32; g.len * g.len]),
        |(probs, d_probs), bh| {
            let (b, h) = (bh / g.heads, bh % g.heads);
            let len = g.len;
            head_probabilities(g, qkv, b, h, mask, probs);
            // SAFETY: reads stay inside qkv / d_out; writes go to this (b, h)'s q, k and v
            // columns of d_qkv, disjoint from every other task.
            unsafe {
                let q = qkv.as_ptr().add(g.qkv_offset(b, h, 0));
                let k = qkv.as_ptr().add(g.qkv_offset(b, h, 1));
                let v = qkv.as_ptr().add(g.qkv_offset(b, h, 2));
                let d_o = d_out.as_ptr().add(g.out_offset(b, h));
                // dP = dO · Vᵀ
                small_gemm(
                    (len, len, g.head_dim),
                    d_probs.as_mut_ptr(),
                    len,
                    d_o,
                    (g.width, 1),
                    v,
                    (1, row),
                    1.0,
                );
                // dV = Pᵀ · dO
                let d_v = d_ptr.get().add(g.qkv_offset(b, h, 2));
                small_gemm(
                    (len, g.head_dim, len),
                    d_v,
                    row,
                    probs.as_ptr(),
                    (1, len),
                    d_o,
                    (g.width, 1),
                    1.0,
                );
                // dS = P ∘ (dP − rowsum(P ∘ dP))
                for (p, dp) in probs.chunks_exact(len).zip(d_probs.chunks_exact_mut(len)) {
                    let dot: f32 = p.iter().zip(dp.iter()).map(|(a, b)| a * b).sum();
                    dp.iter_mut()
                        .zip(p)
                        .for_each(|(dp, p)| *dp = p * (*dp - dot));
                }
                // dQ = scale · dS · K ;  dK = scale · dSᵀ · Q
                let d_q = d_ptr.get().add(g.qkv_offset(b, h, 0));
                small_gemm(
                    (len, g.head_dim, len),
                    d_q,
                    row,
                    d_probs.as_ptr(),
                    (len, 1),
                    k,
                    (row, 1),
                    g.scale,
                );
                let d_k = d_ptr.get().add(g.qkv_offset(b, h, 1));
                small_gemm(
                    (len, g.head_dim, len),
                    d_k,
                    row,
                    d_probs.as_ptr(),
                    (1, len),
                    q,
                    (row, 1),
                    g.scale,
                );
            }
        },
    );
}

struct FusedAttention {
    heads: usize,
    mask: AttentionMask,
}

impl CustomOp1 for FusedAttention {
    fn name(&self) -> &'static str {
        "fused-attention"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let qkv = cpu::f32_slice(storage, layout)?;
        let g = Geometry::new(layout, self.heads)?;
        let mut out = vec![0f32; g.batch * g.len * g.width];
        forward_heads(qkv, &g, self.mask, &mut out);
        Ok((CpuStorage::F32(out), Shape::from((g.batch, g.len, g.width))))
    }

    fn bwd(&self, qkv: &Tensor, _out: &Tensor, grad_out: &Tensor) -> Result<Option<Tensor>> {
        let op = FusedAttentionGrad {
            heads: self.heads,
            mask: self.mask,
        };
        Ok(Some(qkv.apply_op2_no_bwd(&grad_out.contiguous()?, &op)?))
    }
}

/// Gradient of [`FusedAttention`] with respect to the packed qkv input.
struct FusedAttentionGrad {
    heads: usize,
    mask: AttentionMask,
}

impl CustomOp2 for FusedAttentionGrad {
    fn name(&self) -> &'static str {
        "fused-attention-grad"
    }

    fn cpu_fwd(
        &self,
        qs: &CpuStorage,
        ql: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let qkv = cpu::f32_slice(qs, ql)?;
        let d_out = cpu::f32_slice(gs, gl)?;
        let g = Geometry::new(ql, self.heads)?;
        let mut d_qkv = vec![0f32; qkv.len()];
        backward_heads(qkv, d_out, &g, self.mask, &mut d_qkv);
        Ok((CpuStorage::F32(d_qkv), ql.shape().clone()))
    }
}
