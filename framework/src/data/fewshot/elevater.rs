//! vision-datasets 0.2.x `DatasetManifest.sample_few_shot_subset` and `train_val_split`, the
//! ELEVATER sampling MVLPT runs on single-task manifests (few-shot) and on merged multitask
//! manifests (few-shot, then split). Class ids are global: for a multitask manifest the caller
//! passes each image's labels already offset by its task (`_get_cid`).

use super::{check_fraction, check_labels, FewShotError, TrainValSplit};
use crate::data::pyrandom::PyRandom;

/// The item positions shuffled by `random.Random(seed).shuffle(list(images))`.
fn shuffled_positions(len: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    PyRandom::new(seed).shuffle(&mut order);
    order
}

/// Minimum and maximum of `counts` over an item's labels (duplicates count as in the reference).
fn min_max_count(item_labels: &[usize], counts: &[usize]) -> (usize, usize) {
    item_labels
        .iter()
        .map(|&label| counts[label])
        .fold((usize::MAX, 0), |(lo, hi), c| (lo.min(c), hi.max(c)))
}

/// `sample_few_shot_subset(num_shots, seed)`: the kept positions in acceptance order.
///
/// Images are visited in `random.Random(seed)` shuffled order. A negative image (no labels) is
/// kept while fewer than `num_shots` negatives are kept. Otherwise, with `cnt` the current counts
/// of its labels, it is skipped when `min(cnt) >= k`, and kept (counts updated) when
/// `min(cnt) <= k/2` or `max(cnt) <= 1.5k`; the loop stops once every one of the `num_classes`
/// classes has `k`. Multiclass data thus get exactly `k` per class (or all of a smaller class).
pub fn elevater_sample_few_shot(
    labels: &[Vec<usize>],
    num_classes: usize,
    num_shots: usize,
    seed: u64,
) -> Result<Vec<usize>, FewShotError> {
    if num_shots == 0 {
        return Err(FewShotError::ZeroShots);
    }
    check_labels(labels, num_classes)?;
    let shots = num_shots as f64;
    let mut counts = vec![0usize; num_classes];
    let mut classes_below_k = num_classes;
    let mut negatives = 0usize;
    let mut kept = Vec::new();
    for position in shuffled_positions(labels.len(), seed) {
        let item_labels = &labels[position];
        if item_labels.is_empty() {
            if negatives < num_shots {
                negatives += 1;
                kept.push(position);
            }
            continue;
        }
        let (min_count, max_count) = min_max_count(item_labels, &counts);
        if min_count >= num_shots {
            continue;
        }
        if min_count as f64 <= shots / 2.0 || max_count as f64 <= 1.5 * shots {
            kept.push(position);
            for &label in item_labels {
                counts[label] += 1;
                if counts[label] == num_shots {
                    classes_below_k -= 1;
                }
            }
        }
        if classes_below_k == 0 {
            break;
        }
    }
    Ok(kept)
}

/// Running per-class counts for one side of a split.
struct SideCounts {
    per_class: Vec<usize>,
    negatives: usize,
}

impl SideCounts {
    fn new(num_classes: usize) -> Self {
        Self {
            per_class: vec![0; num_classes],
            negatives: 0,
        }
    }

    /// `(min, sum)` of the counts of an item's labels.
    fn min_and_sum(&self, item_labels: &[usize]) -> (usize, usize) {
        let counts = item_labels.iter().map(|&label| self.per_class[label]);
        (counts.clone().min().unwrap_or(0), counts.sum())
    }

    fn add(&mut self, item_labels: &[usize]) {
        for &label in item_labels {
            self.per_class[label] += 1;
        }
    }
}

/// `train_val_split(train_ratio, seed)`: a greedy, roughly class-balanced split.
///
/// If `int(n * train_ratio)` is 0 everything goes to val, if it is `n` everything goes to train
/// (both in the given order, no shuffle). Otherwise, in `random.Random(seed)` shuffled order and
/// with `r = (1 - train_ratio) / train_ratio`: a negative image goes to train when train has no
/// negatives yet or `val_neg / train_neg >= r`, else to val; an image with labels goes to val
/// when `min(val_cnt) < min(train_cnt) * r`, or when those are equal and
/// `sum(val_cnt) < sum(train_cnt) * r`, else to train. All comparisons are in `f64` as in Python.
pub fn elevater_train_val_split(
    labels: &[Vec<usize>],
    num_classes: usize,
    train_ratio: f64,
    seed: u64,
) -> Result<TrainValSplit, FewShotError> {
    check_fraction("train_ratio", train_ratio)?;
    check_labels(labels, num_classes)?;
    let n = labels.len();
    let train_target = (n as f64 * train_ratio).trunc();
    if train_target == 0.0 {
        return Ok(TrainValSplit {
            train: Vec::new(),
            val: (0..n).collect(),
        });
    }
    if train_target == n as f64 {
        return Ok(TrainValSplit {
            train: (0..n).collect(),
            val: Vec::new(),
        });
    }
    let val_per_train = (1.0 - train_ratio) / train_ratio;
    let (mut train, mut val) = (SideCounts::new(num_classes), SideCounts::new(num_classes));
    let mut split = TrainValSplit::default();
    for position in shuffled_positions(n, seed) {
        let item_labels = &labels[position];
        if item_labels.is_empty() {
            if train.negatives == 0
                || val.negatives as f64 / train.negatives as f64 >= val_per_train
            {
                train.negatives += 1;
                split.train.push(position);
            } else {
                val.negatives += 1;
                split.val.push(position);
            }
            continue;
        }
        let (train_min, train_sum) = train.min_and_sum(item_labels);
        let (val_min, val_sum) = val.min_and_sum(item_labels);
        let (train_min, train_sum) = (
            train_min as f64 * val_per_train,
            train_sum as f64 * val_per_train,
        );
        let (val_min, val_sum) = (val_min as f64, val_sum as f64);
        if val_min < train_min || (val_min == train_min && val_sum < train_sum) {
            val.add(item_labels);
            split.val.push(position);
        } else {
            train.add(item_labels);
            split.train.push(position);
        }
    }
    Ok(split)
}
