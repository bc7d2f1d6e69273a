//! `elevater`: MVLPT's single-task few-shot protocol on ELEVATER datasets (§3.3).
//!
//! 1. With `shots > 0`, vision-datasets' `sample_few_shot_subset(shots, seed)` on the training
//!    split; with `shots == 0` the whole training split.
//! 2. Validation, by default carved out of that subset as MVLPT's loader does: for one shot,
//!    train and val are both the whole subset (the reference validates on its training images);
//!    otherwise the first `ceil(0.2 · count)` images of each class (in sampled order) go to val,
//!    or for multi-label data the greedy cover. With `val_from = "dataset"` the subset is all
//!    training data and the dataset's own val split validates.

use super::{
    ensure_training_samples, label_lists, pick, single_labels, split_samples, training_pool,
};
use anyhow::{ensure, Context, Result};
use mvlpt_framework::config::Section;
use mvlpt_framework::data::fewshot::{
    elevater_sample_few_shot, mvlpt_single_task_split, SingleTaskLabels,
};
use mvlpt_framework::data::{Dataset, DatasetInfo, FewShotProtocol, FewShotSplit, Sample, Split};
use serde::{Deserialize, Serialize};

/// Where the `elevater` protocol takes validation samples from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValSource {
    /// Split off the few-shot training subset, as MVLPT's loader does (the reference).
    #[default]
    Train,
    /// The dataset's own val split, whole; the few-shot subset is all training data.
    Dataset,
}

/// Options of the `elevater` protocol (`[data.elevater]`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ElevaterOptions {
    /// Where validation samples come from (`"train"`, the reference, or `"dataset"`).
    pub val_from: ValSource,
}

/// MVLPT's single-task ELEVATER protocol.
#[derive(Clone, Debug, Default)]
pub struct ElevaterProtocol {
    options: ElevaterOptions,
}

impl ElevaterProtocol {
    /// A protocol with these options.
    pub fn new(options: ElevaterOptions) -> Self {
        Self { options }
    }

    /// Builds the protocol from its `[data.elevater]` table.
    pub fn from_section(section: &Section<'_>) -> Result<Self> {
        Ok(Self::new(section.extract()?))
    }
}

fn build(section: &Section<'_>) -> Result<Box<dyn FewShotProtocol>> {
    Ok(Box::new(ElevaterProtocol::from_section(section)?))
}

mvlpt_framework::register_plugin!(
    FewShot,
    "elevater",
    "MVLPT single-task ELEVATER protocol: vision-datasets few-shot subset, balanced 80/20 split (1-shot: val = train)",
    build,
    ElevaterOptions
);

impl FewShotProtocol for ElevaterProtocol {
    fn split(&self, dataset: &dyn Dataset, shots: usize, seed: u64) -> Result<FewShotSplit> {
        let info = dataset.info();
        let pool = training_pool(dataset)?;
        let labels = label_lists(&pool);
        if !info.multilabel {
            // The reference reads each image's class as its first label (`multiclass_to_int`).
            single_labels(&pool, &info.name, Split::Train)?;
        }
        let subset: Vec<usize> = if shots == 0 {
            (0..pool.len()).collect()
        } else {
            elevater_sample_few_shot(&labels, info.classnames.len(), shots, seed).with_context(
                || {
                    format!(
                        "sampling {shots} shots per class from dataset {}",
                        info.name
                    )
                },
            )?
        };
        let subset_samples = pick(&pool, &subset);
        let split = match self.options.val_from {
            ValSource::Dataset => {
                let val = split_samples(dataset, Split::Val)?;
                ensure!(
                    !val.is_empty(),
                    "data.elevater.val_from = \"dataset\", but dataset {} has no val split",
                    info.name
                );
                FewShotSplit {
                    train: subset_samples,
                    val,
                    notes: vec![format!(
                        "validating on the val split of {} (data.elevater.val_from = \"dataset\")",
                        info.name
                    )],
                }
            }
            ValSource::Train => split_subset(&subset_samples, info, shots)?,
        };
        ensure_training_samples(&split, &info.name, shots, seed)?;
        Ok(split)
    }
}

/// MVLPT's train/val split of the few-shot subset (see the module docs).
fn split_subset(subset: &[Sample], info: &DatasetInfo, shots: usize) -> Result<FewShotSplit> {
    let positions = if info.multilabel {
        let labels = label_lists(subset);
        mvlpt_single_task_split(
            SingleTaskLabels::Multilabel {
                labels: &labels,
                num_classes: info.classnames.len(),
            },
            shots,
        )
    } else {
        let labels = single_labels(subset, &info.name, Split::Train)?;
        mvlpt_single_task_split(SingleTaskLabels::Multiclass(&labels), shots)
    }
    .with_context(|| format!("splitting the few-shot subset of dataset {}", info.name))?;
    let mut notes = Vec::new();
    if shots == 1 {
        notes.push(format!(
            "1-shot {}: validating on the training set, as the reference does",
            info.name
        ));
    }
    Ok(FewShotSplit {
        train: pick(subset, &positions.train),
        val: pick(subset, &positions.val),
        notes,
    })
}
