//! Layered experiment configuration with provenance.
//!
//! Layers, later wins: built-in defaults < experiment file(s) (a file may `extends` others,
//! relative to itself) < environment variables `MVLPT_<KEY>` (nested keys joined by `__`, e.g.
//! `MVLPT_TRAIN__LR=0.01`) < `--set key=value` on the command line (values parsed as TOML,
//! falling back to a string). Unknown keys are errors, closed sets are enums and numbers are
//! range-checked as the config is extracted; every error names the key, the value and the
//! layer it came from, and a misspelt key or value the closest valid one.
//!
//! Pipeline files (`[[stages]]`, see [`PipelineConfig`]) list experiment files to run in
//! order; `[executor]` ([`ExecutorConfig`]) says how `mvlpt run` executes runs.

mod choices;
mod error;
mod executor;
mod layers;
mod pipeline;
pub mod ranges;
mod schema;
mod section;
mod section_keys;
mod threads;
mod train;

pub use choices::{
    parse_choice, ComputeDevice, OnBadImage, OptimizerChoice, Precision, ScheduleChoice,
    SelectChoice, SubsampleClasses, TaskMaskingChoice, TaskOrder, WarmupChoice,
};
pub(crate) use error::source_of;
pub use error::ConfigError;
pub use executor::{ExecutorConfig, ExecutorKind, SlurmConfig};
pub use layers::{check_is_file, ConfigLayers, LoadedConfig, Provenance};
pub use pipeline::{
    check_plain_name, PipelineConfig, PipelineReportConfig, StageAction, StageConfig,
};
pub use schema::*;
pub use section::Section;
pub use section_keys::{check_section_keys, plugin_sections, DATA_KEYS, EVAL_KEYS, METHOD_KEYS};
pub use threads::{threads_from_env, THREADS_ENV};
