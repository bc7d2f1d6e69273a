//! Benchmarks of one prompt-tuning step: the code behind `mvlpt bench step`, the criterion
//! bench and `benches/compare_step.sh`, which runs PyTorch's version of the same computation
//! (`benches/reference_step.py`) alternately with ours.
//!
//! What is timed, on random weights of a named CLIP preset:
//!
//! - **the CoOp text step**: `n_ctx` learned context vectors spliced into the prompts
//!   "X X … X {class}." of `classes` classes, the text tower forward, end-of-text pooling and
//!   projection, CLIP's cosine logits against `batch` fixed image features, cross-entropy, and
//!   the backward pass to the context (the only trainable tensor). No optimiser update.
//! - **the image-tower forward** of `batch` images (no gradient: CoOp's image side is frozen).
//! - **a large square f32 GEMM** through candle, the machine's attainable rate for comparison.
//!
//! FLOPs are counted analytically, 2 per multiply-add, over the matrix products only (the
//! linear layers, both attention products with the full `len × len` score matrix as PyTorch
//! computes it, the projections and the logits); element-wise work (LayerNorm, softmax,
//! activations) is not counted. The backward pass counts the input-gradient products only
//! (frozen weights get no gradient), and not the attention probabilities our kernel recomputes.
//! `benches/reference_step.py` uses the same count.

use crate::model::layers::ResidualAttentionBlock;
use crate::model::{Clip, ClipConfig, DeepPrompts};
use crate::rng;
use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor, Var};
use serde::Serialize;
use std::time::Instant;

/// The start-of-text token id of CLIP's BPE vocabulary.
pub const START_OF_TEXT: u32 = 49406;
/// The end-of-text token id (the largest id, which CLIP's pooling relies on).
pub const END_OF_TEXT: u32 = 49407;
/// The id of "X" followed by a space, CoOp's context placeholder.
pub const PLACEHOLDER: u32 = 343;
/// The id of ".".
pub const FULL_STOP: u32 = 269;

/// What `mvlpt bench step` measures and at which size.
#[derive(Clone, Debug, Serialize)]
pub struct StepBenchConfig {
    /// A CLIP preset name ([`ClipConfig::preset`]), e.g. `ViT-B/32`.
    pub preset: String,
    /// Number of classes: prompts per text step.
    pub classes: usize,
    /// Token sequence length of each prompt (77 = CLIP's full context).
    pub context_length: usize,
    /// Learned context vectors per prompt (CoOp's `n_ctx`).
    pub n_ctx: usize,
    /// Images per batch: rows of the logits, and the image-forward batch.
    pub batch: usize,
    /// Cut the text sequence after the last end-of-text token (exact; `false` runs all
    /// `context_length` positions like PyTorch's CLIP, for like-for-like comparison).
    pub cut_after_eot: bool,
    /// Also time the image-tower forward.
    pub image_forward: bool,
    /// Untimed runs before timing.
    pub warmup: usize,
    /// Timed runs (the median is reported).
    pub iterations: usize,
    /// Worker threads: the size of the rayon pool the work runs in.
    pub threads: usize,
    /// Seed of the random weights and inputs.
    pub seed: u64,
}

impl Default for StepBenchConfig {
    fn default() -> Self {
        Self {
            preset: "ViT-B/32".into(),
            classes: 10,
            context_length: 77,
            n_ctx: 16,
            batch: 32,
            cut_after_eot: true,
            image_forward: true,
            warmup: 2,
            iterations: 10,
            threads: candle_core::utils::get_num_threads(),
            seed: 0,
        }
    }
}

/// Wall-clock times of repeated runs, in milliseconds.
#[derive(Clone, Debug, Serialize)]
pub struct Timing {
    /// Median run time.
    pub median_ms: f64,
    /// Fastest run.
    pub min_ms: f64,
    /// Slowest run.
    pub max_ms: f64,
    /// Every timed run, in order.
    pub samples_ms: Vec<f64>,
}

impl Timing {
    /// Summarises samples (milliseconds); an empty list gives zeros.
    pub fn from_samples(samples_ms: Vec<f64>) -> Self {
        let mut sorted = samples_ms.clone();
        sorted.sort_by(f64::total_cmp);
        let median_ms = match sorted.len() {
            0 => 0.0,
            n if n % 2 == 1 => sorted[n / 2],
            n => 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]),
        };
        Self {
            median_ms,
            min_ms: sorted.first().copied().unwrap_or(0.0),
            max_ms: sorted.last().copied().unwrap_or(0.0),
            samples_ms,
        }
    }
}

