//! One experiment run end to end: the entry point `mvlpt run` calls for every run directory.
//! The engine trains and evaluates; this file gives it the run directory as its sink and
//! turns its outcome into the run's [`RunResult`].

use super::{MetricsLog, RunDir, RunResult};
use crate::config::LoadedConfig;
use crate::engine::trainer::{evaluator, train, RunSink};
use crate::eval::metrics::TaskResult;
use crate::plugin::Registry;
use anyhow::Result;
use std::path::Path;
use std::time::Instant;

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
