//! Behaviour of the methods beyond the parity cases: registration, option checking, the
//! reference's trainable-parameter counts at ViT-B/16, initial distributions, re-binding to a
//! new label space, seeded prompt dropout and zero-shot dataset templates.

mod common;

use candle_core::{DType, Device, Tensor};
use common::{build, sets, tiny_clip};
use mvlpt_framework::method::{ModelEnv, PromptLearner, StepContext, TextPrompts};
use mvlpt_framework::model::tokenizer::ClipTokenizer;
use mvlpt_framework::model::{Clip, ClipConfig};
use mvlpt_framework::plugin::{PluginKind, Registry};
use mvlpt_framework::rng;
use serde_json::json;
use std::sync::OnceLock;

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// A method built from `method` and `options` and bound to `classes` of `clip`.
fn bound(
    clip: &Clip,
    method: &str,
    options: serde_json::Value,
    classes: &[&str],
) -> Box<dyn PromptLearner> {
    let tokenizer = ClipTokenizer::new();
    let env = ModelEnv {
        clip,
        tokenizer: &tokenizer,
        device: &Device::Cpu,
    };
    let mut m = build(&sets(method, &options)).unwrap();
    m.bind(&env, &names(classes), &mut rng::seeded(3)).unwrap();
    m
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

/// A random ViT-B/16 CLIP (the reference's model architecture), built once.
fn vit_b16() -> &'static Clip {
    static MODEL: OnceLock<Clip> = OnceLock::new();
    MODEL.get_or_init(|| {
        let config = ClipConfig::preset("ViT-B/16").unwrap();
        Clip::random(&config, 0, &Device::Cpu, DType::F32).unwrap()
    })
}

fn trainable(m: &dyn PromptLearner) -> usize {
    m.parameters().iter().map(|(_, v)| v.elem_count()).sum()
}

#[test]
fn all_methods_are_registered() {
    mvlpt_methods::link();
    let registry = Registry::builtin().unwrap();
    for name in ["coop", "vpt", "upt", "cocoop", "zero_shot"] {
        assert!(registry.contains(PluginKind::Method, name), "{name}");
    }
}

#[test]
fn unknown_and_bad_options_are_errors_naming_the_key() {
    let err = build(&sets("coop", &json!({"nctx": 4}))).err().unwrap();
    assert!(format!("{err:#}").contains("nctx"), "{err:#}");
    let err = build(&sets("upt", &json!({"project_method": "mlp"})))
        .err()
        .unwrap();
    assert!(format!("{err:#}").contains("mlp"), "{err:#}");
    let err = build(&sets("coop", &json!({"class_token_position": "left"})))
        .err()
        .unwrap();
    assert!(format!("{err:#}").contains("left"), "{err:#}");
    assert!(build(&sets("vpt", &json!({"dropout": 1.5}))).is_err());
    assert!(build(&sets("vpt", &json!({"project": 0}))).is_err());
    assert!(build(&sets("coop", &json!({"n_ctx": 0}))).is_err());
    assert!(build(&sets("zero_shot", &json!({"templates": "a photo"}))).is_err());
}

/// §2.7: MCoOp 8,192; MVPT 147,456 (shallow 12,288); MUPT (n = 4) 566,400, with the projector's
/// parts 329,216 (linears) and 198,272 (transformer block).
#[test]
fn trainable_parameter_counts_match_the_reference_at_vit_b16() {
    let clip = vit_b16();
    let classes = ["cat", "dog"];
    assert_eq!(
        trainable(bound(clip, "coop", json!({}), &classes).as_ref()),
        8_192
    );
    assert_eq!(
        trainable(bound(clip, "vpt", json!({}), &classes).as_ref()),
        147_456
    );
    assert_eq!(
        trainable(bound(clip, "vpt", json!({"deep": false}), &classes).as_ref()),
        12_288
    );
    let upt = bound(clip, "upt", json!({}), &classes);
    assert_eq!(trainable(upt.as_ref()), 566_400);
    let part = |prefix: &str| -> usize {
        upt.parameters()
            .iter()
            .filter(|(n, _)| n.starts_with(prefix))
            .map(|(_, v)| v.elem_count())
            .sum()
    };
    assert_eq!(part("mvlpt_proj_ctx_"), 329_216);
    assert_eq!(part("mvlpt_proj."), 198_272);
    assert_eq!(part("ctx"), 2_048);
    assert_eq!(part("vpt_embeddings"), 36_864);
}

