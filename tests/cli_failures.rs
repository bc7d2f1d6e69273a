//! A diverging run stops with an error naming the epoch and step, keeps its last good
//! checkpoint (and says which, or that none exists yet), records the failure and is not marked
//! complete.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs a CoOp experiment whose training diverges (`train` holds the `[train]` keys); returns
/// the run's stdout and its directory.
fn diverging_run(root: &Path, train: &str) -> (String, PathBuf) {
    let experiment = root.join("diverge.toml");
    std::fs::write(
        &experiment,
        format!(
            r#"name = "diverge"
[model]
source = "random:tiny"
[data]
dataset = "synthetic_count"
fewshot = "dassl"
shots = 4
batch_size = 4
[data.synthetic_count]
train_size = 80
val_size = 20
test_size = 20
[method]
name = "coop"
[method.coop]
n_ctx = 2
[train]
epochs = 3
{train}
[output]
runs_dir = {runs:?}
"#,
            runs = root.join("runs"),
        ),
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mvlpt"))
        .arg("run")
        .arg(&experiment)
        .env_remove("MVLPT_LOG")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let run = std::fs::read_dir(root.join("runs/diverge"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap();
    assert!(!run.join("COMPLETE").exists());
    (String::from_utf8_lossy(&output.stdout).into_owned(), run)
}

#[test]
fn a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    // Epoch 1 is the constant warm-up at a sane rate; then the rate makes the loss explode.
    let (stdout, run) = diverging_run(dir.path(), "warmup_epochs = 1\nwarmup_lr = 1e-3\nlr = 1e30");
    assert!(stdout.contains("FAILED: loss is"), "{stdout}");
    assert!(stdout.contains("at epoch 2 step"), "{stdout}");
    let error = std::fs::read_to_string(run.join("error.txt")).unwrap();
    assert!(
        error.contains("loss is") && error.contains("epoch 2"),
        "{error}"
    );
    assert!(
        error.contains("the last good checkpoint, after epoch 1, is kept in"),
        "{error}"
    );
    assert!(
        run.join("checkpoints/epoch-1.safetensors").is_file(),
        "the checkpoint of the last good epoch is kept"
    );
}

#[test]
fn a_nan_loss_in_the_first_epoch_says_that_no_checkpoint_exists_yet() {
    let dir = tempfile::tempdir().unwrap();
    // No warm-up: the first step's update already makes the loss explode.
    let (stdout, run) = diverging_run(dir.path(), "warmup_epochs = 0\nlr = 1e30");
    assert!(stdout.contains("at epoch 1 step"), "{stdout}");
    let error = std::fs::read_to_string(run.join("error.txt")).unwrap();
    assert!(
        error.contains("no checkpoint was written yet") && !error.contains("is kept in"),
        "{error}"
    );
    let checkpoints: Vec<_> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .collect();
    assert!(checkpoints.is_empty(), "{checkpoints:?}");
}
