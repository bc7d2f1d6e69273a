//! Pipelines: stages that `mvlpt run` works through in order as one command. An experiment
//! stage is an ordinary experiment (its own sweep) whose runs go to
//! `<runs_dir>/<pipeline>/<stage>/<run id>/`; an average stage averages the prompts of an
//! earlier experiment stage over seeds into one checkpoint per group
//! (`<runs_dir>/<pipeline>/<stage>/<group id>.safetensors`), which later runs name with
//! `method.init_from = "@<stage>"`. An ordinary experiment file is a pipeline of one stage,
//! with its runs where they always were (`<runs_dir>/<name>/<run id>/`).
//!
//! - [`PipelineSource`]: the stages with their loaded experiment configs, before planning
//!   (enough to find plugin libraries and report directories).
//! - [`Pipeline`]: every stage planned: runs resolved, average groups and `@` references fixed.
//! - [`execute_pipeline`]: runs the stages in order in this process.
//! - [`Entry`]: the pipeline as a flat list numbered across stages (a run, or a whole average
//!   stage); [`Pipeline::execute_entry`] runs one (`--index`), [`Pipeline::write_plan`] lists
//!   them all in `plan.json` (`--plan`).

mod average;
mod entries;
mod execute;
mod plan_file;
mod reference;

pub use average::{AverageGroup, AverageOutcome, AverageStage, AVERAGE_INDEX_FILE};
pub use entries::{Entry, EntryOutcome, Work};
pub use execute::{execute_pipeline, PipelineReport, StageOutcome, StageReport};
pub use plan_file::PLAN_FILE;

use super::layer::{with_fallback, with_values};
use super::planning::{check_plans, plan_runs_with, PlannedRun};
use crate::config::{LoadedConfig, PipelineConfig, PipelineReportConfig, StageAction};
use crate::plugin::Registry;
use anyhow::{bail, Context, Result};
use figment::value::Value;
use std::path::{Path, PathBuf};

/// A pipeline's stages with their experiment configs loaded, not yet planned.
#[derive(Clone, Debug)]
pub struct PipelineSource {
    /// Pipeline name (the experiment's name for an ordinary experiment).
    pub name: String,
    /// The file it was loaded from.
    pub file: PathBuf,
    /// Whether the file is a pipeline file (false: an ordinary experiment, one stage).
    pub is_pipeline: bool,
    /// The stages in order.
    pub stages: Vec<SourceStage>,
    /// The stages `mvlpt report` shows by default and their table layout (file's `[report]`).
    pub report: PipelineReportConfig,
}

/// One stage before planning.
#[derive(Clone, Debug)]
pub struct SourceStage {
    /// Stage name (the experiment's name for an ordinary experiment).
    pub name: String,
    /// What it does.
    pub kind: SourceStageKind,
}

/// What a stage does, before planning.
#[derive(Clone, Debug)]
pub enum SourceStageKind {
    /// An experiment, loaded through the usual layers, named `<pipeline>/<stage>`.
    Experiment(Box<LoadedConfig>),
    /// The seed average of an earlier experiment stage's prompts.
    Average {
        /// The averaged stage.
        of: String,
        /// Grouping keys, if the file gives them.
        by: Option<Vec<String>>,
    },
}

