//! `dassl`: the few-shot protocol of CoOp's datasets (Dassl's `generate_fewshot_dataset`,
//! §4.5a), used by MVLPT's source stage.
//!
//! One CPython `random` generator, seeded with the run seed, draws `shots` per class from the
//! training split (grouped by label in order of first appearance), then `min(shots,
//! max_val_shots)` per class from the val split, in that order. Datasets listed in `whole_val`
//! keep their val split whole and draw nothing for it (CoOp's ImageNet validates on its whole
//! test set). `shots == 0` keeps both splits whole.
//!
//! The reference builds the datasets of a multitask run one after another from the same
//! generator, so later tasks see a stream advanced by earlier ones: [`DasslProtocol::split_tasks`]
//! reproduces that sequence.

use super::{ensure_training_samples, pick, single_labels, split_samples, training_pool};
use anyhow::{Context, Result};
use mvlpt_framework::config::Section;
use mvlpt_framework::data::fewshot::dassl_fewshot;
use mvlpt_framework::data::pyrandom::PyRandom;
use mvlpt_framework::data::{Dataset, FewShotProtocol, FewShotSplit, Sample, Split};
use serde::{Deserialize, Serialize};

/// Options of the `dassl` protocol (`[data.dassl]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DasslOptions {
    /// Cap on the validation shots per class (CoOp: 4).
    pub max_val_shots: usize,
    /// Dassl's `repeat`: a class with fewer samples than shots is drawn with replacement up to
    /// the shot count instead of kept whole (CoOp: false).
    pub repeat: bool,
    /// Dataset names (case-insensitive) whose val split is kept whole, drawing nothing
    /// (CoOp's ImageNet).
    pub whole_val: Vec<String>,
}

impl Default for DasslOptions {
    fn default() -> Self {
        Self {
            max_val_shots: 4,
            repeat: false,
            whole_val: vec!["imagenet".to_owned()],
        }
    }
}

/// CoOp's few-shot protocol.
#[derive(Clone, Debug, Default)]
pub struct DasslProtocol {
    options: DasslOptions,
}

impl DasslProtocol {
    /// A protocol with these options.
    pub fn new(options: DasslOptions) -> Self {
        Self { options }
    }

    /// Builds the protocol from its `[data.dassl]` table.
    pub fn from_section(section: &Section<'_>) -> Result<Self> {
        Ok(Self::new(section.extract()?))
    }

    /// The splits of several datasets drawn in turn from one generator seeded once with `seed`,
    /// as MVLPT's multitask source stage builds its datasets (in the given task order, each in
    /// its own label space).
    pub fn split_tasks(
        &self,
        datasets: &[&dyn Dataset],
        shots: usize,
        seed: u64,
    ) -> Result<Vec<FewShotSplit>> {
        let mut rng = PyRandom::new(seed);
        datasets
            .iter()
            .map(|dataset| self.split_from_stream(*dataset, shots, seed, &mut rng))
            .collect()
    }

    /// One dataset's split, drawing from `rng` (train first, then val).
    fn split_from_stream(
        &self,
        dataset: &dyn Dataset,
        shots: usize,
        seed: u64,
        rng: &mut PyRandom,
    ) -> Result<FewShotSplit> {
        let name = dataset.info().name.as_str();
        let pool = training_pool(dataset)?;
        let train = self.draw(&pool, name, Split::Train, shots, rng)?;
        let val_pool = split_samples(dataset, Split::Val)?;
        let mut notes = Vec::new();
        let val = if self.keeps_whole_val(name) {
            notes.push(format!(
                "{name}: validating on its whole val split (data.dassl.whole_val)"
            ));
            val_pool
        } else {
            let val_shots = shots.min(self.options.max_val_shots);
            self.draw(&val_pool, name, Split::Val, val_shots, rng)?
        };
        let split = FewShotSplit { train, val, notes };
        ensure_training_samples(&split, name, shots, seed)?;
        Ok(split)
    }

    /// Dassl's per-class draw of `shots` from `samples`.
    fn draw(
        &self,
        samples: &[Sample],
        dataset: &str,
        split: Split,
        shots: usize,
        rng: &mut PyRandom,
    ) -> Result<Vec<Sample>> {
        let labels = single_labels(samples, dataset, split)?;
        let positions =
            dassl_fewshot(&labels, shots, self.options.repeat, rng).with_context(|| {
                format!(
                    "drawing {shots} shots per class from the {} split of dataset {dataset}",
                    split.as_str()
                )
            })?;
        Ok(pick(samples, &positions))
    }

    fn keeps_whole_val(&self, dataset: &str) -> bool {
        self.options
            .whole_val
            .iter()
            .any(|name| name.eq_ignore_ascii_case(dataset))
    }
}

fn build(section: &Section<'_>) -> Result<Box<dyn FewShotProtocol>> {
    Ok(Box::new(DasslProtocol::from_section(section)?))
}

mvlpt_framework::register_plugin!(
    FewShot,
    "dassl",
    "CoOp/Dassl protocol: per-class random.sample of k train and min(k, 4) val shots from one seeded stream",
    build,
    DasslOptions
);

impl FewShotProtocol for DasslProtocol {
    fn split(&self, dataset: &dyn Dataset, shots: usize, seed: u64) -> Result<FewShotSplit> {
        self.split_from_stream(dataset, shots, seed, &mut PyRandom::new(seed))
    }
}
