//! The CoOp text step the benchmark times: learned context spliced into prompts of synthetic
//! token ids, the text tower, CLIP's logits against fixed image features, cross-entropy and the
//! backward pass to the context. It mirrors `benches/reference_step.py` line for line, so the
//! comparison with PyTorch times the same computation; the engine's own step is timed by
//! `mvlpt bench step --method`.

use crate::measure::text_step_flops;
use anyhow::{Context, Result};
use candle_core::{Tensor, Var};
use mvlpt_framework::model::{l2_normalize, Clip, DeepPrompts};
use mvlpt_framework::rng;

/// The start-of-text token id of CLIP's BPE vocabulary.
pub const START_OF_TEXT: u32 = 49406;
/// The end-of-text token id (the largest id, which CLIP's pooling relies on).
pub const END_OF_TEXT: u32 = 49407;
/// The id of "X" followed by a space, CoOp's context placeholder.
pub const PLACEHOLDER: u32 = 343;
/// The id of ".".
pub const FULL_STOP: u32 = 269;

/// Token ids of CoOp's prompts "X X … X {class}." for `classes` synthetic classes, each padded
/// with zeros to `context_length`, and the end-of-text position of each. Class `i` has
/// `1 + i % 3` name tokens (ids `1000 + 10 i + j`), like short real class names.
/// `benches/reference_step.py` builds the same ids.
pub fn coop_token_ids(
    classes: usize,
    context_length: usize,
    n_ctx: usize,
) -> Result<(Vec<Vec<u32>>, Vec<usize>)> {
    let mut ids = Vec::with_capacity(classes);
    let mut eot = Vec::with_capacity(classes);
    for i in 0..classes {
        let mut row = vec![START_OF_TEXT];
        row.extend(std::iter::repeat_n(PLACEHOLDER, n_ctx));
        row.extend((0..1 + i % 3).map(|j| 1000 + 10 * i as u32 + j as u32));
        row.push(FULL_STOP);
        eot.push(row.len());
        row.push(END_OF_TEXT);
        if row.len() > context_length {
            anyhow::bail!(
                "a prompt of {n_ctx} context tokens and class {i} needs {} positions, more than \
                 the context length {context_length}",
                row.len()
            );
        }
        row.resize(context_length, 0);
        ids.push(row);
    }
    Ok((ids, eot))
}

/// One CoOp training step on the text side, ready to run repeatedly.
pub struct CoopTextStep {
    clip: Clip,
    /// Start-of-text embeddings `(classes, 1, width)` (frozen).
    prefix: Tensor,
    /// Class-name, full-stop, end-of-text and padding embeddings `(classes, rest, width)`.
    suffix: Tensor,
    /// The learned context `(n_ctx, width)`.
    context: Var,
    eot: Vec<usize>,
    /// L2-normalised image features `(batch, embed_dim)` the logits are taken against.
    image_features: Tensor,
    /// A label per image, `(batch,)` u32.
    labels: Tensor,
    logit_scale: f64,
}

impl CoopTextStep {
    /// Prepares the step on `clip` (its text tower's `cut_after_eot` applies): random context
    /// (std 0.02, as CoOp initialises it), random unit image features and random labels.
    pub fn new(
        clip: Clip,
        classes: usize,
        context_length: usize,
        n_ctx: usize,
        batch: usize,
        seed: u64,
    ) -> Result<Self> {
        let device = clip.text.token_embedding.device().clone();
        let (ids, eot) = coop_token_ids(classes, context_length, n_ctx)?;
        let flat: Vec<u32> = ids.iter().flatten().copied().collect();
        let ids = Tensor::from_vec(flat, (classes, context_length), &device)?;
        let embedded = clip.text.embed(&ids)?;
        let prefix = embedded.narrow(1, 0, 1)?.contiguous()?;
        let suffix = embedded
            .narrow(1, 1 + n_ctx, context_length - 1 - n_ctx)?
            .contiguous()?;
        let mut r = rng::seeded(seed);
        let width = clip.config.text.width;
        let context = Var::from_tensor(
            &rng::normal((n_ctx, width), 0.0, 0.02, &mut r, &device)?.to_dtype(embedded.dtype())?,
        )?;
        let features = rng::normal((batch, clip.config.embed_dim), 0.0, 1.0, &mut r, &device)?;
        let image_features = l2_normalize(&features)?.to_dtype(embedded.dtype())?;
        let labels: Vec<u32> = (0..batch).map(|i| (i % classes.max(1)) as u32).collect();
        let labels = Tensor::from_vec(labels, batch, &device)?;
        let logit_scale = clip.logit_scale_exp()?;
        Ok(Self {
            clip,
            prefix,
            suffix,
            context,
            eot,
            image_features,
            labels,
            logit_scale,
        })
    }

