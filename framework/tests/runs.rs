//! Run directories, sweeps, the run loop and reports, driven by a stand-in engine (the real
//! training engine is tested on its own): what a run directory holds and in which order it
//! is written, skipping, forcing and resuming, sweep expansion, failure isolation, plugin
//! name checks, atomic writes and the report's statistics.

use anyhow::{bail, Result};
use mvlpt_framework::config::{LoadedConfig, Section};
use mvlpt_framework::data::{BatchSampler, Dataset, DatasetContext, FewShotProtocol};
use mvlpt_framework::engine::Progress;
use mvlpt_framework::eval::Evaluator;
use mvlpt_framework::method::PromptLearner;
use mvlpt_framework::plugin::{Factory, NoOptions, Origin, Plugin, PluginKind, Registry};
use mvlpt_framework::run::report::{aggregate, collect};
use mvlpt_framework::run::{
    check_plans, execute_runs, expand_sweep, init_run_logging, plan_runs, run_id, DirLock,
    LockAttempt, MetricsLog, Outcome, RunDir, RunResult, RunState,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Run logging goes to one global file target: tests that run or log take turns.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

// Stand-in plugins: the run loop only checks that the names exist.
fn no_method(_: &Section<'_>) -> Result<Box<dyn PromptLearner>> {
    bail!("stand-in")
}
fn no_dataset(_: &DatasetContext<'_>) -> Result<Box<dyn Dataset>> {
    bail!("stand-in")
}
fn no_fewshot(_: &Section<'_>) -> Result<Box<dyn FewShotProtocol>> {
    bail!("stand-in")
}
fn no_sampler(_: &Section<'_>) -> Result<Box<dyn BatchSampler>> {
    bail!("stand-in")
}
fn no_evaluator(_: &Section<'_>) -> Result<Box<dyn Evaluator>> {
    bail!("stand-in")
}
mvlpt_framework::register_plugin!(Method, "test_coop", "stand-in method", no_method, NoOptions);
mvlpt_framework::register_plugin!(Method, "test_vpt", "stand-in method", no_method, NoOptions);
mvlpt_framework::register_plugin!(
    Dataset,
    "test_pets",
    "stand-in dataset",
    no_dataset,
    NoOptions
);
mvlpt_framework::register_plugin!(
    Dataset,
    "test_dtd",
    "stand-in dataset",
    no_dataset,
    NoOptions
);
mvlpt_framework::register_plugin!(
    FewShot,
    "test_fewshot",
    "stand-in protocol",
    no_fewshot,
    NoOptions
);
mvlpt_framework::register_plugin!(
    Sampler,
    "test_sampler",
    "stand-in sampler",
    no_sampler,
    NoOptions
);
mvlpt_framework::register_plugin!(
    Evaluator,
    "test_eval",
    "stand-in evaluator",
    no_evaluator,
    NoOptions
);

fn tempdir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mvlpt-runs-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An experiment file naming the stand-in plugins, writing runs under `dir/runs`.
fn experiment(dir: &Path, extra: &str) -> PathBuf {
    let text = format!(
        "name = \"exp\"\n{extra}\n[output]\nruns_dir = {:?}\n[method]\nname = \"test_coop\"\n\
         [data]\ndataset = \"test_pets\"\nfewshot = \"test_fewshot\"\nsampler = \"test_sampler\"\n\
         [eval]\nevaluator = \"test_eval\"\n",
        dir.join("runs").display().to_string()
    );
    let path = dir.join("exp.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn sets(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn registry() -> Registry {
    Registry::builtin().unwrap()
}

/// What the stand-in engine reports: a value that depends on the run's settings.
fn fake_result(config: &LoadedConfig) -> RunResult {
    let c = &config.config;
    RunResult {
        experiment: String::new(),
        run_id: String::new(),
        method: c.method.name.clone(),
        dataset: c.data.dataset.clone(),
        shots: c.data.shots,
        seed: c.seed,
        test: 0.5 + c.seed as f64 / 100.0,
        val: Some(0.4),
        metrics: BTreeMap::from([("accuracy".to_string(), 0.5)]),
        per_task: Vec::new(),
        diagnostics: BTreeMap::new(),
        epochs: c.train.epochs,
        wall_seconds: 0.0,
    }
}

/// Trains for two "epochs": a log line, a metrics line and a checkpoint each.
fn fake_training(config: &LoadedConfig, dir: &RunDir) -> Result<RunResult> {
    let mut metrics = dir.metrics()?;
    dir.checkpoint_dir()?;
    for epoch in 1..=2 {
        tracing::info!(
            "stand-in engine: epoch {epoch} of seed {}",
            config.config.seed
        );
        metrics.append(&serde_json::json!({"epoch": epoch, "loss": 1.0 / epoch as f64}))?;
        mvlpt_framework::io::write_atomic(&dir.checkpoint_path(epoch), b"weights")?;
    }
    Ok(fake_result(config))
}

fn files_below(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_below(&path));
        } else {
            out.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    out
}

#[test]
fn a_run_directory_holds_every_record_and_complete_is_written_last() {
    let _serial = serial();
    let dir = tempdir("contents");
    std::fs::write(dir.join("common.toml"), "[train]\nepochs = 3\n").unwrap();
    let file = experiment(&dir, "extends = [\"common.toml\"]");
    let base = LoadedConfig::load(Some(&file), &sets(&["data.shots=4"])).unwrap();
    let registry = registry();
    let plans = plan_runs(&base, &registry).unwrap();
    check_plans(&plans).unwrap();
    assert_eq!(plans.len(), 1);
    let engine = |config: &LoadedConfig, _: &Registry, dir: &RunDir| {
        assert!(!dir.file("COMPLETE").exists() && !dir.file("result.json").exists());
        assert!(dir.file("config.toml").is_file() && dir.file("environment.json").is_file());
        fake_training(config, dir)
    };
    let reports = execute_runs(&plans, &registry, &engine, false);
    let Outcome::Completed(result) = &reports[0].outcome else {
        panic!("{:?}", reports[0].outcome);
    };
    let run = &plans[0].dir;
    assert_eq!(run.path(), dir.join("runs/exp").join(run.run_id()));
    assert_eq!(run.run_id().len(), 12);
    assert!(run.run_id().chars().all(|c| c.is_ascii_hexdigit()));

    // The resolved config loads back into the same run directory.
    let reloaded = LoadedConfig::load(Some(&run.file("config.toml")), &[]).unwrap();
    assert_eq!(RunDir::for_config(&reloaded.config).unwrap(), *run);
    assert_eq!(reloaded.config.data.shots, 4);
    assert_eq!(
        reloaded.config.train.epochs, 3,
        "values from extended files are resolved"
    );

    let provenance: BTreeMap<String, String> =
        serde_json::from_str(&std::fs::read_to_string(run.file("provenance.json")).unwrap())
            .unwrap();
    assert_eq!(provenance["data.shots"], "--set data.shots=4");
    assert!(provenance["method.name"].contains("exp.toml"));
    assert!(provenance["train.lr"].contains("built-in"));
    assert!(provenance["train.epochs"].contains("common.toml"));

    let environment: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.file("environment.json")).unwrap())
            .unwrap();
    assert_eq!(environment["mvlpt_version"], mvlpt_framework::version());
    assert_eq!(environment["seed"], 1);
    assert_eq!(environment["device"], "cpu");
    assert!(environment["threads"].as_u64().unwrap() >= 1);
    assert_eq!(
        environment["features"].as_array().unwrap().len(),
        usize::from(cfg!(feature = "cuda"))
    );
    assert!(environment.get("git_commit").is_some());

    let log = std::fs::read_to_string(run.file("log.txt")).unwrap();
    assert!(log.contains("stand-in engine: epoch 2 of seed 1"), "{log}");
    assert!(log.contains("starting in"), "{log}");
    assert!(!log.contains("\u{1b}["), "no colour codes in the file");

    let metrics = MetricsLog::read(&run.file("metrics.jsonl")).unwrap();
    assert_eq!(metrics.len(), 2);
    assert_eq!(metrics[1]["epoch"], 2);
    assert_eq!(run.latest_checkpoint().unwrap().unwrap().0, 2);

    let stored: RunResult =
        serde_json::from_str(&std::fs::read_to_string(run.file("result.json")).unwrap()).unwrap();
    assert_eq!(&stored, result.as_ref());
    assert_eq!(stored.experiment, "exp");
    assert_eq!(stored.run_id, run.run_id());
    assert_eq!(run.state(), RunState::Complete);
    let files = files_below(run.path());
    assert!(
        !files.iter().any(|f| f.starts_with('.') && f != ".lock"),
        "temporary files left: {files:?}"
    );
    assert!(
        files.contains(&".lock".to_string()),
        "the run lock file stays"
    );
    assert!(!files.contains(&"error.txt".to_string()));
}

