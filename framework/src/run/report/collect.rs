//! Reading the results of complete runs: one record per run (or per task of a multitask run),
//! labelled by the run's `label` or method, with the settings that tell runs of one group
//! apart.

use crate::run::dir::{COMPLETE_FILE, CONFIG_FILE, PROVENANCE_FILE, RESULT_FILE};
use crate::run::RunResult;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Config keys (or key prefixes) that do not change a run's result, ignored when looking for
/// settings that differ between runs of one group.
const EXECUTION_KEYS: &[&str] = &[
    "name",
    "description",
    "extends",
    "seed",
    "output",
    "sweep",
    "plugins.paths",
    "model.device",
    "model.cache_dir",
    "data.root",
    "data.workers",
    "data.prefetch",
    "data.eval_batch_size",
];

/// The config keys that define a group already (a labelled run's group is named by `label`,
/// and its `method.name` stays a setting: two methods under one label are told apart).
const GROUP_KEYS: &[&str] = &["label", "data.dataset", "data.shots"];

/// One value to aggregate: a run (or one task of a multitask run).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ResultRecord {
    /// Experiment name.
    pub experiment: String,
    /// The run's `label`, or else its method (with ` (multitask)` for a task of a multitask
    /// run).
    pub method: String,
    /// Dataset (or task).
    pub dataset: String,
    /// Shots per class.
    pub shots: usize,
    /// Seed.
    pub seed: u64,
    /// The value (a fraction, e.g. accuracy in [0, 1]).
    pub value: f64,
    /// Other settings that tell this run's group apart (key → value as TOML).
    pub variant: BTreeMap<String, String>,
    /// The run's `data.subsample_classes`: `all`, `base` or `new` (base-to-novel).
    pub classes: String,
    /// The run directory.
    pub run_dir: PathBuf,
}

/// The runs found below a directory.
#[derive(Clone, Debug, Default)]
pub struct Collection {
    /// Values of complete runs.
    pub records: Vec<ResultRecord>,
    /// Run directories without `COMPLETE` (not reported).
    pub incomplete: Vec<PathBuf>,
    /// Complete runs left out, with the reason: no `config.toml` (its settings, hence its
    /// group, are unknown) or a result that is no metric value (results are fractions in
    /// [0, 1]).
    pub left_out: Vec<(PathBuf, String)>,
}

/// Why the records of a complete run cannot be reported, if they cannot: a test value outside
/// [0, 1] (every metric the evaluators compute is a fraction). Only the test value is checked:
/// `--metric` may name a diagnostic, such as a cosine, that is not a fraction.
fn unreportable(records: &[ResultRecord]) -> Option<String> {
    records
        .iter()
        .find(|r| !(0.0..=1.0).contains(&r.value))
        .map(|r| {
            format!(
                "its result for {} is {}, not a metric value (a fraction from 0 to 1)",
                r.dataset, r.value
            )
        })
}

/// Reads `result.json` of every complete run below `root`. `metric` picks an entry of the
/// result's `metrics` (or of its `diagnostics`, or `val`, the validation value that selected
/// the prompts) instead of the overall `test` value (and then multitask runs are not split
/// into tasks).
pub fn collect(root: &Path, metric: Option<&str>) -> Result<Collection> {
    collect_all(std::slice::from_ref(&root.to_path_buf()), metric)
}

/// [`collect`] over several directories at once (the stages of a pipeline reported in one
/// table): settings that tell runs apart are looked for across all of them.
pub fn collect_all(roots: &[PathBuf], metric: Option<&str>) -> Result<Collection> {
    let mut run_dirs = Vec::new();
    for root in roots {
        if !root.is_dir() {
            bail!("{} is not a directory", root.display());
        }
        find_run_dirs(root, &mut run_dirs)?;
    }
    run_dirs.sort();
    run_dirs.dedup();
    let mut collection = Collection::default();
    let mut settings = Vec::new();
    for dir in run_dirs {
        if !dir.join(COMPLETE_FILE).is_file() {
            collection.incomplete.push(dir);
            continue;
        }
        if !dir.join(CONFIG_FILE).is_file() {
            let reason =
                format!("it is complete but has no {CONFIG_FILE}, so its settings are unknown");
            collection.left_out.push((dir, reason));
            continue;
        }
        let run_settings = read_settings(&dir)?;
        let records = read_run(&dir, metric, &run_settings)?;
        if let Some(reason) = metric.is_none().then(|| unreportable(&records)).flatten() {
            collection.left_out.push((dir, reason));
            continue;
        }
        for record in records {
            settings.push(run_settings.values.clone());
            collection.records.push(record);
        }
    }
    assign_variants(&mut collection.records, &settings);
    Ok(collection)
}

/// Directories below `dir` that hold a `result.json` or a `COMPLETE` marker, or that look
/// like an unfinished run (hold a `config.toml`).
fn find_run_dirs(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let is_run = [RESULT_FILE, COMPLETE_FILE, CONFIG_FILE]
        .iter()
        .any(|f| dir.join(f).is_file());
    if is_run {
        out.push(dir.to_path_buf());
        return Ok(());
    }
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry
            .with_context(|| format!("listing {}", dir.display()))?
            .path();
        let hidden = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if path.is_dir() && !hidden {
            find_run_dirs(&path, out)?;
        }
    }
    Ok(())
}

