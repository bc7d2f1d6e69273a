//! Source-prompt transfer carries everything that decides a prediction: a run initialised from
//! a trained run (`method.init_from = <run dir>`) that trains nothing and evaluates the same
//! test data must report exactly the values the trained run reported, per task, for every
//! method (CoOp's context, VPT's prompts, UPT's prompts and projector). The multitask-transfer
//! study relies on this to rule out a transfer bug.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn mvlpt(args: &[&str]) {
    let output = Command::new(env!("CARGO_BIN_EXE_mvlpt"))
        .args(args)
        .env_remove("MVLPT_LOG")
        .output()
        .expect("start mvlpt");
    assert!(
        output.status.success(),
        "mvlpt {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Complete run directories below `root`, by method.
fn runs_by_method(root: &Path) -> Vec<(String, PathBuf, Value)> {
    let mut runs: Vec<(String, PathBuf, Value)> = std::fs::read_dir(root)
        .expect("list runs")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("COMPLETE").is_file())
        .map(|p| {
            let result: Value = serde_json::from_str(
                &std::fs::read_to_string(p.join("result.json")).expect("result.json"),
            )
            .expect("json");
            (
                result["method"].as_str().expect("method").to_string(),
                p,
                result,
            )
        })
        .collect();
    runs.sort_by(|a, b| a.0.cmp(&b.0));
    runs
}

#[test]
fn a_transferred_prompt_evaluates_exactly_like_the_run_it_came_from() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runs = dir.path().join("runs");
    let common = format!(
        r#"[model]
source = "random:tiny"
[data]
tasks = ["synthetic_shape", "synthetic_size"]
fewshot = "dassl"
shots = 2
batch_size = 8
task_masking = "neg_infinity"
[data.synthetic_shape]
train_size = 48
val_size = 12
test_size = 24
[data.synthetic_size]
train_size = 48
val_size = 12
test_size = 24
[method.coop]
n_ctx = 4
[method.vpt]
n_ctx = 2
[method.upt]
n_ctx = 2
vpt_n_ctx = 2
[eval]
evaluator = "dassl"
[output]
runs_dir = {runs:?}
"#
    );
    let source = dir.path().join("source.toml");
    std::fs::write(
        &source,
        format!(
            "name = \"source\"\n{common}[train]\nepochs = 3\nlr = 0.05\nselect = \"last\"\n\
             [sweep]\ngrid = {{ \"method.name\" = [\"coop\", \"vpt\", \"upt\"] }}\n"
        ),
    )
    .expect("write source");
    mvlpt(&["run", source.to_str().expect("utf-8")]);
    let trained = runs_by_method(&runs.join("source"));
    assert_eq!(trained.len(), 3, "one source run per method");

    for (method, run_dir, result) in &trained {
        let transfer = dir.path().join(format!("transfer-{method}.toml"));
        std::fs::write(
            &transfer,
            format!(
                "name = \"transfer-{method}\"\n{common}[train]\nepochs = 0\n\
                 [method]\nname = {method:?}\ninit_from = {run_dir:?}\n"
            ),
        )
        .expect("write transfer");
        mvlpt(&["run", transfer.to_str().expect("utf-8")]);
        let evaluated = runs_by_method(&runs.join(format!("transfer-{method}")));
        assert_eq!(evaluated.len(), 1);
        let again = &evaluated[0].2;
        assert_eq!(again["epochs"], 0, "{method}: nothing trains");
        assert_eq!(
            again["per_task"], result["per_task"],
            "{method}: the transferred prompts evaluate differently from the run they came from"
        );
        assert_eq!(again["test"], result["test"], "{method}");
        // The learned text context moved during source training (VPT's text is fixed).
        if method == "vpt" {
            continue;
        }
        assert_ne!(
            result["diagnostics"]["class_text_cosine_start"],
            result["diagnostics"]["class_text_cosine"],
            "{method}: source training left the text head unchanged"
        );
    }
}
