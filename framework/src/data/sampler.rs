//! Batch samplers (plugin kind `sampler`): the order of training samples in each epoch.

use anyhow::Result;

/// What a sampler may look at for each training sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleMeta {
    /// Task index (0 for single-task runs).
    pub task: usize,
    /// Class (first label) in the joint label space, if any.
    pub label: Option<usize>,
}

/// A batch sampler plugin.
pub trait BatchSampler: Send + Sync {
    /// The batches of one epoch as indices into `items`. Deterministic in `(seed, epoch)`, so a
    /// resumed run replays exactly the same order.
    fn batches(
        &self,
        items: &[SampleMeta],
        batch_size: usize,
        seed: u64,
        epoch: usize,
    ) -> Result<Vec<Vec<usize>>>;
}
