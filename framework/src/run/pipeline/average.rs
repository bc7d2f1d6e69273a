//! An average stage: the prompts of an earlier experiment stage averaged over seeds (MVLPT
//! §3.2, the reference's `avg_ckpt.py`), one checkpoint per group of runs that agree on the
//! `by` keys. It writes `<group id>.safetensors` per group and then, last, `index.json` naming
//! each group's key values and the averaged run directories; `index.json` marks the stage
//! complete.

use super::ExperimentStage;
use crate::config::ExperimentConfig;
use crate::engine::checkpoint::save_average;
use crate::io::{write_atomic, write_json_atomic};
use crate::run::dir::{canonical_hash, COMPLETE_FILE, ERROR_FILE};
use crate::run::lock::DirLock;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The file that lists an average stage's groups, written last.
pub const AVERAGE_INDEX_FILE: &str = "index.json";

/// A planned average stage.
#[derive(Clone, Debug)]
pub struct AverageStage {
    /// The averaged experiment stage.
    pub of: String,
    /// The grouping keys.
    pub by: Vec<String>,
    /// Where the averages go (absolute).
    pub dir: PathBuf,
    /// One averaged checkpoint per group, in the order the groups first appear in the sweep.
    pub groups: Vec<AverageGroup>,
}

/// Runs of the averaged stage that agree on every `by` key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AverageGroup {
    /// The first 12 hex digits of the SHA-256 of the key values as canonical JSON.
    pub id: String,
    /// The `by` keys and their values.
    pub values: BTreeMap<String, serde_json::Value>,
    /// The averaged run directories, in sweep order.
    pub runs: Vec<PathBuf>,
    /// The averaged checkpoint, `<dir>/<id>.safetensors`.
    pub file: PathBuf,
}

/// What running an average stage did.
#[derive(Clone, Debug, PartialEq)]
pub enum AverageOutcome {
    /// Wrote this many averaged checkpoints and the index.
    Completed(usize),
    /// Already complete; nothing was done.
    Skipped,
}

/// `index.json`.
#[derive(Serialize, Deserialize)]
struct AverageIndex {
    of: String,
    by: Vec<String>,
    groups: Vec<AverageGroup>,
}

impl AverageStage {
    /// Groups the runs of `averaged` by the values of `by` in their resolved configs (default:
    /// the keys its sweep varies, except the seed). A key that no run's config holds is an
    /// error (a typo would otherwise put every run in one group).
    pub fn plan(
        of: &str,
        by: Option<&[String]>,
        averaged: &ExperimentStage,
        dir: PathBuf,
    ) -> Result<Self> {
        let by: Vec<String> = match by {
            Some(keys) => keys.to_vec(),
            None => averaged
                .base
                .config
                .sweep
                .as_ref()
                .map(|sweep| {
                    let mut keys: Vec<String> = sweep.grid.keys().cloned().collect();
                    keys.extend(sweep.zip.iter().flat_map(|group| group.keys().cloned()));
                    keys
                })
                .unwrap_or_default(),
        };
        let mut groups: Vec<AverageGroup> = Vec::new();
        let mut present = vec![false; by.len()];
        for run in &averaged.runs {
            let values = by_values(&run.config()?.config, &by)?;
            for (seen, key) in present.iter_mut().zip(&by) {
                *seen |= !values[key].is_null();
            }
            let id = group_id(&values);
            match groups.iter_mut().find(|group| group.id == id) {
                Some(group) => group.runs.push(run.dir.path().to_path_buf()),
                None => groups.push(AverageGroup {
                    file: dir.join(format!("{id}.safetensors")),
                    id,
                    values,
                    runs: vec![run.dir.path().to_path_buf()],
                }),
            }
        }
        if let Some((key, _)) = by.iter().zip(&present).find(|(_, seen)| !**seen) {
            bail!("by = {by:?}: no run of stage `{of}` has a value for `{key}`");
        }
        Ok(Self {
            of: of.to_string(),
            by,
            dir,
            groups,
        })
    }

