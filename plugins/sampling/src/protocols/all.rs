//! `all`: no subsampling; the dataset's train and val splits as they are.

use super::{split_samples, training_pool};
use anyhow::Result;
use mvlpt_framework::config::Section;
use mvlpt_framework::data::{Dataset, FewShotProtocol, FewShotSplit, Split};
use serde::{Deserialize, Serialize};

/// Options of the `all` protocol (`[data.all]`): none, but unknown keys are still refused.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AllOptions {}

/// The whole training and val splits.
#[derive(Clone, Copy, Debug, Default)]
pub struct AllProtocol;

fn build(section: &Section<'_>) -> Result<Box<dyn FewShotProtocol>> {
    section.extract::<AllOptions>()?;
    Ok(Box::new(AllProtocol))
}

mvlpt_framework::register_plugin!(
    FewShot,
    "all",
    "No subsampling: the dataset's train and val splits as they are",
    build,
    AllOptions
);

impl FewShotProtocol for AllProtocol {
    fn split(&self, dataset: &dyn Dataset, shots: usize, _seed: u64) -> Result<FewShotSplit> {
        let name = &dataset.info().name;
        let mut notes = Vec::new();
        if shots != 0 {
            notes.push(format!(
                "data.fewshot = \"all\" ignores data.shots = {shots}: training on all of {name}"
            ));
        }
        Ok(FewShotSplit {
            train: training_pool(dataset)?,
            val: split_samples(dataset, Split::Val)?,
            notes,
        })
    }
}
