//! One forward (and backward) pass of a prompt method through the frozen CLIP: image features,
//! text features, logits, loss — with the exact savings the method's footprint allows.
//!
//! - Image features are taken from a cache when the method leaves the image tower unprompted
//!   and the transform is deterministic (the caller decides and passes them in).
//! - Fixed text prompts are encoded once per label space ([`TextFeatureCache`]).
//! - Learned text context over a large label space is encoded in chunks: all class features
//!   are computed without a graph, the loss gradient with respect to them is taken, then each
//!   chunk is recomputed with its graph and back-propagated with that gradient. The result is
//!   the exact gradient of the full computation, in memory bounded by one chunk.

use super::loss::{cross_entropy, mask_logits, BatchTargets, TaskMasking};
use crate::method::{HeadOutputs, ModelEnv, PromptLearner, StepContext, StepPrompts, TextPrompts};
use crate::model::{l2_normalize, Clip};
use anyhow::{bail, Context, Result};
use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use std::collections::HashMap;
use std::sync::Arc;

/// Text features of fixed prompts, computed once per label space.
#[derive(Default)]
pub struct TextFeatureCache {
    key: Option<Arc<Vec<Vec<u32>>>>,
    features: Option<Tensor>,
}

impl TextFeatureCache {
    /// Features of `ids`, reusing the last result when the prompts are the same.
    pub fn get(
        &mut self,
        env: &ModelEnv<'_>,
        ids: &Arc<Vec<Vec<u32>>>,
        chunk: usize,
    ) -> Result<Tensor> {
        if let (Some(key), Some(features)) = (&self.key, &self.features) {
            if Arc::ptr_eq(key, ids) || **key == **ids {
                return Ok(features.clone());
            }
        }
        let features = encode_fixed(env, ids, chunk)?;
        self.key = Some(ids.clone());
        self.features = Some(features.clone());
        Ok(features)
    }
}

/// Encodes fixed token rows without a graph, `chunk` rows at a time.
fn encode_fixed(env: &ModelEnv<'_>, ids: &[Vec<u32>], chunk: usize) -> Result<Tensor> {
    let parts = ids
        .chunks(chunk.max(1))
        .map(|rows| Ok(env.clip.text.encode_ids(rows)?.detach()))
        .collect::<Result<Vec<_>>>()?;
    Ok(Tensor::cat(&parts, 0)?)
}

/// Text features of learned context for classes `range`, with graph.
fn encode_context(
    prompts: &TextPrompts,
    env: &ModelEnv<'_>,
    range: std::ops::Range<usize>,
) -> Result<Tensor> {
    let TextPrompts::Context {
        template,
        ctx,
        deep,
    } = prompts
    else {
        bail!("encode_context called on non-context prompts");
    };
    let embeddings = template.embeddings(Some(ctx), range.clone())?;
    Ok(env
        .clip
        .text
        .forward(&embeddings, template.eot(range), deep)?)
}

/// The same text prompts cut from the autograd graph.
fn detached(prompts: &TextPrompts) -> TextPrompts {
    match prompts {
        TextPrompts::Context {
            template,
            ctx,
            deep,
        } => TextPrompts::Context {
            template: template.clone(),
            ctx: ctx.detach(),
            deep: crate::model::DeepPrompts {
                rows: deep.rows,
                layers: deep
                    .layers
                    .iter()
                    .map(|l| l.as_ref().map(Tensor::detach))
                    .collect(),
            },
        },
        other => other.clone(),
    }
}

/// Knobs of the forward pass.
#[derive(Clone, Copy, Debug)]
pub struct ForwardOptions {
    /// Classes per text-tower chunk (learned context is chunked above this many classes).
    pub text_chunk: usize,
    /// Multitask logit masking.
    pub masking: TaskMasking,
}

/// Result of a training step's forward and backward.
pub struct StepResult {
    /// Gradients of the method's parameters.
    pub grads: GradStore,
    /// Total loss.
    pub loss: f64,
    /// Named extra loss terms (already included in `loss`).
    pub terms: Vec<(String, f64)>,
    /// Logits `(batch, classes)`, detached.
    pub logits: Tensor,
}

/// The head of a step: total loss, logits and the method's named loss terms.
struct Head {
    loss: Tensor,
    logits: Tensor,
    terms: Vec<(String, Tensor)>,
}

/// Image-side input of a step: pixels, or features computed earlier (cache).
pub enum ImageInput<'a> {
    /// Normalised pixels `(batch, 3, H, W)`.
    Pixels(&'a Tensor),
    /// Cached image features `(batch, embed_dim)` (only valid for unprompted image towers).
    Features(Tensor),
}

