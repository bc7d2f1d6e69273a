//! The prompt-learner trait and the values it exchanges with the engine.

use super::context::ContextTemplate;
use crate::model::tokenizer::ClipTokenizer;
use crate::model::{Clip, DeepPrompts, VisualPrompts};
use crate::rng::Rng;
use anyhow::{bail, Result};
use candle_core::{Device, Tensor, Var};
use std::collections::HashMap;
use std::sync::Arc;

/// The frozen model a method is bound to.
#[derive(Clone, Copy)]
pub struct ModelEnv<'a> {
    /// The CLIP model.
    pub clip: &'a Clip,
    /// Its tokenizer.
    pub tokenizer: &'a ClipTokenizer,
    /// Where trainable tensors live.
    pub device: &'a Device,
}

/// How a method's text side behaves, which decides what the engine may cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextMode {
    /// Fixed prompts: text features are computed once (VPT's "a photo of a {c}.", zero-shot).
    Frozen,
    /// Learned context shared by all images (CoOp, UPT, MaPLe, KgCoOp).
    Learned,
    /// Context conditioned on each image (CoCoOp): one text pass per image.
    ImageConditioned,
}

/// Which parts of the model a method's prompts change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Footprint {
    /// Text side behaviour.
    pub text: TextMode,
    /// Whether the image tower receives prompts. If not, image features depend only on the
    /// image (and are cached when the transform is deterministic).
    pub vision: bool,
}

/// Per-step information for building prompts.
pub struct StepContext<'a> {
    /// Training (dropout active) or evaluation.
    pub train: bool,
    /// Images in this step's batch. Per-image randomness (VPT's prompt dropout draws one mask
    /// per image, as the reference does) needs it in training; it may be 0 in evaluation.
    pub batch: usize,
    /// The run's seeded generator (dropout masks, noise).
    pub rng: &'a mut Rng,
}

impl<'a> StepContext<'a> {
    /// A training step over `batch` images.
    pub fn training(batch: usize, rng: &'a mut Rng) -> Self {
        Self {
            train: true,
            batch,
            rng,
        }
    }

    /// An evaluation step (no dropout, no per-image randomness).
    pub fn evaluation(rng: &'a mut Rng) -> Self {
        Self {
            train: false,
            batch: 0,
            rng,
        }
    }
}

/// Maps normalised image features `(batch, embed_dim)` to per-image context
/// `(batch, n_ctx, width)` (CoCoOp's meta-network).
pub type ContextFn = Arc<dyn Fn(&Tensor) -> candle_core::Result<Tensor> + Send + Sync>;

/// What the text tower receives this step.
#[derive(Clone)]
pub enum TextPrompts {
    /// One fixed token sequence per class (rows of ids padded with 0).
    Fixed(Arc<Vec<Vec<u32>>>),
    /// Learned context spliced into every class prompt, with optional deep text prompts.
    Context {
        /// Per-class prompt layout.
        template: Arc<ContextTemplate>,
        /// `(n_ctx, width)` shared, or `(classes, n_ctx, width)` class-specific.
        ctx: Tensor,
        /// Rows `[1, 1 + n)` replaced before the given text layers (MaPLe).
        deep: DeepPrompts,
    },
    /// Class features computed by the method itself, `(classes, embed_dim)`, without a graph:
    /// e.g. a zero-shot template ensemble (per class, the normalised mean of the normalised
    /// features of every template), which no single token sequence expresses.
    Features(Tensor),
    /// Context computed from each image's (normalised) features: `context(features)` returns
    /// `(batch, n_ctx, width)`.
    Conditional {
        /// Per-class prompt layout.
        template: Arc<ContextTemplate>,
        /// Maps `(batch, embed_dim)` image features to per-image context.
        context: ContextFn,
    },
}

/// Everything a method splices into the towers for one step.
#[derive(Clone)]
pub struct StepPrompts {
    /// Image-tower prompts (None: the plain tower).
    pub visual: Option<VisualPrompts>,
    /// Text-tower prompts.
    pub text: TextPrompts,
}

