//! The run commands end to end through the binary: `config show` names every value's source,
//! config errors name key, value and source, `run --dry-run` lists a sweep's runs and their
//! state, `run` refuses unknown plugins before writing anything, `report` aggregates
//! hand-written results, `plugins list` prints the registry.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn mvlpt() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mvlpt"));
    for (key, _) in std::env::vars() {
        if key.starts_with("MVLPT_") {
            command.env_remove(key);
        }
    }
    command
}

fn tempdir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mvlpt-cli-runs-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn config_show_names_the_source_of_every_value() {
    let dir = tempdir("show");
    write(&dir, "base.toml", "seed = 7\n[train]\nlr = 0.5\n");
    let exp = write(
        &dir,
        "exp.toml",
        "extends = \"base.toml\"\n[train]\nlr = 0.1\n",
    );
    let output = mvlpt()
        .args(["config", "show"])
        .arg(&exp)
        .args(["--set", "train.epochs=3"])
        .env("MVLPT_DATA__SHOTS", "8")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let line = |key: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("no line for {key}:\n{text}"))
            .to_string()
    };
    assert!(line("train.lr").contains("0.1") && line("train.lr").contains("exp.toml"));
    assert!(line("seed").contains("= 7") && line("seed").contains("base.toml"));
    assert!(line("data.shots").ends_with("# environment variable MVLPT_DATA__SHOTS"));
    assert!(line("train.epochs").ends_with("# --set train.epochs=3"));
    assert!(line("train.momentum").ends_with("# built-in defaults"));
    assert!(line("name").contains("\"exp\"") && line("name").ends_with("# experiment file name"));

    let output = mvlpt()
        .args(["config", "show", "--json", "--set", "train.epochs=3"])
        .arg(&exp)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let json: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["train.epochs"]["value"], 3);
    assert_eq!(json["train.epochs"]["source"], "--set train.epochs=3");
    assert_eq!(json["data.shots"]["source"], "built-in defaults");
}

/// An experiment file, extra arguments, an environment variable, and what the error must say.
type ErrorCase<'a> = (
    &'a Path,
    &'a [&'a str],
    Option<(&'a str, &'a str)>,
    &'a [&'a str],
);

#[test]
fn config_errors_name_the_key_the_value_and_the_source() {
    let dir = tempdir("errors");
    let bad_file = write(&dir, "bad.toml", "[train]\nlr = \"fast\"\n");
    let good = write(&dir, "good.toml", "");
    let cases: [ErrorCase; 4] = [
        (&bad_file, &[], None, &["train.lr", "fast", "bad.toml"]),
        (
            &good,
            &[],
            Some(("MVLPT_TRAIN__EPOCHS", "many")),
            &[
                "train.epochs",
                "many",
                "environment variable MVLPT_TRAIN__EPOCHS",
            ],
        ),
        (
            &good,
            &["--set", "train.momentum=high"],
            None,
            &["train.momentum", "high", "--set train.momentum=high"],
        ),
        (
            &good,
            &["--set", "train.learning_rate=0.1"],
            None,
            &["learning_rate", "--set train.learning_rate=0.1"],
        ),
    ];
    for (file, extra, env, expected) in cases {
        for command in [&["config", "show"][..], &["run", "--dry-run"][..]] {
            let mut cmd = mvlpt();
            cmd.args(command).arg(file).args(extra);
            if let Some((key, value)) = env {
                cmd.env(key, value);
            }
            let output = cmd.output().unwrap();
            assert!(!output.status.success());
            let message = stderr(&output);
            for part in expected {
                assert!(
                    message.contains(part),
                    "{command:?} {extra:?}: {part} missing in\n{message}"
                );
            }
        }
    }
}

const SWEEP: &str = r#"
method.name = "copo"
[sweep]
seeds = [1, 2, 3]
[sweep.grid]
"data.shots" = [1, 2]
"#;