/// Runs one step's forward pass, the loss, and the backward pass to the method's parameters.
#[allow(clippy::too_many_arguments)]
pub fn train_step(
    env: &ModelEnv<'_>,
    method: &dyn PromptLearner,
    prompts: &StepPrompts,
    images: ImageInput<'_>,
    targets: &BatchTargets,
    task_ranges: &[(usize, usize)],
    text_cache: &mut TextFeatureCache,
    options: ForwardOptions,
) -> Result<StepResult> {
    let image_features = image_features(env, prompts, images)?;
    let scale = env.clip.logit_scale_exp()?;
    // The classification loss of `logits` plus the method's own terms.
    let with_terms = |logits: Tensor, text_features: &Tensor| -> Result<Head> {
        let mut loss = cross_entropy(&logits, targets)?;
        let terms = method.loss_terms(&HeadOutputs {
            text_features,
            image_features: &image_features,
            logits: &logits,
        })?;
        for (_, term) in &terms {
            loss = (loss + term)?;
        }
        Ok(Head {
            loss,
            logits,
            terms,
        })
    };
    let head = |text_features: &Tensor| -> Result<Head> {
        let logits = Clip::head_logits(&l2_normalize(&image_features)?, text_features, scale)?;
        with_terms(
            mask_logits(&logits, task_ranges, options.masking)?,
            text_features,
        )
    };
    let finish = |Head {
                      loss,
                      logits,
                      terms,
                  }: Head,
                  grads: GradStore|
     -> Result<StepResult> {
        let terms = terms
            .into_iter()
            .map(|(n, t)| {
                Ok((
                    n,
                    f64::from(t.to_dtype(candle_core::DType::F32)?.to_scalar::<f32>()?),
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(StepResult {
            grads,
            loss: f64::from(loss.to_scalar::<f32>()?),
            terms,
            logits: logits.detach(),
        })
    };
    match &prompts.text {
        TextPrompts::Fixed(ids) => {
            let text_features = text_cache.get(env, ids, options.text_chunk)?;
            let head = head(&text_features)?;
            let grads = head.loss.backward()?;
            finish(head, grads)
        }
        TextPrompts::Features(text_features) => {
            let head = head(text_features)?;
            let grads = head.loss.backward()?;
            finish(head, grads)
        }
        TextPrompts::Context { template, .. } if template.classes() <= options.text_chunk => {
            let text_features = encode_context(&prompts.text, env, 0..template.classes())?;
            let head = head(&text_features)?;
            let grads = head.loss.backward()?;
            finish(head, grads)
        }
        TextPrompts::Context { template, .. } => {
            let classes = template.classes();
            let chunks: Vec<_> = (0..classes)
                .step_by(options.text_chunk)
                .map(|s| s..(s + options.text_chunk).min(classes))
                .collect();
            // 1. All text features without a graph (the context cut from it, so no chunk keeps
            // its activations), as a leaf the head differentiates.
            let untracked = detached(&prompts.text);
            let detached = chunks
                .iter()
                .map(|r| encode_context(&untracked, env, r.clone()))
                .collect::<Result<Vec<_>>>()?;
            let leaf = Var::from_tensor(&Tensor::cat(&detached, 0)?)?;
            drop(detached);
            let head = head(leaf.as_tensor())?;
            let mut grads = head.loss.backward()?;
            let d_text = grads
                .remove(leaf.as_tensor())
                .context("no gradient reached the text features")?;
            // 2. Each chunk again with its graph, back-propagating its slice of d_text.
            let params = method.parameters();
            for range in chunks {
                let features = encode_context(&prompts.text, env, range.clone())?;
                let slice = d_text
                    .narrow(0, range.start, range.len())?
                    .to_dtype(features.dtype())?;
                let surrogate = (features * slice)?.sum_all()?;
                accumulate(&mut grads, surrogate.backward()?, &params)?;
            }
            finish(head, grads)
        }
        TextPrompts::Conditional { template, context } => {
            let normalized = l2_normalize(&image_features)?;
            let batch = image_features.dim(0)?;
            let ctx = context(&normalized)?;
            let mut rows = Vec::with_capacity(batch);
            let mut texts = Vec::with_capacity(batch);
            for b in 0..batch {
                let embeddings = template.embeddings(Some(&ctx.get(b)?), 0..template.classes())?;
                let text = env.clip.text.forward(
                    &embeddings,
                    template.eot(0..template.classes()),
                    &crate::model::DeepPrompts::none(),
                )?;
                rows.push(Clip::head_logits(
                    &normalized.get(b)?.unsqueeze(0)?,
                    &text,
                    scale,
                )?);
                texts.push(text);
            }
            let logits = mask_logits(&Tensor::cat(&rows, 0)?, task_ranges, options.masking)?;
            // Each image's own class text features, `(batch, classes, embed_dim)`.
            let head = with_terms(logits, &Tensor::stack(&texts, 0)?)?;
            let grads = head.loss.backward()?;
            finish(head, grads)
        }
    }
}

/// Image features of a step: from the cache or through the (possibly prompted) image tower.
fn image_features(
    env: &ModelEnv<'_>,
    prompts: &StepPrompts,
    images: ImageInput<'_>,
) -> Result<Tensor> {
    match images {
        ImageInput::Features(f) => {
            if prompts.visual.is_some() {
                bail!("cached image features given for a method that prompts the image tower");
            }
            Ok(f)
        }
        ImageInput::Pixels(pixels) => {
            Ok(env.clip.vision.forward(pixels, prompts.visual.as_ref())?)
        }
    }
}

/// Adds the parameter gradients of `extra` into `into`.
fn accumulate(into: &mut GradStore, mut extra: GradStore, params: &[(String, Var)]) -> Result<()> {
    for (_, var) in params {
        if let Some(g) = extra.remove(var.as_tensor()) {
            let sum = match into.remove(var.as_tensor()) {
                Some(existing) => (existing + g)?,
                None => g,
            };
            into.insert(var.as_tensor(), sum);
        }
    }
    Ok(())
}

/// Logits `(batch, classes)` for evaluation (no graph): text features computed once per call
/// for the whole label space unless the context is image-conditioned.
pub fn eval_logits(
    env: &ModelEnv<'_>,
    prompts: &StepPrompts,
    images: ImageInput<'_>,
    text_features: &Tensor,
) -> Result<Tensor> {
    let image_features = image_features(env, prompts, images)?.detach();
    let scale = env.clip.logit_scale_exp()?;
    let normalized = l2_normalize(&image_features)?;
    match &prompts.text {
        TextPrompts::Conditional { template, context } => {
            let ctx = context(&normalized)?.detach();
            let mut rows = Vec::new();
            for b in 0..image_features.dim(0)? {
                let embeddings = template.embeddings(Some(&ctx.get(b)?), 0..template.classes())?;
                let text = env.clip.text.forward(
                    &embeddings,
                    template.eot(0..template.classes()),
                    &crate::model::DeepPrompts::none(),
                )?;
                rows.push(Clip::head_logits(
                    &normalized.get(b)?.unsqueeze(0)?,
                    &text.detach(),
                    scale,
                )?);
            }
            Ok(Tensor::cat(&rows, 0)?)
        }
        _ => Ok(Clip::head_logits(&normalized, text_features, scale)?),
    }
}

/// Text features of the whole label space without a graph (once per evaluation pass); `None`
/// for image-conditioned context.
pub fn eval_text_features(
    env: &ModelEnv<'_>,
    prompts: &StepPrompts,
    cache: &mut TextFeatureCache,
    chunk: usize,
) -> Result<Option<Tensor>> {
    match &prompts.text {
        TextPrompts::Fixed(ids) => Ok(Some(cache.get(env, ids, chunk)?)),
        TextPrompts::Features(features) => Ok(Some(features.detach())),
        TextPrompts::Context { template, .. } => {
            let classes = template.classes();
            let parts = (0..classes)
                .step_by(chunk.max(1))
                .map(|s| {
                    Ok(encode_context(&prompts.text, env, s..(s + chunk).min(classes))?.detach())
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Some(Tensor::cat(&parts, 0)?))
        }
        TextPrompts::Conditional { .. } => Ok(None),
    }
}

/// Gradient norms per parameter name (for logs and the "every prompt gets a gradient" check).
pub fn grad_norms(grads: &GradStore, params: &[(String, Var)]) -> Result<HashMap<String, f64>> {
    params
        .iter()
        .map(|(name, var)| {
            let norm = match grads.get(var.as_tensor()) {
                Some(g) => f64::from(
                    g.to_dtype(candle_core::DType::F32)?
                        .sqr()?
                        .sum_all()?
                        .sqrt()?
                        .to_scalar::<f32>()?,
                ),
                None => 0.0,
            };
            Ok((name.clone(), norm))
        })
        .collect()
}

/// Builds a [`StepContext`] for evaluation (no dropout).
pub fn eval_step_context(rng: &mut crate::rng::Rng) -> StepContext<'_> {
    StepContext::evaluation(rng)
}
