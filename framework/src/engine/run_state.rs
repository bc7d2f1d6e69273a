//! The state of a run being trained, and its evaluation of a whole split: image features
//! (cached when the method leaves the image tower unprompted), text features once, logits,
//! targets, and the evaluator's report.

use super::data::RunData;
use super::forward::{
    eval_logits, eval_text_features, ForwardOptions, ImageInput, TextFeatureCache,
};
use crate::config::LoadedConfig;
use crate::data::loader::{BatchStream, LoaderOptions, SampleSet};
use crate::data::transforms::Pipeline;
use crate::data::Split;
use crate::eval::metrics::{EvalKey, Scores, Target, TargetKind, Targets, TaskSpan};
use crate::eval::{EvalInput, EvalReport, Evaluator};
use crate::method::{ModelEnv, PromptLearner, StepContext};
use crate::model::tokenizer::ClipTokenizer;
use crate::model::Clip;
use crate::rng::Rng;
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// Image features of a whole split (no graph), for unprompted image towers.
fn split_features(
    clip: &Clip,
    set: &Arc<SampleSet>,
    pipelines: &Arc<Vec<Pipeline>>,
    batch_size: usize,
    loader: &LoaderOptions,
) -> Result<Tensor> {
    let batches: Vec<Vec<usize>> = (0..set.len())
        .collect::<Vec<_>>()
        .chunks(batch_size.max(1))
        .map(<[usize]>::to_vec)
        .collect();
    let options = LoaderOptions {
        pipelines: pipelines.clone(),
        epoch: 0,
        ..loader.clone()
    };
    let mut parts = Vec::new();
    for batch in BatchStream::start(set.clone(), batches, options) {
        let batch = batch?;
        if !batch.skipped.is_empty() {
            bail!("cannot cache features with skipped images; set data.on_bad_image = \"error\" to see them");
        }
        let Some(images) = batch.images else {
            continue; // an empty batch (nothing was skipped, so nothing was in it)
        };
        let pixels = images.to_device(clip.text.token_embedding.device())?;
        parts.push(clip.encode_image(&pixels)?.detach());
    }
    Ok(Tensor::cat(&parts, 0)?)
}

/// The state of a run being trained.
pub(super) struct Run<'a> {
    /// The run's config.
    pub loaded: &'a LoadedConfig,
    /// The frozen model.
    pub clip: Clip,
    /// Its tokenizer.
    pub tokenizer: ClipTokenizer,
    /// Where the prompts live.
    pub device: Device,
    /// Samples, label space and transforms.
    pub data: RunData,
    /// The prompt method, bound to the label space.
    pub method: Box<dyn PromptLearner>,
    /// The evaluator.
    pub evaluator: Box<dyn Evaluator>,
    /// Which value selects prompts (`eval.key`).
    pub key: EvalKey,
    /// Text chunking and task masking.
    pub forward: ForwardOptions,
    /// Image loading.
    pub loader: LoaderOptions,
    /// Text features of fixed prompts.
    pub text_cache: TextFeatureCache,
    /// Image features per split, where the method allows them to be cached.
    pub feature_cache: HashMap<Split, Tensor>,
}