#[test]
fn complete_is_not_written_when_the_result_cannot_be() {
    let _serial = serial();
    let dir = tempdir("no-result");
    let file = experiment(&dir, "");
    let base = LoadedConfig::load(Some(&file), &[]).unwrap();
    let registry = registry();
    let plans = plan_runs(&base, &registry).unwrap();
    // A directory where result.json should go makes its write (the rename) fail.
    let engine = |config: &LoadedConfig, _: &Registry, dir: &RunDir| {
        std::fs::create_dir_all(dir.file("result.json").join("blocker"))?;
        Ok(fake_result(config))
    };
    let reports = execute_runs(&plans, &registry, &engine, false);
    assert!(matches!(&reports[0].outcome, Outcome::Failed(m) if m.contains("result.json")));
    assert_eq!(plans[0].dir.state(), RunState::Incomplete);
    assert!(plans[0].dir.file("error.txt").is_file());
}

#[test]
fn complete_runs_are_skipped_unless_forced() {
    let _serial = serial();
    let dir = tempdir("skip");
    let file = experiment(&dir, "");
    let base = LoadedConfig::load(Some(&file), &[]).unwrap();
    let registry = registry();
    let plans = plan_runs(&base, &registry).unwrap();
    let calls = AtomicUsize::new(0);
    let engine = |config: &LoadedConfig, _: &Registry, dir: &RunDir| {
        calls.fetch_add(1, Ordering::SeqCst);
        fake_training(config, dir)
    };
    execute_runs(&plans, &registry, &engine, false);
    let again = execute_runs(&plans, &registry, &engine, false);
    assert!(matches!(again[0].outcome, Outcome::Skipped));
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    let stray = plans[0].dir.file("stray.txt");
    std::fs::write(&stray, "left from before").unwrap();
    let forced = execute_runs(&plans, &registry, &engine, true);
    assert!(matches!(forced[0].outcome, Outcome::Completed(_)));
    assert!(!forced[0].resumed);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(!stray.exists(), "--force starts from an empty directory");
    assert_eq!(
        MetricsLog::read(&plans[0].dir.file("metrics.jsonl"))
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn an_incomplete_run_resumes_from_its_last_checkpoint() {
    let _serial = serial();
    let dir = tempdir("resume");
    let file = experiment(&dir, "");
    let base = LoadedConfig::load(Some(&file), &[]).unwrap();
    let registry = registry();
    let plans = plan_runs(&base, &registry).unwrap();
    let interrupted = |_: &LoadedConfig, _: &Registry, dir: &RunDir| -> Result<RunResult> {
        mvlpt_framework::io::write_atomic(&dir.checkpoint_path(1), b"epoch 1")?;
        bail!("interrupted after epoch 1")
    };
    let first = execute_runs(&plans, &registry, &interrupted, false);
    assert!(matches!(&first[0].outcome, Outcome::Failed(m) if m.contains("interrupted")));
    let run = &plans[0].dir;
    assert_eq!(run.state(), RunState::Incomplete);
    assert!(std::fs::read_to_string(run.file("error.txt"))
        .unwrap()
        .contains("interrupted after epoch 1"));

    let seen = Mutex::new(None);
    let resuming = |config: &LoadedConfig, _: &Registry, dir: &RunDir| {
        *seen.lock().unwrap() = dir.latest_checkpoint()?;
        Ok(fake_result(config))
    };
    let second = execute_runs(&plans, &registry, &resuming, false);
    assert!(second[0].resumed);
    assert!(matches!(second[0].outcome, Outcome::Completed(_)));
    assert_eq!(seen.lock().unwrap().as_ref().unwrap().0, 1);
    assert!(!run.file("error.txt").exists());
    let log = std::fs::read_to_string(run.file("log.txt")).unwrap();
    assert!(log.contains("interrupted after epoch 1"), "{log}");
    assert!(log.contains("resuming after epoch 1"), "{log}");
}

#[test]
fn a_resumed_run_loses_stale_temporary_files_and_metrics_after_its_checkpoint() {
    let _serial = serial();
    let dir = tempdir("repair");
    let file = experiment(&dir, "");
    let base = LoadedConfig::load(Some(&file), &[]).unwrap();
    let registry = registry();
    let plans = plan_runs(&base, &registry).unwrap();
    let run = &plans[0].dir;
    // What a process killed in epoch 6 leaves: epochs 1-5 logged (and a torn sixth line), the
    // checkpoint of epoch 3 (checkpoint_every = 3), temporary files of unfinished writes.
    std::fs::create_dir_all(run.file("checkpoints")).unwrap();
    let mut metrics = String::new();
    for epoch in 1..=5 {
        metrics.push_str(&format!("{{\"epoch\":{epoch},\"loss\":0.5}}\n"));
    }
    metrics.push_str("{\"epoch\":6,\"lo");
    std::fs::write(run.file("metrics.jsonl"), metrics).unwrap();
    std::fs::write(
        run.file("checkpoints/last.json"),
        "{\"epochs_done\": 3, \"tensors\": \"epoch-3.safetensors\"}",
    )
    .unwrap();
    std::fs::write(run.file("checkpoints/epoch-3.safetensors"), b"weights").unwrap();
    let stale = [
        run.file(".result.json.tmp-4242"),
        run.file("checkpoints/.epoch-6.safetensors.tmp-4242"),
        run.file("checkpoints/.last.json.tmp-17"),
    ];
    for path in &stale {
        std::fs::write(path, b"half").unwrap();
    }
    let keep = run.file(".notes.tmp-draft");
    std::fs::write(&keep, b"not ours").unwrap();

    let seen = Mutex::new(Vec::new());
    let engine = |config: &LoadedConfig, _: &Registry, dir: &RunDir| {
        *seen.lock().unwrap() = MetricsLog::read(&dir.file("metrics.jsonl"))?;
        let mut metrics = dir.metrics()?;
        for epoch in 4..=6 {
            metrics.append(&serde_json::json!({"epoch": epoch, "loss": 0.25}))?;
        }
        Ok(fake_result(config))
    };
    let reports = execute_runs(&plans, &registry, &engine, false);
    assert!(reports[0].resumed);
    assert!(matches!(reports[0].outcome, Outcome::Completed(_)));
    let before: Vec<u64> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|r| r["epoch"].as_u64().unwrap())
        .collect();
    assert_eq!(before, [1, 2, 3], "cut back to the checkpointed epoch");
    let after: Vec<u64> = MetricsLog::read(&run.file("metrics.jsonl"))
        .unwrap()
        .iter()
        .map(|r| r["epoch"].as_u64().unwrap())
        .collect();
    assert_eq!(after, [1, 2, 3, 4, 5, 6], "every epoch exactly once");
    for path in &stale {
        assert!(!path.exists(), "{} left behind", path.display());
    }
    assert!(
        keep.exists(),
        "only write_atomic's temporary names are removed"
    );
    let log = std::fs::read_to_string(run.file("log.txt")).unwrap();
    assert!(log.contains("metrics.jsonl cut back to epoch 3"), "{log}");
    assert!(log.contains(".result.json.tmp-4242"), "{log}");
}

#[test]
fn a_locked_run_is_waited_for_and_force_never_clears_it_while_held() {
    let _serial = serial();
    let dir = tempdir("locked");
    let file = experiment(&dir, "");
    let base = LoadedConfig::load(Some(&file), &[]).unwrap();
    let registry = registry();
    let plans = plan_runs(&base, &registry).unwrap();
    let engine = |config: &LoadedConfig, _: &Registry, dir: &RunDir| fake_training(config, dir);
    execute_runs(&plans, &registry, &engine, false);
    let run = plans[0].dir.clone();
    assert!(run.is_complete());

    // Another holder (here: a second open file description in this process, which flock
    // treats like another process).
    let LockAttempt::Acquired(lock) = DirLock::try_acquire(run.path()).unwrap() else {
        panic!("the run is free");
    };
    let LockAttempt::Held(holder) = DirLock::try_acquire(run.path()).unwrap() else {
        panic!("a second lock must not be granted");
    };
    assert_eq!(holder.pid, std::process::id());
    assert!(!holder.host.is_empty());
    assert_eq!(DirLock::holder(run.path()).unwrap(), Some(holder.clone()));
    assert!(holder
        .to_string()
        .starts_with(&format!("pid {} on host ", std::process::id())));

    let forced = std::thread::scope(|scope| {
        let worker = scope.spawn(|| execute_runs(&plans, &registry, &engine, true));
        std::thread::sleep(Duration::from_millis(700));
        assert!(!worker.is_finished(), "it waits for the lock");
        assert!(
            run.is_complete() && run.file("result.json").is_file(),
            "--force did not touch the held directory"
        );
        drop(lock);
        worker.join().unwrap()
    });
    assert!(matches!(forced[0].outcome, Outcome::Completed(_)));
    assert_eq!(DirLock::holder(run.path()).unwrap(), None, "released");
    assert_eq!(
        MetricsLog::read(&run.file("metrics.jsonl")).unwrap().len(),
        2,
        "started over once"
    );
}

const SWEEP: &str = r#"
[sweep]
seeds = [1, 2]
[sweep.grid]
"method.name" = ["test_coop", "test_vpt"]
"data.shots" = [1, 4]
[[sweep.zip]]
"data.dataset" = ["test_pets", "test_dtd"]
"train.epochs" = [5, 7]
"#;

#[test]
fn a_sweep_expands_grid_times_zip_times_seeds_with_sweep_provenance() {
    let dir = tempdir("sweep");
    let file = experiment(&dir, SWEEP);
    let base = LoadedConfig::load(Some(&file), &[]).unwrap();
    let specs = expand_sweep(&base).unwrap();

    let mut expected = BTreeSet::new();
    for seed in [1u64, 2] {
        for method in ["test_coop", "test_vpt"] {
            for shots in [1usize, 4] {
                for (dataset, epochs) in [("test_pets", 5usize), ("test_dtd", 7)] {
                    expected.insert((method.to_string(), shots, dataset.to_string(), epochs, seed));
                }
            }
        }
    }
    let mut got = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for (i, spec) in specs.iter().enumerate() {
        assert_eq!(spec.index, i);
        let loaded = spec.load(&base).unwrap();
        let c = &loaded.config;
        got.insert((
            c.method.name.clone(),
            c.data.shots,
            c.data.dataset.clone(),
            c.train.epochs,
            c.seed,
        ));
        ids.insert(run_id(c).unwrap());
        let provenance = loaded.provenance();
        for key in [
            "method.name",
            "data.shots",
            "data.dataset",
            "train.epochs",
            "seed",
        ] {
            assert_eq!(provenance[key], "sweep", "{key}");
        }
        assert!(provenance["train.lr"].contains("built-in"));
        assert_eq!(c.name, "exp");
    }
    assert_eq!(specs.len(), 16);
    assert_eq!(got, expected);
    assert_eq!(ids.len(), 16, "every run has its own directory");
    // Seed by seed: the first half of the runs all use the first seed.
    assert!(specs[..8]
        .iter()
        .all(|s| s.load(&base).unwrap().config.seed == 1));
    assert!(specs[0]
        .describe()
        .starts_with("data.shots=1 method.name=test_coop"));

    let plans = plan_runs(&base, &registry()).unwrap();
    check_plans(&plans).unwrap();
    let swept = &plans[3];
    swept.dir.create().unwrap();
    swept.dir.write_config(&swept.config().unwrap()).unwrap();
    let text = std::fs::read_to_string(swept.dir.file("config.toml")).unwrap();
    assert!(
        !text.contains("[sweep"),
        "a run's config describes that run only:\n{text}"
    );
    let provenance = std::fs::read_to_string(swept.dir.file("provenance.json")).unwrap();
    assert!(
        provenance.contains("\"data.dataset\": \"sweep\""),
        "{provenance}"
    );
    assert!(!provenance.contains("sweep.grid"), "{provenance}");
}

#[test]
fn sweep_mistakes_are_reported_before_anything_runs() {
    let dir = tempdir("sweep-errors");
    let cases: [(&str, &[&str], &str); 6] = [
        (
            "[sweep.grid]\n\"data.shots\" = []\n",
            &[],
            "lists no values",
        ),
        (
            "[[sweep.zip]]\n\"data.shots\" = [1, 2]\n\"train.epochs\" = [3]\n",
            &[],
            "same length",
        ),
        (
            "[sweep]\nseeds = [1]\n[sweep.grid]\nseed = [1, 2]\n",
            &[],
            "more than once",
        ),
        (
            "[sweep.grid]\n\"data.shots\" = [1, 2]\n",
            &["data.shots=8"],
            "--set data.shots=8",
        ),
        (
            "[sweep.grid]\n\"train.learning_rate\" = [0.1]\n",
            &[],
            "learning_rate",
        ),
        ("[sweep.grid]\n\"train.lr\" = [\"fast\"]\n", &[], "sweep"),
    ];
    for (sweep, extra_sets, expected) in cases {
        let file = experiment(&dir, sweep);
        let error = LoadedConfig::load(Some(&file), &sets(extra_sets))
            .and_then(|base| plan_runs(&base, &registry()))
            .map(|_| ())
            .unwrap_err();
        let message = format!("{error:#}");
        assert!(message.contains(expected), "{sweep}: {message}");
    }
}

#[test]
fn a_failing_run_is_reported_and_the_others_go_on() {
    let _serial = serial();
    let dir = tempdir("failing");
    let file = experiment(&dir, "[sweep]\nseeds = [1, 2, 3]\n");
    let base = LoadedConfig::load(Some(&file), &[]).unwrap();
    let registry = registry();
    let plans = plan_runs(&base, &registry).unwrap();
    let engine = |config: &LoadedConfig, _: &Registry, dir: &RunDir| -> Result<RunResult> {
        match config.config.seed {
            1 => bail!("out of memory in seed 1"),
            2 => panic!("index out of bounds in seed 2"),
            _ => fake_training(config, dir),
        }
    };
    let reports = execute_runs(&plans, &registry, &engine, false);
    assert!(matches!(&reports[0].outcome, Outcome::Failed(m) if m.contains("out of memory")));
    assert!(
        matches!(&reports[1].outcome, Outcome::Failed(m) if m.contains("panicked") && m.contains("index out of bounds"))
    );
    assert!(matches!(reports[2].outcome, Outcome::Completed(_)));
    assert_eq!(
        plans.iter().map(|p| p.dir.state()).collect::<Vec<_>>(),
        [
            RunState::Incomplete,
            RunState::Incomplete,
            RunState::Complete
        ]
    );

    let fixed = |config: &LoadedConfig, _: &Registry, dir: &RunDir| fake_training(config, dir);
    let again = execute_runs(&plans, &registry, &fixed, false);
    assert!(again[0].resumed && again[1].resumed);
    assert!(matches!(again[2].outcome, Outcome::Skipped));
    assert!(plans.iter().all(|p| p.dir.is_complete()));
}

#[test]
fn identical_configs_share_a_run_id_and_result_changes_move_it() {
    let dir = tempdir("ids");
    let file = experiment(&dir, "");
    let id = |extra: &[&str]| {
        let loaded = LoadedConfig::load(Some(&file), &sets(extra)).unwrap();
        run_id(&loaded.config).unwrap()
    };
    let plain = id(&[]);
    assert_eq!(plain, id(&[]));
    assert_eq!(
        plain,
        id(&["train.lr=0.002"]),
        "the default value, given explicitly"
    );
    assert_eq!(plain, id(&["output.runs_dir=elsewhere"]));
    assert_eq!(plain, id(&["description=\"another note\""]));
    assert_eq!(
        plain,
        id(&["executor.jobs=4", "executor.slurm.time=\"1:00:00\""]),
        "how runs are executed is not part of them"
    );
    assert_ne!(plain, id(&["train.lr=0.003"]));
    assert_ne!(plain, id(&["seed=2"]));
    assert_ne!(plain, id(&["method.test_coop.n_ctx=4"]));
}

#[test]
fn unknown_plugin_names_are_reported_with_the_closest_name() {
    let dir = tempdir("unknown-plugin");
    let file = experiment(&dir, "");
    let base = LoadedConfig::load(
        Some(&file),
        &sets(&[
            "method.name=test_cop",
            "data.tasks=[\"test_pets\", \"test_dttd\"]",
        ]),
    )
    .unwrap();
    let plans = plan_runs(&base, &registry()).unwrap();
    let problem = plans[0].problem.as_deref().unwrap();
    assert!(
        problem.contains("unknown method plugin `test_cop`; did you mean `test_coop`?"),
        "{problem}"
    );
    assert!(
        problem.contains("unknown dataset plugin `test_dttd`; did you mean `test_dtd`?"),
        "{problem}"
    );
    assert!(
        problem.contains("method.name") && problem.contains("data.tasks"),
        "{problem}"
    );
    let error = check_plans(&plans).unwrap_err().to_string();
    assert!(error.contains("1 of 1 runs cannot start"), "{error}");

    let engine = |_: &LoadedConfig, _: &Registry, _: &RunDir| -> Result<RunResult> {
        panic!("a run with unknown plugins must not start")
    };
    let _serial = serial();
    let reports = execute_runs(&plans, &registry(), &engine, false);
    assert!(matches!(&reports[0].outcome, Outcome::Failed(m) if m.contains("test_cop")));
    assert_eq!(plans[0].dir.state(), RunState::New);
}

#[test]
fn duplicate_registration_is_an_error_naming_both_origins() {
    let plugin = Plugin {
        name: "twin",
        description: "a method",
        version: "0.1.0",
        factory: Factory::Method(no_method),
        options: mvlpt_framework::plugin::options_of::<NoOptions>,
    };
    let mut registry = Registry::empty();
    registry.add(plugin, Origin::BuiltIn).unwrap();
    let library = Origin::Library(PathBuf::from("/plugins/libtwin.so"));
    let error = registry.add(plugin, library).unwrap_err().to_string();
    assert!(
        error.contains("duplicate method plugin `twin`")
            && error.contains("built-in")
            && error.contains("/plugins/libtwin.so"),
        "{error}"
    );
    // The same name under another kind is a different plugin.
    let dataset = Plugin {
        factory: Factory::Dataset(no_dataset),
        ..plugin
    };
    registry.add(dataset, Origin::BuiltIn).unwrap();
    assert!(registry.contains(PluginKind::Dataset, "twin"));
}

#[test]
fn the_metrics_log_survives_a_torn_last_line() {
    let dir = tempdir("metrics");
    let path = dir.join("metrics.jsonl");
    std::fs::write(&path, "{\"epoch\":1}\n{\"epoch\":2}\n{\"epo").unwrap();
    assert_eq!(MetricsLog::read(&path).unwrap().len(), 2);
    let mut log = MetricsLog::open(&path).unwrap();
    log.append(&serde_json::json!({"epoch": 3})).unwrap();
    let records = MetricsLog::read(&path).unwrap();
    let epochs: Vec<i64> = records
        .iter()
        .map(|r| r["epoch"].as_i64().unwrap())
        .collect();
    assert_eq!(epochs, [1, 2, 3]);
}

#[test]
fn a_failed_atomic_write_keeps_the_previous_file() {
    let dir = tempdir("atomic");
    let file = experiment(&dir, "");
    let base = LoadedConfig::load(Some(&file), &[]).unwrap();
    let run = RunDir::for_config(&base.config).unwrap();
    run.create().unwrap();
    run.write_result(&fake_result(&base)).unwrap();
    let before = std::fs::read(run.file("result.json")).unwrap();
    // JSON object keys must be strings: serialising this map fails half-way.
    let unserialisable: BTreeMap<(u8, u8), u8> = BTreeMap::from([((1, 2), 3)]);
    assert!(run.write_result(&unserialisable).is_err());
    assert_eq!(std::fs::read(run.file("result.json")).unwrap(), before);
    // A failed rename (the target is a directory) leaves no temporary file either.
    std::fs::create_dir_all(run.file("COMPLETE")).unwrap();
    assert!(run.mark_complete().is_err());
    let files = files_below(run.path());
    assert_eq!(files, ["result.json"], "{files:?}");
}

#[test]
fn progress_lines_and_run_logs_go_to_the_run_file_only_while_attached() {
    let _serial = serial();
    let dir = tempdir("progress");
    let file = experiment(&dir, "");
    let base = LoadedConfig::load(Some(&file), &[]).unwrap();
    let run = RunDir::for_config(&base.config).unwrap();
    run.create().unwrap();
    let guard = init_run_logging(&run).unwrap();
    let progress = Progress::lines_every("phase", 4, Duration::ZERO);
    for _ in 0..4 {
        progress.inc(1);
        std::thread::sleep(Duration::from_millis(2));
    }
    progress.finish();
    drop(guard);
    tracing::info!("after the run");
    let log = std::fs::read_to_string(run.file("log.txt")).unwrap();
    assert!(log.contains("phase: 1/4 (25%),"), "{log}");
    assert!(log.contains("phase: 4/4 (100%),"), "{log}");
    assert!(log.contains("it/s, ETA"), "{log}");
    assert!(log.contains("phase: 4 done in"), "{log}");
    assert!(!log.contains("after the run"), "{log}");
}

/// Writes a hand-made complete run: result.json, COMPLETE and (optionally) config.toml.
fn fake_run(root: &Path, id: &str, result: serde_json::Value, config: Option<&str>) {
    let dir = root.join(id);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("result.json"), result.to_string()).unwrap();
    if let Some(config) = config {
        std::fs::write(dir.join("config.toml"), config).unwrap();
    }
    std::fs::write(dir.join("COMPLETE"), "").unwrap();
}

