//! The fast kernels against the composite reference: values and input gradients.

use super::*;
use crate::rng;
use candle_core::{Device, Result, Tensor, Var};

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

fn max_abs(a: &Tensor) -> f32 {
    a.abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// Runs `f` on a Var through `fast` and `composite`, comparing outputs and input gradients
/// against a fixed random cotangent.
fn check(
    shape: &[usize],
    seed: u64,
    fast: impl Fn(&Tensor) -> Result<Tensor>,
    composite: impl Fn(&Tensor) -> Result<Tensor>,
) {
    let mut r = rng::seeded(seed);
    let x = Var::from_tensor(&rng::normal(shape, 0.0, 1.0, &mut r, &Device::Cpu).unwrap()).unwrap();
    let yf = fast(x.as_tensor()).unwrap();
    let yc = composite(x.as_tensor()).unwrap();
    assert_eq!(yf.dims(), yc.dims());
    let tol = 1e-5 * (1.0 + max_abs(&yc));
    assert!(
        max_abs_diff(&yf, &yc) < tol,
        "forward differs by {}",
        max_abs_diff(&yf, &yc)
    );
    let cot = rng::normal(yc.dims(), 0.0, 1.0, &mut r, &Device::Cpu).unwrap();
    let gf = (yf * &cot).unwrap().sum_all().unwrap().backward().unwrap();
    let gc = (yc * &cot).unwrap().sum_all().unwrap().backward().unwrap();
    let (gf, gc) = (
        gf.get(x.as_tensor()).unwrap(),
        gc.get(x.as_tensor()).unwrap(),
    );
    assert!(max_abs(gc) > 0.0, "reference gradient is zero");
    let tol = 1e-4 * (1.0 + max_abs(gc));
    assert!(
        max_abs_diff(gf, gc) < tol,
        "gradient differs by {}",
        max_abs_diff(gf, gc)
    );
}

#[test]
fn linear_matches_composite_and_skips_weight_gradient() {
    let mut r = rng::seeded(1);
    let w = rng::normal((24, 16), 0.0, 0.3, &mut r, &Device::Cpu).unwrap();
    let b = rng::normal(24, 0.0, 0.3, &mut r, &Device::Cpu).unwrap();
    check(
        &[3, 5, 16],
        2,
        |x| linear(x, &w, Some(&b)),
        |x| linear_composite(x, &w, Some(&b)),
    );
    check(
        &[7, 16],
        3,
        |x| linear(x, &w, None),
        |x| linear_composite(x, &w, None),
    );
    // The frozen path stores gradients only for tracked tensors (x and the sum's input); the
    // composite path also materialises one for the weight (as its transposed view) and the bias.
    let x =
        Var::from_tensor(&rng::normal((4, 16), 0.0, 1.0, &mut r, &Device::Cpu).unwrap()).unwrap();
    let y = linear(x.as_tensor(), &w, Some(&b)).unwrap();
    let frozen = y.sum_all().unwrap().backward().unwrap();
    assert!(frozen.get(&w).is_none() && frozen.get(&b).is_none());
    let count = |g: &candle_core::backprop::GradStore| g.get_ids().count();
    let y = linear_composite(x.as_tensor(), &w, Some(&b)).unwrap();
    let composite = y.sum_all().unwrap().backward().unwrap();
    assert!(
        count(&frozen) < count(&composite),
        "{} vs {}",
        count(&frozen),
        count(&composite)
    );
}

#[test]
fn linear_with_trainable_weight_gets_weight_gradient() {
    let mut r = rng::seeded(4);
    let w =
        Var::from_tensor(&rng::normal((6, 5), 0.0, 0.3, &mut r, &Device::Cpu).unwrap()).unwrap();
    let x = rng::normal((3, 5), 0.0, 1.0, &mut r, &Device::Cpu).unwrap();
    let grads = linear(&x, w.as_tensor(), None)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let gw = grads.get(w.as_tensor()).expect("trainable weight gradient");
    // d(sum(x Wᵀ))/dW[o, i] = sum over rows of x[:, i].
    let expected = x.sum_keepdim(0).unwrap().broadcast_as((6, 5)).unwrap();
    assert!(max_abs_diff(gw, &expected) < 1e-5);
}

#[test]
fn layer_norm_matches_composite() {
    let mut r = rng::seeded(5);
    let g = rng::normal(32, 1.0, 0.2, &mut r, &Device::Cpu).unwrap();
    let b = rng::normal(32, 0.0, 0.2, &mut r, &Device::Cpu).unwrap();
    check(
        &[2, 9, 32],
        6,
        |x| layer_norm(x, &g, &b, 1e-5),
        |x| layer_norm_composite(x, &g, &b, 1e-5),
    );
}

#[test]
fn quick_gelu_matches_composite() {
    check(&[4, 33, 7], 7, quick_gelu, quick_gelu_composite);
}

#[test]
fn attention_matches_composite() {
    for (mask, seed) in [(AttentionMask::None, 8), (AttentionMask::Causal, 9)] {
        check(
            &[3, 11, 3 * 24],
            seed,
            |x| attention(x, 4, mask),
            |x| attention_composite(x, 4, mask),
        );
        check(
            &[2, 1, 3 * 8],
            seed + 10,
            |x| attention(x, 1, mask),
            |x| attention_composite(x, 1, mask),
        );
    }
}

#[test]
fn causal_attention_ignores_later_positions() {
    // Changing the last position must leave every earlier output unchanged.
    let mut r = rng::seeded(10);
    let qkv = rng::normal((1, 6, 3 * 8), 0.0, 1.0, &mut r, &Device::Cpu).unwrap();
    let noise = rng::normal((1, 1, 3 * 8), 0.0, 1.0, &mut r, &Device::Cpu).unwrap();
    let changed = Tensor::cat(&[qkv.narrow(1, 0, 5).unwrap(), noise], 1).unwrap();
    let a = attention(&qkv, 2, AttentionMask::Causal)
        .unwrap()
        .narrow(1, 0, 5)
        .unwrap();
    let b = attention(&changed, 2, AttentionMask::Causal)
        .unwrap()
        .narrow(1, 0, 5)
        .unwrap();
    assert_eq!(max_abs_diff(&a, &b), 0.0);
}

/// Random frozen parameters of a residual block of `width` (heads `heads`, MLP `hidden`).
fn random_block(
    width: usize,
    hidden: usize,
    heads: usize,
    activation: crate::ops::Activation,
    seed: u64,
) -> BlockParams {
    let mut r = rng::seeded(seed);
    let mut normal = |dims: &[usize], mean: f32, std: f32| {
        rng::normal(dims, mean, std, &mut r, &Device::Cpu).unwrap()
    };
    let mut linear = |out: usize, inp: usize, bias: bool| {
        let weight = normal(&[out, inp], 0.0, 1.0 / (inp as f32).sqrt());
        BlockLinear {
            weight_t: weight.t().unwrap().contiguous().unwrap(),
            bias: bias.then(|| normal(&[out], 0.0, 0.1)),
        }
    };
    let (attn_in, attn_out) = (linear(3 * width, width, true), linear(width, width, false));
    let (mlp_fc, mlp_proj) = (linear(hidden, width, true), linear(width, hidden, true));
    let mut ln = || (normal(&[width], 1.0, 0.2), normal(&[width], 0.0, 0.2));
    BlockParams {
        ln_1: ln(),
        attn_in,
        attn_out,
        ln_2: ln(),
        mlp_fc,
        mlp_proj,
        heads,
        activation,
    }
}

/// The block from candle primitives only.
fn block_composite(x: &Tensor, p: &BlockParams, mask: AttentionMask) -> Result<Tensor> {
    let ln = |x: &Tensor, (g, b): &(Tensor, Tensor)| layer_norm_composite(x, g, b, 1e-5);
    let lin = |x: &Tensor, l: &BlockLinear| linear_composite(x, &l.weight_t.t()?, l.bias.as_ref());
    let qkv = lin(&ln(x, &p.ln_1)?, &p.attn_in)?;
    let x = (x + lin(&attention_composite(&qkv, p.heads, mask)?, &p.attn_out)?)?;
    let pre = lin(&ln(&x, &p.ln_2)?, &p.mlp_fc)?;
    let hidden = match p.activation {
        crate::ops::Activation::QuickGelu => quick_gelu_composite(&pre)?,
        crate::ops::Activation::Gelu => pre.gelu_erf()?,
    };
    x + lin(&hidden, &p.mlp_proj)?
}

#[test]
fn fused_block_matches_composite_values_and_input_gradient() {
    use crate::ops::Activation;
    let cases = [
        (
            AttentionMask::Causal,
            Activation::QuickGelu,
            [2, 7, 24],
            96,
            4,
        ),
        (
            AttentionMask::None,
            Activation::QuickGelu,
            [3, 5, 32],
            128,
            2,
        ),
        (AttentionMask::None, Activation::Gelu, [1, 9, 20], 52, 5),
        (AttentionMask::Causal, Activation::Gelu, [2, 1, 16], 64, 1),
    ];
    for (i, (mask, activation, shape, hidden, heads)) in cases.into_iter().enumerate() {
        let p = random_block(shape[2], hidden, heads, activation, 20 + i as u64);
        let x = Var::from_tensor(
            &Tensor::zeros(&shape[..], candle_core::DType::F32, &Device::Cpu).unwrap(),
        )
        .unwrap();
        assert!(block_kernel_applies(x.as_tensor(), &p));
        check(
            &shape,
            30 + i as u64,
            |x| residual_block(x, &p, mask),
            |x| block_composite(x, &p, mask),
        );
        // Without a gradient to track, the op runs without saving anything: same values.
        let mut r = rng::seeded(40 + i as u64);
        let plain = rng::normal(&shape[..], 0.0, 1.0, &mut r, &Device::Cpu).unwrap();
        let tracked = Var::from_tensor(&plain).unwrap();
        let a = residual_block(&plain, &p, mask).unwrap();
        let b = residual_block(tracked.as_tensor(), &p, mask).unwrap();
        assert_eq!(max_abs_diff(&a, &b), 0.0, "case {i}");
    }
}

#[test]
fn fused_block_rejects_mismatched_parameters() {
    use crate::ops::Activation;
    let p = random_block(16, 64, 2, Activation::QuickGelu, 50);
    let x = Tensor::zeros((1, 3, 24), candle_core::DType::F32, &Device::Cpu).unwrap();
    let err = residual_block(&x, &p, AttentionMask::None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("ln_1") && err.contains("[24]"), "{err}");
    let mut three_heads = p.clone();
    three_heads.heads = 3;
    let x16 = Tensor::zeros((1, 3, 16), candle_core::DType::F32, &Device::Cpu).unwrap();
    let err = residual_block(&x16, &three_heads, AttentionMask::None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("width 16") && err.contains("3 heads"), "{err}");
    // A trainable parameter sends the block down the per-op path.
    let mut trainable = p.clone();
    trainable.ln_1.0 = Var::from_tensor(&p.ln_1.0).unwrap().as_tensor().clone();
    let x = Tensor::zeros((1, 3, 16), candle_core::DType::F32, &Device::Cpu).unwrap();
    assert!(block_kernel_applies(&x, &p));
    assert!(!block_kernel_applies(&x, &trainable));
}

#[test]
fn linear_reads_a_transposed_weight_view() {
    let mut r = rng::seeded(11);
    let w = rng::normal((24, 16), 0.0, 0.3, &mut r, &Device::Cpu).unwrap();
    let b = rng::normal(24, 0.0, 0.3, &mut r, &Device::Cpu).unwrap();
    // How the model's Linear stores a frozen weight: W as a view of a contiguous Wᵀ.
    let view = w.t().unwrap().contiguous().unwrap().t().unwrap();
    assert!(!view.is_contiguous());
    check(
        &[3, 5, 16],
        12,
        |x| linear(x, &view, Some(&b)),
        |x| linear_composite(x, &w, Some(&b)),
    );
    // A weight that is neither layout (every other column of a wider matrix) is copied.
    let wide = rng::normal((24, 32), 0.0, 0.3, &mut r, &Device::Cpu).unwrap();
    let strided = wide
        .reshape((24, 16, 2))
        .unwrap()
        .narrow(2, 0, 1)
        .unwrap()
        .squeeze(2)
        .unwrap();
    check(
        &[4, 16],
        13,
        |x| linear(x, &strided, None),
        |x| linear_composite(x, &strided.contiguous()?, None),
    );
}

#[test]
fn transpose_matches_candle() {
    for (rows, cols) in [(1, 1), (3, 70), (33, 32), (64, 5), (0, 4)] {
        let t = Tensor::arange(0f32, (rows * cols) as f32, &Device::Cpu)
            .unwrap()
            .reshape((rows, cols))
            .unwrap();
        let data = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let expected = t
            .t()
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(cpu::transpose(&data, rows, cols), expected, "{rows}×{cols}");
    }
}