/// One timed phase (text step or image forward) with its work and memory.
#[derive(Clone, Debug, Serialize)]
pub struct PhaseReport {
    /// Run times.
    pub timing: Timing,
    /// FLOPs per run (see the module documentation for the convention).
    pub flops: u64,
    /// FLOPs divided by the median time.
    pub gflop_per_s: f64,
    /// `gflop_per_s` as a fraction of the measured square-GEMM rate.
    pub fraction_of_gemm: f64,
    /// Peak resident memory of the process during the phase (Linux `VmHWM`, reset before the
    /// phase), including the model's weights; `None` where unavailable.
    pub peak_rss_bytes: Option<u64>,
}

/// The attainable f32 matrix-multiply rate of this machine through candle's GEMM.
#[derive(Clone, Debug, Serialize)]
pub struct GemmRate {
    /// `m = n = k` of the square product.
    pub size: usize,
    /// Run times.
    pub timing: Timing,
    /// `2 · size³` FLOPs divided by the median time.
    pub gflop_per_s: f64,
}

/// The JSON report of `mvlpt bench step`.
#[derive(Clone, Debug, Serialize)]
pub struct StepBenchReport {
    /// What was measured.
    pub config: StepBenchConfig,
    /// Threads candle's own GEMM splits work for (from `RAYON_NUM_THREADS`, else the core
    /// count); it should equal `config.threads`.
    pub candle_threads: usize,
    /// Positions the text tower actually ran (after the cut, if enabled).
    pub text_sequence_length: usize,
    /// Trainable parameters of the step (the context vectors).
    pub trainable_parameters: usize,
    /// Parameters of the frozen model.
    pub frozen_parameters: usize,
    /// Resident memory after building the model and inputs, before any timed phase.
    pub baseline_rss_bytes: Option<u64>,
    /// The square-GEMM reference rate.
    pub gemm: GemmRate,
    /// The CoOp text step (forward + backward to the context).
    pub text_step: PhaseReport,
    /// The image-tower forward at `batch` images, if requested.
    pub image_forward: Option<PhaseReport>,
}

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
        let image_features = crate::model::l2_normalize(&features)?.to_dtype(embedded.dtype())?;
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
        let text = crate::model::l2_normalize(&text)?;
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

/// FLOPs of the CoOp text step: the text tower forward over `classes × len` tokens, pooling
/// and projection, the `batch × classes` logits, and the input-gradient backward of each.
pub fn text_step_flops(config: &ClipConfig, classes: usize, len: usize, batch: usize) -> u64 {
    let t = &config.text;
    let (w, e) = (t.width as u64, config.embed_dim as u64);
    let tokens = (classes * len) as u64;
    let linear_macs = 12 * tokens * w * w;
    let attention_macs = 2 * tokens * len as u64 * w;
    let head_macs = classes as u64 * w * e + batch as u64 * classes as u64 * e;
    let forward = t.layers as u64 * (linear_macs + attention_macs) + head_macs;
    // Backward: one product per linear (dx), four per attention (dP, dV, dQ, dK), one per head
    // product (the text side only).
    let backward = t.layers as u64 * (linear_macs + 2 * attention_macs) + head_macs;
    2 * (forward + backward)
}

/// FLOPs of an image-tower forward at `batch` images: patch embedding, blocks, projection.
pub fn image_forward_flops(config: &ClipConfig, batch: usize) -> u64 {
    let v = &config.vision;
    let len = v.tokens();
    let patches = (batch * v.grid() * v.grid()) as u64;
    let patch_macs = patches * v.width as u64 * (3 * v.patch_size * v.patch_size) as u64;
    let block_macs = ResidualAttentionBlock::forward_macs(v.width, batch * len, len);
    let head_macs = (batch * v.width * config.embed_dim) as u64;
    2 * (patch_macs + v.layers as u64 * block_macs + head_macs)
}

/// Times `iterations` runs of `f` after `warmup` untimed ones.
pub fn time_runs(
    warmup: usize,
    iterations: usize,
    mut f: impl FnMut() -> Result<()>,
) -> Result<Timing> {
    for _ in 0..warmup {
        f()?;
    }
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        f()?;
        samples.push(start.elapsed().as_secs_f64() * 1e3);
    }
    Ok(Timing::from_samples(samples))
}