impl Run<'_> {
    /// The samples of `split`.
    fn set(&self, split: Split) -> &Arc<SampleSet> {
        match split {
            Split::Train => &self.data.train,
            Split::Val => &self.data.val,
            Split::Test => &self.data.test,
        }
    }

    /// Cached image features of `split` (computed on first use) when the method leaves the
    /// image tower unprompted and the split's transform is deterministic.
    pub fn cached_features(&mut self, split: Split) -> Result<Option<Tensor>> {
        let pipelines = if split == Split::Train {
            &self.data.train_pipelines
        } else {
            &self.data.test_pipelines
        };
        if self.method.footprint().vision || !pipelines.iter().all(Pipeline::is_deterministic) {
            return Ok(None);
        }
        if let Some(f) = self.feature_cache.get(&split) {
            return Ok(Some(f.clone()));
        }
        let started = Instant::now();
        let pipelines = pipelines.clone();
        let features = split_features(
            &self.clip,
            self.set(split),
            &pipelines,
            self.loaded.config.data.eval_batch_size,
            &self.loader,
        )?;
        tracing::info!(
            "cached {} image features of the {} split in {:.1}s",
            features.dim(0)?,
            split.as_str(),
            started.elapsed().as_secs_f64()
        );
        self.feature_cache.insert(split, features.clone());
        Ok(Some(features))
    }

    /// How alike the current prompts make the text features of one task's classes: the mean
    /// cosine similarity over pairs of classes of a task, averaged over tasks with at least two
    /// classes (None for image-conditioned text, which has no per-class features of its own).
    /// Near 1, the class features are almost parallel: logits barely differ and the softmax
    /// starts near uniform, whatever the images show.
    pub fn class_text_cosine(&mut self) -> Result<Option<f64>> {
        let env = ModelEnv {
            clip: &self.clip,
            tokenizer: &self.tokenizer,
            device: &self.device,
        };
        let prompts = self.method.prompts(
            &env,
            &mut StepContext::evaluation(&mut crate::rng::seeded(0)),
        )?;
        let Some(text) = eval_text_features(
            &env,
            &prompts,
            &mut self.text_cache,
            self.forward.text_chunk,
        )?
        else {
            return Ok(None);
        };
        within_task_cosine(&text, &self.data.space.tasks)
    }

    /// Evaluates the current prompts on `split`; also returns how many unreadable images were
    /// skipped (under `data.on_bad_image = "skip"`): those are not scored.
    pub fn evaluate(&mut self, split: Split, rng: &mut Rng) -> Result<(EvalReport, usize)> {
        let set = self.set(split).clone();
        if set.is_empty() {
            bail!("the {} split is empty", split.as_str());
        }
        let cached = self.cached_features(split)?;
        let env = ModelEnv {
            clip: &self.clip,
            tokenizer: &self.tokenizer,
            device: &self.device,
        };
        let prompts = self
            .method
            .prompts(&env, &mut StepContext::evaluation(rng))?;
        let text = eval_text_features(
            &env,
            &prompts,
            &mut self.text_cache,
            self.forward.text_chunk,
        )?;
        let text = match text {
            Some(t) => t,
            None => Tensor::zeros(1, DType::F32, &self.device)?,
        };
        let classes = self.data.space.classnames.len();
        let kind = self.evaluator.target_kind(self.data.space.multilabel);
        let mut scores = Scores::new(classes);
        let mut targets = Targets::empty(kind, classes);
        let mut task_ids = Vec::with_capacity(set.len());
        let batch = self.loaded.config.data.eval_batch_size.max(1);
        let order: Vec<usize> = (0..set.len()).collect();
        let mut skipped = 0usize;
        let mut consume = |indices: &[usize], logits: Tensor| -> Result<()> {
            let logits: Vec<f32> = logits
                .to_dtype(DType::F32)?
                .to_device(&Device::Cpu)?
                .flatten_all()?
                .to_vec1()?;
            scores.push_rows(&logits)?;
            for &i in indices {
                let (task, sample) = &set.items[i];
                task_ids.push(*task);
                match kind {
                    TargetKind::Labels => targets.push(Target::Label(
                        sample.label().context("sample without label")?,
                    ))?,
                    TargetKind::Rows => {
                        let mut row = vec![0f32; classes];
                        sample.labels.iter().for_each(|&l| row[l] = 1.0);
                        targets.push(Target::Row(&row))?;
                    }
                }
            }
            Ok(())
        };
        match cached {
            Some(features) => {
                for indices in order.chunks(batch) {
                    let idx = Tensor::from_vec(
                        indices.iter().map(|&i| i as u32).collect::<Vec<_>>(),
                        indices.len(),
                        features.device(),
                    )?;
                    let logits = eval_logits(
                        &env,
                        &prompts,
                        ImageInput::Features(features.index_select(&idx, 0)?),
                        &text,
                    )?;
                    consume(indices, logits)?;
                }
            }
            None => {
                let batches: Vec<Vec<usize>> = order.chunks(batch).map(<[usize]>::to_vec).collect();
                let options = LoaderOptions {
                    pipelines: self.data.test_pipelines.clone(),
                    epoch: 0,
                    ..self.loader.clone()
                };
                for loaded in BatchStream::start(set.clone(), batches, options) {
                    let loaded = loaded?;
                    for (_, reason) in &loaded.skipped {
                        tracing::warn!("skipped an unreadable evaluation image: {reason}");
                    }
                    skipped += loaded.skipped.len();
                    let Some(images) = &loaded.images else {
                        continue; // every image of the batch was skipped
                    };
                    let pixels = images.to_device(&self.device)?;
                    let logits = eval_logits(&env, &prompts, ImageInput::Pixels(&pixels), &text)?;
                    consume(&loaded.indices, logits)?;
                }
            }
        }
        let report = self.evaluator.evaluate(&EvalInput {
            tasks: &self.data.space.tasks,
            task_ids: &task_ids,
            scores: &scores,
            targets: &targets,
            key: &self.key,
        })?;
        if skipped > 0 {
            tracing::warn!(
                "{skipped} unreadable {} images skipped, not scored",
                split.as_str()
            );
        }
        Ok((report, skipped))
    }
}

/// Mean pairwise cosine similarity of the rows of `features` within each task's column range,
/// averaged over the tasks that have at least two classes.
pub fn within_task_cosine(features: &Tensor, tasks: &[TaskSpan]) -> Result<Option<f64>> {
    let normed = crate::model::l2_normalize(&features.to_dtype(DType::F32)?)?;
    let mut means = Vec::new();
    for task in tasks {
        let n = task.end - task.start;
        if n < 2 {
            continue;
        }
        let rows = normed.narrow(0, task.start, n)?;
        let sim: Vec<Vec<f32>> = rows
            .matmul(&rows.t()?)?
            .to_device(&Device::Cpu)?
            .to_vec2()?;
        let off_diagonal: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| f64::from(sim[i][j]))
            .sum();
        means.push(off_diagonal / (n * (n - 1)) as f64);
    }
    Ok((!means.is_empty()).then(|| means.iter().sum::<f64>() / means.len() as f64))
}
