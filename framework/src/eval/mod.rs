//! Evaluation: classification metrics of the reference toolkits.

pub mod metrics;
