//! The train/val split of MVLPT's single-task ELEVATER loader (`construct_dataloader` →
//! `get_dataloader(..., val_split=0.2)` in `vision_benchmark/evaluation/feature.py`), applied to
//! the few-shot subset in its sampled order. With one shot there is no split: train and val are
//! both the whole subset.
//!
//! - Multiclass: per class, in order of first appearance, the first `ceil(0.2 * count)` items go
//!   to val; `val = list(set(those))`, `train = list(set(range(n)) - set(val))`.
//! - Multi-label: while some class still needs val labels (`ceil(0.2 * count)` per class), take
//!   the lowest class in need and move its first remaining item to val (all its labels count);
//!   val keeps that pick order, `train = list(set(range(n)) - set(val))`.
//!
//! The `list(set(...))` orders are CPython hash-table orders, reproduced by [`super::pyset`].

use super::pyset::PyIntSet;
use super::{check_fraction, check_labels, FewShotError, TrainValSplit};

/// The validation fraction MVLPT passes (`val_split = 0.2`).
pub const MVLPT_VAL_FRACTION: f64 = 0.2;

/// Labels of the items to split, in the two forms the loader distinguishes by dataset type.
#[derive(Clone, Copy, Debug)]
pub enum SingleTaskLabels<'a> {
    /// `classification_multiclass`: each item's (first) class.
    Multiclass(&'a [usize]),
    /// `classification_multilabel` (e.g. VOC 2007): each item's classes, possibly none.
    Multilabel {
        /// Classes per item.
        labels: &'a [Vec<usize>],
        /// Number of classes in the label map.
        num_classes: usize,
    },
}

/// The split MVLPT's single-task loader makes of a `num_shots`-shot subset: for `num_shots == 1`
/// train and val are both every item in order; otherwise (including the full data set,
/// `num_shots == 0`) the balanced split with [`MVLPT_VAL_FRACTION`].
pub fn mvlpt_single_task_split(
    labels: SingleTaskLabels<'_>,
    num_shots: usize,
) -> Result<TrainValSplit, FewShotError> {
    if num_shots == 1 {
        let len = match labels {
            SingleTaskLabels::Multiclass(labels) => labels.len(),
            SingleTaskLabels::Multilabel { labels, .. } => labels.len(),
        };
        return Ok(TrainValSplit {
            train: (0..len).collect(),
            val: (0..len).collect(),
        });
    }
    match labels {
        SingleTaskLabels::Multiclass(labels) => mvlpt_split_multiclass(labels, MVLPT_VAL_FRACTION),
        SingleTaskLabels::Multilabel {
            labels,
            num_classes,
        } => mvlpt_split_multilabel(labels, num_classes, MVLPT_VAL_FRACTION),
    }
}

/// `ceil(count * fraction)` in `f64`, as `math.ceil(count * val_split)` / `np.ceil` compute it.
fn val_quota(count: usize, fraction: f64) -> usize {
    (count as f64 * fraction).ceil() as usize
}

/// `list(set(range(n)) - val_set)` in CPython's order.
fn train_complement(n: usize, val: &PyIntSet) -> Vec<usize> {
    PyIntSet::range_difference(n, val)
}

/// The multiclass branch of MVLPT's balanced split (see the module docs).
pub fn mvlpt_split_multiclass(
    labels: &[usize],
    val_fraction: f64,
) -> Result<TrainValSplit, FewShotError> {
    check_fraction("val_fraction", val_fraction)?;
    if labels.is_empty() {
        return Err(FewShotError::EmptyDataset);
    }
    // Classes in order of first appearance (Counter order) with their items in list order.
    let mut class_slot: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    let mut items_by_class: Vec<Vec<usize>> = Vec::new();
    for (item, &label) in labels.iter().enumerate() {
        let slot = *class_slot.entry(label).or_insert_with(|| {
            items_by_class.push(Vec::new());
            items_by_class.len() - 1
        });
        items_by_class[slot].push(item);
    }
    let val_in_class_order = items_by_class.iter().flat_map(|items| {
        items
            .iter()
            .copied()
            .take(val_quota(items.len(), val_fraction))
    });
    let val = PyIntSet::from_adds(val_in_class_order);
    Ok(TrainValSplit {
        train: train_complement(labels.len(), &val),
        val: val.to_list(),
    })
}

/// The multi-label branch of MVLPT's balanced split: a greedy cover (see the module docs).
pub fn mvlpt_split_multilabel(
    labels: &[Vec<usize>],
    num_classes: usize,
    val_fraction: f64,
) -> Result<TrainValSplit, FewShotError> {
    check_fraction("val_fraction", val_fraction)?;
    check_labels(labels, num_classes)?;
    if labels.is_empty() {
        return Err(FewShotError::EmptyDataset);
    }
    // Multi-hot rows (repeated labels collapse to 1, as multilabel_to_vec does).
    let mut rows: Vec<Vec<bool>> = labels
        .iter()
        .map(|item_labels| {
            let mut row = vec![false; num_classes];
            item_labels.iter().for_each(|&label| row[label] = true);
            row
        })
        .collect();
    let mut still_needed: Vec<f64> = (0..num_classes)
        .map(|class| {
            let count = rows.iter().filter(|row| row[class]).count();
            (count as f64 * val_fraction).ceil()
        })
        .collect();
    let mut val = Vec::new();
    while let Some(class) = still_needed.iter().position(|&need| need > 0.0) {
        // The quota never exceeds the items holding the class, so one is always left.
        let Some(item) = rows.iter().position(|row| row[class]) else {
            break;
        };
        for (need, present) in still_needed.iter_mut().zip(&rows[item]) {
            if *present {
                *need -= 1.0;
            }
        }
        rows[item].iter_mut().for_each(|present| *present = false);
        val.push(item);
    }
    Ok(TrainValSplit {
        train: train_complement(labels.len(), &PyIntSet::from_adds(val.iter().copied())),
        val,
    })
}
