//! `mvlpt forward` end to end against the reference prompt-method fixtures
//! (tools/fixtures/methods.py): with the reference's initial prompt tensors as `--init`, the
//! written logits, loss and gradients match the reference; the initial values are written back
//! under their names; a reference `.pth.tar` and an experiment file work as inputs.

use candle_core::{Device, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

fn load(path: &Path) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(path, &Device::Cpu).unwrap()
}

fn manifest() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("methods/cases.json")).unwrap()).unwrap()
}

fn max_abs(t: &Tensor) -> f32 {
    t.abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar()
        .unwrap()
}

/// `ours` within 1e-4 of the reference's largest magnitude.
fn assert_close(what: &str, ours: &Tensor, reference: &Tensor) {
    assert_eq!(ours.dims(), reference.dims(), "{what}: shape");
    let diff = max_abs(&(ours - reference).unwrap());
    assert!(
        diff <= 1e-4 * max_abs(reference),
        "{what}: difference {diff:e}"
    );
}

/// A scratch directory with the classes and labels files of the fixture cases.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let m = manifest();
        let classes: Vec<String> = serde_json::from_value(m["classes"].clone()).unwrap();
        std::fs::write(dir.path().join("classes.txt"), classes.join("\n") + "\n").unwrap();
        let labels: Vec<usize> = serde_json::from_value(m["labels"].clone()).unwrap();
        let lines: Vec<String> = labels.iter().map(usize::to_string).collect();
        std::fs::write(dir.path().join("labels.txt"), lines.join("\n") + "\n").unwrap();
        let soft: Vec<Vec<u8>> = serde_json::from_value(m["soft_targets"].clone()).unwrap();
        let lines: Vec<String> = soft
            .iter()
            .map(|row| {
                let hot: Vec<String> = (0..row.len())
                    .filter(|&c| row[c] == 1)
                    .map(|c| c.to_string())
                    .collect();
                hot.join(" ")
            })
            .collect();
        std::fs::write(dir.path().join("soft.txt"), lines.join("\n") + "\n").unwrap();
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn case(name: &str) -> serde_json::Value {
    manifest()["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()
        .clone()
}

/// Runs `mvlpt forward` for a fixture case (with `--init` from its initial tensors, or the
/// given init file) and checks every output.
fn run_case(name: &str, method_arg: Option<&Path>, init: Option<&Path>) {
    let scratch = Scratch::new();
    let case = case(name);
    let reference = load(&fixture(&format!("methods/{name}.safetensors")));
    let parameters: Vec<String> = serde_json::from_value(case["parameters"].clone()).unwrap();
    let init_file = scratch.path("init.safetensors");
    let initial: HashMap<String, Tensor> = parameters
        .iter()
        .map(|p| (p.clone(), reference[p].clone()))
        .collect();
    candle_core::safetensors::save(&initial, &init_file).unwrap();
    let method = case["method"].as_str().unwrap();
    let out = scratch.path("out.safetensors");
    let labels = if case["targets"] == "soft" {
        "soft.txt"
    } else {
        "labels.txt"
    };
    let mut command = Command::new(env!("CARGO_BIN_EXE_mvlpt"));
    command
        .arg("forward")
        .arg("--model")
        .arg(fixture("clip/openai"))
        .arg("--images")
        .arg(fixture("clip/images"))
        .arg("--classes")
        .arg(scratch.path("classes.txt"))
        .arg("--labels")
        .arg(scratch.path(labels))
        .arg("--out")
        .arg(&out);
    match method_arg {
        Some(file) => command.arg("--method").arg(file),
        None => {
            command.args(["--method", method]);
            for (key, value) in case["options"].as_object().unwrap() {
                command
                    .arg("--set")
                    .arg(format!("method.{method}.{key}={value}"));
            }
            &mut command
        }
    };
    if !parameters.is_empty() {
        command.arg("--init").arg(init.unwrap_or(&init_file));
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let ours = load(&out);
    assert_close(
        &format!("{name} logits"),
        &ours["logits"],
        &reference["logits"],
    );
    assert_close(&format!("{name} loss"), &ours["loss"], &reference["loss"]);
    let mut expected_keys = vec!["logits".to_string(), "loss".to_string()];
    for p in &parameters {
        assert_close(&format!("{name} {p}"), &ours[p], &reference[p]);
        let g = format!("grad.{p}");
        assert_close(&format!("{name} {g}"), &ours[&g], &reference[&g]);
        expected_keys.push(p.clone());
        expected_keys.push(g);
    }
    let mut keys: Vec<String> = ours.keys().cloned().collect();
    keys.sort();
    expected_keys.sort();
    assert_eq!(keys, expected_keys, "{name}: written tensors");
}

#[test]
fn forward_matches_the_reference_for_each_method() {
    for name in [
        "coop_middle",
        "coop_soft_targets",
        "vpt_deep",
        "upt",
        "cocoop",
        "zero_shot_ensemble",
    ] {
        run_case(name, None, None);
    }
}

#[test]
fn forward_reads_an_experiment_file() {
    let scratch = Scratch::new();
    let file = scratch.path("upt.toml");
    std::fs::write(
        &file,
        "[method]\nname = \"upt\"\n\n[method.upt]\nn_ctx = 2\nvpt_n_ctx = 2\nproject_dim = 16\nattention = \"tokens\"\n",
    )
    .unwrap();
    run_case("upt_tokens", Some(&file), None);
}

#[test]
fn forward_initialises_from_a_reference_checkpoint() {
    let scratch = Scratch::new();
    let out = scratch.path("out.safetensors");
    let output = Command::new(env!("CARGO_BIN_EXE_mvlpt"))
        .args(["forward", "--method", "upt"])
        .args([
            "--set",
            "method.upt.n_ctx=2",
            "--set",
            "method.upt.vpt_n_ctx=2",
        ])
        .args(["--set", "method.upt.project_dim=16"])
        .arg("--model")
        .arg(fixture("clip/openai"))
        .arg("--init")
        .arg(fixture("methods/model-best.pth.tar"))
        .arg("--images")
        .arg(fixture("clip/images"))
        .arg("--classes")
        .arg(scratch.path("classes.txt"))
        .arg("--labels")
        .arg(scratch.path("labels.txt"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let ours = load(&out);
    let expected = load(&fixture("methods/checkpoint_expected.safetensors"));
    for (name, tensor) in &expected {
        let tensor = tensor.to_dtype(candle_core::DType::F32).unwrap();
        assert_eq!(max_abs(&(&ours[name] - &tensor).unwrap()), 0.0, "{name}");
    }
}

#[test]
fn forward_names_bad_inputs() {
    let scratch = Scratch::new();
    std::fs::write(scratch.path("bad.txt"), "0\n9\n1\n2\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mvlpt"))
        .args([
            "forward",
            "--method",
            "coop",
            "--set",
            "method.coop.n_ctx=2",
        ])
        .arg("--model")
        .arg(fixture("clip/openai"))
        .arg("--images")
        .arg(fixture("clip/images"))
        .arg("--classes")
        .arg(scratch.path("classes.txt"))
        .arg("--labels")
        .arg(scratch.path("bad.txt"))
        .arg("--out")
        .arg(scratch.path("out.safetensors"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bad.txt line 2") && stderr.contains("class 9"),
        "{stderr}"
    );

    let output = Command::new(env!("CARGO_BIN_EXE_mvlpt"))
        .args(["forward", "--method", "copo"])
        .arg("--model")
        .arg(fixture("clip/openai"))
        .arg("--images")
        .arg(fixture("clip/images"))
        .arg("--classes")
        .arg(scratch.path("classes.txt"))
        .arg("--labels")
        .arg(scratch.path("labels.txt"))
        .arg("--out")
        .arg(scratch.path("out.safetensors"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("did you mean `coop`"), "{stderr}");
}