/// The f32 rate of a `size³` square matrix product through candle's CPU GEMM (the kernel
/// behind every linear layer), median of `iterations` runs after one warm-up.
pub fn measure_gemm_rate(size: usize, iterations: usize, seed: u64) -> Result<GemmRate> {
    let mut r = rng::seeded(seed);
    let a = rng::normal((size, size), 0.0, 1.0, &mut r, &Device::Cpu)?;
    let b = rng::normal((size, size), 0.0, 1.0, &mut r, &Device::Cpu)?;
    let timing = time_runs(1, iterations, || {
        a.matmul(&b)?;
        Ok(())
    })?;
    let flops = 2.0 * (size as f64).powi(3);
    Ok(GemmRate {
        size,
        gflop_per_s: flops / (timing.median_ms * 1e6),
        timing,
    })
}

/// Peak resident memory of this process (`VmHWM` from `/proc/self/status`), Linux only.
pub fn peak_rss_bytes() -> Option<u64> {
    proc_status_kib("VmHWM:").map(|kib| kib * 1024)
}

/// Current resident memory of this process (`VmRSS`), Linux only.
pub fn current_rss_bytes() -> Option<u64> {
    proc_status_kib("VmRSS:").map(|kib| kib * 1024)
}

/// Resets the peak-RSS mark to the current RSS (writing 5 to `/proc/self/clear_refs`), so that
/// [`peak_rss_bytes`] measures the phase that follows. Returns false where unsupported.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn proc_status_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Builds the model and inputs described by `config`, times each phase and reports.
pub fn run_step_bench(config: &StepBenchConfig) -> Result<StepBenchReport> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(config.threads)
        .build()
        .with_context(|| format!("building a pool of {} threads", config.threads))?;
    pool.install(|| run_in_pool(config))
}

fn run_in_pool(config: &StepBenchConfig) -> Result<StepBenchReport> {
    let clip_config = ClipConfig::preset(&config.preset)?;
    let device = Device::Cpu;
    let mut clip = Clip::random(&clip_config, config.seed, &device, DType::F32)?;
    clip.text.cut_after_eot = config.cut_after_eot;
    let v = &clip_config.vision;
    let mut r = rng::seeded(config.seed.wrapping_add(1));
    let images = rng::normal(
        (config.batch, 3, v.image_size, v.image_size),
        0.0,
        1.0,
        &mut r,
        &device,
    )?;
    let step = CoopTextStep::new(
        clip.clone(),
        config.classes,
        config.context_length,
        config.n_ctx,
        config.batch,
        config.seed,
    )?;
    let baseline_rss_bytes = current_rss_bytes();
    let gemm = measure_gemm_rate(2048, config.iterations.max(3), config.seed)?;
    let phase = |timing: Timing, flops: u64, peak: Option<u64>| {
        let gflop_per_s = flops as f64 / (timing.median_ms * 1e6);
        PhaseReport {
            timing,
            flops,
            gflop_per_s,
            fraction_of_gemm: gflop_per_s / gemm.gflop_per_s,
            peak_rss_bytes: peak,
        }
    };
    let reset = reset_peak_rss();
    let timing = time_runs(config.warmup, config.iterations, || step.run().map(drop))?;
    let text_step = phase(timing, step.flops(), peak_rss_bytes().filter(|_| reset));
    let image_forward = if config.image_forward {
        let reset = reset_peak_rss();
        let timing = time_runs(config.warmup, config.iterations, || {
            clip.vision.forward(&images, None).map(drop)?;
            Ok(())
        })?;
        let flops = image_forward_flops(&clip_config, config.batch);
        Some(phase(timing, flops, peak_rss_bytes().filter(|_| reset)))
    } else {
        None
    };
    Ok(StepBenchReport {
        config: config.clone(),
        candle_threads: candle_core::utils::get_num_threads(),
        text_sequence_length: step.sequence_length(),
        trainable_parameters: step.trainable_parameters(),
        frozen_parameters: clip_config.parameter_count(),
        baseline_rss_bytes,
        gemm,
        text_step,
        image_forward,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn median_of_even_and_odd_counts() {
        assert_eq!(Timing::from_samples(vec![3.0, 1.0, 2.0]).median_ms, 2.0);
        let t = Timing::from_samples(vec![4.0, 1.0, 2.0, 3.0]);
        assert_eq!((t.median_ms, t.min_ms, t.max_ms), (2.5, 1.0, 4.0));
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
