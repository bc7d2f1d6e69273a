//! The run directory `runs/<experiment>/<run-id>/` and the files in it.

use super::environment::EnvironmentRecord;
use super::lock::LOCK_FILE;
use super::metrics::MetricsLog;
use crate::config::{check_plain_name, ExperimentConfig, LoadedConfig, Provenance};
use crate::io::{write_atomic, write_json_atomic};
use anyhow::{Context, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The resolved config (TOML).
pub const CONFIG_FILE: &str = "config.toml";
/// Where each config value came from (JSON object, key → source).
pub const PROVENANCE_FILE: &str = "provenance.json";
/// Version, commit, features, device, threads, seed (JSON).
pub const ENVIRONMENT_FILE: &str = "environment.json";
/// The run's log (everything the console showed, without colours).
pub const LOG_FILE: &str = "log.txt";
/// One JSON object per line, one line per epoch or evaluation.
pub const METRICS_FILE: &str = "metrics.jsonl";
/// The final result (JSON).
pub const RESULT_FILE: &str = "result.json";
/// The last failure of the run, if its last attempt failed.
pub const ERROR_FILE: &str = "error.txt";
/// Written last: the run finished and `result.json` is final.
pub const COMPLETE_FILE: &str = "COMPLETE";
/// Directory of resumable checkpoints.
pub const CHECKPOINT_DIR: &str = "checkpoints";

/// Top-level config keys that do not change what a run computes, left out of the run id:
/// where outputs go, the sweep a run came from, free text, the files it was merged from and
/// how runs are executed.
const KEYS_OUTSIDE_RUN_ID: &[&str] = &["output", "sweep", "description", "extends", "executor"];

/// How far a run directory got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// No directory yet.
    New,
    /// Started but not finished: the next run resumes it from its last checkpoint.
    Incomplete,
    /// Finished (`COMPLETE` exists).
    Complete,
}

impl std::fmt::Display for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::New => "new",
            Self::Incomplete => "incomplete",
            Self::Complete => "complete",
        })
    }
}

/// The id of a run: the first 12 hex digits of the SHA-256 of the canonical JSON of the
/// resolved config (keys sorted, no whitespace), without the keys that do not change results
/// (`output`, `sweep`, `description`, `extends`).
pub fn run_id(config: &ExperimentConfig) -> Result<String> {
    let mut value = serde_json::to_value(config).context("serialising the resolved config")?;
    if let Some(object) = value.as_object_mut() {
        for key in KEYS_OUTSIDE_RUN_ID {
            object.remove(*key);
        }
    }
    Ok(canonical_hash(&value))
}

