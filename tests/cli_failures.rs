//! A diverging run stops with an error naming the epoch and step, keeps its last good
//! checkpoint, records the failure and is not marked complete.

use std::process::Command;

#[test]
fn a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let experiment = dir.path().join("diverge.toml");
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
# Epoch 1 is the constant warm-up at a sane rate; then the rate makes the loss explode.
warmup_epochs = 1
warmup_lr = 1e-3
lr = 1e30
[output]
runs_dir = {runs:?}
"#,
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
    assert!(!output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("FAILED: loss is"), "{stdout}");
    assert!(stdout.contains("at epoch 2 step"), "{stdout}");
    let run = std::fs::read_dir(dir.path().join("runs/diverge"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap();
    assert!(!run.join("COMPLETE").exists());
    let error = std::fs::read_to_string(run.join("error.txt")).unwrap();
    assert!(
        error.contains("loss is") && error.contains("epoch 2"),
        "{error}"
    );
    assert!(
        run.join("checkpoints/epoch-1.safetensors").is_file(),
        "the checkpoint of the last good epoch is kept"
    );
}
