//! Classification metrics of the reference toolkits, reproducing their numbers.
//!
//! - Containers: [`Scores`] (N×C `f32`, filled batch by batch) and [`Targets`] (class labels or
//!   one-hot / multi-hot / soft rows).
//! - ELEVATER metrics ([`elevater`]), fractions in [0, 1]: `accuracy`, `mean-per-class`,
//!   `11point_mAP`, `roc_auc`; Dassl's `Classification` numbers ([`dassl`]), in percent, and its
//!   macro-F1 as a fraction.
//! - [`Metric`]: the config names and a single `compute` dispatch.
//! - [`multitask`]: per-task slicing of a joint label space, per-task metrics and their mean.
//! - [`sklearn`]: the numpy / scikit-learn primitives underneath, with their tie semantics.
//!
//! Parity: `tests/fixtures/metrics/` holds values from scikit-learn and from the ELEVATER metric
//! code (`tools/fixtures/metrics.py`); the tests agree to 1e-9 relative.

pub mod dassl;
mod data;
pub mod elevater;
mod metric;
pub mod multitask;
pub mod sklearn;

#[cfg(test)]
mod tests;

pub use dassl::{dassl_classification, DasslClassification};
pub use data::{RowMatrix, Scores, Target, TargetKind, Targets};
pub use metric::Metric;
pub use multitask::{
    evaluate_multitask, EvalKey, MultitaskAccumulator, MultitaskReport, TaskResult, TaskSpan,
};
