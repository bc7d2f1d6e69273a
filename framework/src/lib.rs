//! The mvlpt host library.
//!
//! Everything a prompt-tuning experiment needs apart from the plugins themselves: the CLIP
//! model on candle (`model`), the data pipeline (`data`), the evaluation metrics (`eval`) and run
//! directories, sweeps and reports (`run`).
//! Plugins (methods, datasets, samplers, evaluators) depend only on this crate's public API.

pub mod config;
pub mod data;
pub mod engine;
pub mod eval;
pub mod io;
pub mod method;
pub mod model;
pub mod ops;
pub mod plugin;
pub mod pretrain;
pub mod rng;
pub mod run;
pub mod suggest;

// Re-exported for the `register_plugin!` macro.
#[doc(hidden)]
pub use inventory;

/// The framework's crate version, recorded in run directories and plugin headers.
pub fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}
