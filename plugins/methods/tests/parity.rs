//! Parity with the reference prompt learner (tools/fixtures/methods.py re-states MVLPT's
//! `trainers/mvlpt.py` on the tiny open_clip model): with the reference's initial prompt tensors
//! loaded, one `engine::forward::train_step` reproduces the reference logits, loss and the
//! gradient of every trainable tensor, for every case in tests/fixtures/methods/cases.json.

mod common;

use candle_core::{Device, Tensor};
use common::{assert_close, build, case_tensors, manifest, pixels, sets, tiny_clip};
use mvlpt_framework::engine::forward::{train_step, ImageInput};
use mvlpt_framework::engine::{BatchTargets, ForwardOptions, TaskMasking, TextFeatureCache};
use mvlpt_framework::method::{ModelEnv, StepContext, TextPrompts};
use mvlpt_framework::model::tokenizer::ClipTokenizer;
use mvlpt_framework::rng;
use std::collections::HashMap;

/// Relative tolerance (of each tensor's largest magnitude). Both sides run in f32; the
/// differences are summation order in matmuls, attention and LayerNorm.
const TOLERANCE: f32 = 1e-4;

fn targets(manifest: &serde_json::Value, kind: &str) -> BatchTargets {
    if kind == "soft" {
        let rows: Vec<Vec<f32>> = serde_json::from_value(manifest["soft_targets"].clone()).unwrap();
        let (n, c) = (rows.len(), rows[0].len());
        let flat: Vec<f32> = rows.into_iter().flatten().collect();
        BatchTargets::Rows(Tensor::from_vec(flat, (n, c), &Device::Cpu).unwrap())
    } else {
        BatchTargets::Labels(serde_json::from_value(manifest["labels"].clone()).unwrap())
    }
}

/// Runs one case with `text_chunk` classes per text chunk and compares everything.
fn check_case(case: &serde_json::Value, text_chunk: usize) -> bool {
    let manifest = manifest();
    let name = case["name"].as_str().unwrap();
    let method_name = case["method"].as_str().unwrap();
    let reference = case_tensors(name);
    let classes: Vec<String> = serde_json::from_value(manifest["classes"].clone()).unwrap();
    let clip = tiny_clip();
    let tokenizer = ClipTokenizer::new();
    let env = ModelEnv {
        clip: &clip,
        tokenizer: &tokenizer,
        device: &Device::Cpu,
    };
    let mut method = build(&sets(method_name, &case["options"])).unwrap();
    let mut generator = rng::seeded(0);
    method.bind(&env, &classes, &mut generator).unwrap();

    // The same tensors, under the same names, as the reference prompt learner.
    let mut ours: Vec<String> = method.parameters().into_iter().map(|(n, _)| n).collect();
    let mut theirs: Vec<String> = serde_json::from_value(case["parameters"].clone()).unwrap();
    ours.sort();
    theirs.sort();
    assert_eq!(ours, theirs, "{name}: parameter names");
    let initial: HashMap<String, Tensor> = theirs
        .iter()
        .map(|n| (n.clone(), reference[n].clone()))
        .collect();
    let report = method.load_parameters(&initial).unwrap();
    assert!(
        report.missing.is_empty() && report.unexpected.is_empty(),
        "{name}: {report:?}"
    );

    let mut step = StepContext::training(4, &mut generator);
    let prompts = method.prompts(&env, &mut step).unwrap();
    let chunked = matches!(&prompts.text, TextPrompts::Context { template, .. } if template.classes() > text_chunk);
    let result = train_step(
        &env,
        method.as_ref(),
        &prompts,
        ImageInput::Pixels(&pixels()),
        &targets(&manifest, case["targets"].as_str().unwrap()),
        &[],
        &mut TextFeatureCache::default(),
        ForwardOptions {
            text_chunk,
            masking: TaskMasking::None,
        },
    )
    .unwrap();
    assert_close(
        &format!("{name}: logits"),
        &result.logits,
        &reference["logits"],
        TOLERANCE,
    );
    let loss = Tensor::new(result.loss as f32, &Device::Cpu).unwrap();
    assert_close(
        &format!("{name}: loss"),
        &loss,
        &reference["loss"],
        TOLERANCE,
    );
    for (param, var) in method.parameters() {
        let grad = result
            .grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name}: no gradient for {param}"));
        assert_close(
            &format!("{name}: grad.{param}"),
            grad,
            &reference[&format!("grad.{param}")],
            TOLERANCE,
        );
    }
    chunked
}

fn case(name: &str) -> serde_json::Value {
    manifest()["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no case {name} in cases.json"))
        .clone()
}

/// One test per fixture case, run with the whole label space in one text chunk and again in
/// chunks of two classes (the engine's exact chunked gradient).
macro_rules! parity {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            let case = case(stringify!($name));
            check_case(&case, 512);
            let chunked = check_case(&case, 2);
            let learned_text = matches!(case["method"].as_str(), Some("coop" | "upt"));
            assert_eq!(chunked, learned_text, "chunked text path taken for learned text only");
        }
    )*};
}

parity!(
    coop_end,
    coop_middle,
    coop_front,
    coop_odd_middle,
    coop_phrase,
    coop_csc,
    coop_full_context,
    coop_soft_targets,
    vpt_deep,
    vpt_shallow,
    vpt_project,
    vpt_appended,
    upt,
    upt_tokens,
    upt_csc_shallow,
    upt_identity,
    cocoop,
    cocoop_phrase,
    zero_shot,
    zero_shot_ensemble,
);

#[test]
fn every_fixture_case_has_a_test() {
    let tested = include_str!("parity.rs");
    for case in manifest()["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        assert!(
            tested.contains(&format!("    {name},\n")),
            "case {name} is not in the parity! list"
        );
    }
}
