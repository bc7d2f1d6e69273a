//! Batch sampler plugins (`data.sampler`): the batches of each training epoch, as positions into
//! the training samples.
//!
//! Every sampler is a pure function of the sample metadata, the batch size, the seed and the
//! epoch: its draws come from [`epoch_rng`], a ChaCha stream keyed by `(seed, epoch)`, so a
//! resumed run replays the same order from any epoch on.
//!
//! - `random`: a shuffled permutation per epoch (Dassl's `RandomSampler`).
//! - `sequential`: the samples in order every epoch.
//! - `class_balanced`: N classes × K samples per batch (Dassl's `RandomClassSampler`).
//! - `task_proportional`: a shuffled permutation of all tasks' samples, so each task appears in
//!   proportion to its size (the reference's multitask batches).
//! - `task_uniform`, `task_temperature`: each batch slot draws its task, uniformly or with
//!   probability ∝ n_t^(1/T), then the task's next sample.

mod class_balanced;
mod draw;
mod order;
mod task_mix;

pub use class_balanced::{ClassBalancedOptions, ClassBalancedSampler};
pub use order::{RandomSampler, SequentialOptions, SequentialSampler, ShuffleOptions};
pub use task_mix::{TaskMixSampler, TaskTemperatureOptions, TaskUniformOptions, TaskWeighting};

use anyhow::{ensure, Result};
use mvlpt_framework::data::SampleMeta;
use mvlpt_framework::rng::{seeded, Rng};
use serde::{Deserialize, Serialize};

/// The upper half of every sampler stream id ("SAMP"), which keeps sampler draws apart from
/// other users of `rng::seeded(seed)` (they read stream 0).
pub const SAMPLER_STREAM_TAG: u64 = 0x5341_4D50 << 32;

/// The generator of one epoch's draws: `rng::seeded(seed)` switched to stream
/// `SAMPLER_STREAM_TAG ^ epoch`, a separate ChaCha stream for every epoch.
pub fn epoch_rng(seed: u64, epoch: usize) -> Rng {
    let mut rng = seeded(seed);
    rng.set_stream(SAMPLER_STREAM_TAG ^ epoch as u64);
    rng
}

/// Whether an epoch's last, incomplete batch is dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropLast {
    /// Dassl's rule: drop it when there are at least `batch_size` samples (so at least one
    /// full batch remains).
    #[default]
    Auto,
    /// Always drop it (an epoch with fewer samples than one batch is then an error).
    Always,
    /// Keep it (the ELEVATER loaders).
    Never,
}

impl DropLast {
    /// Whether an incomplete last batch of an epoch of `len` samples is dropped.
    fn drops(self, len: usize, batch_size: usize) -> bool {
        match self {
            Self::Auto => len >= batch_size,
            Self::Always => true,
            Self::Never => false,
        }
    }
}

/// Checks what every sampler needs: a positive batch size and some samples.
fn check_inputs(items: &[SampleMeta], batch_size: usize) -> Result<()> {
    ensure!(batch_size > 0, "the batch size must be at least 1");
    ensure!(!items.is_empty(), "there are no training samples to batch");
    Ok(())
}

/// Cuts an epoch's sample order into batches of `batch_size` (the last one possibly smaller or
/// dropped); an epoch without any batch is an error.
fn into_batches(
    order: Vec<usize>,
    batch_size: usize,
    drop_last: DropLast,
) -> Result<Vec<Vec<usize>>> {
    let len = order.len();
    let mut batches: Vec<Vec<usize>> = order.chunks(batch_size).map(<[usize]>::to_vec).collect();
    if drop_last.drops(len, batch_size) && batches.last().is_some_and(|b| b.len() < batch_size) {
        batches.pop();
    }
    ensure!(
        !batches.is_empty(),
        "{len} training samples make no batch of {batch_size} when the last incomplete batch is \
         dropped (drop_last = \"always\")"
    );
    Ok(batches)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_last_rules() {
        let order: Vec<usize> = (0..10).collect();
        let sizes = |drop| -> Vec<usize> {
            into_batches(order.clone(), 4, drop)
                .unwrap()
                .iter()
                .map(Vec::len)
                .collect()
        };
        assert_eq!(sizes(DropLast::Auto), vec![4, 4]);
        assert_eq!(sizes(DropLast::Always), vec![4, 4]);
        assert_eq!(sizes(DropLast::Never), vec![4, 4, 2]);
        // Fewer samples than a batch: Dassl keeps the one incomplete batch.
        let short = into_batches(vec![0, 1, 2], 4, DropLast::Auto).unwrap();
        assert_eq!(short, vec![vec![0, 1, 2]]);
        assert!(into_batches(vec![0, 1, 2], 4, DropLast::Always).is_err());
    }

    #[test]
    fn epoch_streams_differ_and_repeat() {
        use rand_core::RngCore;
        let draw = |seed, epoch| epoch_rng(seed, epoch).next_u64();
        assert_eq!(draw(1, 0), draw(1, 0));
        assert_ne!(draw(1, 0), draw(1, 1));
        assert_ne!(draw(1, 0), draw(2, 0));
        assert_ne!(draw(1, 0), seeded(1).next_u64());
    }
}
