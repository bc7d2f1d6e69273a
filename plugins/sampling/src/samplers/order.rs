//! `random`, `task_proportional` and `sequential`: every sample exactly once per epoch, in a
//! shuffled or in the given order, cut into batches.

use super::draw::shuffle;
use super::{check_inputs, epoch_rng, into_batches, DropLast};
use anyhow::Result;
use mvlpt_framework::config::Section;
use mvlpt_framework::data::{BatchSampler, SampleMeta};
use serde::{Deserialize, Serialize};

/// Options of `random` and `task_proportional` (`[data.random]`, `[data.task_proportional]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShuffleOptions {
    /// Whether the last incomplete batch is dropped (default: Dassl's `auto`).
    pub drop_last: DropLast,
    /// Shuffle with this seed instead of the run seed, so every run seed sees the same orders
    /// (the ELEVATER single-task loader shuffles with a constant 0, §9 item 6).
    pub fixed_seed: Option<u64>,
}

/// A uniformly shuffled permutation of all samples per epoch.
#[derive(Clone, Copy, Debug, Default)]
pub struct RandomSampler {
    options: ShuffleOptions,
}

impl RandomSampler {
    /// A sampler with these options.
    pub fn new(options: ShuffleOptions) -> Self {
        Self { options }
    }
}

impl BatchSampler for RandomSampler {
    fn batches(
        &self,
        items: &[SampleMeta],
        batch_size: usize,
        seed: u64,
        epoch: usize,
    ) -> Result<Vec<Vec<usize>>> {
        check_inputs(items, batch_size)?;
        let mut rng = epoch_rng(self.options.fixed_seed.unwrap_or(seed), epoch);
        let mut order: Vec<usize> = (0..items.len()).collect();
        shuffle(&mut rng, &mut order);
        into_batches(order, batch_size, self.options.drop_last)
    }
}

fn build_random(section: &Section<'_>) -> Result<Box<dyn BatchSampler>> {
    Ok(Box::new(RandomSampler::new(section.extract()?)))
}

mvlpt_framework::register_plugin!(
    Sampler,
    "random",
    "A shuffled permutation of all samples per epoch (Dassl RandomSampler); drop_last, fixed_seed",
    build_random,
    ShuffleOptions
);

fn build_task_proportional(section: &Section<'_>) -> Result<Box<dyn BatchSampler>> {
    Ok(Box::new(RandomSampler::new(section.extract()?)))
}

mvlpt_framework::register_plugin!(
    Sampler,
    "task_proportional",
    "Multitask: a shuffled permutation of all tasks' samples, tasks in proportion to their size (the reference)",
    build_task_proportional,
    ShuffleOptions
);

/// Options of `sequential` (`[data.sequential]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SequentialOptions {
    /// Whether the last incomplete batch is dropped (default: Dassl's `auto`).
    pub drop_last: DropLast,
}

/// The samples in their given order, every epoch.
#[derive(Clone, Copy, Debug, Default)]
pub struct SequentialSampler {
    options: SequentialOptions,
}

impl SequentialSampler {
    /// A sampler with these options.
    pub fn new(options: SequentialOptions) -> Self {
        Self { options }
    }
}

impl BatchSampler for SequentialSampler {
    fn batches(
        &self,
        items: &[SampleMeta],
        batch_size: usize,
        _seed: u64,
        _epoch: usize,
    ) -> Result<Vec<Vec<usize>>> {
        check_inputs(items, batch_size)?;
        into_batches(
            (0..items.len()).collect(),
            batch_size,
            self.options.drop_last,
        )
    }
}

fn build_sequential(section: &Section<'_>) -> Result<Box<dyn BatchSampler>> {
    Ok(Box::new(SequentialSampler::new(section.extract()?)))
}

mvlpt_framework::register_plugin!(
    Sampler,
    "sequential",
    "The samples in order every epoch (the ELEVATER multitask loader: set drop_last = \"never\")",
    build_sequential,
    SequentialOptions
);
