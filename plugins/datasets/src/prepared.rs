//! The dataset every plugin here builds: class names, templates and metric, the samples of each
//! split listed once at build time, and the benchmark's image decoding and preprocessing.

use anyhow::{bail, Result};
use mvlpt_framework::data::image::{ExifOrientation, RgbImage8};
use mvlpt_framework::data::transforms::Pipeline;
use mvlpt_framework::data::{load_image_source, Dataset, DatasetInfo, Sample, Split};
use serde::Deserialize;

/// The preprocessing a benchmark prescribes (reference §4.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransformProtocol {
    /// CLIP's own test transform (resize the short side, centre crop) for train and test.
    #[default]
    Clip,
    /// Dassl/CoOp: random resized crop and flip for training, resize and centre crop for testing.
    Dassl,
    /// ELEVATER: a bicubic squash to a square, identical for train and test.
    Elevater,
    /// ELEVATER with `DATASET.CENTER_CROP = True`: resize the short side, centre crop.
    ElevaterCenterCrop,
}

impl TransformProtocol {
    /// The train and test pipelines at input resolution `size`.
    pub fn pipelines(self, size: usize) -> Result<(Pipeline, Pipeline)> {
        Ok(match self {
            Self::Clip => (Pipeline::clip_test(size)?, Pipeline::clip_test(size)?),
            Self::Dassl => (Pipeline::dassl_train(size)?, Pipeline::dassl_test(size)?),
            Self::Elevater => (
                Pipeline::elevater(size, false)?,
                Pipeline::elevater(size, false)?,
            ),
            Self::ElevaterCenterCrop => (
                Pipeline::elevater(size, true)?,
                Pipeline::elevater(size, true)?,
            ),
        })
    }
}

/// Samples of the three splits.
#[derive(Clone, Debug, Default)]
pub struct SplitSamples {
    /// Training samples.
    pub train: Vec<Sample>,
    /// Validation samples.
    pub val: Vec<Sample>,
    /// Test samples.
    pub test: Vec<Sample>,
}

impl SplitSamples {
    /// The samples of `split`.
    pub fn get(&self, split: Split) -> &[Sample] {
        match split {
            Split::Train => &self.train,
            Split::Val => &self.val,
            Split::Test => &self.test,
        }
    }

    /// The samples of `split`, mutable.
    pub fn get_mut(&mut self, split: Split) -> &mut Vec<Sample> {
        match split {
            Split::Train => &mut self.train,
            Split::Val => &mut self.val,
            Split::Test => &mut self.test,
        }
    }
}

/// A dataset whose samples were listed when it was built.
pub struct PreparedDataset {
    info: DatasetInfo,
    splits: SplitSamples,
    orientation: ExifOrientation,
    protocol: TransformProtocol,
}

impl PreparedDataset {
    /// Checks that every label indexes a class, then wraps the parts.
    pub fn new(
        info: DatasetInfo,
        splits: SplitSamples,
        orientation: ExifOrientation,
        protocol: TransformProtocol,
    ) -> Result<Self> {
        if info.classnames.is_empty() {
            bail!("dataset {} has no classes", info.name);
        }
        for split in [Split::Train, Split::Val, Split::Test] {
            for sample in splits.get(split) {
                if let Some(&label) = sample.labels.iter().find(|&&l| l >= info.classnames.len()) {
                    bail!(
                        "dataset {}: {} sample {} has label {label}, but there are only {} classes",
                        info.name,
                        split.as_str(),
                        sample.image,
                        info.classnames.len()
                    );
                }
            }
        }
        Ok(Self {
            info,
            splits,
            orientation,
            protocol,
        })
    }

    /// The samples of `split`, without copying.
    pub fn split(&self, split: Split) -> &[Sample] {
        self.splits.get(split)
    }
}

impl Dataset for PreparedDataset {
    fn info(&self) -> &DatasetInfo {
        &self.info
    }

    fn samples(&self, split: Split) -> Result<Vec<Sample>> {
        Ok(self.splits.get(split).to_vec())
    }

    fn load_image(&self, sample: &Sample) -> Result<RgbImage8> {
        load_image_source(&sample.image, self.orientation)
    }

    fn transforms(&self, size: usize) -> Result<(Pipeline, Pipeline)> {
        self.protocol.pipelines(size)
    }
}
