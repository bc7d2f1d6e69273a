//! One experiment run end to end: the entry point `mvlpt run` calls for every run directory,
//! and the result it writes to `result.json`.

use super::trainer::{evaluator, train, RunSink};
use crate::config::LoadedConfig;
use crate::eval::metrics::TaskResult;
use crate::plugin::Registry;
use crate::run::{MetricsLog, RunDir};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

/// What one finished run reports; written as the run directory's `result.json` and read back
/// by `mvlpt report`. Metric values are fractions in [0, 1] whatever unit the evaluator uses.
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
    /// The test value of the selected prompts (the evaluator's overall metric).
    pub test: f64,
    /// The validation value used for model selection, when there was a validation split.
    pub val: Option<f64>,
    /// Every further named test metric the evaluator reported.
    pub metrics: BTreeMap<String, f64>,
    /// Per-task test values (one entry per task of a multitask run).
    pub per_task: Vec<TaskResult>,
    /// Measurements of the prompts that are not test metrics (e.g. `class_text_cosine_start`,
    /// `class_text_cosine`: how alike the class text features are before training and with
    /// the selected prompts). `mvlpt report --metric NAME` reads them too.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub diagnostics: BTreeMap<String, f64>,
    /// Epochs trained.
    pub epochs: usize,
    /// Wall-clock seconds of the whole run (this attempt, when it resumed).
    pub wall_seconds: f64,
}

/// A run directory as the trainer's sink: metrics go to `metrics.jsonl`, checkpoints to
/// `checkpoints/`.
struct DirSink<'a> {
    dir: &'a RunDir,
    metrics: MetricsLog,
}

impl RunSink for DirSink<'_> {
    fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn log_metrics(&mut self, record: &serde_json::Value) -> Result<()> {
        self.metrics.append(record)
    }
}

/// Trains and evaluates the experiment `config` into `run_dir`, resuming from its last
/// checkpoint when there is one.
pub fn run_experiment(
    config: &LoadedConfig,
    registry: &Registry,
    run_dir: &RunDir,
) -> Result<RunResult> {
    let started = Instant::now();
    let unit = evaluator(config, registry)?.unit();
    let mut sink = DirSink {
        dir: run_dir,
        metrics: run_dir.metrics()?,
    };
    let outcome = train(config, registry, &mut sink)?;
    for note in &outcome.notes {
        tracing::info!("note: {note}");
    }
    let c = &config.config;
    let dataset = if c.data.tasks.is_empty() {
        c.data.dataset.clone()
    } else {
        format!("{} tasks", c.data.tasks.len())
    };
    Ok(RunResult {
        experiment: c.name.clone(),
        run_id: run_dir.run_id().to_string(),
        method: c.method.name.clone(),
        dataset,
        shots: c.data.shots,
        seed: c.seed,
        test: unit * outcome.test.overall,
        val: outcome.val.map(|v| unit * v),
        metrics: outcome
            .test
            .extra
            .iter()
            .map(|(k, v)| (k.clone(), unit * v))
            .collect(),
        per_task: outcome
            .test
            .tasks
            .into_iter()
            .map(|t| TaskResult {
                value: unit * t.value,
                ..t
            })
            .collect(),
        diagnostics: outcome.diagnostics,
        epochs: outcome.epochs,
        wall_seconds: started.elapsed().as_secs_f64(),
    })
}
