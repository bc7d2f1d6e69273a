//! The local executor: `mvlpt run --jobs 2` runs a sweep in two worker processes with the
//! cores divided between them and gives what a sequential run gives, bit for bit;
//! `--devices` hands each worker its own `CUDA_VISIBLE_DEVICES`; a failing run does not stop
//! the others and the summary names its error.txt; a pipeline's stages keep their order.

use candle_core::Device;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn mvlpt(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mvlpt"));
    for (key, _) in std::env::vars() {
        if key.starts_with("MVLPT_") || key == "RAYON_NUM_THREADS" || key == "CUDA_VISIBLE_DEVICES"
        {
            command.env_remove(key);
        }
    }
    command.args(args).output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn experiment(dir: &Path, name: &str, extra: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"name = "{name}"
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
lr = 0.01
{extra}
"#
        ),
    )
    .unwrap();
    path
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn complete_runs(root: &Path) -> Vec<PathBuf> {
    let mut runs: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("COMPLETE").is_file())
        .collect();
    runs.sort();
    runs
}

fn prompts(run: &Path) -> HashMap<String, Vec<f32>> {
    candle_core::safetensors::load(run.join("prompts.safetensors"), &Device::Cpu)
        .unwrap()
        .into_iter()
        .map(|(k, t)| (k, t.flatten_all().unwrap().to_vec1().unwrap()))
        .collect()
}

fn runs_set(runs: &Path) -> String {
    format!("output.runs_dir={:?}", runs.display().to_string())
}

#[test]
fn two_workers_give_the_sequential_results_with_the_cores_divided() {
    let dir = tempfile::tempdir().unwrap();
    let file = experiment(
        dir.path(),
        "sweep",
        "[sweep]\nseeds = [1, 2]\n[sweep.grid]\n\"method.name\" = [\"coop\", \"vpt\"]\n",
    );
    let file = file.to_str().unwrap();
    let (sequential, parallel) = (dir.path().join("seq"), dir.path().join("par"));
    let output = mvlpt(&["run", file, "--set", &runs_set(&sequential)]);
    assert!(output.status.success(), "{}", text(&output));
    let output = mvlpt(&[
        "run",
        file,
        "--set",
        &runs_set(&parallel),
        "--jobs",
        "2",
        "--devices",
        "0,1",
    ]);
    let log = text(&output);
    assert!(output.status.success(), "{log}");
    assert!(parallel.join("sweep/plan.json").is_file());

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = 2.min(cores);
    let (a, b) = (
        complete_runs(&sequential.join("sweep")),
        complete_runs(&parallel.join("sweep")),
    );
    assert_eq!(a.len(), 4);
    assert_eq!(
        a.iter().map(|p| p.file_name()).collect::<Vec<_>>(),
        b.iter().map(|p| p.file_name()).collect::<Vec<_>>(),
        "the same run ids"
    );
    for (seq, par) in a.iter().zip(&b) {
        assert_eq!(
            json(&seq.join("result.json"))["test"],
            json(&par.join("result.json"))["test"]
        );
        assert_eq!(prompts(seq), prompts(par), "{}", par.display());
        let environment = json(&par.join("environment.json"));
        assert_eq!(
            environment["threads"],
            cores / jobs,
            "cores / jobs threads per run"
        );
        // The worker that ran it (from its line) had device 0 or 1 in turn.
        let id = par.file_name().unwrap().to_string_lossy().into_owned();
        let line = log
            .lines()
            .position(|l| l.contains(&id))
            .map(|i| log.lines().nth(i - 1).unwrap())
            .unwrap_or_else(|| panic!("no line for {id}:\n{log}"));
        let worker: usize = line
            .split(", worker ")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .and_then(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("{line}"));
        assert_eq!(
            environment["cuda_visible_devices"],
            ["0", "1"][worker % 2],
            "{line}"
        );
    }
}

#[test]
fn a_failing_run_does_not_stop_the_others_and_the_summary_names_its_error_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.safetensors");
    let file = experiment(
        dir.path(),
        "failing",
        &format!(
            "[[sweep.zip]]\n\"model.source\" = [\"random:tiny\", {:?}, \"random:tiny\"]\n\"seed\" = [1, 2, 3]\n",
            missing.display().to_string()
        ),
    );
    let runs = dir.path().join("runs");
    let output = mvlpt(&[
        "run",
        file.to_str().unwrap(),
        "--set",
        &runs_set(&runs),
        "--jobs",
        "2",
    ]);
    assert!(!output.status.success());
    let log = text(&output);
    assert_eq!(complete_runs(&runs.join("failing")).len(), 2, "{log}");
    assert!(log.contains("1 run(s) failed:"), "{log}");
    let failed = log
        .lines()
        .skip_while(|l| !l.contains("1 run(s) failed:"))
        .nth(1)
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        failed.contains("index 1") && failed.contains("missing.safetensors"),
        "{failed}"
    );
    let error_file = log
        .lines()
        .skip_while(|l| !l.contains("1 run(s) failed:"))
        .nth(2)
        .unwrap()
        .trim()
        .to_string();
    assert!(
        error_file.ends_with("error.txt") && Path::new(&error_file).is_file(),
        "{log}"
    );
}

#[test]
fn a_pipeline_runs_stage_by_stage_with_two_workers() {
    let dir = tempfile::tempdir().unwrap();
    experiment(dir.path(), "source", "[sweep]\nseeds = [1, 2, 3]\n");
    let target = experiment(dir.path(), "target", "");
    let text_of_target = std::fs::read_to_string(&target)
        .unwrap()
        .replace("[method]\n", "[method]\ninit_from = \"@source-avg\"\n");
    std::fs::write(&target, text_of_target).unwrap();
    let pipeline = dir.path().join("pipeline.toml");
    std::fs::write(
        &pipeline,
        "name = \"study\"\n[executor]\njobs = 2\n[[stages]]\nname = \"source\"\nexperiment = \"source.toml\"\n\
         [[stages]]\nname = \"source-avg\"\naverage = \"source\"\n\
         [[stages]]\nname = \"target\"\nexperiment = \"target.toml\"\n",
    )
    .unwrap();
    let runs = dir.path().join("runs");
    // Two workers from the pipeline file's [executor].
    let output = mvlpt(&["run", pipeline.to_str().unwrap(), "--set", &runs_set(&runs)]);
    let log = text(&output);
    assert!(output.status.success(), "{log}");
    assert!(log.contains("worker 1"), "{log}");
    assert_eq!(complete_runs(&runs.join("study/source")).len(), 3);
    assert_eq!(complete_runs(&runs.join("study/target")).len(), 1);
    let target_run = &complete_runs(&runs.join("study/target"))[0];
    let started = json(&target_run.join("environment.json"))["started_unix_seconds"]
        .as_u64()
        .unwrap();
    let averaged = std::fs::metadata(runs.join("study/source-avg/index.json"))
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        started >= averaged,
        "the target started after the average was written"
    );
}
