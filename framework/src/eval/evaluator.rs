//! Evaluators (plugin kind `evaluator`): scores and targets of a whole split in, metrics out.

use super::metrics::{EvalKey, Scores, TargetKind, Targets, TaskResult, TaskSpan};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Metrics of one evaluation pass.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EvalReport {
    /// The value model selection uses (mean over tasks, or one task's value).
    pub overall: f64,
    /// Per-task values.
    pub tasks: Vec<TaskResult>,
    /// Further named values (e.g. macro-F1).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, f64>,
}

/// Everything an evaluator needs about one split.
pub struct EvalInput<'a> {
    /// Tasks of the label space, each with its column range and metric.
    pub tasks: &'a [TaskSpan],
    /// Task index of every sample.
    pub task_ids: &'a [usize],
    /// Logits `(samples, classes)`.
    pub scores: &'a Scores,
    /// Targets of every sample.
    pub targets: &'a Targets,
    /// Which value is `overall`.
    pub key: &'a EvalKey,
}

/// An evaluator plugin.
pub trait Evaluator: Send + Sync {
    /// Computes the metrics of a split.
    fn evaluate(&self, input: &EvalInput<'_>) -> Result<EvalReport>;

    /// One unit of the reported values as a fraction: 1.0 for values in [0, 1], 0.01 for
    /// percentages. Run results and reports store fractions.
    fn unit(&self) -> f64 {
        1.0
    }

    /// The target representation the evaluator expects.
    fn target_kind(&self, multilabel: bool) -> TargetKind {
        if multilabel {
            TargetKind::Rows
        } else {
            TargetKind::Labels
        }
    }
}
