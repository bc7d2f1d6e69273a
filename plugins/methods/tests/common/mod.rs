//! Helpers shared by the method tests: the fixture model, the reference cases written by
//! tools/fixtures/methods.py, method construction through the plugin registry, tolerances.

#![allow(dead_code)]

use candle_core::{DType, Device, Tensor};
use mvlpt_framework::config::LoadedConfig;
use mvlpt_framework::method::PromptLearner;
use mvlpt_framework::model::{load_clip, Clip, LoadOptions};
use mvlpt_framework::plugin::Registry;
use std::collections::HashMap;
use std::path::PathBuf;

/// A file under tests/fixtures.
pub fn fixture(path: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures")).join(path)
}

/// The tiny open_clip model of tests/fixtures/clip/openai, in f32.
pub fn tiny_clip() -> Clip {
    mvlpt_methods::link();
    load_clip(
        fixture("clip/openai").to_str().unwrap(),
        &LoadOptions::default(),
    )
    .unwrap()
}

/// The fixture images, normalised `(4, 3, 32, 32)`.
pub fn pixels() -> Tensor {
    candle_core::safetensors::load(fixture("clip/reference.safetensors"), &Device::Cpu).unwrap()
        ["pixels"]
        .clone()
}

/// tests/fixtures/methods/cases.json.
pub fn manifest() -> serde_json::Value {
    let text = std::fs::read_to_string(fixture("methods/cases.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The tensors of one case.
pub fn case_tensors(name: &str) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(
        fixture(&format!("methods/{name}.safetensors")),
        &Device::Cpu,
    )
    .unwrap()
}

/// `--set` pairs selecting `method` with `options` (a JSON object) as its table.
pub fn sets(method: &str, options: &serde_json::Value) -> Vec<String> {
    let mut out = vec![format!("method.name=\"{method}\"")];
    if let Some(table) = options.as_object() {
        for (key, value) in table {
            // JSON scalars, strings and string arrays are also TOML literals.
            out.push(format!("method.{method}.{key}={value}"));
        }
    }
    out
}

/// Builds the method named in `sets` through the built-in registry and its options table.
pub fn build(sets: &[String]) -> anyhow::Result<Box<dyn PromptLearner>> {
    mvlpt_methods::link();
    let config = LoadedConfig::load(None, sets)?;
    let name = config.config.method.name.clone();
    let registry = Registry::builtin()?;
    let factory = registry.method(&name)?;
    factory(&config.section(format!("method.{name}")))
}

/// Largest absolute difference between two tensors of the same shape.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    let a = a.to_dtype(DType::F32).unwrap();
    let b = b.to_dtype(DType::F32).unwrap();
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

/// Largest absolute value of a tensor.
pub fn max_abs(a: &Tensor) -> f32 {
    a.to_dtype(DType::F32)
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

/// Asserts `ours` matches `reference` within `relative` of the reference's largest magnitude.
pub fn assert_close(what: &str, ours: &Tensor, reference: &Tensor, relative: f32) {
    let scale = max_abs(reference);
    assert!(scale > 0.0, "{what}: the reference is all zeros");
    let diff = max_abs_diff(ours, reference);
    assert!(
        diff <= relative * scale,
        "{what}: max |ours − reference| = {diff:e}, {:e} of the reference's max {scale:e}",
        diff / scale
    );
}