#[test]
fn dry_run_lists_every_run_of_a_sweep_with_its_state() {
    let dir = tempdir("dry-run");
    let runs_dir = dir.join("runs").display().to_string();
    let exp = write(
        &dir,
        "exp.toml",
        &format!("{SWEEP}\n[output]\nruns_dir = {runs_dir:?}\n"),
    );
    let dry_run = || {
        mvlpt()
            .args(["run", "--dry-run"])
            .arg(&exp)
            .output()
            .unwrap()
    };
    let output = dry_run();
    // The unknown method stops a real run, and the dry run says so after listing the runs.
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("unknown method plugin `copo`"),
        "{}",
        stderr(&output)
    );
    let text = stdout(&output);
    let rows: Vec<Vec<String>> = text
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(String::from).collect::<Vec<_>>())
        .filter(|row| row.len() == 6 && row[0].parse::<usize>().is_ok())
        .collect();
    assert_eq!(rows.len(), 6, "{text}");
    let mut values = Vec::new();
    for row in &rows {
        assert_eq!(row[1].len(), 12, "{row:?}");
        assert_eq!(row[2], "new");
        values.push(format!("{} {}", row[3], row[4]));
        assert!(
            Path::new(&row[5]).starts_with(dir.join("runs/exp")),
            "{row:?}"
        );
    }
    let mut expected = Vec::new();
    for seed in 1..=3 {
        for shots in 1..=2 {
            expected.push(format!("data.shots={shots} seed={seed}"));
        }
    }
    assert_eq!(values, expected);
    assert!(!dir.join("runs").exists(), "a dry run writes nothing");

    // A run directory with COMPLETE shows as complete, one without as incomplete.
    std::fs::create_dir_all(&rows[0][5]).unwrap();
    std::fs::write(Path::new(&rows[0][5]).join("COMPLETE"), "").unwrap();
    std::fs::create_dir_all(&rows[1][5]).unwrap();
    let text = stdout(&dry_run());
    let states: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .skip(1)
        .take(3)
        .collect();
    assert_eq!(states, ["complete", "incomplete", "new"], "{text}");
}

#[test]
fn run_refuses_unknown_plugins_before_writing_anything() {
    let dir = tempdir("unknown");
    let exp = write(
        &dir,
        "exp.toml",
        &format!(
            "[output]\nruns_dir = {:?}\n",
            dir.join("runs").display().to_string()
        ),
    );
    let output = mvlpt()
        .args(["run", "--set", "method.name=copo"])
        .arg(&exp)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("unknown method plugin `copo`"),
        "{}",
        stderr(&output)
    );
    assert!(!dir.join("runs").exists());
}

#[test]
fn experiment_names_that_leave_the_runs_directory_are_refused() {
    let dir = tempdir("names");
    let runs = dir.join("a/b/runs");
    let absolute = dir.join("absolute").display().to_string();
    for (name, outside) in [
        ("../../escaped", dir.join("a/escaped")),
        (absolute.as_str(), dir.join("absolute")),
        ("x/../../../escaped2", dir.join("a/escaped2")),
    ] {
        let exp = write(
            &dir,
            "exp.toml",
            &format!(
                "name = {name:?}\n[model]\nsource = \"random:tiny\"\n[method]\nname = \"zero_shot\"\n\
                 [data]\ndataset = \"synthetic_count\"\n[data.synthetic_count]\n\
                 train_size = 8\nval_size = 8\ntest_size = 8\n[train]\nepochs = 0\n\
                 [output]\nruns_dir = {:?}\n",
                runs.display().to_string()
            ),
        );
        let output = mvlpt().arg("run").arg(&exp).output().unwrap();
        assert!(!output.status.success(), "{name}: {}", stdout(&output));
        assert!(
            stderr(&output).contains(&format!("name = {name:?} is not a plain relative name")),
            "{name}: {}",
            stderr(&output)
        );
        assert!(!outside.exists(), "{name}: wrote {}", outside.display());
    }
    // A relative name with folders stays inside and is fine.
    let exp = write(
        &dir,
        "exp.toml",
        &format!(
            "name = \"group/exp\"\n[output]\nruns_dir = {:?}\n",
            runs.display().to_string()
        ),
    );
    let output = mvlpt()
        .args(["run", "--dry-run"])
        .arg(&exp)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains(&runs.join("group/exp").display().to_string()));
}

#[test]
fn a_sweep_too_large_to_plan_is_refused_up_front_with_its_size() {
    let dir = tempdir("huge-sweep");
    let list =
        |n: usize, f: &dyn Fn(usize) -> String| (1..=n).map(f).collect::<Vec<_>>().join(", ");
    let exp = write(
        &dir,
        "huge.toml",
        &format!(
            "[sweep]\nseeds = [1, 2]\n[sweep.grid]\n\"train.lr\" = [{}]\n\"data.shots\" = [{}]\n",
            list(1000, &|i| format!("{}", i as f64 * 1e-4)),
            list(1000, &|i| i.to_string())
        ),
    );
    // The address-space limit keeps a regression from taking the machine's memory (planning
    // the 2,000,000 runs used to take about 54 KB each).
    let output = Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 4000000; exec \"$0\" run --dry-run \"$1\"")
        .arg(env!("CARGO_BIN_EXE_mvlpt"))
        .arg(&exp)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(
            "the sweep expands to 2000000 runs (2 seeds × 1000 values of data.shots × 1000 \
             values of train.lr), more than 100000"
        ),
        "{}",
        stderr(&output)
    );
}

