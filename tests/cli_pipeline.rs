//! Pipeline files through the CLI: the MVLPT pipeline of tests/cli_multitask.rs (a multitask
//! source stage over two seeds, the seeds' prompts averaged, a multitask target stage started
//! from the average) as one `mvlpt run pipeline.toml` gives bit for bit the averaged
//! checkpoint and the target results of the three manual commands; a failing stage stops the
//! pipeline; `@stage` references and `by` keys are checked before anything runs.

use candle_core::{Device, Tensor};
use serde_json::Value;
use std::collections::HashMap;
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

fn ok(args: &[&str]) -> Output {
    let output = mvlpt(args);
    assert!(
        output.status.success(),
        "mvlpt {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn run_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("COMPLETE").is_file())
        .collect();
    dirs.sort();
    dirs
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every tensor of a safetensors file as raw little-endian bytes (bit-exact comparison).
fn tensor_bytes(path: &Path) -> HashMap<String, Vec<u8>> {
    candle_core::safetensors::load(path, &Device::Cpu)
        .unwrap()
        .into_iter()
        .map(|(name, t): (String, Tensor)| {
            let values: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
            (name, values.iter().flat_map(|v| v.to_le_bytes()).collect())
        })
        .collect()
}

/// Per-epoch records without wall-clock fields.
fn epochs(run: &Path) -> Vec<Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            if let Some(o) = v.as_object_mut() {
                o.retain(|k, _| !k.contains("seconds"));
            }
            v
        })
        .collect()
}

fn task_tables(tasks: &[&str]) -> String {
    tasks
        .iter()
        .map(|t| format!("[data.{t}]\ntrain_size = 48\nval_size = 16\ntest_size = 16\n"))
        .collect()
}

/// The source stage of tests/cli_multitask.rs: multitask CoOp on three synthetic tasks.
fn source_experiment(runs: &Path) -> String {
    let tasks = ["synthetic_shape", "synthetic_colour", "synthetic_size"];
    format!(
        r#"name = "source"
[model]
source = "random:tiny"
[data]
tasks = {tasks:?}
fewshot = "dassl"
shots = 2
sampler = "task_proportional"
batch_size = 8
{tables}
[method]
name = "coop"
[method.coop]
n_ctx = 2
[train]
epochs = 2
lr = 0.01
[eval]
evaluator = "dassl"
[output]
runs_dir = {runs:?}
[sweep]
seeds = [1, 2]
"#,
        tables = task_tables(&tasks),
    )
}

/// The target stage: a group of two other tasks, initialised from `init_from`.
fn target_experiment(runs: &Path, init_from: &str) -> String {
    let tasks = ["synthetic_position", "synthetic_count"];
    format!(
        r#"name = "target"
[model]
source = "random:tiny"
[data]
tasks = {tasks:?}
task_order = "sorted"
task_masking = "neg_infinity"
fewshot = "elevater_multitask"
shots = 2
batch_size = 8
{tables}
[method]
name = "coop"
init_from = {init_from:?}
[method.coop]
n_ctx = 2
[train]
epochs = 2
lr = 0.01
[output]
runs_dir = {runs:?}
"#,
        tables = task_tables(&tasks),
    )
}

const PIPELINE: &str = r#"name = "study"
[[stages]]
name = "source"
experiment = "source.toml"
[[stages]]
name = "source-avg"
average = "source"
[[stages]]
name = "targets"
experiment = "target.toml"
"#;

