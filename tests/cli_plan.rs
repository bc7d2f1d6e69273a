//! `mvlpt run --plan` writes every entry of a pipeline (runs of each stage, an average stage
//! as one) to plan.json; `mvlpt run --index i` runs exactly entry i, only once the stages
//! before it are complete, skipping a complete entry and resuming an incomplete one. Running
//! every index in order gives what one `mvlpt run` gives.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn mvlpt(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mvlpt"));
    for (key, _) in std::env::vars() {
        if key.starts_with("MVLPT_") {
            command.env_remove(key);
        }
    }
    command.args(args).output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A two-seed CoOp source stage, its average, a one-run target stage started from it.
fn pipeline(dir: &Path) -> PathBuf {
    let experiment = |name: &str, extra: &str| {
        format!(
            r#"name = "{name}"
[model]
source = "random:tiny"
[data]
dataset = "synthetic_count"
fewshot = "dassl"
shots = 2
batch_size = 4
[data.synthetic_count]
train_size = 40
val_size = 8
test_size = 8
[method]
name = "coop"
[method.coop]
n_ctx = 2
[train]
epochs = 2
lr = 0.01
{extra}
"#
        )
    };
    std::fs::write(
        dir.join("source.toml"),
        experiment("source", "[sweep]\nseeds = [1, 2]"),
    )
    .unwrap();
    std::fs::write(
        dir.join("target.toml"),
        experiment("target", "").replace("[method]\n", "[method]\ninit_from = \"@source-avg\"\n"),
    )
    .unwrap();
    let path = dir.join("pipeline.toml");
    std::fs::write(
        &path,
        "name = \"study\"\n[[stages]]\nname = \"source\"\nexperiment = \"source.toml\"\n\
         [[stages]]\nname = \"source-avg\"\naverage = \"source\"\n\
         [[stages]]\nname = \"target\"\nexperiment = \"target.toml\"\n",
    )
    .unwrap();
    path
}

fn runs_set(runs: &Path) -> String {
    format!("output.runs_dir={:?}", runs.display().to_string())
}

fn result(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("result.json")).unwrap()).unwrap()
}

#[test]
fn plan_lists_every_entry_and_index_runs_exactly_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(dir.path());
    let file = file.to_str().unwrap();
    let runs = dir.path().join("runs");
    let set = runs_set(&runs);

    let output = mvlpt(&["run", file, "--set", &set, "--plan"]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("index  stage"), "{}", text(&output));
    let plan: Value =
        serde_json::from_str(&std::fs::read_to_string(runs.join("study/plan.json")).unwrap())
            .unwrap();
    let entries = plan["entries"].as_array().unwrap();
    let kinds: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e["stage"].as_str().unwrap(), e["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("source", "run"),
            ("source", "run"),
            ("source-avg", "average"),
            ("target", "run")
        ]
    );
    for (i, entry) in entries.iter().enumerate() {
        assert_eq!(entry["index"], i);
    }
    assert_eq!(entries[1]["values"]["seed"], 2);
    assert!(entries[3]["values"]["method.init_from"]
        .as_str()
        .unwrap()
        .ends_with(".safetensors"));
    assert_eq!(plan["sets"][0], set);
    assert!(!runs.join("study/source").exists(), "--plan runs nothing");

    // Out of order: the target waits for the stages before it.
    let early = mvlpt(&["run", file, "--set", &set, "--index", "3"]);
    assert!(!early.status.success());
    assert!(
        text(&early)
            .contains("stage `target` cannot start: 3 entries of earlier stages are not complete"),
        "{}",
        text(&early)
    );
    let outside = mvlpt(&["run", file, "--set", &set, "--index", "4"]);
    assert!(text(&outside)
        .contains("--index 4 is out of range: the plan of study has 4 entries (0 to 3)"));

    // Exactly one run per index.
    let first = mvlpt(&["run", file, "--set", &set, "--index", "1"]);
    assert!(first.status.success(), "{}", text(&first));
    let dir_of = |i: usize| PathBuf::from(entries[i]["dir"].as_str().unwrap());
    assert!(dir_of(1).join("COMPLETE").is_file());
    assert!(!dir_of(0).exists());
    for index in ["0", "2", "3"] {
        let output = mvlpt(&["run", file, "--set", &set, "--index", index]);
        assert!(output.status.success(), "{index}: {}", text(&output));
    }
    assert!(text(&mvlpt(&["run", file, "--set", &set, "--index", "2"]))
        .contains("stage source-avg: already complete, skipped"));

    // Idempotent: a complete entry is skipped, an incomplete one resumed.
    let again = mvlpt(&["run", file, "--set", &set, "--index", "0"]);
    assert!(
        text(&again).contains("already complete, skipped"),
        "{}",
        text(&again)
    );
    std::fs::remove_file(dir_of(0).join("COMPLETE")).unwrap();
    let resumed = mvlpt(&["run", file, "--set", &set, "--index", "0"]);
    assert!(resumed.status.success(), "{}", text(&resumed));
    assert!(text(&resumed).contains("[resumed]"), "{}", text(&resumed));

    // The same as one `mvlpt run` of the pipeline.
    let whole = dir.path().join("whole");
    let output = mvlpt(&["run", file, "--set", &runs_set(&whole)]);
    assert!(output.status.success(), "{}", text(&output));
    for i in [0, 1, 3] {
        // The target's run id holds the path of its averaged prompts, which lie elsewhere.
        let stage = whole
            .join("study")
            .join(entries[i]["stage"].as_str().unwrap());
        let same = if i == 3 {
            std::fs::read_dir(&stage)
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| p.join("COMPLETE").is_file())
                .unwrap()
        } else {
            stage.join(entries[i]["run_id"].as_str().unwrap())
        };
        assert_eq!(
            result(&dir_of(i))["test"],
            result(&same)["test"],
            "entry {i}"
        );
        assert_eq!(
            std::fs::read_to_string(dir_of(i).join("metrics.jsonl"))
                .unwrap()
                .lines()
                .filter(|l| l.contains("\"epoch\""))
                .count(),
            2,
            "entry {i}: each epoch once"
        );
    }
}
