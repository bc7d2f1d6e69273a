//! Plugin option tables are checked against each plugin's declared options type when runs are
//! planned: a misspelt key, a table named after no plugin and a typo in one run of a sweep are
//! all reported, with the key, its source and the closest name, before any run starts.

use anyhow::{bail, Result};
use mvlpt_framework::config::ranges::{count_in, MAX_PROMPT_TOKENS};
use mvlpt_framework::config::{LoadedConfig, Section};
use mvlpt_framework::data::{BatchSampler, Dataset, DatasetContext, FewShotProtocol};
use mvlpt_framework::eval::Evaluator;
use mvlpt_framework::method::PromptLearner;
use mvlpt_framework::plugin::{check_options, NoOptions, Registry};
use mvlpt_framework::register_plugin;
use mvlpt_framework::run::{check_plans, plan_runs};
use std::path::{Path, PathBuf};

/// Options of the stand-in method.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
#[allow(dead_code)]
struct ProbeOptions {
    #[serde(deserialize_with = "count_in::<1, MAX_PROMPT_TOKENS, _>")]
    n_ctx: usize,
    init: String,
}

/// Options of the stand-in dataset; `file` is required.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ListOptions {
    file: String,
}

fn method(_: &Section<'_>) -> Result<Box<dyn PromptLearner>> {
    bail!("stand-in")
}
fn dataset(_: &DatasetContext<'_>) -> Result<Box<dyn Dataset>> {
    bail!("stand-in")
}
fn fewshot(_: &Section<'_>) -> Result<Box<dyn FewShotProtocol>> {
    bail!("stand-in")
}
fn sampler(_: &Section<'_>) -> Result<Box<dyn BatchSampler>> {
    bail!("stand-in")
}
fn evaluator(_: &Section<'_>) -> Result<Box<dyn Evaluator>> {
    bail!("stand-in")
}
register_plugin!(Method, "probe", "stand-in", method, ProbeOptions);
register_plugin!(Method, "probe_two", "stand-in", method, ProbeOptions);
register_plugin!(Dataset, "listing", "stand-in", dataset, ListOptions);
register_plugin!(FewShot, "every", "stand-in", fewshot, NoOptions);
register_plugin!(Sampler, "shuffled", "stand-in", sampler, NoOptions);
register_plugin!(Evaluator, "top1", "stand-in", evaluator, NoOptions);

const BASE: &str = r#"
[method]
name = "probe"
[data]
dataset = "listing"
fewshot = "every"
sampler = "shuffled"
[eval]
evaluator = "top1"
"#;

/// The experiment `BASE` with the dataset's required table, plus `extra`.
fn experiment(tag: &str, extra: &str) -> PathBuf {
    bare_experiment(
        tag,
        &format!("[data.listing]\nfile = \"list.csv\"\n{extra}"),
    )
}

/// The experiment `BASE` plus `extra`.
fn bare_experiment(tag: &str, extra: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mvlpt-options-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("exp.toml");
    std::fs::write(
        &path,
        format!(
            "{BASE}\n[output]\nruns_dir = {:?}\n{extra}",
            dir.join("runs")
        ),
    )
    .unwrap();
    path
}

fn check(file: &Path, sets: &[&str]) -> Result<()> {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let loaded = LoadedConfig::load(Some(file), &sets)?;
    check_options(&loaded, &Registry::builtin()?)
}

fn assert_mentions(error: &str, parts: &[&str]) {
    for part in parts {
        assert!(error.contains(part), "{part:?} missing from: {error}");
    }
}

#[test]
fn a_valid_config_passes() {
    let file = experiment(
        "valid",
        "[method.probe]\nn_ctx = 4\n[method.probe_two]\ninit = \"a\"\n",
    );
    check(&file, &[]).unwrap();
}