/// The first 12 hex digits of the SHA-256 of `value` as canonical JSON (keys sorted at every
/// level, no whitespace): run ids and average group ids.
pub(crate) fn canonical_hash(value: &serde_json::Value) -> String {
    let mut canonical = String::new();
    write_canonical_json(value, &mut canonical);
    let digest = Sha256::digest(canonical.as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// Writes `value` as JSON with object keys sorted at every level, independent of how the map
/// type orders them.
fn write_canonical_json(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical_json(item, out);
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical_json(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The source of every value of `loaded` ([`LoadedConfig::provenance`]), with `name` credited
/// to the experiment file name when it was not set explicitly.
pub fn resolved_provenance(loaded: &LoadedConfig) -> Provenance {
    let mut provenance = loaded.provenance();
    let explicit: String = loaded.figment.extract_inner("name").unwrap_or_default();
    if loaded.config.name != explicit {
        provenance.insert("name".into(), "experiment file name".into());
    }
    provenance
}

/// One run's directory. Creating the value touches nothing on disk; [`RunDir::create`] does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunDir {
    path: PathBuf,
    experiment: String,
    run_id: String,
}

impl RunDir {
    /// The directory of `config`: `<output.runs_dir>/<name>/<run-id>/`. A relative
    /// `output.runs_dir` is taken relative to the current directory. A name that is not a
    /// plain relative path (`../x`, `/abs`) is refused: it would write outside the runs
    /// directory.
    pub fn for_config(config: &ExperimentConfig) -> Result<Self> {
        check_plain_name("name", &config.name)?;
        let run_id = run_id(config)?;
        let path = config.output.runs_dir.join(&config.name).join(&run_id);
        Ok(Self {
            path,
            experiment: config.name.clone(),
            run_id,
        })
    }

    /// The directory path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The run id (12 hex digits).
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The experiment name (the parent directory's name).
    pub fn experiment(&self) -> &str {
        &self.experiment
    }

    /// A file inside the run directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Creates the directory (and its parents) if needed.
    pub fn create(&self) -> Result<()> {
        std::fs::create_dir_all(&self.path)
            .with_context(|| format!("creating run directory {}", self.path.display()))
    }

    /// New, incomplete or complete. A directory holding nothing but its lock file (a
    /// process locked it and wrote nothing) is new.
    pub fn state(&self) -> RunState {
        if self.file(COMPLETE_FILE).is_file() {
            return RunState::Complete;
        }
        let Ok(entries) = std::fs::read_dir(&self.path) else {
            return RunState::New;
        };
        let names: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        if names.len() == 1 && names[0] == LOCK_FILE {
            RunState::New
        } else {
            RunState::Incomplete
        }
    }

    /// Whether the run finished (`COMPLETE` exists).
    pub fn is_complete(&self) -> bool {
        self.state() == RunState::Complete
    }

    /// Empties the directory so the run starts over (`--force`); call it with the run's lock
    /// held. `COMPLETE` goes first, so an interrupted reset leaves an incomplete run, never a
    /// complete one with missing files. The lock file stays (see [`super::DirLock`]).
    pub fn reset(&self) -> Result<()> {
        let marker = self.file(COMPLETE_FILE);
        if marker.exists() {
            std::fs::remove_file(&marker)
                .with_context(|| format!("removing {}", marker.display()))?;
        }
        self.create()?;
        let clearing = || format!("clearing run directory {}", self.path.display());
        for entry in std::fs::read_dir(&self.path).with_context(clearing)? {
            let entry = entry.with_context(clearing)?;
            if entry.file_name() == LOCK_FILE {
                continue;
            }
            let path = entry.path();
            if entry.file_type().with_context(clearing)?.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            }
            .with_context(|| format!("removing {}", path.display()))?;
        }
        Ok(())
    }

    /// Writes the resolved config as `config.toml` and the source of every value as
    /// `provenance.json`. The `sweep` and `executor` tables and `extends` are left out: this
    /// file describes one run, complete in itself, and loading it again gives the same config
    /// and run id.
    pub fn write_config(&self, loaded: &LoadedConfig) -> Result<()> {
        let mut config = loaded.config.clone();
        config.sweep = None;
        config.executor = None;
        config.extends.clear();
        let text = toml::to_string(&config).context("writing the resolved config as TOML")?;
        write_atomic(&self.file(CONFIG_FILE), text.as_bytes())?;
        let mut provenance = resolved_provenance(loaded);
        provenance.retain(|key, _| {
            !["sweep", "extends", "executor"]
                .iter()
                .any(|k| key == k || key.starts_with(&format!("{k}.")))
        });
        write_json_atomic(&self.file(PROVENANCE_FILE), &provenance)
    }

    /// Records the environment of this run (see [`EnvironmentRecord`]) as `environment.json`.
    pub fn write_environment(&self, config: &ExperimentConfig) -> Result<EnvironmentRecord> {
        let record = EnvironmentRecord::capture(config);
        write_json_atomic(&self.file(ENVIRONMENT_FILE), &record)?;
        Ok(record)
    }

    /// The append-only `metrics.jsonl` (created if needed).
    pub fn metrics(&self) -> Result<MetricsLog> {
        MetricsLog::open(&self.file(METRICS_FILE))
    }

    /// The checkpoint directory (created if needed). Checkpoints must be written atomically
    /// (e.g. [`crate::io::write_atomic`]) at [`RunDir::checkpoint_path`].
    pub fn checkpoint_dir(&self) -> Result<PathBuf> {
        let dir = self.file(CHECKPOINT_DIR);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating checkpoint directory {}", dir.display()))?;
        Ok(dir)
    }

    /// Where the checkpoint after `epoch` (1-based) goes: `checkpoints/epoch-0003.safetensors`.
    pub fn checkpoint_path(&self, epoch: usize) -> PathBuf {
        self.file(CHECKPOINT_DIR)
            .join(format!("epoch-{epoch:04}.safetensors"))
    }

    /// The checkpoint of the latest epoch, if any: where an interrupted run resumes.
    pub fn latest_checkpoint(&self) -> Result<Option<(usize, PathBuf)>> {
        let dir = self.file(CHECKPOINT_DIR);
        if !dir.is_dir() {
            return Ok(None);
        }
        let mut latest: Option<(usize, PathBuf)> = None;
        for entry in std::fs::read_dir(&dir)
            .with_context(|| format!("listing checkpoints in {}", dir.display()))?
        {
            let path = entry
                .with_context(|| format!("listing checkpoints in {}", dir.display()))?
                .path();
            let epoch = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("epoch-"))
                .and_then(|n| n.strip_suffix(".safetensors"))
                .and_then(|n| n.parse::<usize>().ok());
            if let Some(epoch) = epoch {
                if latest.as_ref().is_none_or(|(best, _)| epoch > *best) {
                    latest = Some((epoch, path));
                }
            }
        }
        Ok(latest)
    }

    /// Writes `result.json` atomically.
    pub fn write_result<T: Serialize>(&self, result: &T) -> Result<()> {
        write_json_atomic(&self.file(RESULT_FILE), result)
    }

    /// Records why the last attempt failed (`error.txt`); the run stays incomplete.
    pub fn write_failure(&self, message: &str) -> Result<()> {
        write_atomic(&self.file(ERROR_FILE), format!("{message}\n").as_bytes())
    }

    /// Marks the run finished. Call after every other file is written: `COMPLETE` is what
    /// later runs and reports trust. Removes a stale `error.txt` first.
    pub fn mark_complete(&self) -> Result<()> {
        let error = self.file(ERROR_FILE);
        if error.exists() {
            std::fs::remove_file(&error)
                .with_context(|| format!("removing {}", error.display()))?;
        }
        write_atomic(&self.file(COMPLETE_FILE), b"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let value = serde_json::json!({"b": {"y": 1, "x": [true, {"d": 1, "c": 2}]}, "a": "s"});
        let mut out = String::new();
        write_canonical_json(&value, &mut out);
        assert_eq!(out, r#"{"a":"s","b":{"x":[true,{"c":2,"d":1}],"y":1}}"#);
    }
}
