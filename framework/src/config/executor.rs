//! `[executor]`: how `mvlpt run` executes an experiment's runs: one after another in its own
//! process, in parallel worker processes on this machine, or as Slurm job arrays. None of it
//! changes what a run computes, so it is left out of run ids and of each run's config.toml.
//!
//! ```toml
//! [executor]
//! kind = "slurm"            # or "local" (the default)
//! jobs = 2                  # local: worker processes (threads per run = cores / jobs)
//! devices = [0, 1]          # local: one GPU per worker, in turn (CUDA_VISIBLE_DEVICES)
//! [executor.slurm]
//! partition = "gpu"
//! time = "04:00:00"
//! cpus_per_task = 8
//! mem = "32G"
//! gres = "gpu:1"
//! max_parallel = 16         # --array=...%16
//! extra = ["--qos=normal"]  # more #SBATCH options
//! setup = ["module load cuda/12.1"]
//! ```

use serde::{Deserialize, Serialize};

/// The `[executor]` table.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutorConfig {
    /// Where runs execute.
    #[serde(default)]
    pub kind: ExecutorKind,
    /// Local executor: worker processes (0 or 1: the runs go one after another in this
    /// process).
    #[serde(default)]
    pub jobs: usize,
    /// Local executor: GPU ids; worker `w` gets `CUDA_VISIBLE_DEVICES = devices[w % len]`.
    #[serde(default, deserialize_with = "device_ids")]
    pub devices: Vec<String>,
    /// Slurm executor: resources and limits of the job arrays.
    #[serde(default)]
    pub slurm: SlurmConfig,
}

/// Where runs execute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorKind {
    /// On this machine.
    #[default]
    Local,
    /// As Slurm job arrays, one array per stage.
    Slurm,
}

impl std::fmt::Display for ExecutorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Local => "local",
            Self::Slurm => "slurm",
        })
    }
}

/// `[executor.slurm]`: what each array task asks for, as `#SBATCH` lines.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmConfig {
    /// `--partition`.
    #[serde(default)]
    pub partition: Option<String>,
    /// `--time` (`HH:MM:SS`, `D-HH:MM:SS`).
    #[serde(default)]
    pub time: Option<String>,
    /// `--cpus-per-task`; each task then uses that many threads.
    #[serde(default)]
    pub cpus_per_task: Option<usize>,
    /// `--mem` (`32G`).
    #[serde(default)]
    pub mem: Option<String>,
    /// `--gres` (`gpu:1`).
    #[serde(default)]
    pub gres: Option<String>,
    /// At most this many tasks of an array at once (`--array=...%N`).
    #[serde(default)]
    pub max_parallel: Option<usize>,
    /// The cluster's `MaxArraySize`: a stage with higher indices is split into several
    /// arrays.
    #[serde(default = "default_max_array_size")]
    pub max_array_size: usize,
    /// Further sbatch options, one per `#SBATCH` line (`--qos=normal`).
    #[serde(default)]
    pub extra: Vec<String>,
    /// Shell lines run before the task (`module load cuda/12.1`).
    #[serde(default)]
    pub setup: Vec<String>,
}

fn default_max_array_size() -> usize {
    // Slurm's default MaxArraySize is 1001: task ids 0..=1000.
    1001
}

impl Default for SlurmConfig {
    fn default() -> Self {
        Self {
            partition: None,
            time: None,
            cpus_per_task: None,
            mem: None,
            gres: None,
            max_parallel: None,
            max_array_size: default_max_array_size(),
            extra: Vec::new(),
            setup: Vec::new(),
        }
    }
}

/// Accepts `devices = [0, 1]` as well as `["0", "1"]`.
fn device_ids<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Number(u64),
        Text(String),
    }
    Ok(Vec::<Id>::deserialize(deserializer)?
        .into_iter()
        .map(|id| match id {
            Id::Number(n) => n.to_string(),
            Id::Text(s) => s,
        })
        .collect())
}
