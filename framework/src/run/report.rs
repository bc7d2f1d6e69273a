//! `mvlpt report`: mean ± std over seeds of every complete run below a directory, per
//! method × dataset × shots, with per-method averages over datasets; as a text table,
//! Markdown, CSV and JSON.
//!
//! Runs are grouped by experiment, method, dataset and shots. When runs of one group differ
//! in other config keys (a sweep over `train.lr`, say), those keys become extra columns so
//! different settings are never averaged together; keys that only say where or how fast a run
//! went (device, paths, worker counts) are ignored. The runs of a multitask experiment (more
//! than one entry in `per_task`) contribute one row per task, under the method name
//! `<method> (multitask)`.

use super::dir::{COMPLETE_FILE, CONFIG_FILE, RESULT_FILE};
use crate::io::{write_atomic, write_json_atomic};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
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

/// The config keys that define a group already.
const GROUP_KEYS: &[&str] = &["method.name", "data.dataset", "data.shots"];

/// One value to aggregate: a run (or one task of a multitask run).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ResultRecord {
    /// Experiment name.
    pub experiment: String,
    /// Method (with ` (multitask)` for a task of a multitask run).
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
    /// The run directory.
    pub run_dir: PathBuf,
}

/// The part of `result.json` a report reads (other fields are ignored).
#[derive(Deserialize)]
struct StoredResult {
    experiment: String,
    method: String,
    dataset: String,
    shots: usize,
    seed: u64,
    test: f64,
    #[serde(default)]
    metrics: BTreeMap<String, f64>,
    #[serde(default)]
    per_task: Vec<StoredTask>,
}

