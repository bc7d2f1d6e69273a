//! Few-shot subset selection and train/val splits exactly as the reference code draws them,
//! as pure functions on label lists so that any dataset can use them.
//!
//! Items are described only by their labels: `&[usize]` (one class per item) or
//! `&[Vec<usize>]` (a class list per item; empty = a negative image). Every function returns
//! positions into that list, in the order the reference produces the items, so callers apply
//! them to their own item lists. Randomness comes from [`PyRandom`](super::pyrandom::PyRandom),
//! CPython's generator, so the subsets match the reference bit for bit.
//!
//! - [`dassl_fewshot`]: Dassl's `generate_fewshot_dataset` (CoOp source datasets, §4.5a).
//! - [`elevater_sample_few_shot`]: vision-datasets' `sample_few_shot_subset` (§4.5b).
//! - [`elevater_train_val_split`]: vision-datasets' `train_val_split` (multitask, §4.5c).
//! - [`mvlpt_single_task_split`]: the balanced split in MVLPT's ELEVATER loader (§3.3).
//!
//! The ELEVATER functions follow vision-datasets 0.2.x, the version MVLPT ran; vision-datasets
//! 1.0 replaced `sample_few_shot_subset` with a different greedy sampler and dropped
//! `train_val_split`, so results differ from what the 1.0 package gives.

mod dassl;
mod elevater;
mod pyset;
mod single_task;
#[cfg(test)]
mod tests;

pub use dassl::dassl_fewshot;
pub use elevater::{elevater_sample_few_shot, elevater_train_val_split};
pub use single_task::{
    mvlpt_single_task_split, mvlpt_split_multiclass, mvlpt_split_multilabel, SingleTaskLabels,
    MVLPT_VAL_FRACTION,
};

use super::pyrandom::PyRandomError;

/// The two halves of a split, as positions into the labels the split was given.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TrainValSplit {
    /// Training items, in the reference's order.
    pub train: Vec<usize>,
    /// Validation items, in the reference's order.
    pub val: Vec<usize>,
}

/// Inputs the reference would reject (or crash on).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FewShotError {
    /// A class id at or above the number of classes.
    #[error("item {item} has label {label}, but there are only {num_classes} classes")]
    LabelOutOfRange {
        /// Position of the offending item.
        item: usize,
        /// The offending class id.
        label: usize,
        /// Number of classes declared.
        num_classes: usize,
    },
    /// `sample_few_shot_subset` needs at least one shot per class.
    #[error("the number of shots per class must be at least 1")]
    ZeroShots,
    /// A ratio or fraction outside [0, 1] (or not finite).
    #[error("{name} must lie in [0, 1], got {value}")]
    InvalidFraction {
        /// Which argument.
        name: &'static str,
        /// The value given.
        value: f64,
    },
    /// The MVLPT split of an empty list (the reference fails in `np.concatenate`).
    #[error("cannot split an empty list of items")]
    EmptyDataset,
    /// A generator call refused its arguments.
    #[error(transparent)]
    Random(#[from] PyRandomError),
}

/// Checks every label of every item against `num_classes`.
fn check_labels(labels: &[Vec<usize>], num_classes: usize) -> Result<(), FewShotError> {
    for (item, item_labels) in labels.iter().enumerate() {
        if let Some(&label) = item_labels.iter().find(|&&label| label >= num_classes) {
            return Err(FewShotError::LabelOutOfRange {
                item,
                label,
                num_classes,
            });
        }
    }
    Ok(())
}

/// Checks that a ratio lies in [0, 1].
fn check_fraction(name: &'static str, value: f64) -> Result<(), FewShotError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(FewShotError::InvalidFraction { name, value })
    }
}
