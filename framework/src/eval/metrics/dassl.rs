//! Dassl's `Classification` evaluator (used for the CoOp datasets): accuracy, error rate and
//! macro-F1 over the classes present in the ground truth, reported in percent.

use super::data::{Scores, Targets};
use super::sklearn;
use anyhow::Result;
use serde::{Deserialize, Serialize};

/// The three numbers Dassl's `Classification.evaluate` reports, in percent.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DasslClassification {
    /// `100 · correct / total`.
    pub accuracy: f64,
    /// `100 − accuracy`.
    pub error_rate: f64,
    /// `100 ·` [`macro_f1`].
    pub macro_f1: f64,
}

/// Dassl's accuracy, error rate and macro-F1 (percent) for top-1 predictions. Target rows count
/// through their argmax.
pub fn dassl_classification(scores: &Scores, targets: &Targets) -> Result<DasslClassification> {
    targets.check_against(scores)?;
    let y_true = targets.argmax_labels();
    let y_pred = scores.argmax_per_row();
    let correct = y_true.iter().zip(&y_pred).filter(|(t, p)| t == p).count();
    let accuracy = 100.0 * correct as f64 / y_true.len() as f64;
    Ok(DasslClassification {
        accuracy,
        error_rate: 100.0 - accuracy,
        macro_f1: 100.0 * sklearn::f1_score_macro(&y_true, &y_pred)?,
    })
}

/// Macro-F1 of the top-1 predictions as Dassl computes it, as a fraction: sklearn `f1_score`
/// with `average="macro"` over the classes present in the ground truth. Predictions of other
/// classes still count as errors.
pub fn macro_f1(scores: &Scores, targets: &Targets) -> Result<f64> {
    targets.check_against(scores)?;
    sklearn::f1_score_macro(&targets.argmax_labels(), &scores.argmax_per_row())
}
