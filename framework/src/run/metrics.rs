//! `metrics.jsonl`: one JSON object per line, appended as training goes.

use anyhow::{Context, Result};
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// An append-only JSON-lines log. Each record is written with a single `write` of the whole
/// line, so a crash loses at most the line being written, and a torn last line is cut off
/// when the log is opened again.
#[derive(Debug)]
pub struct MetricsLog {
    path: PathBuf,
    file: File,
}

impl MetricsLog {
    /// Opens `path` for appending, creating it if needed and dropping a torn last line left by
    /// a crash.
    pub fn open(path: &Path) -> Result<Self> {
        drop_torn_tail(path)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening metrics log {}", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Appends `record` as one line and flushes it.
    pub fn append<T: Serialize>(&mut self, record: &T) -> Result<()> {
        let mut line = serde_json::to_vec(record)
            .with_context(|| format!("serialising a record for {}", self.path.display()))?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|()| self.file.flush())
            .with_context(|| format!("appending to {}", self.path.display()))
    }

    /// Every record of the log at `path`, in order (a torn last line is ignored).
    pub fn read(path: &Path) -> Result<Vec<serde_json::Value>> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading metrics log {}", path.display()))?;
        let complete = match text.rfind('\n') {
            Some(end) => &text[..=end],
            None => "",
        };
        complete
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(i, line)| {
                serde_json::from_str(line)
                    .with_context(|| format!("{} line {}: invalid JSON", path.display(), i + 1))
            })
            .collect()
    }
}

/// Truncates `path` after its last newline, so appends start on a fresh line.
fn drop_torn_tail(path: &Path) -> Result<()> {
    let Ok(bytes) = std::fs::read(path) else {
        return Ok(());
    };
    let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if keep < bytes.len() {
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .with_context(|| format!("repairing metrics log {}", path.display()))?;
        file.set_len(keep as u64)
            .with_context(|| format!("repairing metrics log {}", path.display()))?;
    }
    Ok(())
}