#[test]
fn misspelt_option_keys_name_the_key_the_file_and_the_closest_key() {
    let file = experiment("typo", "[method.probe]\nnctx = 4\n");
    let error = format!("{:#}", check(&file, &[]).unwrap_err());
    assert_mentions(
        &error,
        &[
            "`method.probe.nctx`",
            "exp.toml",
            "did you mean `method.probe.n_ctx`?",
        ],
    );
    // A plugin without options refuses any key; --set is named as the source.
    let file = experiment("none", "");
    let error = format!("{:#}", check(&file, &["eval.top1.k=5"]).unwrap_err());
    assert_mentions(
        &error,
        &["`eval.top1.k`", "--set eval.top1.k=5", "takes no keys"],
    );
}

#[test]
fn tables_of_plugins_the_run_does_not_select_are_checked_too() {
    let file = experiment("unselected", "[method.probe_two]\ninti = \"x\"\n");
    let error = format!("{:#}", check(&file, &[]).unwrap_err());
    assert_mentions(
        &error,
        &[
            "`method.probe_two.inti`",
            "did you mean `method.probe_two.init`?",
        ],
    );
}

#[test]
fn a_table_named_after_no_plugin_names_the_closest_plugin() {
    let file = experiment("table", "[method.prob]\nn_ctx = 4\n");
    let error = format!("{:#}", check(&file, &[]).unwrap_err());
    assert_mentions(
        &error,
        &[
            "`method.prob`",
            "exp.toml",
            "no method plugin is named `prob`",
            "did you mean `probe`?",
        ],
    );
    let file = experiment("elsewhere", "[data.probe]\nn_ctx = 4\n");
    let error = format!("{:#}", check(&file, &[]).unwrap_err());
    assert_mentions(&error, &["`probe` is a method plugin", "[method.probe]"]);
}

#[test]
fn option_values_are_range_checked_and_required_options_are_required() {
    let file = experiment("range", "[method.probe]\nn_ctx = 1000000\n");
    let error = format!("{:#}", check(&file, &[]).unwrap_err());
    assert_mentions(
        &error,
        &["`method.probe.n_ctx`", "1000000", "from 1 to 1024"],
    );
    // The selected dataset's table is checked even when the file does not have it.
    let file = bare_experiment("required", "");
    let error = format!("{:#}", check(&file, &[]).unwrap_err());
    assert_mentions(&error, &["`data.listing`", "missing field `file`"]);
}

#[test]
fn a_typo_in_one_run_of_a_sweep_is_reported_before_any_run_starts() {
    // Run 3 of 4 sets a misspelt option; run 4 an unknown optimizer.
    let file = experiment(
        "sweep",
        "[[sweep.zip]]\n\"method.probe\" = [{ n_ctx = 2 }, { n_ctx = 3 }, { nctx = 4 }, { n_ctx = 5 }]\n\
         \"train.lr\" = [0.1, 0.2, 0.3, 0.4]\n",
    );
    let base = LoadedConfig::load(Some(&file), &[]).unwrap();
    let registry = Registry::builtin().unwrap();
    let plans = plan_runs(&base, &registry).unwrap();
    assert_eq!(plans.len(), 4);
    assert!(plans[0].problem.is_none() && plans[1].problem.is_none());
    let error = format!("{:#}", check_plans(&plans).unwrap_err());
    assert_mentions(
        &error,
        &[
            "1 of 4 runs cannot start",
            "run 3",
            "`method.probe.nctx`",
            "sweep",
            "n_ctx",
        ],
    );

    let file = experiment(
        "sweep-enum",
        "[sweep.grid]\n\"train.optimizer\" = [\"sgd\", \"adamw\", \"adamm\"]\n",
    );
    let base = LoadedConfig::load(Some(&file), &[]).unwrap();
    let error = format!("{:#}", plan_runs(&base, &registry).unwrap_err());
    assert_mentions(
        &error,
        &[
            "sweep run",
            "train.optimizer",
            "\"adamm\"",
            "did you mean \"adamw\"?",
        ],
    );
}