fn fake_run(dir: &Path, method: &str, dataset: &str, seed: u64, test: f64) {
    let run = dir.join(format!("{method}-{dataset}-{seed}"));
    std::fs::create_dir_all(&run).unwrap();
    let result = serde_json::json!({
        "experiment": "exp", "run_id": "0", "method": method, "dataset": dataset, "shots": 2,
        "seed": seed, "test": test, "val": null, "metrics": {}, "per_task": [], "epochs": 1,
        "wall_seconds": 0.5
    });
    std::fs::write(run.join("result.json"), result.to_string()).unwrap();
    std::fs::write(run.join("config.toml"), "").unwrap();
    std::fs::write(run.join("COMPLETE"), "").unwrap();
}

#[test]
fn report_prints_and_writes_mean_and_std_per_method_dataset_and_shots() {
    let dir = tempdir("report");
    let runs = dir.join("runs/exp");
    let inputs = [
        ("coop", "dtd", [0.50, 0.54]),
        ("coop", "pets", [0.80, 0.90]),
        ("vpt", "dtd", [0.40, 0.46]),
    ];
    for (method, dataset, values) in &inputs {
        for (i, value) in values.iter().enumerate() {
            fake_run(&runs, method, dataset, i as u64 + 1, *value);
        }
    }
    // Through the experiment file: its runs directory is found from the config.
    let exp = write(
        &dir,
        "exp.toml",
        &format!(
            "output.runs_dir = {:?}\n",
            dir.join("runs").display().to_string()
        ),
    );
    let output = mvlpt().arg("report").arg(&exp).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    for (method, dataset, values) in &inputs {
        let mean = (values[0] + values[1]) / 2.0;
        let std = ((values[0] - mean).powi(2) + (values[1] - mean).powi(2)).sqrt(); // n − 1 = 1
        let cell = format!("{:.2} ± {:.2}", 100.0 * mean, 100.0 * std);
        let row = text
            .lines()
            .find(|l| l.starts_with(method) && l.contains(dataset) && l.contains(&cell))
            .unwrap_or_else(|| panic!("no row {method} {dataset} {cell}:\n{text}"));
        assert!(row.trim_end().ends_with('2'), "n = 2: {row}");
    }
    let coop_average = ((0.50 + 0.54) / 2.0 + (0.80 + 0.90) / 2.0) / 2.0;
    assert!(
        text.contains(&format!("{:.2}", 100.0 * coop_average)),
        "{text}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runs.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["groups"].as_array().unwrap().len(), 3);
    assert_eq!(json["averages"].as_array().unwrap().len(), 2);
    assert!(runs.join("report.md").is_file() && runs.join("report.csv").is_file());

    // Pointing at a directory works the same; an empty one is an error.
    let output = mvlpt()
        .arg("report")
        .arg(&runs)
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(dir.join("report.csv").is_file());
    let empty = tempdir("report-empty");
    let output = mvlpt().arg("report").arg(&empty).output().unwrap();
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("no complete runs"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn plugins_list_prints_name_kind_origin_version_and_description() {
    let output = mvlpt().args(["plugins", "list"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let header: Vec<&str> = text.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["name", "kind", "origin", "version", "description"]);

    let output = mvlpt()
        .args(["plugins", "list", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let rows: Vec<BTreeMap<String, String>> = serde_json::from_slice(&output.stdout).unwrap();
    let kinds = ["dataset", "method", "fewshot", "sampler", "evaluator"];
    for row in &rows {
        assert!(kinds.contains(&row["kind"].as_str()), "{row:?}");
        assert_eq!(row["origin"], "built-in", "{row:?}");
        assert!(
            !row["version"].is_empty() && !row["name"].is_empty(),
            "{row:?}"
        );
        assert!(
            text.contains(&row["name"]),
            "the table lists {}",
            row["name"]
        );
    }
    let names: std::collections::BTreeSet<(&str, &str)> = rows
        .iter()
        .map(|r| (r["kind"].as_str(), r["name"].as_str()))
        .collect();
    assert_eq!(names.len(), rows.len(), "no plugin listed twice");
}
