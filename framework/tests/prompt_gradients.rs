//! Every prompt hook passes a gradient: each trainable prompt tensor (spliced text context,
//! deep text prompts, shallow and deep visual prompts in both placements) gets a finite,
//! non-zero gradient that agrees with central finite differences computed in f64.

use candle_core::{DType, Device, Tensor, Var};
use mvlpt_framework::model::layers::{replace_rows, PromptRows};
use mvlpt_framework::model::{
    load_clip, Clip, DeepPrompts, LoadOptions, VisualPromptPlacement, VisualPrompts,
};
use mvlpt_framework::rng;

fn tiny(dtype: DType) -> Clip {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/clip/openai");
    load_clip(
        dir,
        &LoadOptions {
            dtype,
            ..LoadOptions::default()
        },
    )
    .unwrap()
}

fn pixels() -> Tensor {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/clip/reference.safetensors"
    );
    candle_core::safetensors::load(path, &Device::Cpu).unwrap()["pixels"]
        .narrow(0, 0, 2)
        .unwrap()
}

/// "X X X X airplane." tokenized (SOT, 4 × "x", "airplane", ".", EOT) as in the fixture.
fn prompt_ids() -> Vec<Vec<u32>> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/clip/reference.safetensors"
    );
    let ids = candle_core::safetensors::load(path, &Device::Cpu).unwrap()["input_ids"].clone();
    ids.to_dtype(DType::U32).unwrap().to_vec2::<u32>().unwrap()[2..4].to_vec()
}

/// A scalar loss of the prompts' tensors `values` (one per prompt), on `clip`.
type Loss = dyn Fn(&Clip, &[Tensor]) -> Tensor;

/// Checks analytic gradients (f32, fast kernels) against central differences of the same loss
/// on an f64 copy of the model (composite kernels).
fn check_gradients(init: &[Tensor], loss: &Loss) {
    let (m32, m64) = (tiny(DType::F32), tiny(DType::F64));
    let vars: Vec<Var> = init.iter().map(|t| Var::from_tensor(t).unwrap()).collect();
    let tensors: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let grads = loss(&m32, &tensors).backward().unwrap();
    let eps = 1e-4;
    for (k, var) in vars.iter().enumerate() {
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("prompt {k} got no gradient"));
        let g: Vec<f32> = g.flatten_all().unwrap().to_vec1().unwrap();
        assert!(
            g.iter().all(|v| v.is_finite()),
            "prompt {k}: non-finite gradient"
        );
        assert!(g.iter().any(|&v| v != 0.0), "prompt {k}: all-zero gradient");
        let base: Vec<Tensor> = init
            .iter()
            .map(|t| t.to_dtype(DType::F64).unwrap())
            .collect();
        let n = g.len();
        // Every coordinate for small prompts, an even sample of 24 for larger ones.
        let step = (n / 24).max(1);
        for i in (0..n).step_by(step) {
            let shifted = |delta: f64| {
                let mut values = base.clone();
                let mut flat: Vec<f64> = values[k].flatten_all().unwrap().to_vec1().unwrap();
                flat[i] += delta;
                values[k] = Tensor::from_vec(flat, values[k].dims(), &Device::Cpu).unwrap();
                loss(&m64, &values).to_scalar::<f64>().unwrap()
            };
            let fd = (shifted(eps) - shifted(-eps)) / (2.0 * eps);
            let an = f64::from(g[i]);
            let err = (an - fd).abs() / (1e-3 + fd.abs().max(an.abs()));
            assert!(
                err < 2e-3,
                "prompt {k} coordinate {i}: analytic {an} vs finite difference {fd}"
            );
        }
    }
}

fn cotangent(dims: &[usize], seed: u64, dtype: DType) -> Tensor {
    let mut r = rng::seeded(seed);
    rng::normal(dims, 0.0, 1.0, &mut r, &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

fn randn(dims: &[usize], seed: u64, std: f32) -> Tensor {
    let mut r = rng::seeded(seed);
    rng::normal(dims, 0.0, std, &mut r, &Device::Cpu).unwrap()
}

#[test]
fn text_context_and_deep_text_prompts_get_correct_gradients() {
    let ids = prompt_ids();
    let ctx = randn(&[4, 32], 1, 0.05);
    let deep = randn(&[2, 32], 2, 0.05);
    check_gradients(&[ctx, deep], &move |clip, p| {
        let dtype = clip.text.token_embedding.dtype();
        let len = ids[0].len();
        let flat: Vec<u32> = ids.iter().flatten().copied().collect();
        let ids_t = Tensor::from_vec(flat, (ids.len(), len), &Device::Cpu).unwrap();
        let emb = clip.text.embed(&ids_t).unwrap();
        let emb = replace_rows(&emb, 1, &p[0].to_dtype(dtype).unwrap()).unwrap();
        let eot = mvlpt_framework::model::text::eot_positions(&ids).unwrap();
        let deep = DeepPrompts {
            rows: PromptRows::From(1),
            layers: vec![None, Some(p[1].to_dtype(dtype).unwrap())],
        };
        let f = clip.text.forward(&emb, &eot, &deep).unwrap();
        (f * cotangent(&[2, 24], 9, dtype))
            .unwrap()
            .sum_all()
            .unwrap()
    });
}

fn visual_loss(placement: VisualPromptPlacement) -> Box<Loss> {
    let images = pixels();
    Box::new(move |clip: &Clip, p: &[Tensor]| {
        let dtype = clip.vision.class_embedding.dtype();
        let prompts = VisualPrompts {
            placement,
            shallow: Some(p[0].to_dtype(dtype).unwrap()),
            deep: vec![None, Some(p[1].to_dtype(dtype).unwrap())],
        };
        let f = clip
            .vision
            .forward(&images.to_dtype(dtype).unwrap(), Some(&prompts))
            .unwrap();
        (f * cotangent(&[2, 24], 10, dtype))
            .unwrap()
            .sum_all()
            .unwrap()
    })
}

#[test]
fn shallow_and_deep_visual_prompts_after_class_token_get_correct_gradients() {
    let init = [randn(&[3, 64], 3, 0.0625), randn(&[3, 64], 4, 0.0625)];
    check_gradients(&init, &*visual_loss(VisualPromptPlacement::AfterClassToken));
}

#[test]
fn appended_visual_prompts_get_correct_gradients() {
    let init = [randn(&[2, 64], 5, 0.02), randn(&[2, 64], 6, 0.02)];
    check_gradients(
        &init,
        &*visual_loss(VisualPromptPlacement::AppendedBeforeLnPre),
    );
}

#[test]
fn prompts_change_the_features_at_the_documented_positions() {
    // A zero-length prompt set leaves features equal to the unprompted tower; a prompt after the
    // class token changes them.
    let clip = tiny(DType::F32);
    let images = pixels();
    let plain = clip.vision.forward(&images, None).unwrap();
    let empty = VisualPrompts {
        placement: VisualPromptPlacement::AfterClassToken,
        shallow: None,
        deep: vec![],
    };
    let same = clip.vision.forward(&images, Some(&empty)).unwrap();
    assert_eq!(
        (&plain - &same)
            .unwrap()
            .abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap(),
        0.0
    );
    let one = VisualPrompts {
        placement: VisualPromptPlacement::AfterClassToken,
        shallow: Some(randn(&[1, 64], 7, 0.06)),
        deep: vec![],
    };
    let changed = clip.vision.forward(&images, Some(&one)).unwrap();
    assert!(
        (&plain - &changed)
            .unwrap()
            .abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
            > 1e-3
    );
}
