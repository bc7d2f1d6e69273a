//! `task_uniform` and `task_temperature`: multitask batches whose tasks are drawn by weight.
//!
//! Per epoch, over the tasks that have samples (task t with n_t of them):
//! - weights: `task_uniform` gives every task 1; `task_temperature` gives n_t^(1/T), so T = 1 is
//!   proportional to size and T → ∞ uniform.
//! - An epoch has as many slots as samples (N = Σ n_t), cut into batches like the other samplers
//!   (`drop_last`). Each slot draws a task t with probability w_t / Σ w, then takes t's next
//!   sample from a per-task stream: a shuffled order of t's samples, shuffled again whenever it
//!   runs out. Small tasks are thus repeated and large ones left partly unseen within an epoch,
//!   but no sample of a task repeats before all of them were used.

use super::draw::{shuffle, unit_interval};
use super::{check_inputs, epoch_rng, into_batches, DropLast};
use anyhow::{ensure, Result};
use mvlpt_framework::config::Section;
use mvlpt_framework::data::{BatchSampler, SampleMeta};
use mvlpt_framework::rng::Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How task weights follow from task sizes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TaskWeighting {
    /// Every task with samples weighs 1.
    Uniform,
    /// Task t weighs n_t^(1 / temperature); `temperature` > 0, may be infinite.
    Temperature(f64),
}

impl TaskWeighting {
    /// The weight of a task with `size` samples.
    fn weight(self, size: usize) -> f64 {
        match self {
            Self::Uniform => 1.0,
            Self::Temperature(t) => (size as f64).powf(1.0 / t),
        }
    }
}

/// Options of `task_uniform` (`[data.task_uniform]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaskUniformOptions {
    /// Whether the last incomplete batch is dropped (default: Dassl's `auto`).
    pub drop_last: DropLast,
}

/// Options of `task_temperature` (`[data.task_temperature]`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaskTemperatureOptions {
    /// T in n_t^(1/T): 1 = proportional to size, larger = flatter (default 2).
    pub temperature: f64,
    /// Whether the last incomplete batch is dropped (default: Dassl's `auto`).
    pub drop_last: DropLast,
}

impl Default for TaskTemperatureOptions {
    fn default() -> Self {
        Self {
            temperature: 2.0,
            drop_last: DropLast::default(),
        }
    }
}

/// Batches whose slots draw their task by weight.
#[derive(Clone, Copy, Debug)]
pub struct TaskMixSampler {
    weighting: TaskWeighting,
    drop_last: DropLast,
}

impl TaskMixSampler {
    /// A sampler with this weighting; a temperature must be positive (infinity allowed).
    pub fn new(weighting: TaskWeighting, drop_last: DropLast) -> Result<Self> {
        if let TaskWeighting::Temperature(t) = weighting {
            ensure!(
                t > 0.0,
                "data.task_temperature.temperature must be positive, got {t}"
            );
        }
        Ok(Self {
            weighting,
            drop_last,
        })
    }
}

fn build_uniform(section: &Section<'_>) -> Result<Box<dyn BatchSampler>> {
    let options: TaskUniformOptions = section.extract()?;
    Ok(Box::new(TaskMixSampler::new(
        TaskWeighting::Uniform,
        options.drop_last,
    )?))
}

mvlpt_framework::register_plugin!(
    Sampler,
    "task_uniform",
    "Multitask: every batch slot draws its task uniformly, then that task's next shuffled sample",
    build_uniform,
    TaskUniformOptions
);

fn build_temperature(section: &Section<'_>) -> Result<Box<dyn BatchSampler>> {
    let options: TaskTemperatureOptions = section.extract()?;
    Ok(Box::new(TaskMixSampler::new(
        TaskWeighting::Temperature(options.temperature),
        options.drop_last,
    )?))
}

mvlpt_framework::register_plugin!(
    Sampler,
    "task_temperature",
    "Multitask: every batch slot draws task t with probability proportional to n_t^(1/T); option temperature",
    build_temperature,
    TaskTemperatureOptions
);

/// One task's endless stream of its samples, reshuffled on every pass.
struct TaskStream {
    members: Vec<usize>,
    next: usize,
}

impl TaskStream {
    fn new(members: Vec<usize>) -> Self {
        // Starts exhausted so that the first draw shuffles.
        let next = members.len();
        Self { members, next }
    }

    fn next_sample(&mut self, rng: &mut Rng) -> usize {
        if self.next == self.members.len() {
            shuffle(rng, &mut self.members);
            self.next = 0;
        }
        self.next += 1;
        self.members[self.next - 1]
    }
}

/// The first index whose cumulative weight exceeds `target` (the last one for rounding).
fn pick_weighted(cumulative: &[f64], target: f64) -> usize {
    cumulative
        .iter()
        .position(|&c| target < c)
        .unwrap_or(cumulative.len() - 1)
}

impl BatchSampler for TaskMixSampler {
    fn batches(
        &self,
        items: &[SampleMeta],
        batch_size: usize,
        seed: u64,
        epoch: usize,
    ) -> Result<Vec<Vec<usize>>> {
        check_inputs(items, batch_size)?;
        let mut by_task: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (position, meta) in items.iter().enumerate() {
            by_task.entry(meta.task).or_default().push(position);
        }
        let cumulative: Vec<f64> = by_task
            .values()
            .scan(0.0, |total, members| {
                *total += self.weighting.weight(members.len());
                Some(*total)
            })
            .collect();
        let total = cumulative[cumulative.len() - 1];
        let mut streams: Vec<TaskStream> = by_task.into_values().map(TaskStream::new).collect();
        let mut rng = epoch_rng(seed, epoch);
        let order: Vec<usize> = (0..items.len())
            .map(|_| {
                let task = pick_weighted(&cumulative, unit_interval(&mut rng) * total);
                streams[task].next_sample(&mut rng)
            })
            .collect();
        into_batches(order, batch_size, self.drop_last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_follow_the_definitions() {
        assert_eq!(TaskWeighting::Uniform.weight(500), 1.0);
        assert_eq!(TaskWeighting::Temperature(1.0).weight(500), 500.0);
        assert_eq!(TaskWeighting::Temperature(2.0).weight(400), 20.0);
        assert_eq!(TaskWeighting::Temperature(f64::INFINITY).weight(400), 1.0);
    }

    #[test]
    fn pick_weighted_maps_targets_to_intervals() {
        let cumulative = [1.0, 3.0, 6.0];
        assert_eq!(pick_weighted(&cumulative, 0.0), 0);
        assert_eq!(pick_weighted(&cumulative, 0.999), 0);
        assert_eq!(pick_weighted(&cumulative, 1.0), 1);
        assert_eq!(pick_weighted(&cumulative, 5.999), 2);
        assert_eq!(pick_weighted(&cumulative, 6.0), 2);
    }

    #[test]
    fn task_stream_uses_every_member_once_per_pass() {
        let mut rng = epoch_rng(4, 0);
        let mut stream = TaskStream::new(vec![7, 8, 9]);
        for _ in 0..3 {
            let mut pass: Vec<usize> = (0..3).map(|_| stream.next_sample(&mut rng)).collect();
            pass.sort_unstable();
            assert_eq!(pass, vec![7, 8, 9]);
        }
    }
}
