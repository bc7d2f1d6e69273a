//! `mvlpt status`: counts first, then every entry of the plan with its true state: complete,
//! failed (the first line of its error.txt), running (who holds its lock), pending (and the
//! epoch an interrupted run resumes after).

use mvlpt_framework::run::{DirLock, LockAttempt};
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

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn experiment(dir: &Path) -> PathBuf {
    let path = dir.join("status.toml");
    std::fs::write(
        &path,
        format!(
            r#"name = "status"
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
[output]
runs_dir = {:?}
[[sweep.zip]]
"model.source" = ["random:tiny", {:?}, "random:tiny", "random:tiny"]
seed = [1, 2, 3, 4]
"#,
            dir.join("runs").display().to_string(),
            dir.join("missing.safetensors").display().to_string()
        ),
    )
    .unwrap();
    path
}

#[test]
fn status_shows_complete_failed_running_and_pending_runs() {
    let dir = tempfile::tempdir().unwrap();
    let file = experiment(dir.path());
    let file = file.to_str().unwrap();
    let dry = stdout(&mvlpt(&["run", file, "--plan"]));
    let dirs: Vec<PathBuf> = dry
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().last().map(PathBuf::from))
        .take(4)
        .collect();
    let status = stdout(&mvlpt(&["status", file]));
    assert!(
        status.starts_with(
            "experiment status: 4 entries: 0 complete, 0 running, 0 failed, 4 pending"
        ),
        "{status}"
    );

    // Runs 0 and 1 finish (1 fails); run 2 was interrupted after its first epoch; run 3 is
    // held by a process (this test).
    assert!(mvlpt(&["run", file, "--index", "0"]).status.success());
    assert!(!mvlpt(&["run", file, "--index", "1"]).status.success());
    std::fs::create_dir_all(dirs[2].join("checkpoints")).unwrap();
    std::fs::write(
        dirs[2].join("checkpoints/last.json"),
        "{\"epochs_done\": 1, \"tensors\": \"epoch-1.safetensors\"}",
    )
    .unwrap();
    let LockAttempt::Acquired(_lock) = DirLock::try_acquire(&dirs[3]).unwrap() else {
        panic!("run 3 is free");
    };

    let status = stdout(&mvlpt(&["status", file]));
    assert!(
        status.starts_with(
            "experiment status: 4 entries: 1 complete, 1 running, 1 failed, 1 pending"
        ),
        "{status}"
    );
    let line = |i: usize| {
        status
            .lines()
            .find(|l| l.starts_with(&format!("{i} ")))
            .unwrap_or_else(|| panic!("{status}"))
            .to_string()
    };
    assert!(line(0).contains("complete"), "{status}");
    assert!(
        line(1).contains("failed") && line(1).contains("missing.safetensors"),
        "{status}"
    );
    assert!(
        line(2).contains("pending") && line(2).contains("resumes after epoch 1"),
        "{status}"
    );
    assert!(
        line(3).contains("running")
            && line(3).contains(&format!("pid {} on host", std::process::id())),
        "{status}"
    );
}
