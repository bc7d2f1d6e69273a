//! `mvlpt bench step`: time one training step and print a JSON report.
//!
//! Without `--method` it runs the fixed CoOp text step and image-tower forward of
//! [`mvlpt_bench::run_step_bench`] (crate `framework/bench`) (the like-for-like comparison with PyTorch in
//! `benches/compare_step.py`). With `--method` it times one step of any method plugin through
//! the engine's own training step (`engine::forward::train_step`, with text chunking), so that
//! method variants and label-space sizes can be compared: step time, peak memory, trainable
//! parameters and an estimate of the FLOPs.

use anyhow::{Context, Result};
use mvlpt_bench::{
    current_rss_bytes, image_forward_flops, peak_rss_bytes, reset_peak_rss, run_step_bench,
    text_step_flops, StepBenchConfig, Timing,
};
use mvlpt_framework::config::LoadedConfig;
use mvlpt_framework::engine::forward::{train_step, ImageInput};
use mvlpt_framework::engine::{BatchTargets, ForwardOptions, TaskMasking, TextFeatureCache};
use mvlpt_framework::method::{ModelEnv, StepContext, TextPrompts};
use mvlpt_framework::model::tokenizer::ClipTokenizer;
use mvlpt_framework::model::{load_model, LoadOptions};
use serde::Serialize;
use std::time::Instant;

/// Arguments of `mvlpt bench`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(clap::Subcommand, Debug)]
enum BenchCommand {
    /// Time one training step (see the module documentation) and print JSON.
    Step(StepArgs),
}

