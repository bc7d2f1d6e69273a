//! The Slurm executor against a real Slurm (tools/slurm-local.sh starts a single-node cluster
//! on this machine; `.ci/run` does so and sets SLURM_TESTS_REQUIRED=1). Without Slurm these tests
//! say why and pass, unless SLURM_TESTS_REQUIRED=1, when a missing Slurm fails them.
//!
//! - the quickstart sweep submitted as an array gives the report of a local sequential run;
//! - an array task cancelled mid-run (`scancel` of one task) leaves a resumable run that
//!   `mvlpt status` shows as pending, and re-submitting the same command runs only that one,
//!   ending with prompts bit-identical to an uninterrupted run;
//! - a two-stage multitask pipeline's target array waits (`afterok`) for the source array and
//!   the average.

use candle_core::Device;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One test at a time: they share the cluster's two cores.
static SERIAL: Mutex<()> = Mutex::new(());

/// Whether Slurm answers; panics when it must (SLURM_TESTS_REQUIRED=1) and does not.
fn slurm_available(test: &str) -> bool {
    let answers = Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
    if !answers {
        let required = std::env::var("SLURM_TESTS_REQUIRED").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "SLURM_TESTS_REQUIRED=1 but `sinfo` does not answer: start Slurm with \
             tools/slurm-local.sh start and export SLURM_CONF"
        );
        eprintln!(
            "skipping {test}: no Slurm here (`sinfo` does not answer; tools/slurm-local.sh start \
             runs one, SLURM_TESTS_REQUIRED=1 makes this test required)"
        );
    }
    answers
}

fn mvlpt(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mvlpt"));
    for (key, _) in std::env::vars() {
        if key.starts_with("MVLPT_") || key == "RAYON_NUM_THREADS" {
            command.env_remove(key);
        }
    }
    command.args(args).output().unwrap()
}

fn ok(args: &[&str]) -> String {
    let output = mvlpt(args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "mvlpt {args:?} failed:\n{text}");
    text
}

