//! Evaluation: the classification metrics of the reference toolkits and the evaluator plugin
//! interface.

mod evaluator;
pub mod metrics;

pub use evaluator::{EvalInput, EvalReport, Evaluator};