/// The head of the forward pass, handed to [`PromptLearner::loss_terms`].
pub struct HeadOutputs<'a> {
    /// Text features of every class, `(classes, embed_dim)`, not normalised. When the engine
    /// chunks the text tower this is a leaf whose gradient is propagated chunk by chunk, so
    /// loss terms written on it stay exact. For image-conditioned context
    /// ([`TextPrompts::Conditional`]) each image has its own: `(batch, classes, embed_dim)`.
    pub text_features: &'a Tensor,
    /// Image features of the batch, `(batch, embed_dim)`, not normalised.
    pub image_features: &'a Tensor,
    /// Logits `(batch, classes)`.
    pub logits: &'a Tensor,
}

/// Outcome of loading tensors into a method's parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Parameters that received a value.
    pub loaded: Vec<String>,
    /// Parameters without a value in the source (kept as initialised).
    pub missing: Vec<String>,
    /// Source tensors no parameter asked for.
    pub unexpected: Vec<String>,
}

/// A prompt method: owns trainable tensors and produces the prompts for each step.
pub trait PromptLearner: Send + Sync {
    /// Binds the method to a model and a label space. The first call creates the parameters
    /// (drawing from `rng`); later calls (e.g. a target task after source training) keep the
    /// parameters and rebuild only class-dependent state.
    fn bind(&mut self, env: &ModelEnv<'_>, classnames: &[String], rng: &mut Rng) -> Result<()>;

    /// Zero-shot templates (`{}` stands for the class name) of the dataset each class of the
    /// next [`PromptLearner::bind`] comes from, one list per class. The engine passes them
    /// before binding; methods that do not use dataset templates ignore them (the default).
    fn set_class_templates(&mut self, _templates: &[Vec<String>]) {}

    /// Trainable tensors under their reference state-dict names (`ctx`, `vpt_embeddings`, ...).
    fn parameters(&self) -> Vec<(String, Var)>;

    /// Class-dependent tensors saved with checkpoints for inspection but never loaded into
    /// another label space (`token_prefix`, `token_suffix`).
    fn buffers(&self) -> Vec<(String, Tensor)> {
        Vec::new()
    }

    /// What the prompts touch (drives caching).
    fn footprint(&self) -> Footprint;

    /// This step's prompts, computed from the parameters (UPT's projector runs here).
    fn prompts(&self, env: &ModelEnv<'_>, step: &mut StepContext<'_>) -> Result<StepPrompts>;

    /// Extra named loss terms added to the classification loss (e.g. KgCoOp's regulariser).
    fn loss_terms(&self, _head: &HeadOutputs<'_>) -> Result<Vec<(String, Tensor)>> {
        Ok(Vec::new())
    }

    /// Loads parameter values by name (checking shapes); the default covers methods whose
    /// state is exactly [`PromptLearner::parameters`].
    fn load_parameters(&mut self, tensors: &HashMap<String, Tensor>) -> Result<LoadReport> {
        load_named(&self.parameters(), tensors)
    }
}

/// Sets each named `Var` from `tensors` (shape-checked); reports what matched.
pub fn load_named(
    params: &[(String, Var)],
    tensors: &HashMap<String, Tensor>,
) -> Result<LoadReport> {
    let mut report = LoadReport::default();
    for (name, var) in params {
        match tensors.get(name) {
            Some(t) => {
                if t.dims() != var.dims() {
                    bail!(
                        "prompt tensor `{name}` has shape {:?} in the source but {:?} here",
                        t.dims(),
                        var.dims()
                    );
                }
                var.set(&t.to_dtype(var.dtype())?.to_device(var.device())?)?;
                report.loaded.push(name.clone());
            }
            None => report.missing.push(name.clone()),
        }
    }
    let mut unexpected: Vec<String> = tensors
        .keys()
        .filter(|k| !params.iter().any(|(n, _)| n == *k))
        .cloned()
        .collect();
    unexpected.sort();
    report.unexpected = unexpected;
    Ok(report)
}