impl PipelineSource {
    /// Loads `file`: a pipeline file (a `stages` list) or an ordinary experiment. `sets` apply
    /// to every experiment stage.
    pub fn load(file: &Path, sets: &[String]) -> Result<Self> {
        if !PipelineConfig::is_pipeline_file(file)? {
            let loaded = LoadedConfig::load(Some(file), sets)?;
            return Ok(Self {
                name: loaded.config.name.clone(),
                file: file.to_path_buf(),
                is_pipeline: false,
                report: PipelineReportConfig::default(),
                stages: vec![SourceStage {
                    name: loaded.config.name.clone(),
                    kind: SourceStageKind::Experiment(Box::new(loaded)),
                }],
            });
        }
        let pipeline = PipelineConfig::load(file)?;
        let dir = file.parent().unwrap_or(Path::new(""));
        let report = PipelineReportConfig {
            stages: pipeline.report.stages.clone(),
            layout: pipeline.report.layout.as_ref().map(|l| dir.join(l)),
        };
        let mut stages = Vec::new();
        for (name, action) in pipeline.actions(dir) {
            let kind = match action {
                StageAction::Experiment(path) => {
                    let loaded = LoadedConfig::load(Some(&path), sets)
                        .with_context(|| format!("pipeline {}, stage `{name}`", file.display()))?;
                    let source = format!("pipeline {}, stage {name}", file.display());
                    let full_name = Value::from(format!("{}/{name}", pipeline.name));
                    let what = || format!("pipeline {}, stage `{name}`", file.display());
                    let mut named =
                        with_values(&loaded, &source, &[("name".into(), full_name)], what)?;
                    if let Some(executor) = &pipeline.executor {
                        let value = Value::serialize(executor)
                            .with_context(|| format!("{}: [executor]", file.display()))?;
                        named = with_fallback(&named, &source, "executor", &value, what)?;
                    }
                    SourceStageKind::Experiment(Box::new(named))
                }
                StageAction::Average { of, by } => SourceStageKind::Average { of, by },
            };
            stages.push(SourceStage { name, kind });
        }
        Ok(Self {
            name: pipeline.name,
            file: file.to_path_buf(),
            is_pipeline: true,
            stages,
            report,
        })
    }

    /// The loaded config of every experiment stage, in order.
    pub fn experiment_configs(&self) -> impl Iterator<Item = (&str, &LoadedConfig)> {
        self.stages.iter().filter_map(|stage| match &stage.kind {
            SourceStageKind::Experiment(loaded) => Some((stage.name.as_str(), loaded.as_ref())),
            SourceStageKind::Average { .. } => None,
        })
    }

    /// The directory of the whole pipeline: `<runs_dir>/<name>/` (the runs directory of the
    /// first experiment stage).
    pub fn root(&self) -> PathBuf {
        let runs_dir = self
            .experiment_configs()
            .next()
            .map(|(_, loaded)| loaded.config.output.runs_dir.clone())
            .unwrap_or_default();
        runs_dir.join(&self.name)
    }

    /// The directory of stage `name`: `<runs_dir>/<pipeline>/<stage>/` (for an ordinary
    /// experiment `<runs_dir>/<name>/`, where its runs are).
    pub fn stage_dir(&self, name: &str) -> Result<PathBuf> {
        let stage = self.stage(name)?;
        Ok(match &stage.kind {
            SourceStageKind::Experiment(loaded) => {
                loaded.config.output.runs_dir.join(&loaded.config.name)
            }
            SourceStageKind::Average { of, .. } => self.stage_dir(of)?.with_file_name(name),
        })
    }

