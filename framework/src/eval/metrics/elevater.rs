//! The ELEVATER toolkit's image-classification metrics, values in [0, 1].
//!
//! These follow `vision_benchmark/datasets/metrics.py` as vendored in MVLPT (a copy of the
//! `vision-evaluation` evaluators) and the `get_metric` wrappers of the ELEVATER toolkit:
//! `accuracy` (top-1), `mean-per-class` (`BalancedAccuracyScoreEvaluator`), `11point_mAP`
//! (`MeanAveragePrecisionNPointsEvaluator(11)`) and `roc_auc`. They run on raw scores (logits);
//! nothing is softmaxed.

use super::data::{Scores, Targets};
use super::sklearn::{self, argmax_among, mean, PrecisionRecallCurve};
use anyhow::{bail, ensure, Context, Result};

/// Top-1 accuracy: the fraction of samples whose first maximal score is at the true class.
/// Target rows count through their own argmax (the MVLPT multitask evaluation does this).
pub fn accuracy(scores: &Scores, targets: &Targets) -> Result<f64> {
    top_k_accuracy(scores, targets, 1)
}

/// Top-k accuracy: the fraction of samples whose true class is among the k highest scores
/// (`k` larger than C counts every sample). Ties rank the lower class index first, so k = 1 is
/// `numpy.argmax`; the reference's `numpy.argpartition` leaves ties at the k-th place unspecified.
pub fn top_k_accuracy(scores: &Scores, targets: &Targets, k: usize) -> Result<f64> {
    targets.check_against(scores)?;
    ensure!(k > 0, "top-k accuracy needs k >= 1, got 0");
    let labels = targets.argmax_labels();
    let hits = scores
        .iter_rows()
        .zip(&labels)
        .filter(|(row, &label)| rank_of(row, label) < k)
        .count();
    Ok(hits as f64 / labels.len() as f64)
}

/// How many classes rank above class `label` in `row` (NaN ranks highest, ties by lower index).
fn rank_of(row: &[f32], label: usize) -> usize {
    let outranks = |j: usize| {
        let (a, b) = (row[j], row[label]);
        match (a.is_nan(), b.is_nan()) {
            (true, true) => j < label,
            (true, false) => true,
            (false, true) => false,
            (false, false) => a > b || (a == b && j < label),
        }
    };
    (0..row.len())
        .filter(|&j| j != label && outranks(j))
        .count()
}

/// ELEVATER `mean-per-class` (`BalancedAccuracyScoreEvaluator`).
///
/// Targets become an N×C matrix (labels one-hot); the classes without any non-zero target are
/// dropped from targets and scores; the argmax of each row over the remaining classes gives the
/// true and predicted class (so a prediction pointing at a dropped class moves to the best
/// remaining one, and an all-zero target row becomes the first remaining class); the result is
/// sklearn `balanced_accuracy_score`. With no class left the reference returns 0.0, and so does
/// this function.
pub fn mean_per_class_accuracy(scores: &Scores, targets: &Targets) -> Result<f64> {
    targets.check_against(scores)?;
    let kept = classes_with_positive_target(targets, scores.n_cols());
    if kept.is_empty() {
        return Ok(0.0);
    }
    let pick = |row: &[f32]| argmax_among(row, kept.iter().copied()).unwrap_or(kept[0]);
    let y_true: Vec<usize> = match targets {
        Targets::Labels(labels) => labels.clone(),
        Targets::Rows(rows) => rows.iter_rows().map(pick).collect(),
    };
    let y_pred: Vec<usize> = scores.iter_rows().map(pick).collect();
    sklearn::balanced_accuracy_score(&y_true, &y_pred)
}

/// The classes (columns) that have at least one non-zero target, increasing.
fn classes_with_positive_target(targets: &Targets, n_cols: usize) -> Vec<usize> {
    let mut positive = vec![false; n_cols];
    match targets {
        Targets::Labels(labels) => labels.iter().for_each(|&l| positive[l] = true),
        Targets::Rows(rows) => {
            for row in rows.iter_rows() {
                for (flag, &v) in positive.iter_mut().zip(row) {
                    *flag |= v != 0.0;
                }
            }
        }
    }
    (0..n_cols).filter(|&j| positive[j]).collect()
}

/// The 11 recall levels 1.0, 0.9, …, 0.0 exactly as `numpy.linspace(1, 0, 11)` computes them
/// (`i · (-1/10) + 1`, the last set to 0), so comparisons with recalls such as 0.7 match.
pub fn eleven_point_recall_levels() -> [f64; 11] {
    let step = -1.0 / 10.0;
    std::array::from_fn(|i| if i == 10 { 0.0 } else { i as f64 * step + 1.0 })
}