#[test]
fn a_pipeline_file_equals_the_three_manual_commands() {
    let dir = tempfile::tempdir().unwrap();

    // The three manual commands.
    let manual = dir.path().join("manual");
    std::fs::create_dir_all(&manual).unwrap();
    let runs = manual.join("runs");
    let source = manual.join("source.toml");
    std::fs::write(&source, source_experiment(&runs)).unwrap();
    ok(&["run", source.to_str().unwrap()]);
    let source_runs = run_dirs(&runs.join("source"));
    assert_eq!(source_runs.len(), 2);
    let averaged = manual.join("source-avg.safetensors");
    ok(&[
        "ckpt",
        "average",
        source_runs[0].to_str().unwrap(),
        source_runs[1].to_str().unwrap(),
        "-o",
        averaged.to_str().unwrap(),
    ]);
    let target = manual.join("target.toml");
    std::fs::write(
        &target,
        target_experiment(&runs, averaged.to_str().unwrap()),
    )
    .unwrap();
    ok(&["run", target.to_str().unwrap()]);
    let manual_target = run_dirs(&runs.join("target"));
    assert_eq!(manual_target.len(), 1);

    // The same as one pipeline file; the stage files name other runs directories, which the
    // command line overrides for every stage.
    let piped = dir.path().join("piped");
    std::fs::create_dir_all(&piped).unwrap();
    let runs = piped.join("runs");
    let elsewhere = piped.join("not-used");
    std::fs::write(piped.join("source.toml"), source_experiment(&elsewhere)).unwrap();
    std::fs::write(
        piped.join("target.toml"),
        target_experiment(&elsewhere, "@source-avg"),
    )
    .unwrap();
    let pipeline = piped.join("pipeline.toml");
    std::fs::write(&pipeline, PIPELINE).unwrap();
    let set_runs = format!("output.runs_dir={:?}", runs.display().to_string());
    let pipeline_arg = pipeline.to_str().unwrap();

    let dry = ok(&["run", pipeline_arg, "--set", &set_runs, "--dry-run"]);
    let listing = text(&dry);
    assert!(
        listing.contains("4 run(s) in 3 stage(s) of pipeline study"),
        "{listing}"
    );
    assert!(
        listing.contains("average of `source` by []: 1 group(s)"),
        "{listing}"
    );

    let output = ok(&["run", pipeline_arg, "--set", &set_runs]);
    let log = text(&output);
    assert!(
        log.contains("stage source-avg: averaged 1 group(s)"),
        "{log}"
    );
    assert!(!runs.join("study").join("not-used").exists() && !elsewhere.exists());

    // The averaged checkpoint: bit for bit the manual one.
    let source_runs = run_dirs(&runs.join("study/source"));
    assert_eq!(source_runs.len(), 2, "one run per seed");
    let index = json(&runs.join("study/source-avg/index.json"));
    let group = &index["groups"][0];
    assert_eq!(index["groups"].as_array().unwrap().len(), 1);
    assert_eq!(index["of"], "source");
    let listed: Vec<PathBuf> = group["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| PathBuf::from(r.as_str().unwrap()))
        .collect();
    let mut listed_sorted = listed.clone();
    listed_sorted.sort();
    assert_eq!(
        listed_sorted
            .iter()
            .map(|p| std::path::absolute(p).unwrap())
            .collect::<Vec<_>>(),
        source_runs
            .iter()
            .map(|p| std::path::absolute(p).unwrap())
            .collect::<Vec<_>>()
    );
    let piped_average = PathBuf::from(group["file"].as_str().unwrap());
    assert_eq!(
        piped_average,
        std::path::absolute(runs.join("study/source-avg"))
            .unwrap()
            .join(format!("{}.safetensors", group["id"].as_str().unwrap()))
    );
    let (manual_tensors, piped_tensors) = (tensor_bytes(&averaged), tensor_bytes(&piped_average));
    assert!(!manual_tensors.is_empty());
    assert_eq!(
        manual_tensors, piped_tensors,
        "the same averaged prompts, bit for bit"
    );

    // The target run: started from the average, same prompts, results and epochs.
    let piped_target = run_dirs(&runs.join("study/targets"));
    assert_eq!(piped_target.len(), 1);
    let run_log = std::fs::read_to_string(piped_target[0].join("log.txt")).unwrap();
    assert!(
        run_log.contains("initialised prompts from")
            && run_log.contains(&piped_average.display().to_string()),
        "{run_log}"
    );
    let provenance = json(&piped_target[0].join("provenance.json"));
    assert_eq!(
        provenance["method.init_from"],
        "pipeline reference @source-avg"
    );
    assert!(provenance["name"]
        .as_str()
        .unwrap()
        .contains("stage targets"));
    let (a, b) = (
        json(&manual_target[0].join("result.json")),
        json(&piped_target[0].join("result.json")),
    );
    for key in [
        "test", "val", "metrics", "per_task", "method", "shots", "seed",
    ] {
        assert_eq!(a[key], b[key], "result.json `{key}`");
    }
    assert_eq!(b["experiment"], "study/targets");
    assert_eq!(
        tensor_bytes(&manual_target[0].join("prompts.safetensors")),
        tensor_bytes(&piped_target[0].join("prompts.safetensors"))
    );
    assert_eq!(epochs(&manual_target[0]), epochs(&piped_target[0]));

    // Reports: the last experiment stage by default, or the one named; into its folder.
    let report = ok(&["report", pipeline_arg, "--set", &set_runs]);
    assert!(
        text(&report).contains("coop (multitask)"),
        "{}",
        text(&report)
    );
    assert!(runs.join("study/targets/report.md").is_file());
    ok(&[
        "report",
        pipeline_arg,
        "--set",
        &set_runs,
        "--stage",
        "source",
    ]);
    assert!(runs.join("study/source/report.md").is_file());
    let refused = mvlpt(&["report", pipeline_arg, "--stage", "source-avg"]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("averages prompts"),
        "{}",
        text(&refused)
    );

    // Run again: everything is complete and skipped, the average too.
    let again = ok(&["run", pipeline_arg, "--set", &set_runs]);
    let again = text(&again);
    assert_eq!(
        again.matches("already complete, skipped").count(),
        4,
        "{again}"
    );
}

#[test]
fn a_failing_stage_stops_the_pipeline_and_later_stages_do_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    std::fs::write(dir.path().join("source.toml"), source_experiment(&runs)).unwrap();
    std::fs::write(
        dir.path().join("target.toml"),
        target_experiment(&runs, "@source-avg"),
    )
    .unwrap();
    let pipeline = dir.path().join("pipeline.toml");
    std::fs::write(&pipeline, PIPELINE).unwrap();
    // A model file that does not exist fails every source run when it starts.
    let missing = format!(
        "model.source={:?}",
        dir.path().join("missing.safetensors").display().to_string()
    );
    let output = mvlpt(&["run", pipeline.to_str().unwrap(), "--set", &missing]);
    assert!(!output.status.success());
    let message = text(&output);
    assert!(
        message.contains("stage source: 2 of 2 runs failed; not started: source-avg, targets"),
        "{message}"
    );
    assert!(!runs.join("study/source-avg").exists());
    assert!(!runs.join("study/targets").exists());
}