    /// The stage called `name`; the error lists the stages.
    pub fn stage(&self, name: &str) -> Result<&SourceStage> {
        self.stages
            .iter()
            .find(|stage| stage.name == name)
            .with_context(|| {
                format!(
                    "{} has no stage `{name}` (stages: {})",
                    self.file.display(),
                    self.stages
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }

    /// Plans every stage: each experiment stage's runs (configs resolved, `@stage`
    /// references fixed to the averaged checkpoint of the matching group), each average
    /// stage's groups. Config errors fail the whole plan; plugin problems are kept per run
    /// (see [`Pipeline::check`]).
    pub fn plan(self, registry: &Registry) -> Result<Pipeline> {
        let root = self.root();
        let mut stages: Vec<Stage> = Vec::new();
        for source in &self.stages {
            let kind = match &source.kind {
                SourceStageKind::Experiment(base) => {
                    let averages: Vec<(&str, &AverageStage)> = stages
                        .iter()
                        .filter_map(|s| match &s.kind {
                            StageKind::Average(a) => Some((s.name.as_str(), a)),
                            StageKind::Experiment(_) => None,
                        })
                        .collect();
                    let is_pipeline = self.is_pipeline;
                    let resolve = |config: &LoadedConfig| {
                        reference::resolve_init_from(config, &averages, is_pipeline)
                    };
                    let runs = plan_runs_with(base, registry, &resolve).with_context(|| {
                        if self.is_pipeline {
                            format!("stage `{}`", source.name)
                        } else {
                            format!("experiment {}", self.file.display())
                        }
                    })?;
                    StageKind::Experiment(ExperimentStage {
                        base: base.clone(),
                        runs,
                    })
                }
                SourceStageKind::Average { of, by } => {
                    let averaged = stages
                        .iter()
                        .find(|s| &s.name == of)
                        .and_then(|s| match &s.kind {
                            StageKind::Experiment(e) => Some(e),
                            StageKind::Average(_) => None,
                        })
                        .with_context(|| format!("stage `{of}` is not an experiment stage"))?;
                    let dir = std::path::absolute(self.stage_dir(&source.name)?)
                        .context("resolving the runs directory")?;
                    let average = AverageStage::plan(of, by.as_deref(), averaged, dir)
                        .with_context(|| format!("stage `{}`", source.name))?;
                    StageKind::Average(average)
                }
            };
            stages.push(Stage {
                name: source.name.clone(),
                kind,
            });
        }
        Ok(Pipeline {
            name: self.name,
            file: self.file,
            is_pipeline: self.is_pipeline,
            root,
            stages,
        })
    }
}

/// A planned pipeline.
#[derive(Clone, Debug)]
pub struct Pipeline {
    /// Pipeline name (the experiment's name for an ordinary experiment).
    pub name: String,
    /// The file it was loaded from.
    pub file: PathBuf,
    /// Whether the file is a pipeline file (false: an ordinary experiment, one stage).
    pub is_pipeline: bool,
    /// Its directory, `<runs_dir>/<name>/`.
    pub root: PathBuf,
    /// The stages in order.
    pub stages: Vec<Stage>,
}

/// One planned stage.
#[derive(Clone, Debug)]
pub struct Stage {
    /// Stage name.
    pub name: String,
    /// What it does.
    pub kind: StageKind,
}

/// What a planned stage does.
#[derive(Clone, Debug)]
pub enum StageKind {
    /// Runs of an experiment.
    Experiment(ExperimentStage),
    /// Prompt averages over seeds.
    Average(AverageStage),
}

/// A planned experiment stage.
#[derive(Clone, Debug)]
pub struct ExperimentStage {
    /// The stage's experiment config (before sweep values).
    pub base: Box<LoadedConfig>,
    /// Its runs.
    pub runs: Vec<PlannedRun>,
}

impl ExperimentStage {
    /// Where its runs and its report go: `<runs_dir>/<name>/`.
    pub fn dir(&self) -> PathBuf {
        self.base
            .config
            .output
            .runs_dir
            .join(&self.base.config.name)
    }
}

impl Pipeline {
    /// Fails, listing every problem, if any run of any stage cannot start.
    pub fn check(&self) -> Result<()> {
        let mut problems = Vec::new();
        for stage in &self.stages {
            if let StageKind::Experiment(experiment) = &stage.kind {
                if let Err(error) = check_plans(&experiment.runs) {
                    problems.push(if self.is_pipeline {
                        format!("stage `{}`: {error:#}", stage.name)
                    } else {
                        format!("{error:#}")
                    });
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            bail!("{}", problems.join("\n"))
        }
    }

    /// Number of runs over all stages (an average stage counts one).
    pub fn entry_count(&self) -> usize {
        self.stages
            .iter()
            .map(|stage| match &stage.kind {
                StageKind::Experiment(e) => e.runs.len(),
                StageKind::Average(_) => 1,
            })
            .sum()
    }

    /// The experiment stages, in order.
    pub fn experiment_stages(&self) -> impl Iterator<Item = (&str, &ExperimentStage)> {
        self.stages.iter().filter_map(|stage| match &stage.kind {
            StageKind::Experiment(e) => Some((stage.name.as_str(), e)),
            StageKind::Average(_) => None,
        })
    }
}