/// Interpolated precision at each recall level (levels decreasing): walking the curve from high
/// recall down, the running maximum of precision over the points with recall ≥ the level
/// (ELEVATER's `_calc_precision_recall_interp`).
pub fn interpolated_precision(curve: &PrecisionRecallCurve, recall_levels: &[f64]) -> Vec<f64> {
    let mut point = 0;
    let mut best = 0.0_f64;
    recall_levels
        .iter()
        .map(|&level| {
            while point < curve.recall.len() && level <= curve.recall[point] {
                best = best.max(curve.precision[point]);
                point += 1;
            }
            best
        })
        .collect()
}

/// ELEVATER `11point_mAP` (VOC): for every class with at least one positive target, the mean of
/// the 11 interpolated precisions of its precision-recall curve; then the mean over those
/// classes (0.0 if there are none, like the reference). Targets must be 0/1.
///
/// scikit-learn before 1.1 cut the precision-recall curve at the first full-recall point; the
/// points it dropped have recall 1 and lower precision, so the interpolated values are the same
/// for every sklearn version (the fixture generator checks this).
pub fn eleven_point_map(scores: &Scores, targets: &Targets) -> Result<f64> {
    targets.check_against(scores)?;
    ensure_binary(targets)?;
    let kept = classes_with_positive_target(targets, scores.n_cols());
    if kept.is_empty() {
        return Ok(0.0);
    }
    let levels = eleven_point_recall_levels();
    let per_class = kept
        .iter()
        .map(|&j| {
            let curve =
                sklearn::precision_recall_curve(&binary_column(targets, j), &scores.column(j))
                    .with_context(|| format!("11point_mAP, class {j}"))?;
            Ok(mean(&interpolated_precision(&curve, &levels)))
        })
        .collect::<Result<Vec<f64>>>()?;
    Ok(mean(&per_class))
}

/// ELEVATER `roc_auc`, unnormalised scores (no softmax).
///
/// - Labels with C = 2 (hateful-memes): sklearn `roc_auc_score(y_true, scores[:, 1])`, the ELEVATER
///   toolkit's wrapper. (MVLPT's vendored wrapper has the column selection commented out, so it
///   raises on this input; MVLPT HEAD evaluates hateful-memes with `accuracy` instead.)
/// - Labels with C ≠ 2: sklearn raises (multiclass needs `multi_class`), so this errors.
/// - 0/1 target rows (what MVLPT's multitask evaluation passes): sklearn's multilabel path, the
///   mean over classes of each column's binary AUC. Every class needs both a positive and a
///   negative sample.
pub fn roc_auc(scores: &Scores, targets: &Targets) -> Result<f64> {
    targets.check_against(scores)?;
    match targets {
        Targets::Labels(labels) => {
            let c = scores.n_cols();
            if c != 2 {
                bail!("roc_auc on class labels needs exactly 2 classes (binary), got {c}");
            }
            let positive: Vec<bool> = labels.iter().map(|&l| l == 1).collect();
            sklearn::roc_auc_score_binary(&positive, &scores.column(1))
        }
        Targets::Rows(_) => {
            ensure_binary(targets)?;
            let per_class = (0..scores.n_cols())
                .map(|j| {
                    sklearn::roc_auc_score_binary(&binary_column(targets, j), &scores.column(j))
                        .with_context(|| format!("roc_auc, class {j}"))
                })
                .collect::<Result<Vec<f64>>>()?;
            Ok(mean(&per_class))
        }
    }
}

/// Errors unless every target row value is 0 or 1 (labels always are).
fn ensure_binary(targets: &Targets) -> Result<()> {
    if let Targets::Rows(rows) = targets {
        let c = rows.n_cols();
        if let Some(pos) = rows.as_slice().iter().position(|&v| v != 0.0 && v != 1.0) {
            bail!(
                "target value {} at sample {} class {} is not 0 or 1: this metric needs binary targets",
                rows.as_slice()[pos],
                pos / c,
                pos % c
            );
        }
    }
    Ok(())
}

/// Whether each sample is a positive of class `j` (binary targets).
fn binary_column(targets: &Targets, j: usize) -> Vec<bool> {
    match targets {
        Targets::Labels(labels) => labels.iter().map(|&l| l == j).collect(),
        Targets::Rows(rows) => rows.iter_rows().map(|row| row[j] == 1.0).collect(),
    }
}