#[test]
fn stage_references_and_grouping_keys_are_checked_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    std::fs::write(dir.path().join("source.toml"), source_experiment(&runs)).unwrap();
    let write_target = |init_from: &str| {
        std::fs::write(
            dir.path().join("target.toml"),
            target_experiment(&runs, init_from),
        )
        .unwrap()
    };
    let pipeline = dir.path().join("pipeline.toml");
    let dry_run = |pipeline_text: &str| {
        std::fs::write(&pipeline, pipeline_text).unwrap();
        let output = mvlpt(&["run", pipeline.to_str().unwrap(), "--dry-run"]);
        assert!(!output.status.success(), "{}", text(&output));
        text(&output)
    };

    write_target("@source-average");
    let message = dry_run(PIPELINE);
    assert!(
        message.contains("no average stage `source-average`")
            && message.contains("average stages before it: source-avg"),
        "{message}"
    );

    // Averages by shots: a target run with other shots than every average lists the ones
    // there are.
    std::fs::write(
        dir.path().join("target.toml"),
        target_experiment(&runs, "@source-avg").replace("shots = 2", "shots = 1"),
    )
    .unwrap();
    let message = dry_run(&PIPELINE.replace(
        "average = \"source\"",
        "average = \"source\"\nby = [\"data.shots\"]",
    ));
    assert!(
        message.contains(
            "no average of stage `source` has data.shots = 1 (averages: [data.shots = 2])"
        ),
        "{message}"
    );
    write_target("@source-avg");

    let message = dry_run(&PIPELINE.replace(
        "average = \"source\"",
        "average = \"source\"\nby = [\"method.nmae\"]",
    ));
    assert!(
        message.contains("no run of stage `source` has a value for `method.nmae`"),
        "{message}"
    );

    let message = dry_run(&PIPELINE.replace("average = \"source\"", "average = \"targets\""));
    assert!(
        message.contains("must name an earlier experiment stage (one of: source)"),
        "{message}"
    );

    // An ordinary experiment cannot name a stage.
    let output = mvlpt(&[
        "run",
        dir.path().join("target.toml").to_str().unwrap(),
        "--dry-run",
    ]);
    assert!(!output.status.success());
    assert!(
        text(&output).contains("not run as a stage of a pipeline file"),
        "{}",
        text(&output)
    );
}