    /// The group whose `by` values equal `config`'s values of those keys; the error lists the
    /// groups there are.
    pub fn group_for(&self, config: &ExperimentConfig) -> Result<&AverageGroup> {
        let values = by_values(config, &self.by)?;
        let matching: Vec<&AverageGroup> = self
            .groups
            .iter()
            .filter(|group| group.values == values)
            .collect();
        match matching.as_slice() {
            [group] => Ok(group),
            [] => bail!(
                "no average of stage `{}` has {} (averages: {})",
                self.of,
                describe(&values),
                self.groups
                    .iter()
                    .map(|g| format!("[{}]", describe(&g.values)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            several => bail!(
                "{} averages of stage `{}` match {}",
                several.len(),
                self.of,
                describe(&values)
            ),
        }
    }

    /// Whether every averaged checkpoint and the index of exactly these groups exist.
    pub fn is_complete(&self) -> bool {
        let Ok(text) = std::fs::read_to_string(self.dir.join(AVERAGE_INDEX_FILE)) else {
            return false;
        };
        let Ok(index) = serde_json::from_str::<AverageIndex>(&text) else {
            return false;
        };
        index.groups == self.groups && self.groups.iter().all(|group| group.file.is_file())
    }

    /// Averages every group unless the stage is complete (or `force`), with the stage
    /// directory locked. Every averaged run must be complete. A failure is recorded in the
    /// stage directory's `error.txt`.
    pub fn run(&self, force: bool) -> Result<AverageOutcome> {
        let _lock = DirLock::acquire(&self.dir, |holder| {
            tracing::info!(
                "the average of stage `{}` is being written by {holder}; waiting for it",
                self.of
            );
        })?;
        if !force && self.is_complete() {
            return Ok(AverageOutcome::Skipped);
        }
        let result = self.average();
        let error_file = self.dir.join(ERROR_FILE);
        match &result {
            Ok(_) if error_file.exists() => std::fs::remove_file(&error_file)
                .with_context(|| format!("removing {}", error_file.display()))?,
            Err(error) => {
                if let Err(write_error) =
                    write_atomic(&error_file, format!("{error:#}\n").as_bytes())
                {
                    tracing::warn!("could not record the failure: {write_error:#}");
                }
            }
            Ok(_) => {}
        }
        result
    }

    fn average(&self) -> Result<AverageOutcome> {
        let runs: Vec<&Path> = self
            .groups
            .iter()
            .flat_map(|group| group.runs.iter().map(PathBuf::as_path))
            .collect();
        let incomplete: Vec<String> = runs
            .iter()
            .filter(|run| !run.join(COMPLETE_FILE).is_file())
            .map(|run| run.display().to_string())
            .collect();
        if !incomplete.is_empty() {
            bail!(
                "stage `{}` is not complete: {} of {} runs are not: {}",
                self.of,
                incomplete.len(),
                runs.len(),
                incomplete.join(", ")
            );
        }
        let index = self.dir.join(AVERAGE_INDEX_FILE);
        if index.exists() {
            std::fs::remove_file(&index)
                .with_context(|| format!("removing {}", index.display()))?;
        }
        for group in &self.groups {
            let tensors = save_average(&group.runs, &group.file)?;
            tracing::info!(
                "averaged {} runs of stage `{}` ({}; {tensors} tensors) into {}",
                group.runs.len(),
                self.of,
                describe(&group.values),
                group.file.display()
            );
        }
        write_json_atomic(
            &index,
            &AverageIndex {
                of: self.of.clone(),
                by: self.by.clone(),
                groups: self.groups.clone(),
            },
        )?;
        Ok(AverageOutcome::Completed(self.groups.len()))
    }
}

/// The values of the dotted `keys` in `config` (null where the config has no such key).
fn by_values(
    config: &ExperimentConfig,
    keys: &[String],
) -> Result<BTreeMap<String, serde_json::Value>> {
    let json = serde_json::to_value(config).context("serialising a run's config")?;
    Ok(keys
        .iter()
        .map(|key| {
            let value = key
                .split('.')
                .try_fold(&json, |node, part| node.get(part))
                .cloned()
                .unwrap_or(serde_json::Value::Null);
            (key.clone(), value)
        })
        .collect())
}

fn group_id(values: &BTreeMap<String, serde_json::Value>) -> String {
    canonical_hash(&serde_json::to_value(values).unwrap_or_default())
}

/// `method.name = "coop", data.shots = 4`, or `every run` without keys.
fn describe(values: &BTreeMap<String, serde_json::Value>) -> String {
    if values.is_empty() {
        return "every run (no `by` keys)".into();
    }
    values
        .iter()
        .map(|(key, value)| format!("{key} = {value}"))
        .collect::<Vec<_>>()
        .join(", ")
}
