//! `plan.json`: every entry of a pipeline (run id, values, stage, directory) in one file in
//! the pipeline's directory, written by `mvlpt run --plan` and by the executors before they
//! start anything. `mvlpt run --index i` runs entry `i` of the same plan, which it computes
//! again from the same command line.

use super::entries::Work;
use super::Pipeline;
use crate::io::write_json_atomic;
use crate::run::lock::DirLock;
use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// File name of the plan in the pipeline's directory.
pub const PLAN_FILE: &str = "plan.json";

/// The plan as written.
#[derive(Serialize)]
struct PlanFile<'a> {
    /// Pipeline (or experiment) name.
    pipeline: &'a str,
    /// The experiment or pipeline file, absolute.
    file: PathBuf,
    /// The `--set` overrides the plan was made with.
    sets: &'a [String],
    /// Every entry.
    entries: Vec<PlanEntry>,
}

/// One entry as written.
#[derive(Serialize)]
struct PlanEntry {
    index: usize,
    stage: String,
    /// `run` or `average`.
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_id: Option<String>,
    /// A run's sweep values and the values its pipeline resolved (`method.init_from`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    values: BTreeMap<String, serde_json::Value>,
    /// An average stage: the averaged stage and the grouping keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    average: Option<AverageEntry>,
    dir: PathBuf,
}

#[derive(Serialize)]
struct AverageEntry {
    of: String,
    by: Vec<String>,
    groups: usize,
}

impl Pipeline {
    /// Writes `<pipeline dir>/plan.json` atomically, with the pipeline's directory locked.
    /// Returns its path.
    pub fn write_plan(&self, sets: &[String]) -> Result<PathBuf> {
        let entries = self
            .entries()
            .map(|entry| {
                let mut plan = PlanEntry {
                    index: entry.index,
                    stage: entry.stage_name.to_string(),
                    kind: "run",
                    run_id: None,
                    values: BTreeMap::new(),
                    average: None,
                    dir: entry.dir().to_path_buf(),
                };
                match entry.work {
                    Work::Run(run) => {
                        plan.run_id = Some(run.dir.run_id().to_string());
                        let resolved = run.resolved().map(|r| r.values.as_slice());
                        for (key, value) in run
                            .spec
                            .assignments
                            .iter()
                            .chain(resolved.into_iter().flatten())
                        {
                            let value = serde_json::to_value(value)
                                .with_context(|| format!("writing the value of {key}"))?;
                            plan.values.insert(key.clone(), value);
                        }
                    }
                    Work::Average(average) => {
                        plan.kind = "average";
                        plan.average = Some(AverageEntry {
                            of: average.of.clone(),
                            by: average.by.clone(),
                            groups: average.groups.len(),
                        });
                    }
                }
                Ok(plan)
            })
            .collect::<Result<Vec<_>>>()?;
        let file = std::path::absolute(&self.file)
            .with_context(|| format!("resolving {}", self.file.display()))?;
        let _lock = DirLock::acquire(&self.root, |holder| {
            tracing::info!(
                "{} is locked by {holder}; waiting for it",
                self.root.display()
            );
        })?;
        let path = self.root.join(PLAN_FILE);
        write_json_atomic(
            &path,
            &PlanFile {
                pipeline: &self.name,
                file,
                sets,
                entries,
            },
        )?;
        Ok(path)
    }
}
