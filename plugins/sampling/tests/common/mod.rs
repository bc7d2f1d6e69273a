//! Test helpers: an in-memory dataset whose samples carry their own position as the image id,
//! and the fixture loader.

use mvlpt_framework::data::{Dataset, DatasetInfo, ImageSource, Sample, Split};
use mvlpt_framework::eval::metrics::Metric;
use serde_json::Value;

/// A dataset held in memory; sample `i` of a split has image `Procedural(i)`.
pub struct ListDataset {
    info: DatasetInfo,
    train: Vec<Sample>,
    val: Vec<Sample>,
}

impl ListDataset {
    /// A dataset named `name` with `num_classes` classes and the given per-sample label lists.
    pub fn new(
        name: &str,
        num_classes: usize,
        multilabel: bool,
        train: &[Vec<usize>],
        val: &[Vec<usize>],
    ) -> Self {
        Self {
            info: DatasetInfo {
                name: name.to_owned(),
                classnames: (0..num_classes).map(|c| format!("class {c}")).collect(),
                templates: vec!["a photo of a {}.".to_owned()],
                metric: Metric::Accuracy,
                multilabel,
            },
            train: samples(train),
            val: samples(val),
        }
    }
}

fn samples(labels: &[Vec<usize>]) -> Vec<Sample> {
    labels
        .iter()
        .enumerate()
        .map(|(i, labels)| Sample {
            image: ImageSource::Procedural(i as u64),
            labels: labels.clone(),
            caption: None,
        })
        .collect()
}

impl Dataset for ListDataset {
    fn info(&self) -> &DatasetInfo {
        &self.info
    }

    fn samples(&self, split: Split) -> anyhow::Result<Vec<Sample>> {
        Ok(match split {
            Split::Train => self.train.clone(),
            Split::Val => self.val.clone(),
            Split::Test => Vec::new(),
        })
    }
}

/// The positions (image ids) of samples built by [`ListDataset`].
pub fn ids(samples: &[Sample]) -> Vec<usize> {
    samples
        .iter()
        .map(|s| match s.image {
            ImageSource::Procedural(id) => id as usize,
            ref other => panic!("unexpected image {other}"),
        })
        .collect()
}

/// A fixture file under `tests/fixtures/`.
pub fn fixture(relative: &str) -> Value {
    let path = format!(
        "{}/../../tests/fixtures/{relative}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A JSON array of non-negative integers.
pub fn usizes(value: &Value) -> Vec<usize> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect()
}

/// A JSON array of integer arrays.
pub fn label_lists(value: &Value) -> Vec<Vec<usize>> {
    value.as_array().unwrap().iter().map(usizes).collect()
}

/// Single labels as one-element label lists.
pub fn singletons(labels: &[usize]) -> Vec<Vec<usize>> {
    labels.iter().map(|&l| vec![l]).collect()
}
