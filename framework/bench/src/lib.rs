//! Benchmarks of one prompt-tuning step: the code behind `mvlpt bench step`, the criterion
//! bench (`benches/step.rs`) and `benches/compare_step.py`, which runs PyTorch's version of the same computation
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

//!
//! This crate sits on top of the framework and is no part of it: the framework never imports
//! it. [`coop_step`] holds the benchmark's own CoOp text step (synthetic token ids, the same
//! computation as `benches/reference_step.py`, so that both sides time the same thing);
//! [`measure`] holds timing, memory and FLOP counting.

pub mod coop_step;
pub mod measure;

pub use coop_step::{
    coop_token_ids, CoopTextStep, END_OF_TEXT, FULL_STOP, PLACEHOLDER, START_OF_TEXT,
};
pub use measure::{
    current_rss_bytes, image_forward_flops, measure_gemm_rate, peak_rss_bytes, reset_peak_rss,
    text_step_flops, time_runs, GemmRate, PhaseReport, Timing,
};

use anyhow::{Context, Result};
use candle_core::{DType, Device};
use mvlpt_framework::model::{Clip, ClipConfig};
use mvlpt_framework::rng;
use serde::Serialize;

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
