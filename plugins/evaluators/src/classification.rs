//! `classification`: ELEVATER-style per-task metrics (§3.3 item 8, §3.4 item 8, §4.6).
//!
//! Each task's samples are cut to the task's columns (labels shifted to the task's local space),
//! scored with the task's metric (`accuracy`, `mean-per-class`, `11point_mAP`, `roc_auc`, ...),
//! and reported as a fraction in [0, 1]. `overall` is the unweighted mean over tasks, or the value
//! of the task named by the evaluation key. A task without samples is an error.

use anyhow::Result;
use mvlpt_framework::config::Section;
use mvlpt_framework::eval::metrics::evaluate_multitask;
use mvlpt_framework::eval::{EvalInput, EvalReport, Evaluator};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Options of `classification` (`[eval.classification]`): none, but unknown keys are refused.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassificationOptions {}

/// Every task scored with its own metric; values as fractions.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClassificationEvaluator;

fn build(section: &Section<'_>) -> Result<Box<dyn Evaluator>> {
    section.extract::<ClassificationOptions>()?;
    Ok(Box::new(ClassificationEvaluator))
}

mvlpt_framework::register_plugin!(
    Evaluator,
    "classification",
    "ELEVATER-style: each task's own metric on its columns, fractions; overall = mean over tasks or eval.key",
    build,
    ClassificationOptions
);

impl Evaluator for ClassificationEvaluator {
    fn evaluate(&self, input: &EvalInput<'_>) -> Result<EvalReport> {
        let report = evaluate_multitask(
            input.tasks.to_vec(),
            input.task_ids,
            input.scores,
            input.targets,
            input.key,
        )?;
        Ok(EvalReport {
            overall: report.overall,
            tasks: report.tasks,
            extra: BTreeMap::new(),
        })
    }
}
