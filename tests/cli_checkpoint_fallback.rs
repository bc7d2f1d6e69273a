//! A run whose last checkpoint was damaged resumes from the checkpoint before it, with a
//! warning, and ends exactly where an undamaged run ends.

use std::path::{Path, PathBuf};
use std::process::Command;

fn run(experiment: &Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_mvlpt"))
        .arg("run")
        .arg(experiment)
        .env_remove("MVLPT_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(output.status.success(), "{stderr}");
    String::from_utf8_lossy(&output.stdout).to_string()
}

fn run_dir(runs: &Path) -> PathBuf {
    std::fs::read_dir(runs.join("fallback"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap()
}

#[test]
fn a_truncated_last_checkpoint_falls_back_to_the_previous_one() {
    let dir = tempfile::tempdir().unwrap();
    let experiment = dir.path().join("fallback.toml");
    std::fs::write(
        &experiment,
        format!(
            r#"[model]
source = "random:tiny"
[data]
dataset = "synthetic_count"
fewshot = "dassl"
shots = 2
batch_size = 4
[data.synthetic_count]
train_size = 40
val_size = 8
test_size = 16
[method]
name = "coop"
[method.coop]
n_ctx = 2
[train]
epochs = 3
lr = 0.01
[output]
runs_dir = {:?}
"#,
            dir.path().join("runs")
        ),
    )
    .unwrap();
    run(&experiment);
    let run_path = run_dir(&dir.path().join("runs"));
    let result = std::fs::read_to_string(run_path.join("result.json")).unwrap();
    let prompts = std::fs::read(run_path.join("prompts.safetensors")).unwrap();

    // As if the process died after writing the last checkpoint, which then got damaged.
    for file in ["COMPLETE", "result.json", "prompts.safetensors"] {
        std::fs::remove_file(run_path.join(file)).unwrap();
    }
    let last = run_path.join("checkpoints/epoch-3.safetensors");
    let bytes = std::fs::read(&last).unwrap();
    std::fs::write(&last, &bytes[..bytes.len() / 3]).unwrap();

    let stdout = run(&experiment);
    assert!(stdout.contains("[resumed]"), "{stdout}");
    let log = std::fs::read_to_string(run_path.join("log.txt")).unwrap();
    assert!(
        log.contains("epoch-3.safetensors")
            && log.contains("resuming from the checkpoint before it"),
        "{log}"
    );
    let json = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap();
    let again = std::fs::read_to_string(run_path.join("result.json")).unwrap();
    assert_eq!(json(&again)["test"], json(&result)["test"]);
    let tensors = |bytes: &[u8]| {
        let file = safetensors::SafeTensors::deserialize(bytes).unwrap();
        let mut all: Vec<(String, Vec<u8>)> = file
            .tensors()
            .into_iter()
            .map(|(name, view)| (name, view.data().to_vec()))
            .collect();
        all.sort();
        all
    };
    let redone = std::fs::read(run_path.join("prompts.safetensors")).unwrap();
    assert_eq!(
        tensors(&redone),
        tensors(&prompts),
        "prompts differ after the fallback"
    );
}
