//! `result.json`: what one finished run reports, written by the run loop and read back by
//! `mvlpt report`, the executors and `mvlpt status`.

use crate::eval::metrics::TaskResult;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What one finished run reports; written as the run directory's `result.json` and read back
/// by `mvlpt report`. Metric values are fractions in [0, 1] whatever unit the evaluator uses.
/// Reading accepts a result that names only what a report needs (experiment, method, dataset,
/// shots, seed, test); the other fields then take their empty values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// Experiment name (`name` in the config).
    pub experiment: String,
    /// The run directory's id (hash of the resolved config).
    #[serde(default)]
    pub run_id: String,
    /// Prompt method plugin (`method.name`).
    pub method: String,
    /// Dataset plugin, or a label for the joint task set of a multitask run.
    pub dataset: String,
    /// Shots per class (`data.shots`, 0 = all).
    pub shots: usize,
    /// The run's seed.
    pub seed: u64,
    /// The test value of the selected prompts (the evaluator's overall metric).
    pub test: f64,
    /// The validation value used for model selection, when there was a validation split.
    #[serde(default)]
    pub val: Option<f64>,
    /// Every further named test metric the evaluator reported.
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    /// Per-task test values (one entry per task of a multitask run).
    #[serde(default)]
    pub per_task: Vec<TaskResult>,
    /// Measurements of the prompts that are not test metrics (e.g. `class_text_cosine_start`,
    /// `class_text_cosine`: how alike the class text features are before training and with
    /// the selected prompts). `mvlpt report --metric NAME` reads them too.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub diagnostics: BTreeMap<String, f64>,
    /// Epochs trained.
    #[serde(default)]
    pub epochs: usize,
    /// Wall-clock seconds of the whole run (this attempt, when it resumed).
    #[serde(default)]
    pub wall_seconds: f64,
}
