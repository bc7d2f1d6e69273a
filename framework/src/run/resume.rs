//! What a run directory needs before an interrupted run resumes in it: stale temporary files
//! of the process that died are removed, and `metrics.jsonl` is cut back to the records of
//! the epochs its last checkpoint covers (the resumed run logs the later epochs again, so
//! each epoch keeps exactly one line). Called with the run's lock held.

use super::dir::{RunDir, CHECKPOINT_DIR, METRICS_FILE};
use crate::engine::checkpoint::RECORD;
use anyhow::{Context, Result};
use std::fs::OpenOptions;
use std::path::Path;

/// What [`repair`] changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Repair {
    /// Temporary files removed (`.<name>.tmp-<pid>`).
    pub removed_temporary: Vec<String>,
    /// Epochs the checkpoint covers (0 without a checkpoint).
    pub epochs_done: u64,
    /// Lines cut from the end of `metrics.jsonl`.
    pub metrics_lines_cut: usize,
}

impl Repair {
    /// Whether anything changed.
    pub fn changed(&self) -> bool {
        !self.removed_temporary.is_empty() || self.metrics_lines_cut > 0
    }
}

/// Prepares `dir` for resuming: see the module documentation.
pub fn repair(dir: &RunDir) -> Result<Repair> {
    let mut repair = Repair::default();
    for folder in [dir.path().to_path_buf(), dir.file(CHECKPOINT_DIR)] {
        remove_temporary_files(&folder, &mut repair.removed_temporary)?;
    }
    let record = dir.file(CHECKPOINT_DIR).join(RECORD);
    repair.epochs_done = match std::fs::read_to_string(&record) {
        Ok(text) => match serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("epochs_done").and_then(serde_json::Value::as_u64))
        {
            Some(epochs) => epochs,
            // The engine reports a broken record when it loads it; keep the log as it is.
            None => return Ok(repair),
        },
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => 0,
        Err(error) => return Err(error).with_context(|| format!("reading {}", record.display())),
    };
    repair.metrics_lines_cut = cut_metrics(&dir.file(METRICS_FILE), repair.epochs_done)?;
    Ok(repair)
}

/// Removes `.<name>.tmp-<pid>` files (what [`crate::io::write_atomic`] leaves when its
/// process dies between writing and renaming) directly in `folder`.
fn remove_temporary_files(folder: &Path, removed: &mut Vec<String>) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", folder.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let stale = name.starts_with('.')
            && name
                .rsplit_once(".tmp-")
                .is_some_and(|(_, pid)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()));
        if stale && entry.path().is_file() {
            std::fs::remove_file(entry.path())
                .with_context(|| format!("removing {}", entry.path().display()))?;
            removed.push(name);
        }
    }
    removed.sort();
    Ok(())
}

/// Truncates `path` before its first line that is not the record of an epoch up to
/// `epochs_done` (a later epoch, the final test record, a torn line). Returns the number of
/// lines cut.
fn cut_metrics(path: &Path, epochs_done: u64) -> Result<usize> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
    };
    let mut keep = 0;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        let covered = line.ends_with(b"\n")
            && serde_json::from_slice::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v.get("epoch").and_then(serde_json::Value::as_u64))
                .is_some_and(|epoch| epoch <= epochs_done);
        if !covered {
            break;
        }
        keep += line.len();
    }
    if keep == bytes.len() {
        return Ok(0);
    }
    let cut = bytes[keep..].split_inclusive(|&b| b == b'\n').count();
    OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|file| file.set_len(keep as u64))
        .with_context(|| format!("cutting {} back to epoch {epochs_done}", path.display()))?;
    Ok(cut)
}
