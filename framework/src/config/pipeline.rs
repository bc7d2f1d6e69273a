//! Pipeline files: an ordered list of stages that `mvlpt run` works through as one command,
//! each stage an ordinary experiment file (with its own sweep) or the seed average of an
//! earlier experiment stage's prompts (MVLPT §3.2).
//!
//! ```toml
//! name = "study"
//! [[stages]]
//! name = "source"
//! experiment = "source.toml"      # relative to this file
//! [[stages]]
//! name = "source-avg"
//! average = "source"              # average the prompts of stage `source`
//! by = ["method.name"]            # one average per value of these keys
//! [[stages]]
//! name = "targets"
//! experiment = "targets.toml"     # its runs may set method.init_from = "@source-avg"
//! ```

use anyhow::{bail, ensure, Context, Result};
use serde::Deserialize;
use std::path::{Component, Path, PathBuf};

/// A pipeline file as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Pipeline name: its stages write below `<output.runs_dir>/<name>/`. Defaults to the file
    /// stem.
    #[serde(default)]
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// The stages, in the order they run.
    pub stages: Vec<StageConfig>,
    /// How `mvlpt run` executes the stages' runs; layered below each experiment stage's own
    /// config (a stage file's `[executor]` wins, and so do `MVLPT_EXECUTOR__*` and `--set
    /// executor.…`).
    /// Kept as written (only the keys given are layered); checked against
    /// [`super::ExecutorConfig`] on load.
    #[serde(default)]
    pub executor: Option<toml::Table>,
    /// What `mvlpt report <pipeline file>` shows when no `--stage` is given.
    #[serde(default)]
    pub report: PipelineReportConfig,
}

/// The `[report]` table of a pipeline file: which stages `mvlpt report` puts in one table, and
/// the layout it uses.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineReportConfig {
    /// Experiment stages reported together (default: the last experiment stage).
    #[serde(default)]
    pub stages: Vec<String>,
    /// A table layout (`mvlpt report --layout`), relative to the pipeline file.
    #[serde(default)]
    pub layout: Option<PathBuf>,
}

/// One `[[stages]]` entry as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageConfig {
    /// Stage name: its outputs go to `<runs_dir>/<pipeline>/<stage>/`.
    pub name: String,
    /// An experiment file, relative to the pipeline file.
    #[serde(default)]
    pub experiment: Option<PathBuf>,
    /// The experiment stage whose prompts this stage averages over seeds.
    #[serde(default)]
    pub average: Option<String>,
    /// Average stage: one averaged checkpoint per distinct value of these config keys
    /// (default: every key the averaged stage sweeps, except the seed).
    #[serde(default)]
    pub by: Option<Vec<String>>,
}

/// What a stage does, once checked.
#[derive(Clone, Debug, PartialEq)]
pub enum StageAction {
    /// Run an experiment file (absolute, or relative to the current directory).
    Experiment(PathBuf),
    /// Average the prompts of an earlier experiment stage, grouped by `by` (`None`: the
    /// averaged stage's swept keys).
    Average {
        /// Name of the averaged stage.
        of: String,
        /// Grouping keys, if given.
        by: Option<Vec<String>>,
    },
}

impl PipelineConfig {
    /// Whether `path` is a pipeline file (a TOML file with a `stages` key) rather than an
    /// experiment.
    pub fn is_pipeline_file(path: &Path) -> Result<bool> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let table: toml::Table =
            toml::from_str(&text).with_context(|| format!("{}: invalid TOML", path.display()))?;
        Ok(table.contains_key("stages"))
    }

    /// Reads and checks a pipeline file: stage names unique and plain, each stage exactly one
    /// of `experiment` / `average`, `by` only on average stages, and every average naming an
    /// earlier experiment stage.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading pipeline file {}", path.display()))?;
        let mut config: PipelineConfig = toml::from_str(&text)
            .with_context(|| format!("{}: not a valid pipeline file", path.display()))?;
        if config.name.is_empty() {
            config.name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "pipeline".into());
        }
        config
            .check()
            .with_context(|| format!("pipeline file {}", path.display()))?;
        Ok(config)
    }

    fn check(&self) -> Result<()> {
        check_plain_name("name", &self.name)?;
        if let Some(executor) = &self.executor {
            super::ExecutorConfig::deserialize(toml::Value::Table(executor.clone()))
                .context("[executor]")?;
        }
        ensure!(!self.stages.is_empty(), "`stages` lists no stage");
        let mut experiments: Vec<&str> = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for (i, stage) in self.stages.iter().enumerate() {
            let what = format!("stage {} (`{}`)", i + 1, stage.name);
            check_plain_name(&format!("{what}: name"), &stage.name)?;
            ensure!(
                !stage.name.contains('/'),
                "{what}: a stage name is one path component, without `/`"
            );
            ensure!(
                !seen.contains(&stage.name.as_str()),
                "{what}: the name is used by an earlier stage"
            );
            seen.push(&stage.name);
            match (&stage.experiment, &stage.average) {
                (Some(_), None) => {
                    ensure!(
                        stage.by.is_none(),
                        "{what}: `by` belongs to an average stage"
                    );
                    experiments.push(&stage.name);
                }
                (None, Some(of)) => ensure!(
                    experiments.contains(&of.as_str()),
                    "{what}: `average = \"{of}\"` must name an earlier experiment stage ({})",
                    if experiments.is_empty() {
                        "there is none before it".to_string()
                    } else {
                        format!("one of: {}", experiments.join(", "))
                    }
                ),
                (Some(_), Some(_)) => {
                    bail!("{what}: set either `experiment` or `average`, not both")
                }
                (None, None) => {
                    bail!("{what}: set `experiment = \"file.toml\"` or `average = \"<stage>\"`")
                }
            }
        }
        for name in &self.report.stages {
            ensure!(
                experiments.contains(&name.as_str()),
                "report.stages lists `{name}`, which is not an experiment stage ({})",
                experiments.join(", ")
            );
        }
        Ok(())
    }

    /// What each stage does, with experiment files resolved against `dir` (the pipeline
    /// file's directory).
    pub fn actions(&self, dir: &Path) -> Vec<(String, StageAction)> {
        self.stages
            .iter()
            .map(|stage| {
                let action = match (&stage.experiment, &stage.average) {
                    (Some(file), _) => StageAction::Experiment(dir.join(file)),
                    (None, of) => StageAction::Average {
                        of: of.clone().unwrap_or_default(),
                        by: stage.by.clone(),
                    },
                };
                (stage.name.clone(), action)
            })
            .collect()
    }
}

/// Checks that `name` (an experiment, pipeline or stage name) is a plain relative path: not
/// empty, not absolute, no `.` or `..` components. Runs are written to
/// `<output.runs_dir>/<name>/`, and anything else would write elsewhere.
pub fn check_plain_name(key: &str, name: &str) -> Result<()> {
    let plain = !name.is_empty()
        && Path::new(name)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
        && !name.split('/').any(|part| part.is_empty() || part == ".");
    ensure!(
        plain,
        "{key} = {name:?} is not a plain relative name: it must stay inside output.runs_dir \
         (no leading `/`, no `.` or `..` components, no empty components)"
    );
    Ok(())
}
