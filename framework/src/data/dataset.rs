//! The dataset plugin interface: class names, splits of samples, image loading and the
//! benchmark's own preprocessing.

use super::image::{decode_file, ExifOrientation, RgbImage8};
use super::transforms::Pipeline;
use crate::config::Section;
use crate::eval::metrics::Metric;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A dataset split.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Training images (few-shot protocols sample from here).
    Train,
    /// Validation images (model selection).
    Val,
    /// Test images (final evaluation).
    Test,
}

impl Split {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Train => "train",
            Self::Val => "val",
            Self::Test => "test",
        }
    }
}

/// Where a sample's pixels come from.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageSource {
    /// An image file.
    File(PathBuf),
    /// A member of a zip archive, read without unpacking.
    Zip {
        /// The archive.
        archive: PathBuf,
        /// Path of the member inside it.
        member: String,
    },
    /// Drawn by the dataset itself from this seed (procedural datasets).
    Procedural(u64),
}

impl std::fmt::Display for ImageSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(p) => write!(f, "{}", p.display()),
            Self::Zip { archive, member } => write!(f, "{}@{member}", archive.display()),
            Self::Procedural(seed) => write!(f, "procedural#{seed}"),
        }
    }
}

/// One image with its labels (class indices in the dataset's label space).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Pixels.
    pub image: ImageSource,
    /// Class indices: one for single-label data, several for multi-label, none for a negative.
    pub labels: Vec<usize>,
    /// A caption, for datasets usable for contrastive pretraining.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
}

impl Sample {
    /// A single-label sample from a file.
    pub fn file(path: impl Into<PathBuf>, label: usize) -> Self {
        Self {
            image: ImageSource::File(path.into()),
            labels: vec![label],
            caption: None,
        }
    }

    /// The first label (the class of a single-label sample).
    pub fn label(&self) -> Option<usize> {
        self.labels.first().copied()
    }
}

/// What a dataset is: its label space and how it is scored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DatasetInfo {
    /// Name (the plugin name, or the benchmark's own name).
    pub name: String,
    /// Class names, indexed by label.
    pub classnames: Vec<String>,
    /// Zero-shot templates with `{}` for the class name.
    pub templates: Vec<String>,
    /// The benchmark's metric for this dataset.
    pub metric: Metric,
    /// Whether samples carry several labels (VOC).
    pub multilabel: bool,
}

/// A dataset plugin.
pub trait Dataset: Send + Sync {
    /// Label space, templates and metric.
    fn info(&self) -> &DatasetInfo;

    /// The samples of `split` (empty when the dataset has no such split).
    fn samples(&self, split: Split) -> Result<Vec<Sample>>;

    /// Decodes a sample's image. The default reads files (ignoring EXIF orientation, like PIL
    /// and Dassl); datasets with archives or procedural images override it.
    fn load_image(&self, sample: &Sample) -> Result<RgbImage8> {
        match &sample.image {
            ImageSource::File(path) => Ok(decode_file(path, ExifOrientation::Ignore)?),
            other => anyhow::bail!("dataset {} cannot read image {other}", self.info().name),
        }
    }

    /// The benchmark's own train and test preprocessing at input resolution `size`
    /// (default: the CLIP test transform for both).
    fn transforms(&self, size: usize) -> Result<(Pipeline, Pipeline)> {
        Ok((Pipeline::clip_test(size)?, Pipeline::clip_test(size)?))
    }
}

/// What a dataset factory receives.
pub struct DatasetContext<'a> {
    /// The plugin's options table (`[data.<name>]`).
    pub section: Section<'a>,
    /// `data.root`, resolved against the experiment file.
    pub root: PathBuf,
}

impl DatasetContext<'_> {
    /// `root/relative`, with a clear error when it does not exist.
    pub fn existing_dir(&self, relative: &str) -> Result<PathBuf> {
        let dir = self.root.join(relative);
        if !dir.is_dir() {
            return Err(std::io::Error::from(std::io::ErrorKind::NotFound)).with_context(|| {
                format!(
                    "dataset directory {} not found (data.root = {})",
                    dir.display(),
                    self.root.display()
                )
            });
        }
        Ok(dir)
    }
}
