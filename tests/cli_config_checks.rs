//! Config mistakes caught by `mvlpt` before anything runs, with the real plugins: misspelt keys
//! in plugin sections and option tables, values outside closed sets or ranges, `MVLPT_THREADS`,
//! and experiment paths that are not files. The quickstart keeps its run ids.

use std::path::Path;
use std::process::{Command, Output};

fn mvlpt(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mvlpt"));
    command.args(args).env_remove("MVLPT_LOG");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

/// stderr of a command that must fail.
fn failure(args: &[&str], env: &[(&str, &str)]) -> String {
    let output = mvlpt(args, env);
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(!output.status.success(), "{args:?} succeeded: {stderr}");
    assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
    stderr
}

fn assert_mentions(text: &str, parts: &[&str]) {
    for part in parts {
        assert!(text.contains(part), "{part:?} missing from: {text}");
    }
}

const QUICKSTART: &str = "experiments/quickstart.toml";

#[test]
fn the_quickstart_keeps_its_run_ids() {
    // Run ids hash the resolved config; the closed sets became enums written as the same
    // strings. These ids are the ones the quickstart had before.
    let dir = tempfile::tempdir().unwrap();
    let runs = format!("output.runs_dir={:?}", dir.path().join("runs"));
    let output = mvlpt(&["run", QUICKSTART, "--dry-run", "--set", &runs], &[]);
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let ids: Vec<&str> = stdout
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().nth(1))
        .take(8)
        .collect();
    assert_eq!(
        ids,
        [
            "1dcd463ccbd3",
            "bdad7ca6164d",
            "9f7b0544bf59",
            "6913ac6c844e",
            "ce75a4ceaf52",
            "dfea16b5996c",
            "360aa68c9df2",
            "3fad255c65d3"
        ],
        "{stdout}"
    );
}

#[test]
fn misspelt_keys_fail_the_dry_run_naming_the_key_and_the_closest_name() {
    for (set, key, hint) in [
        ("data.shot=16", "`data.shot`", "did you mean `data.shots`?"),
        (
            "data.batchsize=2",
            "`data.batchsize`",
            "did you mean `data.batch_size`?",
        ),
        (
            "method.init_form=\"runs/source\"",
            "`method.init_form`",
            "did you mean `method.init_from`?",
        ),
        ("eval.keyy=1", "`eval.keyy`", "did you mean `eval.key`?"),
        (
            "method.coop.nctx=4",
            "`method.coop.nctx`",
            "did you mean `method.coop.n_ctx`?",
        ),
        (
            "method.vpt.n_ctxx=4",
            "`method.vpt.n_ctxx`",
            "did you mean `method.vpt.n_ctx`?",
        ),
        (
            "data.cifar10.root=\"x\"",
            "`data.cifar10`",
            "did you mean `cifar-10`?",
        ),
        (
            "data.synthetic_count.train_sise=4",
            "`data.synthetic_count.train_sise`",
            "did you mean `data.synthetic_count.train_size`?",
        ),
        (
            "train.optimizer=adamm",
            "`train.optimizer`",
            "did you mean \"adamw\"?",
        ),
        ("train.lr=nan", "`train.lr`", "finite"),
    ] {
        let stderr = failure(&["run", QUICKSTART, "--dry-run", "--set", set], &[]);
        assert_mentions(&stderr, &[key, &format!("--set {set}"), hint]);
    }
    let stderr = failure(
        &["config", "show", QUICKSTART],
        &[("MVLPT_DATA__EVAL_BATCH_SIZE", "0")],
    );
    assert_mentions(
        &stderr,
        &[
            "`data.eval_batch_size`",
            "environment variable MVLPT_DATA__EVAL_BATCH_SIZE",
        ],
    );
}

#[test]
fn mvlpt_threads_is_checked_and_applied() {
    let stderr = failure(&["config", "show", QUICKSTART], &[("MVLPT_THREADS", "abc")]);
    assert_mentions(
        &stderr,
        &["MVLPT_THREADS=\"abc\"", "whole number of threads"],
    );
    failure(&["config", "show", QUICKSTART], &[("MVLPT_THREADS", "0")]);

    let dir = tempfile::tempdir().unwrap();
    let experiment = dir.path().join("threads.toml");
    std::fs::write(
        &experiment,
        format!(
            r#"[model]
source = "random:tiny"
[data]
dataset = "synthetic_count"
[data.synthetic_count]
train_size = 8
val_size = 4
test_size = 8
[method]
name = "zero_shot"
[train]
epochs = 0
[output]
runs_dir = {:?}
"#,
            dir.path().join("runs")
        ),
    )
    .unwrap();
    let output = mvlpt(
        &["run", experiment.to_str().unwrap()],
        &[("MVLPT_THREADS", "1")],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let run = std::fs::read_dir(dir.path().join("runs/threads"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap();
    let environment: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("environment.json")).unwrap())
            .unwrap();
    assert_eq!(environment["threads"], 1);
}

#[test]
fn experiment_paths_that_are_not_files_say_what_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = failure(&["run", dir.path().to_str().unwrap()], &[]);
    assert_mentions(&stderr, &["is a directory"]);
    let stderr = failure(&["config", "show", "/dev/null"], &[]);
    assert_mentions(&stderr, &["/dev/null", "is a device file"]);
    let stderr = failure(&["run", "experiments/paper"], &[]);
    assert_mentions(&stderr, &["experiments/paper", "is a directory"]);
    assert!(Path::new(QUICKSTART).is_file());
}
