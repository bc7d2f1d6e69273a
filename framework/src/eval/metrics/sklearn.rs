//! The numpy and scikit-learn building blocks the reference metrics call, with their semantics.
//!
//! - [`argmax`]: `numpy.argmax` (first maximum wins; a NaN counts as the maximum).
//! - [`balanced_accuracy_score`], [`f1_score_macro`]: `sklearn.metrics` on class indices.
//! - [`precision_recall_curve`], [`roc_curve`], [`roc_auc_score_binary`]: the ranking curves of
//!   `sklearn.metrics`, with one point per distinct score value (tied scores share a threshold).
//!
//! Counts are exact in `f64`; means are summed left to right, so results can differ from numpy's
//! pairwise summation in the last bits only.

use anyhow::{bail, ensure, Result};
use std::collections::BTreeMap;

/// Index of the first maximum of `values`, like `numpy.argmax`: ties go to the lowest index and
/// the first NaN wins outright. Returns 0 for an empty slice.
pub fn argmax(values: &[f32]) -> usize {
    argmax_among(values, 0..values.len()).unwrap_or(0)
}

/// [`argmax`] restricted to the given indices (visited in order); `None` if there are none.
pub(crate) fn argmax_among(
    values: &[f32],
    indices: impl IntoIterator<Item = usize>,
) -> Option<usize> {
    let mut best: Option<usize> = None;
    for i in indices {
        let v = values[i];
        if v.is_nan() {
            return Some(i);
        }
        match best {
            Some(b) if v <= values[b] => {}
            _ => best = Some(i),
        }
    }
    best
}

/// `sklearn.metrics.balanced_accuracy_score(y_true, y_pred)`: the mean recall over the classes
/// that occur in `y_true`. Classes that occur only in `y_pred` are ignored (sklearn warns "y_pred
/// contains classes not in y_true" and drops them).
pub fn balanced_accuracy_score(y_true: &[usize], y_pred: &[usize]) -> Result<f64> {
    ensure_same_len(y_true, y_pred)?;
    let mut per_class: BTreeMap<usize, (u64, u64)> = BTreeMap::new();
    for (&t, &p) in y_true.iter().zip(y_pred) {
        let (support, correct) = per_class.entry(t).or_default();
        *support += 1;
        *correct += u64::from(t == p);
    }
    let recalls: Vec<f64> = per_class
        .values()
        .map(|&(support, correct)| correct as f64 / support as f64)
        .collect();
    Ok(mean(&recalls))
}

/// `sklearn.metrics.f1_score(y_true, y_pred, average="macro", labels=np.unique(y_true))`, as
/// Dassl's `Classification` evaluator calls it: the F1 of each class present in `y_true`,
/// `2·tp / (support + predicted)`, averaged without weights.
pub fn f1_score_macro(y_true: &[usize], y_pred: &[usize]) -> Result<f64> {
    ensure_same_len(y_true, y_pred)?;
    // Per class in y_true: (true positives, support, predicted count).
    let mut counts: BTreeMap<usize, (u64, u64, u64)> = BTreeMap::new();
    for &t in y_true {
        counts.entry(t).or_default().1 += 1;
    }
    for (&t, &p) in y_true.iter().zip(y_pred) {
        if let Some(entry) = counts.get_mut(&p) {
            entry.2 += 1;
        }
        if t == p {
            counts.entry(t).or_default().0 += 1;
        }
    }
    let f1s: Vec<f64> = counts
        .values()
        .map(|&(tp, support, predicted)| 2.0 * tp as f64 / (support + predicted) as f64)
        .collect();
    Ok(mean(&f1s))
}

/// A precision-recall curve as `sklearn.metrics.precision_recall_curve` returns it: recall
/// decreasing, ending with the point (recall 0, precision 1) that has no threshold.
#[derive(Clone, Debug, PartialEq)]
pub struct PrecisionRecallCurve {
    /// Precision at each threshold, then 1.
    pub precision: Vec<f64>,
    /// Recall at each threshold (decreasing), then 0.
    pub recall: Vec<f64>,
    /// The distinct scores, increasing (one fewer than the points).
    pub thresholds: Vec<f32>,
}

/// `sklearn.metrics.precision_recall_curve(y_true, y_score)` with the defaults (every distinct
/// score is a threshold, `drop_intermediate=False`). Needs at least one positive sample; scores
/// must be finite.
pub fn precision_recall_curve(y_true: &[bool], y_score: &[f32]) -> Result<PrecisionRecallCurve> {
    let curve = BinaryCurve::new(y_true, y_score)?;
    let total_positives = curve.last_tps();
    ensure!(
        total_positives > 0.0,
        "precision-recall curve needs at least one positive sample, got none"
    );
    let mut precision: Vec<f64> = curve
        .tps
        .iter()
        .zip(&curve.fps)
        .map(|(&tp, &fp)| tp / (tp + fp))
        .rev()
        .collect();
    precision.push(1.0);
    let mut recall: Vec<f64> = curve
        .tps
        .iter()
        .map(|&tp| tp / total_positives)
        .rev()
        .collect();
    recall.push(0.0);
    let thresholds = curve.thresholds.iter().rev().copied().collect();
    Ok(PrecisionRecallCurve {
        precision,
        recall,
        thresholds,
    })
}