/// The records of one complete run directory; a non-empty `label` of its settings names them
/// instead of the method.
fn read_run(dir: &Path, metric: Option<&str>, settings: &RunSettings) -> Result<Vec<ResultRecord>> {
    let label = settings.label.as_str();
    let path = dir.join(RESULT_FILE);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let stored: RunResult = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a run result", path.display()))?;
    let record = |method: String, dataset: String, value: f64| ResultRecord {
        experiment: stored.experiment.clone(),
        method: if label.is_empty() {
            method
        } else {
            label.to_string()
        },
        dataset,
        shots: stored.shots,
        seed: stored.seed,
        value,
        variant: BTreeMap::new(),
        classes: settings.classes.clone(),
        run_dir: dir.to_path_buf(),
    };
    if let Some(name) = metric {
        let value = stored
            .metrics
            .get(name)
            .or_else(|| stored.diagnostics.get(name))
            .copied()
            .or(if name == "val" { stored.val } else { None });
        let Some(value) = value else {
            let mut names: Vec<String> = stored
                .metrics
                .keys()
                .chain(stored.diagnostics.keys())
                .cloned()
                .collect();
            if stored.val.is_some() {
                names.push("val".into());
            }
            bail!(
                "{} has no metric `{name}` (it has: {})",
                path.display(),
                names.join(", ")
            );
        };
        return Ok(vec![record(
            stored.method.clone(),
            stored.dataset.clone(),
            value,
        )]);
    }
    if stored.per_task.len() > 1 {
        let method = format!("{} (multitask)", stored.method);
        return Ok(stored
            .per_task
            .iter()
            .map(|task| record(method.clone(), task.name.clone(), task.value))
            .collect());
    }
    Ok(vec![record(
        stored.method.clone(),
        stored.dataset.clone(),
        stored.test,
    )])
}

/// What a report reads from a run's `config.toml`.
#[derive(Default)]
struct RunSettings {
    /// `label` (empty when the run has none).
    label: String,
    /// `data.subsample_classes` (`all` when the run has none).
    classes: String,
    /// Dotted key → TOML value, without execution-only keys and the keys that name the group.
    values: BTreeMap<String, String>,
}

/// The run's settings; empty when the run has no `config.toml`.
fn read_settings(dir: &Path) -> Result<RunSettings> {
    let path = dir.join(CONFIG_FILE);
    if !path.is_file() {
        return Ok(RunSettings::default());
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{}: invalid TOML", path.display()))?;
    let label = match table.get("label") {
        None => String::new(),
        Some(toml::Value::String(label)) => label.clone(),
        Some(other) => bail!("{}: label = {other} is not a string", path.display()),
    };
    let classes = match table.get("data").and_then(|d| d.get("subsample_classes")) {
        None => "all".to_string(),
        Some(toml::Value::String(classes)) => classes.clone(),
        Some(other) => bail!(
            "{}: data.subsample_classes = {other} is not a string",
            path.display()
        ),
    };
    let mut values = BTreeMap::new();
    flatten(&toml::Value::Table(table), "", &mut values);
    if let Some(reference) = pipeline_reference(dir, INIT_FROM)? {
        values.insert(INIT_FROM.into(), reference);
    }
    // Without a label the method names the group.
    let method = (label.is_empty()).then_some("method.name");
    values.retain(|key, _| {
        let covers = |k: &&str| key == *k || key.starts_with(&format!("{k}."));
        !EXECUTION_KEYS
            .iter()
            .chain(GROUP_KEYS)
            .chain(method.as_ref())
            .any(covers)
    });
    Ok(RunSettings {
        label,
        classes,
        values,
    })
}

/// The key of the prompts a run starts from.
const INIT_FROM: &str = "method.init_from";

/// The pipeline reference (`@<stage>`) that `key` was resolved from, as the run's
/// `provenance.json` records it. A reference resolves to a different file per group of the
/// referenced stage (per seed, for base-to-novel's new-class runs), so a report compares
/// runs by the reference, not by the file: the runs of one stage initialised "from stage
/// `base`" form one group over their seeds.
fn pipeline_reference(dir: &Path, key: &str) -> Result<Option<String>> {
    let path = dir.join(PROVENANCE_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let provenance: BTreeMap<String, serde_json::Value> = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a provenance record", path.display()))?;
    Ok(provenance
        .get(key)
        .and_then(|source| source.as_str())
        .and_then(|source| source.strip_prefix("pipeline reference "))
        .map(|reference| toml::Value::String(reference.to_string()).to_string()))
}

fn flatten(value: &toml::Value, prefix: &str, out: &mut BTreeMap<String, String>) {
    match value {
        toml::Value::Table(table) if !table.is_empty() => {
            for (key, item) in table {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(item, &path, out);
            }
        }
        leaf => {
            out.insert(prefix.to_string(), leaf.to_string());
        }
    }
}

/// Finds the settings that differ between runs of one group and records them as each
/// record's `variant` (a key a run does not have reads `-`).
fn assign_variants(records: &mut [ResultRecord], settings: &[BTreeMap<String, String>]) {
    let mut groups: BTreeMap<(String, String, String, usize), Vec<usize>> = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        groups
            .entry((
                r.experiment.clone(),
                r.method.clone(),
                r.dataset.clone(),
                r.shots,
            ))
            .or_default()
            .push(i);
    }
    let mut varying = BTreeSet::new();
    for members in groups.values() {
        let keys: BTreeSet<&String> = members.iter().flat_map(|&i| settings[i].keys()).collect();
        for key in keys {
            let first = settings[members[0]].get(key);
            if members.iter().any(|&i| settings[i].get(key) != first) {
                varying.insert(key.clone());
            }
        }
    }
    for (record, own) in records.iter_mut().zip(settings) {
        record.variant = varying
            .iter()
            .map(|key| {
                (
                    key.clone(),
                    own.get(key).cloned().unwrap_or_else(|| "-".into()),
                )
            })
            .collect();
    }
}