#[derive(Deserialize)]
struct StoredTask {
    name: String,
    value: f64,
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

/// Why the records of a complete run cannot be reported, if they cannot.
fn unreportable(dir: &Path, records: &[ResultRecord]) -> Option<String> {
    if !dir.join(CONFIG_FILE).is_file() {
        return Some(format!(
            "it is complete but has no {CONFIG_FILE}, so its settings are unknown"
        ));
    }
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
/// result's `metrics` instead of the overall `test` value (and then multitask runs are not
/// split into tasks).
pub fn collect(root: &Path, metric: Option<&str>) -> Result<Collection> {
    if !root.is_dir() {
        bail!("{} is not a directory", root.display());
    }
    let mut run_dirs = Vec::new();
    find_run_dirs(root, &mut run_dirs)?;
    run_dirs.sort();
    let mut collection = Collection::default();
    let mut settings = Vec::new();
    for dir in run_dirs {
        if !dir.join(COMPLETE_FILE).is_file() {
            collection.incomplete.push(dir);
            continue;
        }
        let records = read_run(&dir, metric)?;
        if let Some(reason) = unreportable(&dir, &records) {
            collection.left_out.push((dir, reason));
            continue;
        }
        let run_settings = read_settings(&dir)?;
        for record in records {
            settings.push(run_settings.clone());
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

/// The records of one complete run directory.
fn read_run(dir: &Path, metric: Option<&str>) -> Result<Vec<ResultRecord>> {
    let path = dir.join(RESULT_FILE);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let stored: StoredResult = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a run result", path.display()))?;
    let record = |method: String, dataset: String, value: f64| ResultRecord {
        experiment: stored.experiment.clone(),
        method,
        dataset,
        shots: stored.shots,
        seed: stored.seed,
        value,
        variant: BTreeMap::new(),
        run_dir: dir.to_path_buf(),
    };
    if let Some(name) = metric {
        let Some(&value) = stored.metrics.get(name) else {
            bail!(
                "{} has no metric `{name}` (it has: {})",
                path.display(),
                stored
                    .metrics
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
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

/// The run's config as dotted key → TOML value, without execution-only keys; empty when the
/// run has no `config.toml`.
fn read_settings(dir: &Path) -> Result<BTreeMap<String, String>> {
    let path = dir.join(CONFIG_FILE);
    if !path.is_file() {
        return Ok(BTreeMap::new());
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{}: invalid TOML", path.display()))?;
    let mut out = BTreeMap::new();
    flatten(&toml::Value::Table(table), "", &mut out);
    out.retain(|key, _| {
        let covers = |k: &&str| key == *k || key.starts_with(&format!("{k}."));
        !EXECUTION_KEYS.iter().chain(GROUP_KEYS).any(covers)
    });
    Ok(out)
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

/// Mean ± std over seeds of one method × dataset × shots (× variant).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupStats {
    /// Experiment name.
    pub experiment: String,
    /// Method.
    pub method: String,
    /// Dataset.
    pub dataset: String,
    /// Shots per class.
    pub shots: usize,
    /// Settings that tell this group apart from others with the same method, dataset, shots.
    pub variant: BTreeMap<String, String>,
    /// Mean over seeds.
    pub mean: f64,
    /// Sample standard deviation (n − 1); `None` for a single seed.
    pub std: Option<f64>,
    /// Number of seeds.
    pub n: usize,
    /// The seeds, sorted.
    pub seeds: Vec<u64>,
}

/// A method's mean over datasets (of the per-dataset means), per shots and variant.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MethodAverage {
    /// Experiment name.
    pub experiment: String,
    /// Method.
    pub method: String,
    /// Shots per class.
    pub shots: usize,
    /// As in [`GroupStats::variant`].
    pub variant: BTreeMap<String, String>,
    /// Mean of the per-dataset means.
    pub mean: f64,
    /// How many datasets went into it.
    pub datasets: usize,
}

/// The aggregated report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// What was aggregated: `test` or a metric name.
    pub metric: String,
    /// Names of the variant columns.
    pub variant_keys: Vec<String>,
    /// One row per method × dataset × shots × variant.
    pub groups: Vec<GroupStats>,
    /// One row per method × shots × variant.
    pub averages: Vec<MethodAverage>,
}

type GroupKey = (String, String, String, usize, Vec<(String, String)>);

/// Aggregates `records` over seeds. Two records with the same group and seed are an error
/// (their runs differ only in execution settings, or were copied): each seed counts once.
pub fn aggregate(records: &[ResultRecord], metric: &str) -> Result<Report> {
    let mut groups: BTreeMap<GroupKey, Vec<&ResultRecord>> = BTreeMap::new();
    for r in records {
        let key = (
            r.experiment.clone(),
            r.method.clone(),
            r.dataset.clone(),
            r.shots,
            r.variant.clone().into_iter().collect(),
        );
        groups.entry(key).or_default().push(r);
    }
    let mut stats = Vec::with_capacity(groups.len());
    for ((experiment, method, dataset, shots, variant), members) in groups {
        let mut seen: BTreeMap<u64, &Path> = BTreeMap::new();
        for r in &members {
            if let Some(other) = seen.insert(r.seed, &r.run_dir) {
                bail!(
                    "{} and {} both report seed {} of {method} on {dataset} with {shots} shots; \
                     report one of them (point `mvlpt report` at a narrower directory)",
                    other.display(),
                    r.run_dir.display(),
                    r.seed
                );
            }
        }
        let values: Vec<f64> = members.iter().map(|r| r.value).collect();
        let (mean, std) = mean_and_sample_std(&values);
        stats.push(GroupStats {
            experiment,
            method,
            dataset,
            shots,
            variant: variant.into_iter().collect(),
            mean,
            std,
            n: values.len(),
            seeds: seen.into_keys().collect(),
        });
    }
    let variant_keys = records
        .first()
        .map(|r| r.variant.keys().cloned().collect())
        .unwrap_or_default();
    let averages = method_averages(&stats);
    Ok(Report {
        metric: metric.to_string(),
        variant_keys,
        groups: stats,
        averages,
    })
}

/// Mean and sample standard deviation (n − 1; `None` below two values).
pub fn mean_and_sample_std(values: &[f64]) -> (f64, Option<f64>) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let std = (values.len() > 1).then(|| {
        let squares: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
        (squares / (n - 1.0)).sqrt()
    });
    (mean, std)
}

fn method_averages(stats: &[GroupStats]) -> Vec<MethodAverage> {
    type Key = (String, String, usize, Vec<(String, String)>);
    let mut by_method: BTreeMap<Key, Vec<f64>> = BTreeMap::new();
    for s in stats {
        let key = (
            s.experiment.clone(),
            s.method.clone(),
            s.shots,
            s.variant.clone().into_iter().collect(),
        );
        by_method.entry(key).or_default().push(s.mean);
    }
    by_method
        .into_iter()
        .map(
            |((experiment, method, shots, variant), means)| MethodAverage {
                experiment,
                method,
                shots,
                variant: variant.into_iter().collect(),
                mean: means.iter().sum::<f64>() / means.len() as f64,
                datasets: means.len(),
            },
        )
        .collect()
}

/// A table of strings, rendered aligned for the console or as Markdown.
#[derive(Clone, Debug, Default)]
struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn widths(&self) -> Vec<usize> {
        (0..self.headers.len())
            .map(|c| {
                std::iter::once(&self.headers[c])
                    .chain(self.rows.iter().map(|r| &r[c]))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect()
    }

    fn to_text(&self) -> String {
        let widths = self.widths();
        let line = |cells: &[String]| {
            cells
                .iter()
                .zip(&widths)
                .map(|(cell, &w)| format!("{cell:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
        };
        let mut out = line(&self.headers);
        out.push('\n');
        out.push_str(&line(
            &widths.iter().map(|&w| "-".repeat(w)).collect::<Vec<_>>(),
        ));
        out.push('\n');
        for row in &self.rows {
            out.push_str(&line(row));
            out.push('\n');
        }
        out
    }

    fn to_markdown(&self) -> String {
        let line = |cells: &[String]| format!("| {} |\n", cells.join(" | ").replace('\n', " "));
        let mut out = line(&self.headers);
        out.push_str(&line(&vec!["---".to_string(); self.headers.len()]));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }
}

/// A fraction as a percentage with two decimals.
fn percent(value: f64) -> String {
    format!("{:.2}", 100.0 * value)
}

impl Report {
    fn show_experiment(&self) -> bool {
        let names: BTreeSet<&str> = self.groups.iter().map(|g| g.experiment.as_str()).collect();
        names.len() > 1
    }

    /// Leading columns shared by both tables: `[experiment,] method, [dataset,] shots, variants`.
    fn key_headers(&self, with_dataset: bool) -> Vec<String> {
        let mut headers = Vec::new();
        if self.show_experiment() {
            headers.push("experiment".to_string());
        }
        headers.push("method".into());
        if with_dataset {
            headers.push("dataset".into());
        }
        headers.push("shots".into());
        headers.extend(self.variant_keys.iter().cloned());
        headers
    }

    fn key_cells(
        &self,
        experiment: &str,
        method: &str,
        dataset: Option<&str>,
        shots: usize,
        variant: &BTreeMap<String, String>,
    ) -> Vec<String> {
        let mut cells = Vec::new();
        if self.show_experiment() {
            cells.push(experiment.to_string());
        }
        cells.push(method.to_string());
        cells.extend(dataset.map(str::to_string));
        cells.push(shots.to_string());
        cells.extend(variant.values().cloned());
        cells
    }

    fn group_table(&self) -> Table {
        let mut headers = self.key_headers(true);
        headers.push(format!("{} (%) mean ± std", self.metric));
        headers.push("n".into());
        let rows = self
            .groups
            .iter()
            .map(|g| {
                let mut cells = self.key_cells(
                    &g.experiment,
                    &g.method,
                    Some(&g.dataset),
                    g.shots,
                    &g.variant,
                );
                cells.push(match g.std {
                    Some(std) => format!("{} ± {}", percent(g.mean), percent(std)),
                    None => percent(g.mean),
                });
                cells.push(g.n.to_string());
                cells
            })
            .collect();
        Table { headers, rows }
    }

    fn average_table(&self) -> Table {
        let mut headers = self.key_headers(false);
        headers.push(format!("{} (%) average over datasets", self.metric));
        headers.push("datasets".into());
        let rows = self
            .averages
            .iter()
            .map(|a| {
                let mut cells = self.key_cells(&a.experiment, &a.method, None, a.shots, &a.variant);
                cells.push(percent(a.mean));
                cells.push(a.datasets.to_string());
                cells
            })
            .collect();
        Table { headers, rows }
    }

    /// Both tables, aligned, for the console.
    pub fn to_text(&self) -> String {
        format!(
            "{}\nPer-method average over datasets\n\n{}",
            self.group_table().to_text(),
            self.average_table().to_text()
        )
    }

    /// Both tables as Markdown.
    pub fn to_markdown(&self) -> String {
        format!(
            "## {} per method, dataset and shots (mean ± std over seeds, %)\n\n{}\n\
             ## Per-method average over datasets (%)\n\n{}",
            self.metric,
            self.group_table().to_markdown(),
            self.average_table().to_markdown()
        )
    }

    /// One CSV table of raw fractions: a row per group, then a row per method average with
    /// `dataset` = `(average)`, empty `std` and `n` = the number of datasets averaged.
    pub fn to_csv(&self) -> String {
        let mut headers = vec!["experiment", "method", "dataset", "shots"]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        headers.extend(self.variant_keys.iter().cloned());
        headers.extend(["metric", "mean", "std", "n", "seeds"].map(String::from));
        let mut lines = vec![csv_line(&headers)];
        for g in &self.groups {
            let mut cells = vec![
                g.experiment.clone(),
                g.method.clone(),
                g.dataset.clone(),
                g.shots.to_string(),
            ];
            cells.extend(g.variant.values().cloned());
            cells.push(self.metric.clone());
            cells.push(g.mean.to_string());
            cells.push(g.std.map(|s| s.to_string()).unwrap_or_default());
            cells.push(g.n.to_string());
            cells.push(
                g.seeds
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
            );
            lines.push(csv_line(&cells));
        }
        for a in &self.averages {
            let mut cells = vec![
                a.experiment.clone(),
                a.method.clone(),
                "(average)".into(),
                a.shots.to_string(),
            ];
            cells.extend(a.variant.values().cloned());
            cells.push(self.metric.clone());
            cells.push(a.mean.to_string());
            cells.push(String::new());
            cells.push(a.datasets.to_string());
            cells.push(String::new());
            lines.push(csv_line(&cells));
        }
        lines.concat()
    }

    /// Writes `report.md`, `report.csv`, `report.json` (raw fractions) and the bar chart
    /// `report.png` into `dir`, atomically; returns their paths.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        let markdown = dir.join("report.md");
        let csv = dir.join("report.csv");
        let json = dir.join("report.json");
        let chart = dir.join("report.png");
        write_atomic(&markdown, self.to_markdown().as_bytes())?;
        write_atomic(&csv, self.to_csv().as_bytes())?;
        write_json_atomic(&json, self)?;
        super::chart::write_chart(self, &chart)?;
        Ok(vec![markdown, csv, json, chart])
    }
}

/// A paper-style table: one row per method × shots, one column per dataset in a fixed order,
/// then columns averaging named subsets of them (e.g. the 20 ELEVATER datasets and the 12 that
/// do not overlap MVLPT's source datasets). Read from a TOML file:
///
/// ```toml
/// columns = ["cifar-10", "cifar-100", ...]
/// [averages]
/// "average (20)" = ["cifar-10", "cifar-100", ...]
/// ```
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableLayout {
    /// Dataset (task) columns, in order.
    pub columns: Vec<String>,
    /// Named averages over subsets of datasets, in order.
    #[serde(default)]
    pub averages: Vec<(String, Vec<String>)>,
}

impl TableLayout {
    /// Reads a layout file.
    pub fn load(path: &Path) -> Result<Self> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            columns: Vec<String>,
            #[serde(default)]
            averages: toml::Table,
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading table layout {}", path.display()))?;
        let file: File = toml::from_str(&text)
            .with_context(|| format!("parsing table layout {}", path.display()))?;
        let mut averages = Vec::new();
        for (name, value) in file.averages {
            let members: Vec<String> = value.try_into().with_context(|| {
                format!(
                    "{}: averages.{name} must be a list of dataset names",
                    path.display()
                )
            })?;
            averages.push((name, members));
        }
        Ok(Self {
            columns: file.columns,
            averages,
        })
    }
}

impl Report {
    /// The report laid out by `layout`: each cell is the mean over seeds (in %), `-` where no
    /// run exists; an average is only given when every member dataset has a value, otherwise
    /// it shows how many are present (`k/n`).
    pub fn layout_markdown(&self, layout: &TableLayout) -> String {
        type RowKey = (String, usize, Vec<(String, String)>);
        let mut rows: BTreeMap<RowKey, BTreeMap<&str, f64>> = BTreeMap::new();
        for g in &self.groups {
            let key = (
                g.method.clone(),
                g.shots,
                g.variant.clone().into_iter().collect(),
            );
            rows.entry(key)
                .or_default()
                .insert(g.dataset.as_str(), g.mean);
        }
        let mut headers = vec!["method".to_string(), "shots".to_string()];
        headers.extend(self.variant_keys.iter().cloned());
        headers.extend(layout.columns.iter().cloned());
        headers.extend(layout.averages.iter().map(|(name, _)| name.clone()));
        let table_rows = rows
            .into_iter()
            .map(|((method, shots, variant), values)| {
                let mut cells = vec![method, shots.to_string()];
                cells.extend(variant.into_iter().map(|(_, v)| v));
                for column in &layout.columns {
                    cells.push(
                        values
                            .get(column.as_str())
                            .map_or("-".into(), |v| percent(*v)),
                    );
                }
                for (_, members) in &layout.averages {
                    let present: Vec<f64> = members
                        .iter()
                        .filter_map(|m| values.get(m.as_str()).copied())
                        .collect();
                    cells.push(if present.len() == members.len() && !members.is_empty() {
                        percent(present.iter().sum::<f64>() / present.len() as f64)
                    } else {
                        format!("{}/{}", present.len(), members.len())
                    });
                }
                cells
            })
            .collect();
        Table {
            headers,
            rows: table_rows,
        }
        .to_markdown()
    }
}

/// One CSV line (RFC 4180 quoting where needed).
fn csv_line(cells: &[String]) -> String {
    let quoted: Vec<String> = cells
        .iter()
        .map(|cell| {
            if cell.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", cell.replace('"', "\"\""))
            } else {
                cell.clone()
            }
        })
        .collect();
    format!("{}\n", quoted.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_with_separators_are_quoted() {
        let line = csv_line(&["a".into(), "b,c".into(), "say \"hi\"".into()]);
        assert_eq!(line, "a,\"b,c\",\"say \"\"hi\"\"\"\n");
    }
}
