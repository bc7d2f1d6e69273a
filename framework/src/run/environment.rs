//! What a run ran on: code version, build features, device, threads, seed, command line, host,
//! and the GPU or Slurm job an executor gave it.

use crate::config::ExperimentConfig;
use serde::{Deserialize, Serialize};
use std::process::Command;

/// The environment of one run, written as `environment.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentRecord {
    /// The framework's crate version.
    pub mvlpt_version: String,
    /// `git rev-parse HEAD` in the current directory, when it is a git checkout.
    pub git_commit: Option<String>,
    /// Whether that checkout had uncommitted changes to tracked files.
    pub git_dirty: Option<bool>,
    /// Cargo features the framework was built with (e.g. `cuda`).
    pub features: Vec<String>,
    /// `model.device` of the run.
    pub device: String,
    /// `model.dtype` of the run.
    pub dtype: String,
    /// Threads of the CPU thread pool.
    pub threads: usize,
    /// The run's seed.
    pub seed: u64,
    /// Operating system and CPU architecture (`linux-x86_64`).
    pub platform: String,
    /// The command line that started the process.
    pub command_line: Vec<String>,
    /// Start time, seconds since the Unix epoch.
    pub started_unix_seconds: u64,
    /// The machine's host name.
    #[serde(default)]
    pub host: String,
    /// `CUDA_VISIBLE_DEVICES`, when set (the GPU a local executor worker was given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cuda_visible_devices: Option<String>,
    /// The Slurm job (`SLURM_JOB_ID`, or `<array job>_<task>` for an array task), when the
    /// run ran inside one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_job: Option<String>,
}

impl EnvironmentRecord {
    /// Captures the current process's environment for a run of `config`.
    pub fn capture(config: &ExperimentConfig) -> Self {
        Self {
            mvlpt_version: crate::version().to_string(),
            git_commit: git(&["rev-parse", "HEAD"]),
            git_dirty: git(&["status", "--porcelain", "--untracked-files=no"])
                .map(|status| !status.is_empty()),
            features: enabled_features(),
            device: config.model.device.to_string(),
            dtype: config.model.dtype.to_string(),
            threads: rayon::current_num_threads(),
            seed: config.seed,
            platform: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
            command_line: std::env::args().collect(),
            started_unix_seconds: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default(),
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            cuda_visible_devices: std::env::var("CUDA_VISIBLE_DEVICES").ok(),
            slurm_job: slurm_job(),
        }
    }
}

/// `<array job>_<task>` inside a Slurm array task, `SLURM_JOB_ID` inside another job.
fn slurm_job() -> Option<String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (var("SLURM_ARRAY_JOB_ID"), var("SLURM_ARRAY_TASK_ID")) {
        (Some(job), Some(task)) => Some(format!("{job}_{task}")),
        _ => var("SLURM_JOB_ID"),
    }
}

/// The framework's enabled Cargo features.
pub fn enabled_features() -> Vec<String> {
    let mut features = Vec::new();
    if cfg!(feature = "cuda") {
        features.push("cuda".to_string());
    }
    features
}

/// Output of a git command in the current directory, trimmed; `None` when git is missing or
/// this is not a checkout.
fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&output.stdout).trim().to_string())
}