#[derive(clap::Args, Debug)]
struct StepArgs {
    /// A method plugin (`coop`, `vpt`, `upt`, `cocoop`, …) timed through the engine; without
    /// it, the fixed CoOp text step and image forward compared with PyTorch.
    #[arg(long)]
    method: Option<String>,
    /// Method options, as in an experiment (`--set method.vpt.deep=false`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// CLIP preset with random weights (`ViT-B/32`, `ViT-B/16`, `tiny`, …) or any model source.
    #[arg(long, default_value = "ViT-B/32")]
    preset: String,
    /// Number of classes (prompts per text step).
    #[arg(long, default_value_t = 10)]
    classes: usize,
    /// Images per step.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Classes per text-tower chunk with a graph (0: all classes in one graph, unchunked).
    #[arg(long, default_value_t = 128)]
    text_chunk: usize,
    /// Token positions of each prompt of the fixed CoOp step (without --method; 77 is CLIP's).
    #[arg(long, default_value_t = 77)]
    context_length: usize,
    /// Learned context vectors of the fixed CoOp step (without --method).
    #[arg(long, default_value_t = 16)]
    n_ctx: usize,
    /// Run the fixed step on the full 77 positions like PyTorch's CLIP (without --method).
    #[arg(long)]
    no_cut: bool,
    /// Skip the image-tower forward of the fixed step (without --method).
    #[arg(long)]
    no_image: bool,
    /// Untimed steps first.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Timed steps (the median is reported).
    #[arg(long, default_value_t = 10)]
    iterations: usize,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Seed of the random weights and inputs.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Runs `mvlpt bench`.
pub fn run(args: Args) -> Result<()> {
    let BenchCommand::Step(step) = args.command;
    let threads = step
        .threads
        .unwrap_or_else(candle_core::utils::get_num_threads);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("building the benchmark's thread pool")?;
    let json = pool.install(|| -> Result<String> {
        match &step.method {
            None => {
                let config = StepBenchConfig {
                    preset: step.preset.clone(),
                    classes: step.classes,
                    context_length: step.context_length,
                    n_ctx: step.n_ctx,
                    batch: step.batch,
                    cut_after_eot: !step.no_cut,
                    image_forward: !step.no_image,
                    warmup: step.warmup,
                    iterations: step.iterations,
                    threads,
                    seed: step.seed,
                };
                Ok(serde_json::to_string_pretty(&run_step_bench(&config)?)?)
            }
            Some(method) => Ok(serde_json::to_string_pretty(&method_step(
                &step, method, threads,
            )?)?),
        }
    })?;
    println!("{json}");
    Ok(())
}

/// The JSON report of `mvlpt bench step --method`.
#[derive(Serialize)]
struct MethodStepReport {
    method: String,
    model: String,
    classes: usize,
    batch: usize,
    /// Classes per text chunk (0 = unchunked).
    text_chunk: usize,
    threads: usize,
    trainable_parameters: usize,
    /// Whether the text tower runs with a graph (learned text prompts) or once, cached.
    text_learned: bool,
    /// Whether the image tower runs with a graph (visual prompts).
    image_prompted: bool,
    /// Step time: forward, loss and backward to the prompts (no optimiser update).
    step: Timing,
    /// Estimated FLOPs per step: each tower's forward, plus twice that for the backward pass
    /// through a prompted tower; a frozen, cached text side counts nothing.
    flops_estimate: u64,
    /// Resident memory after building the model, method and inputs.
    baseline_rss_bytes: Option<u64>,
    /// Peak resident memory during the timed steps (Linux `VmHWM`, reset before them).
    peak_rss_bytes: Option<u64>,
}

fn method_step(args: &StepArgs, method_name: &str, threads: usize) -> Result<MethodStepReport> {
    let mut sets = vec![format!("method.name={method_name:?}")];
    sets.extend(args.sets.iter().cloned());
    let config = LoadedConfig::load(None, &sets)?;
    // A preset name means random weights at that size; anything else is a model source.
    let source = if is_preset(&args.preset) {
        format!("random:{}", args.preset)
    } else {
        args.preset.clone()
    };
    let options = LoadOptions::default();
    let clip = load_model(&source, &options, args.seed)?;
    let tokenizer = ClipTokenizer::new();
    let device = options.device.clone();
    let env = ModelEnv {
        clip: &clip,
        tokenizer: &tokenizer,
        device: &device,
    };
    let registry = super::plugins::checked_registry(&config)?;
    let mut method = mvlpt_framework::engine::trainer::build_method(&config, &registry)?;
    let classes: Vec<String> = (0..args.classes).map(|i| format!("class {i}")).collect();
    let mut rng = mvlpt_framework::rng::seeded(args.seed);
    method.bind(&env, &classes, &mut rng)?;
    let trainable_parameters = method
        .parameters()
        .iter()
        .map(|(_, v)| v.as_tensor().elem_count())
        .sum();
    let size = clip.config.vision.image_size;
    let pixels =
        mvlpt_framework::rng::normal((args.batch, 3, size, size), 0.0, 1.0, &mut rng, &device)?;
    let targets = BatchTargets::Labels((0..args.batch).map(|i| i % args.classes).collect());
    let ranges = vec![(0, args.classes); args.batch];
    let forward = ForwardOptions {
        text_chunk: if args.text_chunk == 0 {
            usize::MAX
        } else {
            args.text_chunk
        },
        masking: TaskMasking::None,
    };
    let mut cache = TextFeatureCache::default();
    // Text FLOPs per step from the prompt layout: the text tower runs (and is differentiated)
    // over the classes once with learned context, once per image with conditional context.
    let text_flops = |text: &TextPrompts| -> u64 {
        let flops = |template: &mvlpt_framework::method::ContextTemplate| {
            let len = template.eot.iter().max().map_or(0, |e| e + 1);
            text_step_flops(&clip.config, args.classes, len, args.batch)
        };
        match text {
            TextPrompts::Context { template, .. } => flops(template),
            TextPrompts::Conditional { template, .. } => args.batch as u64 * flops(template),
            TextPrompts::Fixed(_) | TextPrompts::Features(_) => 0,
        }
    };
    let mut step = |rng: &mut mvlpt_framework::rng::Rng| -> Result<(bool, bool, u64)> {
        let prompts = method.prompts(&env, &mut StepContext::training(args.batch, rng))?;
        let text_learned = matches!(
            prompts.text,
            TextPrompts::Context { .. } | TextPrompts::Conditional { .. }
        );
        let text = text_flops(&prompts.text);
        let image_prompted = prompts.visual.is_some();
        let result = train_step(
            &env,
            method.as_ref(),
            &prompts,
            ImageInput::Pixels(&pixels),
            &targets,
            &ranges,
            &mut cache,
            forward,
        )?;
        drop(result);
        Ok((text_learned, image_prompted, text))
    };
    for _ in 0..args.warmup {
        step(&mut rng)?;
    }
    let baseline_rss_bytes = current_rss_bytes();
    reset_peak_rss();
    let mut samples = Vec::with_capacity(args.iterations);
    let mut shape = (false, false, 0);
    for _ in 0..args.iterations.max(1) {
        let started = Instant::now();
        shape = step(&mut rng)?;
        samples.push(started.elapsed().as_secs_f64() * 1e3);
    }
    let peak = peak_rss_bytes();
    let (text_learned, image_prompted, text) = shape;
    let image = image_forward_flops(&clip.config, args.batch) * if image_prompted { 3 } else { 1 };
    Ok(MethodStepReport {
        method: method_name.to_string(),
        model: source,
        classes: args.classes,
        batch: args.batch,
        text_chunk: args.text_chunk,
        threads,
        trainable_parameters,
        text_learned,
        image_prompted,
        step: Timing::from_samples(samples),
        flops_estimate: text + image,
        baseline_rss_bytes,
        peak_rss_bytes: peak,
    })
}

fn is_preset(name: &str) -> bool {
    mvlpt_framework::model::ClipConfig::preset(name).is_ok()
}