fn result(method: &str, dataset: &str, shots: usize, seed: u64, test: f64) -> serde_json::Value {
    serde_json::json!({
        "experiment": "exp", "run_id": "x", "method": method, "dataset": dataset,
        "shots": shots, "seed": seed, "test": test, "val": null, "metrics": {"top5": test / 2.0},
        "per_task": [], "epochs": 1, "wall_seconds": 1.0
    })
}

/// Two-pass mean and n − 1 standard deviation, written out independently of the report code.
fn expected_stats(values: &[f64]) -> (f64, f64) {
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (values.len() - 1) as f64;
    (mean, var.sqrt())
}

#[test]
fn the_report_gives_mean_and_sample_std_over_seeds_and_method_averages() {
    let root = tempdir("report");
    let values: BTreeMap<(&str, &str), [f64; 3]> = BTreeMap::from([
        (("coop", "dtd"), [0.61, 0.64, 0.58]),
        (("coop", "pets"), [0.90, 0.91, 0.93]),
        (("vpt", "dtd"), [0.55, 0.60, 0.52]),
        (("vpt", "pets"), [0.88, 0.86, 0.89]),
    ]);
    for ((method, dataset), seeds) in &values {
        for (i, value) in seeds.iter().enumerate() {
            let id = format!("{method}-{dataset}-{i}");
            fake_run(
                &root,
                &id,
                result(method, dataset, 4, i as u64 + 1, *value),
                Some(""),
            );
        }
    }
    // An unfinished run is left out.
    std::fs::create_dir_all(root.join("unfinished")).unwrap();
    std::fs::write(root.join("unfinished/result.json"), "{}").unwrap();

    let collection = collect(&root, None).unwrap();
    assert_eq!(collection.records.len(), 12);
    assert_eq!(collection.incomplete, [root.join("unfinished")]);
    let report = aggregate(&collection.records, "test").unwrap();
    assert_eq!(report.groups.len(), 4);
    for group in &report.groups {
        let seeds = values[&(group.method.as_str(), group.dataset.as_str())];
        let (mean, std) = expected_stats(&seeds);
        assert!((group.mean - mean).abs() < 1e-12, "{group:?}");
        assert!((group.std.unwrap() - std).abs() < 1e-12, "{group:?}");
        assert_eq!(group.n, 3);
        assert_eq!(group.seeds, [1, 2, 3]);
        assert_eq!(group.shots, 4);
    }
    for average in &report.averages {
        let means: Vec<f64> = values
            .iter()
            .filter(|((m, _), _)| *m == average.method)
            .map(|(_, seeds)| seeds.iter().sum::<f64>() / 3.0)
            .collect();
        let expected = means.iter().sum::<f64>() / means.len() as f64;
        assert!((average.mean - expected).abs() < 1e-12, "{average:?}");
        assert_eq!(average.datasets, 2);
    }
    assert_eq!(report.averages.len(), 2);

    // The written files carry the same numbers.
    let written = report.write(&root).unwrap();
    assert_eq!(written.len(), 4);
    let png = std::fs::read(root.join("report.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "report.png is a PNG");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["groups"].as_array().unwrap().len(), 4);
    let csv = std::fs::read_to_string(root.join("report.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let mean_col = header.iter().position(|h| *h == "mean").unwrap();
    let (coop_dtd_mean, _) = expected_stats(&values[&("coop", "dtd")]);
    let row = csv
        .lines()
        .find(|l| l.starts_with("exp,coop,dtd,4,"))
        .unwrap();
    let parsed: f64 = row.split(',').nth(mean_col).unwrap().parse().unwrap();
    assert!((parsed - coop_dtd_mean).abs() < 1e-12);
    assert_eq!(csv.lines().filter(|l| l.contains("(average)")).count(), 2);
    let markdown = std::fs::read_to_string(root.join("report.md")).unwrap();
    let shown = format!(
        "{:.2} ± {:.2}",
        100.0 * coop_dtd_mean,
        100.0 * expected_stats(&values[&("coop", "dtd")]).1
    );
    assert!(markdown.contains(&shown), "{markdown}");

    // --metric picks an entry of `metrics`.
    let top5 = aggregate(&collect(&root, Some("top5")).unwrap().records, "top5").unwrap();
    let (mean, _) = expected_stats(&values[&("coop", "dtd")].map(|v| v / 2.0));
    assert!((top5.groups[0].mean - mean).abs() < 1e-12);
    assert!(collect(&root, Some("nope"))
        .unwrap_err()
        .to_string()
        .contains("no metric `nope`"));
}

#[test]
fn the_report_keeps_runs_with_other_settings_apart() {
    let root = tempdir("report-variants");
    let config = |lr: f64, device: &str| {
        format!("seed = 1\n[train]\nlr = {lr}\n[model]\ndevice = \"{device}\"\n")
    };
    fake_run(
        &root,
        "a1",
        result("coop", "dtd", 1, 1, 0.5),
        Some(&config(0.1, "cpu")),
    );
    fake_run(
        &root,
        "a2",
        result("coop", "dtd", 1, 2, 0.7),
        Some(&config(0.1, "cuda")),
    );
    fake_run(
        &root,
        "b1",
        result("coop", "dtd", 1, 1, 0.2),
        Some(&config(0.01, "cpu")),
    );
    let report = aggregate(&collect(&root, None).unwrap().records, "test").unwrap();
    assert_eq!(
        report.variant_keys,
        ["train.lr"],
        "the device does not split groups"
    );
    let by_lr: BTreeMap<&str, (f64, usize)> = report
        .groups
        .iter()
        .map(|g| (g.variant["train.lr"].as_str(), (g.mean, g.n)))
        .collect();
    assert_eq!(by_lr["0.1"].1, 2);
    assert!((by_lr["0.1"].0 - (0.5 + 0.7) / 2.0).abs() < 1e-12);
    assert_eq!(by_lr["0.01"], (0.2, 1));
    assert!(report.to_text().contains("train.lr"));

    // The same seed twice in one group is refused.
    fake_run(
        &root,
        "a3",
        result("coop", "dtd", 1, 2, 0.9),
        Some(&config(0.1, "cpu")),
    );
    let error = aggregate(&collect(&root, None).unwrap().records, "test").unwrap_err();
    assert!(error.to_string().contains("seed 2"), "{error}");
}

#[test]
fn a_multitask_run_counts_once_per_task() {
    let root = tempdir("report-multitask");
    for (seed, (a, b)) in [(1u64, (0.6, 0.8)), (2, (0.7, 0.9))] {
        let mut value = result("coop", "multitask", 4, seed, (a + b) / 2.0);
        value["per_task"] = serde_json::json!([
            {"name": "dtd", "metric": "accuracy", "samples": 10, "value": a},
            {"name": "pets", "metric": "accuracy", "samples": 10, "value": b}
        ]);
        fake_run(&root, &format!("run{seed}"), value, Some(""));
    }
    let report = aggregate(&collect(&root, None).unwrap().records, "test").unwrap();
    let rows: Vec<(&str, &str, f64)> = report
        .groups
        .iter()
        .map(|g| (g.method.as_str(), g.dataset.as_str(), g.mean))
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].0, "coop (multitask)");
    assert_eq!(rows[0].1, "dtd");
    assert!((rows[0].2 - (0.6 + 0.7) / 2.0).abs() < 1e-12);
    assert!((rows[1].2 - (0.8 + 0.9) / 2.0).abs() < 1e-12);
}