/// An ROC curve as `sklearn.metrics.roc_curve` returns it (starting at (0, 0)).
#[derive(Clone, Debug, PartialEq)]
pub struct RocCurve {
    /// False positive rate at each point, increasing.
    pub fpr: Vec<f64>,
    /// True positive rate at each point, increasing.
    pub tpr: Vec<f64>,
    /// The scores at each point, decreasing; the first is +∞.
    pub thresholds: Vec<f64>,
}

/// `sklearn.metrics.roc_curve(y_true, y_score)` with the default `drop_intermediate=True`
/// (collinear points dropped). Needs both classes in `y_true`; scores must be finite.
pub fn roc_curve(y_true: &[bool], y_score: &[f32]) -> Result<RocCurve> {
    let mut curve = BinaryCurve::new(y_true, y_score)?;
    let (positives, negatives) = (curve.last_tps(), curve.last_fps());
    ensure!(
        positives > 0.0 && negatives > 0.0,
        "only one class is present in y_true ({positives} positives, {negatives} negatives): \
         the ROC curve is not defined"
    );
    curve.drop_collinear_points();
    let mut fpr = vec![0.0];
    fpr.extend(curve.fps.iter().map(|&fp| fp / negatives));
    let mut tpr = vec![0.0];
    tpr.extend(curve.tps.iter().map(|&tp| tp / positives));
    let mut thresholds = vec![f64::INFINITY];
    thresholds.extend(curve.thresholds.iter().map(|&t| f64::from(t)));
    Ok(RocCurve {
        fpr,
        tpr,
        thresholds,
    })
}

/// `sklearn.metrics.roc_auc_score(y_true, y_score)` for binary targets: the trapezoidal area under
/// [`roc_curve`], so tied scores count half. Errors when only one class is present (sklearn up to
/// 1.5 raised; later versions warn and return NaN).
pub fn roc_auc_score_binary(y_true: &[bool], y_score: &[f32]) -> Result<f64> {
    let curve = roc_curve(y_true, y_score)?;
    Ok(trapezoid_area(&curve.fpr, &curve.tpr))
}

/// Trapezoidal area under the points (x increasing), like `numpy.trapezoid(y, x)`.
fn trapezoid_area(x: &[f64], y: &[f64]) -> f64 {
    x.windows(2)
        .zip(y.windows(2))
        .map(|(xs, ys)| (xs[1] - xs[0]) * (ys[1] + ys[0]) / 2.0)
        .sum()
}

/// Cumulative true and false positive counts at each distinct score, scores decreasing
/// (sklearn's `_binary_clf_curve`).
struct BinaryCurve {
    fps: Vec<f64>,
    tps: Vec<f64>,
    thresholds: Vec<f32>,
}

impl BinaryCurve {
    fn new(y_true: &[bool], y_score: &[f32]) -> Result<Self> {
        ensure!(
            y_true.len() == y_score.len(),
            "{} targets for {} scores",
            y_true.len(),
            y_score.len()
        );
        ensure!(!y_true.is_empty(), "no samples for the curve");
        if let Some(i) = y_score.iter().position(|s| !s.is_finite()) {
            bail!("score {} of sample {i} is not finite", y_score[i]);
        }
        let mut order: Vec<usize> = (0..y_score.len()).collect();
        order.sort_by(|&a, &b| y_score[b].total_cmp(&y_score[a]));
        let (mut fps, mut tps, mut thresholds) = (Vec::new(), Vec::new(), Vec::new());
        let (mut tp, mut fp) = (0.0, 0.0);
        for (rank, &i) in order.iter().enumerate() {
            if y_true[i] {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            // Close a threshold where the next score differs (-0.0 and 0.0 are one value).
            let last_of_value = order
                .get(rank + 1)
                .is_none_or(|&next| y_score[next] != y_score[i]);
            if last_of_value {
                tps.push(tp);
                fps.push(fp);
                thresholds.push(y_score[i]);
            }
        }
        Ok(Self {
            fps,
            tps,
            thresholds,
        })
    }

    fn last_tps(&self) -> f64 {
        self.tps.last().copied().unwrap_or(0.0)
    }

    fn last_fps(&self) -> f64 {
        self.fps.last().copied().unwrap_or(0.0)
    }

    /// Keeps the first, the last and every point where the curve bends (`roc_curve`'s
    /// `drop_intermediate`).
    fn drop_collinear_points(&mut self) {
        let n = self.tps.len();
        if n <= 2 {
            return;
        }
        let bends = |v: &[f64], i: usize| (v[i + 1] - v[i]) - (v[i] - v[i - 1]) != 0.0;
        let keep: Vec<usize> = (0..n)
            .filter(|&i| i == 0 || i == n - 1 || bends(&self.fps, i) || bends(&self.tps, i))
            .collect();
        self.fps = keep.iter().map(|&i| self.fps[i]).collect();
        self.tps = keep.iter().map(|&i| self.tps[i]).collect();
        self.thresholds = keep.iter().map(|&i| self.thresholds[i]).collect();
    }
}

/// Arithmetic mean, summed left to right (callers pass at least one value; none gives NaN).
pub(crate) fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

fn ensure_same_len(y_true: &[usize], y_pred: &[usize]) -> Result<()> {
    ensure!(
        y_true.len() == y_pred.len(),
        "{} true labels for {} predictions",
        y_true.len(),
        y_pred.len()
    );
    ensure!(!y_true.is_empty(), "no samples");
    Ok(())
}
