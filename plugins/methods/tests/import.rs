//! Importing the reference's prompt checkpoints: a Dassl `model-best.pth.tar` written by
//! torch.save (tools/fixtures/methods.py) yields the reference's tensors under their current
//! names, without the class-dependent buffers, and loads into a UPT learner completely.

mod common;

use candle_core::Device;
use common::{build, fixture, max_abs_diff, sets, tiny_clip};
use mvlpt_framework::method::import::{import_reference_checkpoint, read_prompt_tensors};
use mvlpt_framework::method::ModelEnv;
use mvlpt_framework::model::tokenizer::ClipTokenizer;
use mvlpt_framework::rng;
use serde_json::json;

#[test]
fn dassl_checkpoint_imports_with_renamed_keys_and_without_buffers() {
    let imported = import_reference_checkpoint(&fixture("methods/model-best.pth.tar")).unwrap();
    let expected = candle_core::safetensors::load(
        fixture("methods/checkpoint_expected.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    let mut got: Vec<&String> = imported.keys().collect();
    let mut want: Vec<&String> = expected.keys().collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    for (name, tensor) in &expected {
        assert_eq!(imported[name].dtype(), tensor.dtype(), "{name}");
        assert_eq!(max_abs_diff(&imported[name], tensor), 0.0, "{name}");
    }
    assert!(imported
        .keys()
        .all(|k| !k.contains("upt_proj") && !k.starts_with("token_")));
}

#[test]
fn imported_checkpoint_loads_into_the_matching_method() {
    let clip = tiny_clip();
    let tokenizer = ClipTokenizer::new();
    let env = ModelEnv {
        clip: &clip,
        tokenizer: &tokenizer,
        device: &Device::Cpu,
    };
    let options = json!({"n_ctx": 2, "vpt_n_ctx": 2, "project_dim": 16});
    let mut upt = build(&sets("upt", &options)).unwrap();
    upt.bind(&env, &["cat".to_string()], &mut rng::seeded(0))
        .unwrap();
    let tensors = read_prompt_tensors(&fixture("methods/model-best.pth.tar")).unwrap();
    let report = upt.load_parameters(&tensors).unwrap();
    assert!(
        report.missing.is_empty() && report.unexpected.is_empty(),
        "{report:?}"
    );
    assert_eq!(report.loaded.len(), upt.parameters().len());
    for (name, var) in upt.parameters() {
        assert_eq!(var.dtype(), candle_core::DType::F32, "{name} stays f32");
        assert_eq!(
            max_abs_diff(var.as_tensor(), &tensors[&name]),
            0.0,
            "{name}"
        );
    }
}

#[test]
fn safetensors_prompt_files_are_read_too() {
    let tensors = read_prompt_tensors(&fixture("methods/checkpoint_expected.safetensors")).unwrap();
    assert!(tensors.contains_key("ctx"));
}

#[test]
fn legacy_and_foreign_files_are_refused_clearly() {
    let err = import_reference_checkpoint(&fixture("methods/legacy-format.pth.tar"))
        .err()
        .unwrap();
    assert!(
        format!("{err:#}").contains("legacy torch.save format"),
        "{err:#}"
    );
    let err = import_reference_checkpoint(&fixture("methods/cases.json"))
        .err()
        .unwrap();
    assert!(
        format!("{err:#}").contains("not a PyTorch checkpoint"),
        "{err:#}"
    );
    let err = import_reference_checkpoint(&fixture("methods/missing.pth.tar"))
        .err()
        .unwrap();
    assert!(format!("{err:#}").contains("missing.pth.tar"), "{err:#}");
}