/// The job ids `mvlpt run --executor slurm` printed.
fn job_ids(output: &str) -> Vec<String> {
    output
        .lines()
        .find_map(|l| l.strip_prefix("job ids: "))
        .unwrap_or_else(|| panic!("no job ids in:\n{output}"))
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// Waits until none of `jobs` is in the queue.
fn wait_for(jobs: &[String], limit: Duration) {
    let started = Instant::now();
    loop {
        let output = Command::new("squeue")
            .args(["-h", "-o", "%i", "-j"])
            .arg(jobs.join(","))
            .output()
            .unwrap();
        if String::from_utf8_lossy(&output.stdout).trim().is_empty() {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "jobs {jobs:?} still queued after {limit:?}:\n{}",
            String::from_utf8_lossy(&output.stdout)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn runs_set(runs: &Path) -> String {
    format!("output.runs_dir={:?}", runs.display().to_string())
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn prompts(run: &Path) -> HashMap<String, Vec<u32>> {
    candle_core::safetensors::load(run.join("prompts.safetensors"), &Device::Cpu)
        .unwrap()
        .into_iter()
        .map(|(k, t)| {
            let values: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
            (k, values.iter().map(|v| v.to_bits()).collect())
        })
        .collect()
}

fn complete_runs(root: &Path) -> Vec<PathBuf> {
    let mut runs: Vec<PathBuf> = std::fs::read_dir(root)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    runs.retain(|p| p.join("COMPLETE").is_file());
    runs.sort();
    runs
}

/// A temporary folder below the repository (the jobs run as this user from its directory).
fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mvlpt-slurm-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_quickstart_as_a_job_array_reports_what_a_sequential_run_reports() {
    if !slurm_available("the quickstart array test") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = scratch("quickstart");
    let short = ["--set", "train.epochs=2", "--set", "sweep.seeds=[1]"];
    let (local, cluster) = (dir.join("local"), dir.join("cluster"));
    let exp = std::path::absolute("experiments/quickstart.toml").unwrap();
    let exp = exp.to_str().unwrap();

    let mut args = vec!["run", exp, "--set"];
    let local_set = runs_set(&local);
    args.push(&local_set);
    args.extend(short);
    ok(&args);

    let cluster_set = runs_set(&cluster);
    let mut args = vec!["run", exp, "--executor", "slurm", "--set", &cluster_set];
    args.extend(short);
    let dry = {
        let mut dry = args.clone();
        dry.push("--dry-run");
        ok(&dry)
    };
    assert!(dry.contains("--dry-run: nothing submitted"), "{dry}");
    let script =
        std::fs::read_to_string(cluster.join("quickstart/slurm/quickstart.sbatch")).unwrap();
    assert!(script.contains("#SBATCH --array=0-3\n"), "{script}");
    assert!(
        script.contains("'--index' \"$(( 0 + SLURM_ARRAY_TASK_ID ))\""),
        "{script}"
    );
    assert!(!cluster.join("quickstart/slurm/jobs.json").exists());

    let submitted = ok(&args);
    let jobs = job_ids(&submitted);
    assert_eq!(jobs.len(), 1, "{submitted}");
    wait_for(&jobs, Duration::from_secs(600));
    let status = ok(&[
        "status",
        exp,
        "--set",
        &cluster_set,
        "--set",
        "train.epochs=2",
        "--set",
        "sweep.seeds=[1]",
    ]);
    assert!(
        status.contains("4 entries: 4 complete, 0 running, 0 failed, 0 pending"),
        "{status}"
    );

    ok(&["report", local.join("quickstart").to_str().unwrap()]);
    ok(&["report", cluster.join("quickstart").to_str().unwrap()]);
    let table = |root: &Path| json(&root.join("quickstart/report.json"));
    assert_eq!(table(&local), table(&cluster), "the same report");
    for run in complete_runs(&cluster.join("quickstart")) {
        let environment = json(&run.join("environment.json"));
        assert!(
            environment["slurm_job"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{}_", jobs[0])),
            "{environment}"
        );
    }
}

/// A run long enough to cancel in the middle.
fn long_experiment(dir: &Path) -> PathBuf {
    let path = dir.join("long.toml");
    std::fs::write(
        &path,
        r#"name = "long"
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
[sweep]
seeds = [1, 2]
"#,
    )
    .unwrap();
    path
}

fn checkpointed(run: &Path) -> u64 {
    std::fs::read_to_string(run.join("checkpoints/last.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v["epochs_done"].as_u64())
        .unwrap_or(0)
}

#[test]
fn a_cancelled_task_is_resumed_by_resubmitting_to_bit_identical_prompts() {
    if !slurm_available("the scancel test") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = scratch("scancel");
    let file = long_experiment(&dir);
    let file = file.to_str().unwrap();
    let (straight, cluster) = (dir.join("straight"), dir.join("cluster"));
    ok(&["run", file, "--set", &runs_set(&straight)]);

    let set = runs_set(&cluster);
    let first = job_ids(&ok(&["run", file, "--executor", "slurm", "--set", &set]));
    let plan = json(&cluster.join("long/plan.json"));
    let run0 = PathBuf::from(plan["entries"][0]["dir"].as_str().unwrap());
    let started = Instant::now();
    while checkpointed(&run0) < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "task 0 never checkpointed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = ok(&["status", file, "--set", &set]);
    assert!(status.contains(" running "), "{status}");
    let cancelled = Command::new("scancel")
        .arg(format!("{}_0", first[0]))
        .status()
        .unwrap();
    assert!(cancelled.success());
    wait_for(&first, Duration::from_secs(600));
    assert!(
        !run0.join("COMPLETE").exists(),
        "task 0 was cancelled before it finished"
    );

    let status = ok(&["status", file, "--set", &set]);
    assert!(
        status.contains("2 entries: 1 complete, 0 running, 0 failed, 1 pending"),
        "{status}"
    );
    let line = status.lines().find(|l| l.starts_with("0 ")).unwrap();
    assert!(
        line.contains("pending") && line.contains("resumes after epoch"),
        "{line}"
    );

    let again = ok(&["run", file, "--executor", "slurm", "--set", &set]);
    assert!(
        again.contains("stage long: 1 entry in"),
        "only the cancelled run: {again}"
    );
    let script = std::fs::read_to_string(cluster.join("long/slurm/long.sbatch")).unwrap();
    assert!(script.contains("#SBATCH --array=0\n"), "{script}");
    wait_for(&job_ids(&again), Duration::from_secs(600));
    let status = ok(&["status", file, "--set", &set]);
    assert!(status.contains("2 entries: 2 complete"), "{status}");

    let log = std::fs::read_to_string(run0.join("log.txt")).unwrap();
    assert!(log.contains("resuming after epoch"), "{log}");
    let reference = straight.join("long").join(run0.file_name().unwrap());
    assert_eq!(prompts(&reference), prompts(&run0), "bit-identical prompts");
    assert_eq!(
        json(&reference.join("result.json"))["test"],
        json(&run0.join("result.json"))["test"]
    );
    let epochs: Vec<u64> = std::fs::read_to_string(run0.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok()?["epoch"].as_u64())
        .collect();
    assert_eq!(epochs, (1..=40).collect::<Vec<_>>(), "each epoch once");
}

#[test]
fn a_pipeline_target_array_waits_for_its_source_array() {
    if !slurm_available("the pipeline dependency test") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = scratch("pipeline");
    let experiment = |name: &str, tasks: &[&str], extra: &str| {
        let tables: String = tasks
            .iter()
            .map(|t| format!("[data.{t}]\ntrain_size = 48\nval_size = 16\ntest_size = 16\n"))
            .collect();
        std::fs::write(
            dir.join(format!("{name}.toml")),
            format!(
                "name = \"{name}\"\n[model]\nsource = \"random:tiny\"\n[data]\ntasks = {tasks:?}\n\
                 fewshot = \"dassl\"\nshots = 2\nbatch_size = 8\n{tables}[method]\nname = \"coop\"\n\
                 {extra}[method.coop]\nn_ctx = 2\n[train]\nepochs = 3\nlr = 0.01\n"
            ),
        )
        .unwrap();
    };
    experiment("source", &["synthetic_shape", "synthetic_colour"], "");
    std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("source.toml"))
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"[sweep]\nseeds = [1, 2]\n"))
        .unwrap();
    experiment(
        "target",
        &["synthetic_position", "synthetic_count"],
        "init_from = \"@source-avg\"\n",
    );
    let pipeline = dir.join("pipeline.toml");
    std::fs::write(
        &pipeline,
        "name = \"study\"\n[[stages]]\nname = \"source\"\nexperiment = \"source.toml\"\n\
         [[stages]]\nname = \"source-avg\"\naverage = \"source\"\n\
         [[stages]]\nname = \"target\"\nexperiment = \"target.toml\"\n",
    )
    .unwrap();
    let file = pipeline.to_str().unwrap();
    let (local, cluster) = (dir.join("local"), dir.join("cluster"));
    ok(&["run", file, "--set", &runs_set(&local)]);

    let set = runs_set(&cluster);
    let submitted = ok(&["run", file, "--executor", "slurm", "--set", &set]);
    let jobs = job_ids(&submitted);
    assert_eq!(jobs.len(), 3, "one array per stage: {submitted}");
    assert!(
        submitted.contains(&format!(
            "stage target: submitted job {} (after {}, {})",
            jobs[2], jobs[0], jobs[1]
        )),
        "{submitted}"
    );
    let dependency = Command::new("scontrol")
        .args(["show", "job", &jobs[2]])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&dependency.stdout).into_owned();
    assert!(
        shown.contains(&format!("Dependency=afterok:{}", jobs[0]))
            || shown.contains("Dependency=(null)"),
        "{shown}"
    );
    wait_for(&jobs, Duration::from_secs(600));

    let sources = complete_runs(&cluster.join("study/source"));
    let targets = complete_runs(&cluster.join("study/target"));
    assert_eq!((sources.len(), targets.len()), (2, 1));
    let averaged = std::fs::metadata(cluster.join("study/source-avg/index.json"))
        .unwrap()
        .modified()
        .unwrap();
    for source in &sources {
        let done = std::fs::metadata(source.join("COMPLETE"))
            .unwrap()
            .modified()
            .unwrap();
        assert!(
            done <= averaged,
            "the average waited for {}",
            source.display()
        );
    }
    let target_started = json(&targets[0].join("environment.json"))["started_unix_seconds"]
        .as_u64()
        .unwrap();
    let averaged_at = averaged
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        target_started >= averaged_at,
        "the target waited for the average"
    );
    // The same results as the pipeline run in one process.
    let local_target = &complete_runs(&local.join("study/target"))[0];
    assert_eq!(
        json(&local_target.join("result.json"))["per_task"],
        json(&targets[0].join("result.json"))["per_task"]
    );
    assert_eq!(prompts(local_target), prompts(&targets[0]));
}