    /// Sequence positions the text tower runs.
    pub fn sequence_length(&self) -> usize {
        let full = self.prefix.dim(1).unwrap_or(1) + self.context.dim(0).unwrap_or(0);
        let full = full + self.suffix.dim(1).unwrap_or(0);
        if self.clip.text.cut_after_eot {
            self.eot.iter().max().map_or(1, |&p| p + 1)
        } else {
            full
        }
    }

    /// Trainable parameters (the context vectors).
    pub fn trainable_parameters(&self) -> usize {
        self.context.elem_count()
    }

    /// The loss of the current context.
    pub fn loss(&self) -> Result<Tensor> {
        let classes = self.prefix.dim(0)?;
        let (n_ctx, width) = self.context.dims2()?;
        let context = self
            .context
            .as_tensor()
            .unsqueeze(0)?
            .broadcast_as((classes, n_ctx, width))?;
        let prompts = Tensor::cat(&[&self.prefix, &context, &self.suffix], 1)?;
        let text = self
            .clip
            .text
            .forward(&prompts, &self.eot, &DeepPrompts::none())?;
        let text = l2_normalize(&text)?;
        let logits = (self.image_features.matmul(&text.t()?)? * self.logit_scale)?;
        Ok(candle_nn::loss::cross_entropy(&logits, &self.labels)?)
    }

    /// Runs the forward and backward pass; returns the gradient of the context.
    pub fn run(&self) -> Result<Tensor> {
        let grads = self.loss()?.backward()?;
        grads
            .get(self.context.as_tensor())
            .cloned()
            .context("the CoOp context received no gradient")
    }

    /// FLOPs of one run (see the module documentation).
    pub fn flops(&self) -> u64 {
        let classes = self.prefix.dim(0).unwrap_or(0);
        let batch = self.image_features.dim(0).unwrap_or(0);
        text_step_flops(&self.clip.config, classes, self.sequence_length(), batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use mvlpt_framework::model::ClipConfig;

    #[test]
    fn token_ids_follow_coop_prompts() {
        let (ids, eot) = coop_token_ids(4, 24, 16).unwrap();
        assert_eq!(eot, vec![19, 20, 21, 19]);
        for (row, &p) in ids.iter().zip(&eot) {
            assert_eq!(row.len(), 24);
            assert_eq!(row[0], START_OF_TEXT);
            assert!(row[1..17].iter().all(|&t| t == PLACEHOLDER));
            assert_eq!((row[p - 1], row[p]), (FULL_STOP, END_OF_TEXT));
            assert!(row[p + 1..].iter().all(|&t| t == 0));
        }
        assert!(coop_token_ids(3, 20, 16).is_err());
    }

    #[test]
    fn cut_and_full_text_steps_give_the_same_gradient() {
        let config = ClipConfig::preset("tiny").unwrap();
        let mut clip = Clip::random(&config, 3, &Device::Cpu, DType::F32).unwrap();
        let cut = CoopTextStep::new(clip.clone(), 3, 32, 4, 5, 7).unwrap();
        clip.text.cut_after_eot = false;
        let full = CoopTextStep::new(clip, 3, 32, 4, 5, 7).unwrap();
        assert_eq!((cut.sequence_length(), full.sequence_length()), (10, 32));
        let (a, b) = (cut.run().unwrap(), full.run().unwrap());
        let diff = (&a - &b).unwrap().abs().unwrap().max_all().unwrap();
        let scale = a
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(scale > 0.0);
        assert!(diff.to_scalar::<f32>().unwrap() <= 1e-5 * scale);
        assert!(full.flops() > cut.flops());
    }
}
