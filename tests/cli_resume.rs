//! A run killed with SIGKILL in the middle of training and started again resumes from its last
//! checkpoint and ends exactly where an uninterrupted run ends: same prompts (bit for bit),
//! same test value, same per-epoch losses.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn experiment(dir: &Path, runs: &Path) -> PathBuf {
    let path = dir.join("resume.toml");
    std::fs::write(
        &path,
        format!(
            r#"name = "resume"
[model]
source = "random:tiny"
[data]
dataset = "synthetic_count"
fewshot = "dassl"
shots = 8
batch_size = 4
[data.synthetic_count]
train_size = 200
val_size = 40
test_size = 40
[method]
name = "coop"
[method.coop]
n_ctx = 2
[train]
epochs = 40
lr = 0.01
checkpoint_every = 1
[output]
runs_dir = {runs:?}
"#
        ),
    )
    .unwrap();
    path
}

fn mvlpt() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mvlpt"));
    command.env_remove("MVLPT_LOG");
    command
}

fn only_run(root: &Path) -> PathBuf {
    std::fs::read_dir(root.join("resume"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .expect("a run directory")
}

/// Per-epoch records without the wall-clock fields.
fn epochs(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            if let Some(o) = v.as_object_mut() {
                o.retain(|k, _| !k.contains("seconds"));
            }
            v
        })
        .collect()
}

#[test]
fn a_killed_run_resumes_to_the_uninterrupted_result() {
    let dir = tempfile::tempdir().unwrap();
    let (straight, killed) = (dir.path().join("straight"), dir.path().join("killed"));

    let status = mvlpt()
        .arg("run")
        .arg(experiment(dir.path(), &straight))
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );

    // Start again elsewhere and SIGKILL it once a few epochs are checkpointed.
    let file = experiment(dir.path(), &killed);
    let mut child = mvlpt()
        .arg("run")
        .arg(&file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    // The latest checkpoint is `checkpoints/epoch-<N>.safetensors` (older ones are replaced).
    let checkpointed = |at_least: usize| {
        let Ok(runs) = std::fs::read_dir(killed.join("resume")) else {
            return false;
        };
        runs.flatten().any(|run| {
            std::fs::read_dir(run.path().join("checkpoints"))
                .map(|files| {
                    files.flatten().any(|f| {
                        f.file_name()
                            .to_str()
                            .and_then(|n| n.strip_prefix("epoch-"))
                            .and_then(|n| n.strip_suffix(".safetensors"))
                            .and_then(|n| n.parse::<usize>().ok())
                            .is_some_and(|e| e >= at_least)
                    })
                })
                .unwrap_or(false)
        })
    };
    while !checkpointed(3) {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let run = only_run(&killed);
    assert!(
        !run.join("COMPLETE").exists(),
        "the run finished before it could be killed; make it longer"
    );

    let output = mvlpt().arg("run").arg(&file).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("[resumed]"), "{stdout}");

    let reference = only_run(&straight);
    let prompts = |r: &Path| -> Vec<(String, Vec<f32>)> {
        let mut tensors: Vec<(String, Vec<f32>)> = candle_core::safetensors::load(
            r.join("prompts.safetensors"),
            &candle_core::Device::Cpu,
        )
        .unwrap()
        .into_iter()
        .map(|(n, t)| (n, t.flatten_all().unwrap().to_vec1().unwrap()))
        .collect();
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        tensors
    };
    assert_eq!(
        prompts(&run),
        prompts(&reference),
        "the selected prompts are bit-identical"
    );
    let result = |r: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(r.join("result.json")).unwrap()).unwrap()
    };
    assert_eq!(result(&run)["test"], result(&reference)["test"]);
    assert_eq!(result(&run)["val"], result(&reference)["val"]);
    // The killed run logged some epochs twice at most (the one in flight is redone); the last
    // record of every epoch must equal the uninterrupted run's.
    let (resumed, uninterrupted) = (epochs(&run), epochs(&reference));
    let last = |records: &[serde_json::Value], epoch: u64| {
        records
            .iter()
            .rev()
            .find(|r| r["epoch"] == epoch)
            .cloned()
            .unwrap_or_else(|| panic!("no record of epoch {epoch}"))
    };
    for epoch in 1..=40 {
        assert_eq!(
            last(&resumed, epoch),
            last(&uninterrupted, epoch),
            "epoch {epoch}"
        );
    }
}
