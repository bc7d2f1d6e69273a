//! One experiment run end to end: the entry point `mvlpt run` calls for every run directory,
//! and the result it writes to `result.json`.
//!
//! PLACEHOLDER: [`run_experiment`] is a stub until the training engine lands (the methods
//! work replaces its body); [`RunResult`] is the agreed shape of `result.json`.

use crate::config::LoadedConfig;
use crate::eval::metrics::TaskResult;
use crate::plugin::Registry;
use crate::run::RunDir;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What one finished run reports; written as the run directory's `result.json` and read back
/// by `mvlpt report`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// Experiment name (`name` in the config).
    pub experiment: String,
    /// The run directory's id (hash of the resolved config).
    pub run_id: String,
    /// Prompt method plugin (`method.name`).
    pub method: String,
    /// Dataset plugin, or a label for the joint task set of a multitask run.
    pub dataset: String,
    /// Shots per class (`data.shots`, 0 = all).
    pub shots: usize,
    /// The run's seed.
    pub seed: u64,
    /// The test value of the selected prompts (the evaluator's overall metric, in [0, 1]).
    pub test: f64,
    /// The validation value used for model selection, when there was a validation split.
    pub val: Option<f64>,
    /// Every named test metric the evaluator reported.
    pub metrics: BTreeMap<String, f64>,
    /// Per-task test values (one entry per task of a multitask run).
    pub per_task: Vec<TaskResult>,
    /// Epochs trained.
    pub epochs: usize,
    /// Wall-clock seconds of the whole run.
    pub wall_seconds: f64,
}

/// Trains and evaluates the experiment `config` into `run_dir`, resuming from its last
/// checkpoint when there is one.
///
/// PLACEHOLDER until the training engine lands: always fails.
pub fn run_experiment(
    config: &LoadedConfig,
    registry: &Registry,
    run_dir: &RunDir,
) -> anyhow::Result<RunResult> {
    let _ = (config, registry, run_dir);
    anyhow::bail!("training engine not available yet")
}
