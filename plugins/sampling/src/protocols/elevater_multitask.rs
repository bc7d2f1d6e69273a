//! `elevater_multitask`: MVLPT's multitask few-shot protocol on ELEVATER (§3.4).
//!
//! The caller passes the joint dataset of a task group: every task's samples in one list, labels
//! already global class ids (the task's offset plus its local class). The reference merges tasks
//! sorted by name, so a joint dataset built in that order reproduces its subsets exactly.
//!
//! 1. With `shots > 0`, `sample_few_shot_subset(shots, seed)` jointly over the merged training
//!    samples (class counts over the joint label space); with `shots == 0` all of them.
//! 2. `train_val_split(train_ratio, seed)` of that subset (the reference passes 0.8).
//! 3. With one shot of single-label tasks the reference's val set is empty (§3.4 item 5, §9
//!    item 7): by default the training samples then validate, as single-task 1-shot does, and
//!    the split carries a note; `empty_val = "error"` refuses instead.

use super::{ensure_training_samples, label_lists, pick, training_pool};
use anyhow::{bail, ensure, Context, Result};
use mvlpt_framework::config::Section;
use mvlpt_framework::data::fewshot::{elevater_sample_few_shot, elevater_train_val_split};
use mvlpt_framework::data::{Dataset, FewShotProtocol, FewShotSplit};
use serde::{Deserialize, Serialize};

/// What `elevater_multitask` does when the split leaves no validation samples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmptyVal {
    /// Validate on the training samples (what single-task 1-shot does) and note it.
    #[default]
    Train,
    /// Fail with an error naming the dataset, shots and seed.
    Error,
}

/// Options of the `elevater_multitask` protocol (`[data.elevater_multitask]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ElevaterMultitaskOptions {
    /// Fraction of the few-shot subset that trains, in (0, 1] (reference: 0.8).
    pub train_ratio: f64,
    /// What to do when no validation samples are left.
    pub empty_val: EmptyVal,
}

impl Default for ElevaterMultitaskOptions {
    fn default() -> Self {
        Self {
            train_ratio: 0.8,
            empty_val: EmptyVal::default(),
        }
    }
}

/// MVLPT's joint multitask ELEVATER protocol.
#[derive(Clone, Debug, Default)]
pub struct ElevaterMultitaskProtocol {
    options: ElevaterMultitaskOptions,
}

impl ElevaterMultitaskProtocol {
    /// A protocol with these options; `train_ratio` must lie in (0, 1].
    pub fn new(options: ElevaterMultitaskOptions) -> Result<Self> {
        ensure!(
            options.train_ratio > 0.0 && options.train_ratio <= 1.0,
            "data.elevater_multitask.train_ratio must lie in (0, 1], got {}",
            options.train_ratio
        );
        Ok(Self { options })
    }

    /// Builds the protocol from its `[data.elevater_multitask]` table.
    pub fn from_section(section: &Section<'_>) -> Result<Self> {
        Self::new(section.extract()?)
    }
}

fn build(section: &Section<'_>) -> Result<Box<dyn FewShotProtocol>> {
    Ok(Box::new(ElevaterMultitaskProtocol::from_section(section)?))
}

mvlpt_framework::register_plugin!(
    FewShot,
    "elevater_multitask",
    "MVLPT multitask ELEVATER protocol: joint few-shot subset over global class ids, then train_val_split(0.8)",
    build,
    ElevaterMultitaskOptions
);

impl FewShotProtocol for ElevaterMultitaskProtocol {
    /// The reference samples the merged manifest of a task group at once (§3.4 item 4).
    fn joint(&self) -> bool {
        true
    }

    fn split(&self, dataset: &dyn Dataset, shots: usize, seed: u64) -> Result<FewShotSplit> {
        let info = dataset.info();
        let num_classes = info.classnames.len();
        let pool = training_pool(dataset)?;
        let labels = label_lists(&pool);
        let subset: Vec<usize> = if shots == 0 {
            (0..pool.len()).collect()
        } else {
            elevater_sample_few_shot(&labels, num_classes, shots, seed).with_context(|| {
                format!(
                    "sampling {shots} shots per class jointly from {}",
                    info.name
                )
            })?
        };
        let subset_labels: Vec<Vec<usize>> = subset.iter().map(|&p| labels[p].clone()).collect();
        let positions =
            elevater_train_val_split(&subset_labels, num_classes, self.options.train_ratio, seed)
                .with_context(|| format!("splitting the few-shot subset of {}", info.name))?;
        let subset_samples = pick(&pool, &subset);
        let mut split = FewShotSplit {
            train: pick(&subset_samples, &positions.train),
            val: pick(&subset_samples, &positions.val),
            notes: Vec::new(),
        };
        ensure_training_samples(&split, &info.name, shots, seed)?;
        if split.val.is_empty() {
            match self.options.empty_val {
                EmptyVal::Train => {
                    split.val = split.train.clone();
                    split.notes.push(format!(
                        "{shots}-shot {}: the train/val split left no validation samples; \
                         validating on the training set (data.elevater_multitask.empty_val = \"train\")",
                        info.name
                    ));
                }
                EmptyVal::Error => bail!(
                    "the few-shot split of {} ({shots} shots, seed {seed}) left no validation \
                     samples (data.elevater_multitask.empty_val = \"error\")",
                    info.name
                ),
            }
        }
        Ok(split)
    }
}