/// Initial values follow the reference's initialisers (statistically; the generator differs).
#[test]
fn initial_values_follow_the_reference_distributions() {
    let clip = vit_b16();
    let coop = bound(clip, "coop", json!({}), &["cat"]);
    let ctx = values(coop.parameters()[0].1.as_tensor());
    let std = (ctx.iter().map(|v| v * v).sum::<f32>() / ctx.len() as f32).sqrt();
    assert!((std - 0.02).abs() < 0.001, "ctx std {std}");

    // VPT: Uniform(±√(6 / (3·16² + 768))) = Uniform(±0.0625).
    let vpt = bound(clip, "vpt", json!({}), &["cat"]);
    for (name, var) in vpt.parameters() {
        let v = values(var.as_tensor());
        let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
        assert!(max <= 0.0625 && max > 0.062, "{name}: max |v| = {max}");
        let mean_sq = v.iter().map(|x| x * x).sum::<f32>() / v.len() as f32;
        assert!((mean_sq - 0.0625f32.powi(2) / 3.0).abs() < 5e-5, "{name}");
    }

    // UPT projector: default Linear bounds ±1/√fan_in, LayerNorm identity, attention biases 0.
    let upt = bound(clip, "upt", json!({}), &["cat"]);
    for (name, var) in upt.parameters() {
        let v = values(var.as_tensor());
        let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
        let expect = match name.as_str() {
            "mvlpt_proj_ctx_coop_pre.weight" | "mvlpt_proj_ctx_coop_pre.bias" => {
                1.0 / 512f32.sqrt()
            }
            "mvlpt_proj_ctx_vpt_pre.weight" | "mvlpt_proj_ctx_vpt_pre.bias" => 1.0 / 768f32.sqrt(),
            n if n.starts_with("mvlpt_proj_ctx_") && n.contains("_post") => 1.0 / 128f32.sqrt(),
            "mvlpt_proj.resblocks.0.attn.in_proj_weight" => (6.0f32 / 512.0).sqrt(),
            "mvlpt_proj.resblocks.0.attn.out_proj.weight"
            | "mvlpt_proj.resblocks.0.mlp.c_fc.weight"
            | "mvlpt_proj.resblocks.0.mlp.c_fc.bias" => 1.0 / 128f32.sqrt(),
            "mvlpt_proj.resblocks.0.mlp.c_proj.weight"
            | "mvlpt_proj.resblocks.0.mlp.c_proj.bias" => 1.0 / 512f32.sqrt(),
            n if n.ends_with("ln_1.weight") || n.ends_with("ln_2.weight") => {
                assert!(v.iter().all(|&x| x == 1.0), "{name}");
                continue;
            }
            n if n.starts_with("mvlpt_proj.") => {
                assert!(v.iter().all(|&x| x == 0.0), "{name}");
                continue;
            }
            _ => continue,
        };
        assert!(
            max <= expect && max > 0.9 * expect,
            "{name}: max {max}, bound {expect}"
        );
    }
}

#[test]
fn rebinding_keeps_parameters_and_rebuilds_the_class_prompts() {
    let clip = tiny_clip();
    let tokenizer = ClipTokenizer::new();
    let env = ModelEnv {
        clip: &clip,
        tokenizer: &tokenizer,
        device: &Device::Cpu,
    };
    let mut generator = rng::seeded(1);
    let mut upt = build(&sets(
        "upt",
        &json!({"n_ctx": 2, "vpt_n_ctx": 2, "project_dim": 16}),
    ))
    .unwrap();
    upt.bind(&env, &names(&["cat", "dog"]), &mut generator)
        .unwrap();
    let before: Vec<(String, Vec<f32>)> = upt
        .parameters()
        .iter()
        .map(|(n, v)| (n.clone(), values(v.as_tensor())))
        .collect();
    upt.bind(
        &env,
        &names(&["airplane", "red stars", "quick brown fox"]),
        &mut generator,
    )
    .unwrap();
    let after: Vec<(String, Vec<f32>)> = upt
        .parameters()
        .iter()
        .map(|(n, v)| (n.clone(), values(v.as_tensor())))
        .collect();
    assert_eq!(before, after);
    let buffers = upt.buffers();
    assert_eq!(buffers[0].0, "token_prefix");
    assert_eq!(buffers[0].1.dim(0).unwrap(), 3);

    let mut csc = build(&sets("coop", &json!({"n_ctx": 2, "csc": true}))).unwrap();
    csc.bind(&env, &names(&["cat", "dog"]), &mut generator)
        .unwrap();
    let err = csc
        .bind(&env, &names(&["cat"]), &mut generator)
        .err()
        .unwrap();
    assert!(format!("{err:#}").contains("class-specific"), "{err:#}");
}

