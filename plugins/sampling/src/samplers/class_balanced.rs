//! `class_balanced`: batches of N classes × K samples, the scheme of Dassl's
//! `RandomClassSampler`.
//!
//! Per epoch, with K = `instances` and N = `batch_size / K`:
//! 1. Each class (in order of first appearance) shuffles its samples (a class with fewer than K
//!    first draws K of them with replacement) and cuts them into chunks of exactly K, dropping an
//!    incomplete last chunk.
//! 2. While at least N classes have chunks left: draw N distinct such classes uniformly, and
//!    make a batch of the next chunk of each, in draw order.
//!
//! Every batch thus holds exactly N classes with K samples each. Dassl also accepts batch sizes
//! that are not multiples of K (its batches then straddle class groups); here that is an error.

use super::draw::{below, shuffle};
use super::{check_inputs, epoch_rng};
use anyhow::{ensure, Context, Result};
use mvlpt_framework::config::Section;
use mvlpt_framework::data::{BatchSampler, SampleMeta};
use mvlpt_framework::rng::Rng;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};

/// Options of `class_balanced` (`[data.class_balanced]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClassBalancedOptions {
    /// Samples per class in a batch, K (Dassl's `DATALOADER.TRAIN_X.N_INS`, default 16).
    pub instances: usize,
}

impl Default for ClassBalancedOptions {
    fn default() -> Self {
        Self { instances: 16 }
    }
}

/// N classes × K samples per batch.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClassBalancedSampler {
    options: ClassBalancedOptions,
}

impl ClassBalancedSampler {
    /// A sampler with these options; `instances` must be at least 1.
    pub fn new(options: ClassBalancedOptions) -> Result<Self> {
        ensure!(
            options.instances > 0,
            "data.class_balanced.instances must be at least 1"
        );
        Ok(Self { options })
    }
}

fn build(section: &Section<'_>) -> Result<Box<dyn BatchSampler>> {
    Ok(Box::new(ClassBalancedSampler::new(section.extract()?)?))
}

mvlpt_framework::register_plugin!(
    Sampler,
    "class_balanced",
    "N classes x K samples per batch (Dassl RandomClassSampler); option instances = K",
    build,
    ClassBalancedOptions
);

/// Sample positions grouped by class, classes in order of first appearance.
fn group_by_class(items: &[SampleMeta]) -> Result<Vec<Vec<usize>>> {
    let mut slot_of: HashMap<usize, usize> = HashMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (position, meta) in items.iter().enumerate() {
        let label = meta.label.with_context(|| {
            format!("class_balanced needs a class for every sample, but sample {position} has none")
        })?;
        let slot = *slot_of.entry(label).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[slot].push(position);
    }
    Ok(groups)
}

/// One class's chunks of exactly `k` shuffled samples (step 1 of the module docs).
fn class_chunks(rng: &mut Rng, members: &[usize], k: usize) -> VecDeque<Vec<usize>> {
    let mut pool: Vec<usize> = if members.len() < k {
        (0..k).map(|_| members[below(rng, members.len())]).collect()
    } else {
        members.to_vec()
    };
    shuffle(rng, &mut pool);
    pool.chunks_exact(k).map(<[usize]>::to_vec).collect()
}

/// `count` distinct entries of `pool`, uniformly, in draw order (a partial Fisher–Yates).
fn draw_distinct(rng: &mut Rng, pool: &[usize], count: usize) -> Vec<usize> {
    let mut pool = pool.to_vec();
    for i in 0..count {
        let j = i + below(rng, pool.len() - i);
        pool.swap(i, j);
    }
    pool.truncate(count);
    pool
}

impl BatchSampler for ClassBalancedSampler {
    fn batches(
        &self,
        items: &[SampleMeta],
        batch_size: usize,
        seed: u64,
        epoch: usize,
    ) -> Result<Vec<Vec<usize>>> {
        check_inputs(items, batch_size)?;
        let k = self.options.instances;
        ensure!(
            batch_size.is_multiple_of(k),
            "class_balanced: the batch size {batch_size} is not a multiple of \
             data.class_balanced.instances = {k}"
        );
        let classes_per_batch = batch_size / k;
        let groups = group_by_class(items)?;
        ensure!(
            groups.len() >= classes_per_batch,
            "class_balanced: a batch of {batch_size} needs {classes_per_batch} classes of {k} \
             samples, but the training samples have only {} classes",
            groups.len()
        );
        let mut rng = epoch_rng(seed, epoch);
        let mut chunks: Vec<VecDeque<Vec<usize>>> = groups
            .iter()
            .map(|members| class_chunks(&mut rng, members, k))
            .collect();
        let mut available: Vec<usize> = (0..groups.len()).collect();
        let mut batches = Vec::new();
        while available.len() >= classes_per_batch {
            let mut batch = Vec::with_capacity(batch_size);
            for class in draw_distinct(&mut rng, &available, classes_per_batch) {
                // Every available class has a chunk left (exhausted ones are removed below).
                if let Some(chunk) = chunks[class].pop_front() {
                    batch.extend(chunk);
                }
                if chunks[class].is_empty() {
                    available.retain(|&c| c != class);
                }
            }
            batches.push(batch);
        }
        Ok(batches)
    }
}
