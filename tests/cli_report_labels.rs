//! Report rows named by the config's `label`, laid out as a study table (rows = label × shots,
//! columns = targets and their average) with the average against shots as a chart, from one
//! `mvlpt report` call; and run ids of configs without a label are those they always had.

use std::path::Path;
use std::process::{Command, Output};

fn mvlpt(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mvlpt"));
    for (key, _) in std::env::vars() {
        if key.starts_with("MVLPT_") {
            command.env_remove(key);
        }
    }
    let output = command.args(args).output().unwrap();
    assert!(
        output.status.success(),
        "mvlpt {args:?}:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A finished run as `mvlpt run` leaves it (the parts a report reads): `config.toml` with
/// `settings` and `result.json` with `per_task` values (one entry: a single-task run).
fn fake_run(
    root: &Path,
    id: &str,
    settings: &str,
    method: &str,
    shots: usize,
    seed: u64,
    per_task: &[(&str, f64)],
) {
    let dir = root.join(id);
    std::fs::create_dir_all(&dir).unwrap();
    let config = format!("name = \"study\"\nseed = {seed}\n{settings}\n[data]\nshots = {shots}\n");
    std::fs::write(dir.join("config.toml"), config).unwrap();
    let tasks: Vec<serde_json::Value> = per_task
        .iter()
        .map(|(name, value)| serde_json::json!({"name": name, "metric": "accuracy", "samples": 10, "value": value}))
        .collect();
    let test = per_task.iter().map(|t| t.1).sum::<f64>() / per_task.len() as f64;
    let dataset = if per_task.len() > 1 {
        format!("{} tasks", per_task.len())
    } else {
        per_task[0].0.to_string()
    };
    let result = serde_json::json!({
        "experiment": "study", "run_id": id, "method": method, "dataset": dataset,
        "shots": shots, "seed": seed, "test": test, "val": null, "metrics": {},
        "per_task": tasks, "epochs": 1, "wall_seconds": 0.5
    });
    std::fs::write(dir.join("result.json"), result.to_string()).unwrap();
    std::fs::write(dir.join("COMPLETE"), "").unwrap();
}

/// The width and height of a PNG file, from its header.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[1..4], b"PNG", "{}", path.display());
    let word = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (word(16), word(20))
}

#[test]
fn labelled_runs_make_the_rows_of_a_study_table_and_its_shots_chart() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs/study");
    let coop = "[method]\nname = \"coop\"";
    let mcoop = "label = \"MCoOp\"\n[method]\nname = \"coop\"\ninit_from = \"source.safetensors\"";
    let mvlpt_target = "label = \"MVLPT (multitask target)\"\n[method]\nname = \"coop\"\ninit_from = \"source.safetensors\"";
    let mut n = 0;
    let mut id = || {
        n += 1;
        format!("run{n:02}")
    };
    for (shots, base) in [(1, 0.0), (5, 0.10)] {
        for (seed, jitter) in [(1, 0.0), (2, 0.02)] {
            let v = |x: f64| x + base + jitter;
            for (dataset, x) in [("count", 0.40), ("mnist", 0.50)] {
                let label = format!("label = \"CoOp\"\n{coop}");
                fake_run(
                    &runs,
                    &id(),
                    &label,
                    "coop",
                    shots,
                    seed,
                    &[(dataset, v(x))],
                );
                fake_run(
                    &runs,
                    &id(),
                    mcoop,
                    "coop",
                    shots,
                    seed,
                    &[(dataset, v(x + 0.05))],
                );
                fake_run(
                    &runs,
                    &id(),
                    "[method]\nname = \"zero_shot\"",
                    "zero_shot",
                    shots,
                    seed,
                    &[(dataset, 0.30)],
                );
            }
            let per_task = [("count", v(0.50)), ("mnist", v(0.60))];
            fake_run(&runs, &id(), mvlpt_target, "coop", shots, seed, &per_task);
        }
    }
    let layout = dir.path().join("study-table.toml");
    std::fs::write(
        &layout,
        "columns = [\"count\", \"mnist\"]\n\
         rows = [\"zero_shot\", \"CoOp\", \"MCoOp\", \"MVLPT (multitask target)\"]\n\
         [averages]\n\"average over targets\" = [\"count\", \"mnist\"]\n",
    )
    .unwrap();
    let output = mvlpt(&[
        "report",
        runs.to_str().unwrap(),
        "--layout",
        layout.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&output.stdout);
    // The label names the group; neither it nor method.init_from becomes a variant column.
    let header: Vec<&str> = text.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header[..4],
        ["method", "dataset", "shots", "test"],
        "{text}"
    );
    assert!(
        !text.contains("init_from") && !text.contains("label"),
        "{text}"
    );

    let table = std::fs::read_to_string(runs.join("table.md")).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0],
        "| method | shots | count | mnist | average over targets |"
    );
    // mean ± sample std over the two seeds (values differ by 0.02: std = 1.41 points).
    assert_eq!(
        lines[2..],
        [
            "| zero_shot | 1 | 30.00 ± 0.00 | 30.00 ± 0.00 | 30.00 |",
            "| zero_shot | 5 | 30.00 ± 0.00 | 30.00 ± 0.00 | 30.00 |",
            "| CoOp | 1 | 41.00 ± 1.41 | 51.00 ± 1.41 | 46.00 |",
            "| CoOp | 5 | 51.00 ± 1.41 | 61.00 ± 1.41 | 56.00 |",
            "| MCoOp | 1 | 46.00 ± 1.41 | 56.00 ± 1.41 | 51.00 |",
            "| MCoOp | 5 | 56.00 ± 1.41 | 66.00 ± 1.41 | 61.00 |",
            "| MVLPT (multitask target) | 1 | 51.00 ± 1.41 | 61.00 ± 1.41 | 56.00 |",
            "| MVLPT (multitask target) | 5 | 61.00 ± 1.41 | 71.00 ± 1.41 | 66.00 |",
        ],
        "{table}"
    );
    // Both charts of average accuracy against shots: one of every method's average over all
    // datasets, one of the layout's average.
    for chart in ["report-shots.png", "table-shots.png"] {
        let (width, height) = png_size(&runs.join(chart));
        assert_eq!(height, 440, "{chart}");
        assert!(width >= 70 + 3 * 140, "{chart}: {width}");
    }
}

#[test]
fn configs_without_a_label_keep_their_run_ids() {
    // The quickstart's run ids as printed before `label` existed.
    let pinned = [
        "1dcd463ccbd3",
        "bdad7ca6164d",
        "9f7b0544bf59",
        "6913ac6c844e",
        "ce75a4ceaf52",
        "dfea16b5996c",
        "360aa68c9df2",
        "3fad255c65d3",
    ];
    let quickstart = concat!(env!("CARGO_MANIFEST_DIR"), "/experiments/quickstart.toml");
    let listed = String::from_utf8(mvlpt(&["run", quickstart, "--dry-run"]).stdout).unwrap();
    for id in pinned {
        assert!(listed.contains(id), "{id} missing:\n{listed}");
    }
    // A label is part of what a run is: labelled runs get their own directories.
    let labelled = String::from_utf8(
        mvlpt(&[
            "run",
            quickstart,
            "--dry-run",
            "--set",
            "label=\"tiny CLIP\"",
        ])
        .stdout,
    )
    .unwrap();
    assert!(pinned.iter().all(|id| !labelled.contains(id)), "{labelled}");
}
