//! Two `mvlpt run`s on one experiment at the same time, started together again and again:
//! both succeed, every run ends complete with all its files, and no epoch appears twice in any
//! metrics.jsonl (each run directory is locked by the process working in it; the other one
//! does the other runs first and then waits). Also with `--force` on both.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const EPOCHS: u64 = 3;

fn experiment(dir: &Path, runs: &Path) -> PathBuf {
    let path = dir.join("concurrent.toml");
    std::fs::write(
        &path,
        format!(
            r#"name = "concurrent"
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
epochs = {EPOCHS}
lr = 0.01
[output]
runs_dir = {runs:?}
[sweep]
seeds = [1, 2, 3]
"#
        ),
    )
    .unwrap();
    path
}

fn start(file: &Path, force: bool) -> std::process::Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mvlpt"));
    for (key, _) in std::env::vars() {
        if key.starts_with("MVLPT_") {
            command.env_remove(key);
        }
    }
    command.arg("run").arg(file);
    if force {
        command.arg("--force");
    }
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Checks every run of the experiment: complete, every file there, each epoch logged once
/// and then the test record.
fn check_runs(root: &Path, round: usize) {
    let runs: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(runs.len(), 3, "round {round}: {runs:?}");
    for run in runs {
        for file in [
            "COMPLETE",
            "config.toml",
            "provenance.json",
            "environment.json",
            "log.txt",
            "result.json",
            "prompts.safetensors",
            "split.jsonl",
            "checkpoints/last.json",
        ] {
            assert!(
                run.join(file).is_file(),
                "round {round}: {} lost {file}",
                run.display()
            );
        }
        let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
        let records: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let epochs: Vec<u64> = records.iter().filter_map(|r| r["epoch"].as_u64()).collect();
        assert_eq!(
            epochs,
            (1..=EPOCHS).collect::<Vec<_>>(),
            "round {round}: {}:\n{text}",
            run.display()
        );
        assert_eq!(records.len() as u64, EPOCHS + 1, "round {round}:\n{text}");
        assert!(records.last().unwrap().get("test").is_some());
        let leftovers: Vec<String> = std::fs::read_dir(&run)
            .unwrap()
            .chain(std::fs::read_dir(run.join("checkpoints")).unwrap())
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "round {round}: {leftovers:?}");
    }
}

#[test]
fn two_concurrent_runs_never_duplicate_a_metrics_line_or_lose_a_file() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..8 {
        let runs = dir.path().join(format!("runs-{round}"));
        let file = experiment(dir.path(), &runs);
        // The last rounds start over a complete experiment with --force in both processes.
        let force = round >= 6;
        if force {
            let first = start(&file, false).wait_with_output().unwrap();
            assert!(first.status.success());
        }
        let (a, b) = (start(&file, force), start(&file, force));
        for (name, child) in [("first", a), ("second", b)] {
            let output = child.wait_with_output().unwrap();
            assert!(
                output.status.success(),
                "round {round}: the {name} process failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        check_runs(&runs.join("concurrent"), round);
    }
}
