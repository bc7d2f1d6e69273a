//! `mvlpt report`: mean ± std over seeds of every complete run below a directory, per
//! method × dataset × shots, with per-method averages over datasets; as a text table,
//! Markdown, CSV, JSON and charts, and laid out as a paper table.
//!
//! Runs are grouped by experiment, method (or the run's `label`), dataset and shots. When
//! runs of one group differ in other config keys (a sweep over `train.lr`, say), those keys
//! become extra columns so different settings are never averaged together; keys that only say
//! where or how fast a run went (device, paths, worker counts) are ignored. The runs of a
//! multitask experiment (more than one entry in `per_task`) contribute one row per task, under
//! the method name `<method> (multitask)` (or the run's label).
//!
//! - [`collect`]: the results below a directory; [`aggregate`]: their statistics;
//! - rendering as text, Markdown, CSV and files: `render.rs`;
//! - [`TableLayout`]: datasets as columns in a fixed order with named averages;
//! - base-to-novel tables (base, novel, harmonic mean): `base_to_novel.rs`.

mod base_to_novel;
mod collect;
mod layout;
mod render;

pub use base_to_novel::harmonic_mean;
pub use collect::{collect, collect_all, Collection, ResultRecord};
pub use layout::TableLayout;

use anyhow::{bail, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

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
    /// The classes its runs saw (`data.subsample_classes`): `all`, `base` or `new`. Left out
    /// of `report.json` when `all`.
    #[serde(skip_serializing_if = "is_all")]
    pub classes: String,
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

type GroupKey = (String, String, String, usize, Vec<(String, String)>, String);

fn is_all(classes: &str) -> bool {
    classes == "all"
}

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
            r.classes.clone(),
        );
        groups.entry(key).or_default().push(r);
    }
    let mut stats = Vec::with_capacity(groups.len());
    for ((experiment, method, dataset, shots, variant, classes), members) in groups {
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
            classes,
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
