//! A zero-shot evaluation of a dataset that has a test split only, through the binary with the
//! built-in plugins (`manifest`, `all`, `zero_shot`): nothing trains, so no training split is
//! needed and no epochs run; the run completes with its test value.

use serde_json::Value;
use std::path::Path;
use std::process::Command;

const IMAGES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/datasets/root/manifests/images"
);

#[test]
fn zero_shot_evaluates_a_test_only_dataset_without_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let rows = [
        ("a.png", "zebra"),
        ("b, with comma.png", "cat"),
        ("c.png", "dog"),
    ];
    let manifest: String = rows
        .iter()
        .map(|(path, label)| {
            format!("{{\"path\": {path:?}, \"label\": {label:?}, \"split\": \"test\"}}\n")
        })
        .collect();
    std::fs::write(dir.path().join("test.jsonl"), manifest).unwrap();
    let experiment = dir.path().join("eval.toml");
    std::fs::write(
        &experiment,
        format!(
            r#"name = "eval"
[model]
source = "builtin"
[data]
dataset = "manifest"
root = {root:?}
fewshot = "all"
[data.manifest]
file = "test.jsonl"
image_root = {IMAGES:?}
[method]
name = "zero_shot"
[output]
runs_dir = {runs:?}
"#,
            root = dir.path(),
            runs = dir.path().join("runs"),
        ),
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mvlpt"))
        .arg("run")
        .arg(&experiment)
        .env_remove("MVLPT_LOG")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let run = std::fs::read_dir(dir.path().join("runs/eval"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("COMPLETE").is_file())
        .expect("a complete run");
    let result: Value = serde_json::from_str(&read(&run.join("result.json"))).unwrap();
    assert_eq!(result["epochs"], 0);
    assert_eq!(result["per_task"][0]["samples"], 3);
    let test = result["test"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&test), "{result}");
    // The metrics log holds the test evaluation only: no epoch, no validation (no val split).
    let metrics = read(&run.join("metrics.jsonl"));
    let records: Vec<Value> = metrics
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 1, "{metrics}");
    assert_eq!(records[0]["test"].as_f64(), Some(test));
    let log = read(&run.join("log.txt"));
    assert!(
        log.contains("nothing trains (method `zero_shot` has no trainable parameters)")
            && log.contains("manifest has no training split"),
        "{log}"
    );
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
