//! The mvlpt host library.
//!
//! Everything a prompt-tuning experiment needs apart from the plugins themselves: the CLIP
//! model on candle (`model`), the data pipeline (`data`) and the evaluation metrics (`eval`).
//! Plugins (methods, datasets, samplers, evaluators) depend only on this crate's public API.

pub mod bench;
pub mod data;
pub mod eval;
pub mod io;
pub mod model;
pub mod ops;
pub mod rng;

/// The framework's crate version, recorded in run directories and plugin headers.
pub fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}
