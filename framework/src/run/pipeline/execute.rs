//! Runs a pipeline's stages in order in this process: a stage starts only when every run of
//! the stages before it is complete; a failed run stops the pipeline after its stage.

use super::{AverageOutcome, Pipeline, StageKind};
use crate::plugin::Registry;
use crate::run::runner::{execute_runs, Engine, Outcome, RunReport};

/// What happened to one stage.
#[derive(Clone, Debug)]
pub struct StageReport {
    /// Stage name.
    pub name: String,
    /// Its outcome.
    pub outcome: StageOutcome,
}

/// How a stage ended.
#[derive(Clone, Debug)]
pub enum StageOutcome {
    /// An experiment stage: one report per run.
    Runs(Vec<RunReport>),
    /// An average stage: what it did, or why it failed.
    Average(Result<AverageOutcome, String>),
}

impl StageOutcome {
    /// Failed runs (or 1 for a failed average).
    pub fn failures(&self) -> usize {
        match self {
            Self::Runs(reports) => reports
                .iter()
                .filter(|r| matches!(r.outcome, Outcome::Failed(_)))
                .count(),
            Self::Average(result) => usize::from(result.is_err()),
        }
    }
}

/// What happened to a pipeline.
#[derive(Clone, Debug)]
pub struct PipelineReport {
    /// The stages that ran, in order (the last one may have failed).
    pub stages: Vec<StageReport>,
    /// The stages that did not start because an earlier one failed.
    pub not_started: Vec<String>,
}

impl PipelineReport {
    /// Failed runs over all stages.
    pub fn failures(&self) -> usize {
        self.stages.iter().map(|s| s.outcome.failures()).sum()
    }
}

/// Runs every stage of `pipeline` in order (see [`execute_runs`] for an experiment stage's
/// runs). Stops after the first stage with a failure.
pub fn execute_pipeline(
    pipeline: &Pipeline,
    registry: &Registry,
    engine: Engine<'_>,
    force: bool,
) -> PipelineReport {
    let mut report = PipelineReport {
        stages: Vec::new(),
        not_started: Vec::new(),
    };
    for stage in &pipeline.stages {
        if report.failures() > 0 {
            report.not_started.push(stage.name.clone());
            continue;
        }
        let outcome = match &stage.kind {
            StageKind::Experiment(experiment) => {
                if pipeline.is_pipeline {
                    tracing::info!(
                        "stage `{}`: {} run(s) in {}",
                        stage.name,
                        experiment.runs.len(),
                        experiment.dir().display()
                    );
                }
                StageOutcome::Runs(execute_runs(&experiment.runs, registry, engine, force))
            }
            StageKind::Average(average) => {
                tracing::info!(
                    "stage `{}`: average of stage `{}` by {:?} into {}",
                    stage.name,
                    average.of,
                    average.by,
                    average.dir.display()
                );
                let result = average.run(force).map_err(|error| format!("{error:#}"));
                if let Err(message) = &result {
                    tracing::error!("stage `{}` failed: {message}", stage.name);
                }
                StageOutcome::Average(result)
            }
        };
        report.stages.push(StageReport {
            name: stage.name.clone(),
            outcome,
        });
    }
    report
}
