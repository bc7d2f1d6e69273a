//! `mvlpt status`: the state of every entry of a pipeline's plan, read from the run
//! directories, their locks and (when jobs were submitted) Slurm's queue.

use super::dir::{CHECKPOINT_DIR, ERROR_FILE};
use super::executor::first_line;
use super::executor::slurm::queued_entries;
use super::lock::{DirLock, LockHolder};
use super::pipeline::{Pipeline, Work};
use crate::engine::checkpoint::RECORD;
use anyhow::Result;
use std::path::PathBuf;

/// The state of one entry.
#[derive(Clone, Debug, PartialEq)]
pub enum EntryState {
    /// Finished.
    Complete,
    /// A process holds its lock.
    Running(LockHolder),
    /// Its last attempt failed: the first line of its `error.txt`.
    Failed(String),
    /// Not started, or interrupted and not running now.
    Pending,
}

impl EntryState {
    /// `complete`, `running`, `failed`, `pending`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::Running(_) => "running",
            Self::Failed(_) => "failed",
            Self::Pending => "pending",
        }
    }
}

/// One line of the status.
#[derive(Clone, Debug)]
pub struct EntryStatus {
    /// Index in the plan.
    pub index: usize,
    /// Its stage.
    pub stage: String,
    /// The run id (`-` for an average stage).
    pub run_id: String,
    /// Sweep values, or the average it computes.
    pub description: String,
    /// Its directory.
    pub dir: PathBuf,
    /// Its state.
    pub state: EntryState,
    /// More: the lock holder, the error, the epoch it resumes after, its Slurm job.
    pub detail: String,
}

/// The state of every entry of `pipeline`, in plan order.
pub fn pipeline_status(pipeline: &Pipeline) -> Result<Vec<EntryStatus>> {
    let queued = queued_entries(pipeline).unwrap_or_default();
    let mut lines = Vec::new();
    for entry in pipeline.entries() {
        let dir = entry.dir().to_path_buf();
        let run_id = match entry.work {
            Work::Run(run) => run.dir.run_id().to_string(),
            Work::Average(_) => "-".to_string(),
        };
        let mut details = Vec::new();
        let state = if entry.is_complete() {
            EntryState::Complete
        } else if let Some(holder) = DirLock::holder(&dir)? {
            details.push(format!("{holder}"));
            EntryState::Running(holder)
        } else if let Some(error) = first_line(&dir.join(ERROR_FILE)) {
            details.push(error.clone());
            EntryState::Failed(error)
        } else {
            if let Some(epochs) = checkpointed_epochs(&dir) {
                details.push(format!("resumes after epoch {epochs}"));
            } else if dir.is_dir() {
                details.push("interrupted before its first checkpoint".into());
            }
            EntryState::Pending
        };
        if let (false, Some(job)) = (
            matches!(state, EntryState::Complete),
            queued.get(&entry.index),
        ) {
            details.push(format!("Slurm {job}"));
        }
        lines.push(EntryStatus {
            index: entry.index,
            stage: entry.stage_name.to_string(),
            run_id,
            description: entry.describe(),
            dir,
            state,
            detail: details.join("; "),
        });
    }
    Ok(lines)
}

/// The epochs the checkpoint of a run directory covers, if it has one.
fn checkpointed_epochs(dir: &std::path::Path) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join(CHECKPOINT_DIR).join(RECORD)).ok()?;
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()?
        .get("epochs_done")?
        .as_u64()
}
