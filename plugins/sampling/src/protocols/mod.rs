//! Few-shot protocol plugins (`data.fewshot`): the training and validation samples of a run for
//! a number of shots and a seed.
//!
//! Each protocol applies one of the framework's reference algorithms
//! ([`mvlpt_framework::data::fewshot`]) to a dataset's sample lists and returns the chosen
//! samples in the order the reference produces them.

mod all;
mod dassl;
mod elevater;
mod elevater_multitask;

pub use all::AllProtocol;
pub use dassl::{DasslOptions, DasslProtocol};
pub use elevater::{ElevaterOptions, ElevaterProtocol, ValSource};
pub use elevater_multitask::{ElevaterMultitaskOptions, ElevaterMultitaskProtocol, EmptyVal};

use anyhow::{ensure, Context, Result};
use mvlpt_framework::data::{Dataset, FewShotSplit, Sample, Split};

/// The samples of `split`, with the dataset and split named in any error.
fn split_samples(dataset: &dyn Dataset, split: Split) -> Result<Vec<Sample>> {
    dataset.samples(split).with_context(|| {
        format!(
            "reading the {} split of dataset {}",
            split.as_str(),
            dataset.info().name
        )
    })
}

/// The training split, which must not be empty.
fn training_pool(dataset: &dyn Dataset) -> Result<Vec<Sample>> {
    let pool = split_samples(dataset, Split::Train)?;
    ensure!(
        !pool.is_empty(),
        "dataset {} has no training samples",
        dataset.info().name
    );
    Ok(pool)
}

/// The samples at `positions`, in that order.
fn pick(samples: &[Sample], positions: &[usize]) -> Vec<Sample> {
    positions.iter().map(|&p| samples[p].clone()).collect()
}

/// Every sample's class list.
fn label_lists(samples: &[Sample]) -> Vec<Vec<usize>> {
    samples.iter().map(|s| s.labels.clone()).collect()
}

/// Every sample's class (its first label); a sample without one is an error naming it.
fn single_labels(samples: &[Sample], dataset: &str, split: Split) -> Result<Vec<usize>> {
    samples
        .iter()
        .enumerate()
        .map(|(i, sample)| {
            sample.label().with_context(|| {
                format!(
                    "sample {i} ({}) of the {} split of dataset {dataset} has no label, but the \
                     protocol needs one class per sample",
                    sample.image,
                    split.as_str()
                )
            })
        })
        .collect()
}

/// Checks that a protocol left something to train on.
fn ensure_training_samples(
    split: &FewShotSplit,
    dataset: &str,
    shots: usize,
    seed: u64,
) -> Result<()> {
    ensure!(
        !split.train.is_empty(),
        "the few-shot split of dataset {dataset} ({shots} shots, seed {seed}) has no training samples"
    );
    Ok(())
}
