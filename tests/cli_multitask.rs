//! The MVLPT pipeline end to end through the CLI, on the synthetic tasks with a tiny random
//! CLIP: a multitask source stage on three tasks over two seeds, the seeds' prompts averaged,
//! then a multitask target stage on a group of two other tasks initialised from them (§3).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn mvlpt(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_mvlpt"))
        .args(args)
        .env_remove("MVLPT_LOG")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "mvlpt {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
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

fn result(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("result.json")).unwrap()).unwrap()
}

/// Small splits for every synthetic task the test uses.
fn task_tables(tasks: &[&str]) -> String {
    tasks
        .iter()
        .map(|t| format!("[data.{t}]\ntrain_size = 48\nval_size = 16\ntest_size = 16\n"))
        .collect()
}

#[test]
fn source_stage_then_averaged_seeds_then_multitask_target_stage() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let source_tasks = ["synthetic_shape", "synthetic_colour", "synthetic_size"];
    let source = dir.path().join("source.toml");
    std::fs::write(
        &source,
        format!(
            r#"name = "source"
[model]
source = "random:tiny"
[data]
tasks = {source_tasks:?}
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
            tables = task_tables(&source_tasks),
        ),
    )
    .unwrap();
    mvlpt(&["run", source.to_str().unwrap()]);
    let source_runs = run_dirs(&runs.join("source"));
    assert_eq!(source_runs.len(), 2, "one run per seed");
    for run in &source_runs {
        let r = result(run);
        let tasks: Vec<&str> = r["per_task"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            tasks, source_tasks,
            "tasks in list order (the reference's source order)"
        );
    }

    // Average the seeds' prompts (§3.2).
    let averaged = dir.path().join("source-avg.safetensors");
    mvlpt(&[
        "ckpt",
        "average",
        source_runs[0].to_str().unwrap(),
        source_runs[1].to_str().unwrap(),
        "-o",
        averaged.to_str().unwrap(),
    ]);
    let load = |p: &Path| candle_core::safetensors::load(p, &candle_core::Device::Cpu).unwrap();
    let (a, b) = (
        load(&source_runs[0].join("prompts.safetensors")),
        load(&source_runs[1].join("prompts.safetensors")),
    );
    let mean = load(&averaged);
    let ctx = "ctx"; // the reference prompt learner's state-dict name
    let expected = ((&a[ctx] + &b[ctx]).unwrap() * 0.5).unwrap();
    let diff = (&mean[ctx] - expected)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(diff < 1e-6, "the average is element-wise: {diff}");

    // Target stage: a group of two tasks, sorted, masked per task, from the averaged prompts.
    let target_tasks = ["synthetic_position", "synthetic_count"];
    let target = dir.path().join("target.toml");
    std::fs::write(
        &target,
        format!(
            r#"name = "target"
[model]
source = "random:tiny"
[data]
tasks = {target_tasks:?}
task_order = "sorted"
task_masking = "neg_infinity"
fewshot = "elevater_multitask"
shots = 2
batch_size = 8
{tables}
[method]
name = "coop"
init_from = {averaged:?}
[method.coop]
n_ctx = 2
[train]
epochs = 2
lr = 0.01
[output]
runs_dir = {runs:?}
"#,
            tables = task_tables(&target_tasks),
        ),
    )
    .unwrap();
    mvlpt(&["run", target.to_str().unwrap()]);
    let target_runs = run_dirs(&runs.join("target"));
    assert_eq!(target_runs.len(), 1);
    let log = std::fs::read_to_string(target_runs[0].join("log.txt")).unwrap();
    assert!(
        log.contains("initialised prompts from") && log.contains(ctx),
        "the target run starts from the averaged source prompts:\n{log}"
    );
    let r = result(&target_runs[0]);
    let tasks: Vec<&str> = r["per_task"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        tasks,
        ["synthetic_count", "synthetic_position"],
        "sorted order"
    );
    let test = r["test"].as_f64().unwrap();
    let per_task: Vec<f64> = r["per_task"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["value"].as_f64().unwrap())
        .collect();
    assert!(
        (test - (per_task[0] + per_task[1]) / 2.0).abs() < 1e-9,
        "the overall value is the mean over tasks"
    );

    // The report splits the multitask run into one row per task, and lays it out like the
    // paper's tables: datasets as columns, then averages over named subsets.
    let layout = dir.path().join("layout.toml");
    std::fs::write(
        &layout,
        "columns = [\"synthetic_position\", \"synthetic_count\", \"synthetic_digit\"]\n\
         [averages]\n\"both\" = [\"synthetic_position\", \"synthetic_count\"]\n\
         \"three\" = [\"synthetic_position\", \"synthetic_count\", \"synthetic_digit\"]\n",
    )
    .unwrap();
    let output = mvlpt(&[
        "report",
        runs.join("target").to_str().unwrap(),
        "--layout",
        layout.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("coop (multitask)") && text.contains("synthetic_count"),
        "{text}"
    );
    let table = std::fs::read_to_string(runs.join("target/table.md")).unwrap();
    let row = table
        .lines()
        .find(|l| l.contains("coop (multitask)"))
        .unwrap_or_else(|| panic!("{table}"));
    let cells: Vec<&str> = row
        .split('|')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    let pct = |v: f64| format!("{:.2}", 100.0 * v);
    // method, shots, position, count, digit (no run), both, three (2 of 3 present)
    assert_eq!(
        cells,
        [
            "coop (multitask)".to_string(),
            "2".into(),
            pct(per_task[1]),
            pct(per_task[0]),
            "-".into(),
            pct((per_task[0] + per_task[1]) / 2.0),
            "2/3".into(),
        ],
        "{table}"
    );
}
