//! Every run writes its exact split (`split.jsonl`, `classnames.json`); the `manifest` dataset
//! re-uses it, so a second run trains and tests on exactly the same samples.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `experiment` and returns the run directory of experiment `name` below `runs`.
fn run(experiment: &Path, runs: &Path, name: &str, sets: &[String]) -> PathBuf {
    let output = Command::new(env!("CARGO_BIN_EXE_mvlpt"))
        .arg("run")
        .arg(experiment)
        .args(sets.iter().flat_map(|s| ["--set", s.as_str()]))
        .env_remove("MVLPT_LOG")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read_dir(runs.join(name))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .expect("a run directory")
}

fn result(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("result.json")).unwrap()).unwrap()
}

#[test]
fn the_written_split_is_reused_sample_for_sample() {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/datasets/root");
    let dir = tempfile::tempdir().unwrap();
    let experiment = dir.path().join("split.toml");
    std::fs::write(
        &experiment,
        format!(
            r#"name = "split"
[model]
source = "random:tiny"
[data]
dataset = "eurosat"
root = {fixtures:?}
fewshot = "dassl"
shots = 1
batch_size = 2
[method]
name = "coop"
[method.coop]
n_ctx = 2
[train]
epochs = 2
[output]
runs_dir = {runs:?}
"#,
            runs = dir.path().join("runs"),
        ),
    )
    .unwrap();
    let runs = dir.path().join("runs");
    let first = run(&experiment, &runs, "split", &[]);
    let split = std::fs::read_to_string(first.join("split.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = split
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let count = |s: &str| rows.iter().filter(|r| r["split"] == s).count();
    // Dassl's protocol at 1 shot: one train and one val image per class (3 classes).
    assert_eq!((count("train"), count("val")), (3, 3), "{split}");
    assert!(count("test") > 0);

    let second = run(
        &experiment,
        &runs,
        "reused",
        &[
            "name=\"reused\"".into(),
            "data.dataset=\"manifest\"".into(),
            "data.fewshot=\"all\"".into(),
            format!(
                "data.manifest={{file={:?}, classnames_file={:?}}}",
                first.join("split.jsonl"),
                first.join("classnames.json")
            ),
        ],
    );
    assert_eq!(
        std::fs::read_to_string(second.join("split.jsonl")).unwrap(),
        split,
        "the re-used run saw the same samples in the same order"
    );
    assert_eq!(result(&second)["test"], result(&first)["test"]);
}