#[test]
fn prompt_dropout_draws_seeded_per_image_masks_in_training_only() {
    let clip = tiny_clip();
    let tokenizer = ClipTokenizer::new();
    let env = ModelEnv {
        clip: &clip,
        tokenizer: &tokenizer,
        device: &Device::Cpu,
    };
    let vpt = bound(&clip, "vpt", json!({"n_ctx": 3, "dropout": 0.5}), &["cat"]);
    let raw = values(vpt.parameters()[0].1.as_tensor());
    let shallow = |seed: u64, train: bool| -> Tensor {
        let mut generator = rng::seeded(seed);
        let mut step = if train {
            StepContext::training(4, &mut generator)
        } else {
            StepContext::evaluation(&mut generator)
        };
        let p = vpt.prompts(&env, &mut step).unwrap();
        p.visual.unwrap().shallow.unwrap()
    };
    let eval = shallow(5, false);
    assert_eq!(eval.dims(), [3, 64]);
    assert_eq!(values(&eval), raw);
    let a = shallow(5, true);
    assert_eq!(a.dims(), [4, 3, 64]);
    assert_eq!(
        values(&a),
        values(&shallow(5, true)),
        "same seed, same masks"
    );
    assert_ne!(values(&a), values(&shallow(6, true)));
    let per_image: Vec<Vec<f32>> = (0..4).map(|b| values(&a.get(b).unwrap())).collect();
    assert_ne!(per_image[0], per_image[1], "one mask per image");
    let kept = per_image.iter().flatten().filter(|&&v| v != 0.0).count();
    assert!((300..470).contains(&kept), "kept {kept} of 768");
    for row in &per_image {
        for (v, r) in row.iter().zip(&raw) {
            assert!(
                *v == 0.0 || (v - 2.0 * r).abs() < 1e-6,
                "kept values are scaled by 2"
            );
        }
    }
    let mut generator = rng::seeded(0);
    let mut no_batch = StepContext::training(0, &mut generator);
    assert!(vpt.prompts(&env, &mut no_batch).is_err());
}

#[test]
fn zero_shot_uses_the_dataset_templates_when_asked() {
    let clip = tiny_clip();
    let tokenizer = ClipTokenizer::new();
    let env = ModelEnv {
        clip: &clip,
        tokenizer: &tokenizer,
        device: &Device::Cpu,
    };
    let classes = names(&["cat", "dog"]);
    let list = ["a photo of a {}.", "a {}."];
    let mut generator = rng::seeded(0);
    let mut dataset = build(&sets("zero_shot", &json!({"templates": "dataset"}))).unwrap();
    let err = dataset.bind(&env, &classes, &mut generator).err().unwrap();
    assert!(format!("{err:#}").contains("dataset templates"), "{err:#}");
    dataset.set_class_templates(&[names(&list), names(&list)]);
    dataset.bind(&env, &classes, &mut generator).unwrap();
    let from_list = bound(
        &clip,
        "zero_shot",
        json!({"templates": list}),
        &["cat", "dog"],
    );
    let features = |m: &dyn PromptLearner| -> Vec<f32> {
        let mut g = generator.clone();
        let mut step = StepContext::evaluation(&mut g);
        match m.prompts(&env, &mut step).unwrap().text {
            TextPrompts::Features(f) => values(&f),
            _ => panic!("an ensemble gives class features"),
        }
    };
    assert_eq!(features(dataset.as_ref()), features(from_list.as_ref()));
    assert!(dataset.parameters().is_empty());
}
