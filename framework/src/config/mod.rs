//! Layered experiment configuration with provenance.
//!
//! Layers, later wins: built-in defaults < experiment file(s) (a file may `extends` others,
//! relative to itself) < environment variables `MVLPT_<KEY>` (nested keys joined by `__`, e.g.
//! `MVLPT_TRAIN__LR=0.01`) < `--set key=value` on the command line (values parsed as TOML,
//! falling back to a string). Unknown keys are errors, and every error names the key, the value
//! and the layer it came from.
//!
//! Pipeline files (`[[stages]]`, see [`PipelineConfig`]) list experiment files to run in
//! order; `[executor]` ([`ExecutorConfig`]) says how `mvlpt run` executes runs.

mod error;
mod executor;
mod layers;
mod pipeline;
mod schema;
mod section;

pub use error::ConfigError;
pub use executor::{ExecutorConfig, ExecutorKind, SlurmConfig};
pub use layers::{ConfigLayers, LoadedConfig, Provenance};
pub use pipeline::{check_plain_name, PipelineConfig, StageAction, StageConfig};
pub use schema::*;
pub use section::Section;
