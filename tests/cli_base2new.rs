//! Base-to-novel through the binary: `mvlpt run experiments/paper/base2new/oxford_pets.toml`
//! on the fixture layout (3 pet classes: 2 base, 1 new) with the built-in CLIP, then
//! `mvlpt report` of the pipeline gives base, novel and their harmonic mean per method.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn mvlpt(args: &[&str], cwd: &Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_mvlpt"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "mvlpt {args:?}: {text}");
    text
}

fn test_value(stage_dir: &Path, method: &str, classes: &str) -> f64 {
    for entry in std::fs::read_dir(stage_dir).unwrap() {
        let dir = entry.unwrap().path();
        let Ok(config) = std::fs::read_to_string(dir.join("config.toml")) else {
            continue;
        };
        let config: toml::Table = toml::from_str(&config).unwrap();
        let same_method = config["method"]["name"].as_str() == Some(method);
        let half = config["data"]
            .get("subsample_classes")
            .and_then(|v| v.as_str());
        if same_method && half == Some(classes) {
            let result: Value =
                serde_json::from_str(&std::fs::read_to_string(dir.join("result.json")).unwrap())
                    .unwrap();
            return result["test"].as_f64().unwrap();
        }
    }
    panic!(
        "no {method} run on {classes} classes in {}",
        stage_dir.display()
    );
}

#[test]
fn the_oxford_pets_pipeline_runs_on_the_fixture_layout_and_reports_base_novel_and_hm() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let pipeline = repo.join("experiments/paper/base2new/oxford_pets.toml");
    let pipeline = pipeline.to_str().unwrap();
    let root = format!(
        "data.root={}",
        repo.join("tests/fixtures/datasets/root").display()
    );
    let runs = format!("output.runs_dir={}", dir.path().join("runs").display());
    let sets = [
        "--set",
        &root,
        "--set",
        "model.source=builtin",
        "--set",
        "sweep.seeds=[1]",
        "--set",
        &runs,
    ];
    let mut args = vec!["run", pipeline];
    args.extend(sets);
    mvlpt(&args, dir.path());
    let stages = dir.path().join("runs/base2new-oxford_pets");
    // The new stage sees the new half only: one class (Bengal), relabelled 0.
    for entry in std::fs::read_dir(stages.join("new")).unwrap() {
        let run = entry.unwrap().path();
        if run.join("classnames.json").is_file() {
            let names = std::fs::read_to_string(run.join("classnames.json")).unwrap();
            let names: Vec<String> = serde_json::from_str(&names).unwrap();
            assert_eq!(names, ["bengal"]);
        }
    }
    let mut args = vec!["report", pipeline];
    args.extend(sets);
    let report = mvlpt(&args, dir.path());
    let table = std::fs::read_to_string(stages.join("table.md")).unwrap();
    assert!(report.contains(&table), "{report}");
    for (method, base_stage, new_stage) in [
        ("zero_shot", "zero-shot", "zero-shot"),
        ("coop", "base", "new"),
        ("cocoop", "base", "new"),
    ] {
        let base = test_value(&stages.join(base_stage), method, "base");
        let novel = test_value(&stages.join(new_stage), method, "new");
        let hm = 2.0 * base * novel / (base + novel);
        let row = format!(
            "| oxford_pets | {method} | 16 | {:.2} | {:.2} | {:.2} |",
            100.0 * base,
            100.0 * novel,
            100.0 * hm
        );
        assert!(table.contains(&row), "{row} not in\n{table}");
    }
    // The chart draws the 11-dataset average, which one dataset does not complete.
    assert!(!stages.join("table.png").exists());
}

#[test]
fn cross_dataset_plans_and_domain_generalisation_runs_on_the_fixture_layouts() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let root = format!(
        "data.root={}",
        repo.join("tests/fixtures/datasets/root").display()
    );
    let runs = format!("output.runs_dir={}", dir.path().join("runs").display());
    let cross = repo.join("experiments/paper/cross-dataset.toml");
    let plan = mvlpt(
        &["run", cross.to_str().unwrap(), "--dry-run", "--set", &root],
        dir.path(),
    );
    // 2 methods × 3 seeds on ImageNet, 6 prompt files, 2 × 3 × 10 targets.
    assert!(plan.contains("67 run(s) in 3 stage(s)"), "{plan}");
    let domains = repo.join("experiments/paper/domain-generalisation.toml");
    let args = [
        "run",
        domains.to_str().unwrap(),
        "--set",
        &root,
        "--set",
        "model.source=builtin",
        "--set",
        "sweep.seeds=[1]",
        "--set",
        &runs,
    ];
    mvlpt(&args, dir.path());
    let variants = dir.path().join("runs/domain-generalisation/variants");
    let mut datasets = Vec::new();
    for entry in std::fs::read_dir(&variants).unwrap() {
        let run = entry.unwrap().path();
        if let Ok(text) = std::fs::read_to_string(run.join("result.json")) {
            let result: Value = serde_json::from_str(&text).unwrap();
            datasets.push(result["dataset"].as_str().unwrap().to_string());
        }
    }
    datasets.sort();
    assert_eq!(
        datasets,
        [
            "imagenet_a",
            "imagenet_a",
            "imagenet_r",
            "imagenet_r",
            "imagenet_sketch",
            "imagenet_sketch",
            "imagenet_v2",
            "imagenet_v2"
        ]
    );
}
