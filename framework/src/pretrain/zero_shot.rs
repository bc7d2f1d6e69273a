//! Zero-shot classification accuracy of a CLIP on a dataset's test split: each class is the
//! normalised mean of its templates' normalised text features (CLIP's prompt ensemble), each
//! image goes to the class of highest cosine similarity, scored with the dataset's metric.

use crate::data::transforms::{stack_batch, ImageTensor};
use crate::data::{Dataset, Sample, Split};
use crate::eval::metrics::{Scores, Targets};
use crate::model::tokenizer::ClipTokenizer;
use crate::model::{l2_normalize, Clip};
use anyhow::{bail, Context, Result};
use candle_core::Tensor;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// One dataset's zero-shot result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskAccuracy {
    /// Dataset name (its `info().name`).
    pub dataset: String,
    /// Number of classes.
    pub classes: usize,
    /// Test images scored.
    pub samples: usize,
    /// The dataset's metric name.
    pub metric: String,
    /// The metric's value, a fraction in [0, 1].
    pub value: f64,
    /// What always predicting the most frequent class would score.
    pub majority_baseline: f64,
}

/// Normalised class features `(classes, embed_dim)`: per class, the normalised mean of the
/// normalised features of `templates` filled with its name.
pub fn class_features(clip: &Clip, classnames: &[String], templates: &[String]) -> Result<Tensor> {
    if templates.is_empty() {
        bail!("zero-shot classification needs at least one template");
    }
    let tokenizer = ClipTokenizer::new();
    let context = clip.config.text.context_length;
    let mut rows = Vec::with_capacity(classnames.len());
    for class in classnames {
        let texts: Vec<String> = templates.iter().map(|t| t.replace("{}", class)).collect();
        let ids = tokenizer
            .tokenize_batch(&texts, context, true)
            .with_context(|| format!("tokenizing the prompts of class {class:?}"))?;
        let features = l2_normalize(&clip.encode_text(&ids)?)?;
        rows.push(l2_normalize(&features.mean_keepdim(0)?)?);
    }
    Ok(Tensor::cat(&rows, 0)?)
}

/// Loads and transforms `samples` (in parallel) into one `(n, 3, size, size)` batch with the
/// dataset's test preprocessing.
pub fn image_batch(clip: &Clip, dataset: &dyn Dataset, samples: &[Sample]) -> Result<Tensor> {
    let (_, test) = dataset.transforms(clip.config.vision.image_size)?;
    let images: Vec<ImageTensor> = samples
        .par_iter()
        .map(|s| {
            let image = dataset
                .load_image(s)
                .with_context(|| format!("loading {}", s.image))?;
            // A test pipeline draws nothing; a fixed generator keeps any random step stable.
            test.apply(&image, &mut crate::rng::seeded(0))
        })
        .collect::<Result<_>>()?;
    stack_batch(&images, clip.text.token_embedding.device())
}

/// Zero-shot accuracy of `clip` on the test split of `dataset` (its first `limit` samples if
/// given), `batch_size` images per forward pass.
pub fn zero_shot(
    clip: &Clip,
    dataset: &dyn Dataset,
    limit: Option<usize>,
    batch_size: usize,
) -> Result<TaskAccuracy> {
    let info = dataset.info();
    if info.multilabel {
        bail!(
            "zero-shot evaluation here is single-label; {} is multi-label",
            info.name
        );
    }
    let mut samples = dataset.samples(Split::Test)?;
    if let Some(n) = limit {
        samples.truncate(n);
    }
    if samples.is_empty() {
        bail!("dataset {} has no test samples", info.name);
    }
    let text = class_features(clip, &info.classnames, &info.templates)?;
    let classes = info.classnames.len();
    let mut scores = Scores::new(classes);
    let mut labels = Vec::with_capacity(samples.len());
    for chunk in samples.chunks(batch_size.max(1)) {
        let images = image_batch(clip, dataset, chunk)?;
        let features = l2_normalize(&clip.encode_image(&images)?)?;
        let logits = features.matmul(&text.t()?)?;
        scores.push_rows(&logits.flatten_all()?.to_vec1::<f32>()?)?;
        for s in chunk {
            labels.push(
                s.label().with_context(|| {
                    format!("{}: test sample {} has no label", info.name, s.image)
                })?,
            );
        }
    }
    let mut counts = vec![0usize; classes];
    for &l in &labels {
        *counts
            .get_mut(l)
            .with_context(|| format!("{}: label {l} outside {classes} classes", info.name))? += 1;
    }
    let majority = counts.iter().max().copied().unwrap_or(0) as f64 / labels.len() as f64;
    let value = info.metric.compute(&scores, &Targets::Labels(labels))?;
    Ok(TaskAccuracy {
        dataset: info.name.clone(),
        classes,
        samples: samples.len(),
        metric: info.metric.name().to_string(),
        value,
        majority_baseline: majority,
    })
}

/// A Markdown table of results (task, classes, metric value in percent, majority baseline).
pub fn markdown_table(results: &[TaskAccuracy]) -> String {
    let mut out = String::from(
        "| task | classes | test images | zero-shot | majority class |\n|---|---:|---:|---:|---:|\n",
    );
    for r in results {
        out.push_str(&format!(
            "| {} | {} | {} | {:.1}% | {:.1}% |\n",
            r.dataset,
            r.classes,
            r.samples,
            100.0 * r.value,
            100.0 * r.majority_baseline
        ));
    }
    out
}
