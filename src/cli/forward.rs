//! `mvlpt forward`: one forward and backward pass of a prompt method on a few images, written
//! as tensors (logits, loss, the gradient of every trainable tensor and its initial value), for
//! checking a method against the reference implementation or inspecting its gradients.

use super::encode::{image_files, read_lines};
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use mvlpt_framework::config::LoadedConfig;
use mvlpt_framework::data::image::{decode_file, ExifOrientation};
use mvlpt_framework::data::transforms::{stack_batch, Pipeline};
use mvlpt_framework::engine::forward::{train_step, ImageInput};
use mvlpt_framework::engine::{BatchTargets, ForwardOptions, TaskMasking, TextFeatureCache};
use mvlpt_framework::method::import::read_prompt_tensors;
use mvlpt_framework::method::{ModelEnv, PromptLearner, StepContext};
use mvlpt_framework::model::tokenizer::ClipTokenizer;
use mvlpt_framework::model::{
    dtype_of, load_model, open_device, parse_device, parse_dtype, Clip, LoadOptions,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Arguments of `mvlpt forward`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model source (default: the config's `model.source`).
    #[arg(long)]
    model: Option<String>,
    /// `cpu`, `cuda` or `cuda:N` (default: the config's `model.device`).
    #[arg(long)]
    device: Option<String>,
    /// `f32`, `bf16` or `f16` (default: the config's `model.dtype`).
    #[arg(long)]
    dtype: Option<String>,
    /// An experiment file (`*.toml`) or the name of a method plugin (`coop`, `vpt`, ...).
    #[arg(long)]
    method: String,
    /// Config overrides `key=value` (e.g. `method.coop.n_ctx=4`), applied last.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Initial prompt tensors: safetensors under reference names, or a reference PyTorch
    /// checkpoint (`model-best.pth.tar`). Default: the config's `method.init_from`, else the
    /// method's own initialisation from the run seed.
    #[arg(long)]
    init: Option<PathBuf>,
    /// Directory of images (sorted by file name), transformed with CLIP's test transform.
    #[arg(long)]
    images: PathBuf,
    /// Class names, one per line.
    #[arg(long)]
    classes: PathBuf,
    /// One line per image: a class index, or several whitespace-separated indices (a
    /// multi-hot soft target, as the reference's multi-label loss).
    #[arg(long)]
    labels: PathBuf,
    /// Output .safetensors file.
    #[arg(long)]
    out: PathBuf,
    /// Evaluation mode (no prompt dropout) instead of training mode.
    #[arg(long)]
    eval: bool,
    /// Classes per text-tower chunk.
    #[arg(long, default_value_t = 512)]
    text_chunk: usize,
}

/// Resolves `--method`: an experiment file, or a method name selected on top of the defaults.
fn load_config(method: &str, sets: &[String]) -> Result<LoadedConfig> {
    let path = Path::new(method);
    if path.extension().is_some_and(|e| e == "toml") || path.is_file() {
        return LoadedConfig::load(Some(path), sets);
    }
    let mut all = vec![format!("method.name={method:?}")];
    all.extend(sets.iter().cloned());
    LoadedConfig::load(None, &all)
}

/// The method plugin named by the config, built from its options table.
fn build_method(config: &LoadedConfig) -> Result<Box<dyn PromptLearner>> {
    let name = &config.config.method.name;
    let registry = super::plugins::checked_registry(config)?;
    let factory = registry.method(name)?;
    factory(&config.section(format!("method.{name}")))
        .with_context(|| format!("building method `{name}` from [method.{name}]"))
}

/// Targets from the labels file: class indices, or multi-hot rows if any line lists several.
fn read_targets(
    path: &Path,
    images: usize,
    classes: usize,
    device: &Device,
) -> Result<BatchTargets> {
    let lines = read_lines(path)?;
    if lines.len() != images {
        bail!(
            "{}: {} label lines for {images} images",
            path.display(),
            lines.len()
        );
    }
    let rows = lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let row = line
                .split_whitespace()
                .map(|v| {
                    let c: usize = v.parse().with_context(|| {
                        format!(
                            "{} line {}: {v:?} is not a class index",
                            path.display(),
                            i + 1
                        )
                    })?;
                    if c >= classes {
                        bail!(
                            "{} line {}: class {c} outside the {classes} classes",
                            path.display(),
                            i + 1
                        );
                    }
                    Ok(c)
                })
                .collect::<Result<Vec<_>>>()?;
            if row.is_empty() {
                bail!("{} line {}: no class index", path.display(), i + 1);
            }
            Ok(row)
        })
        .collect::<Result<Vec<_>>>()?;
    if rows.iter().all(|r| r.len() == 1) {
        return Ok(BatchTargets::Labels(rows.iter().map(|r| r[0]).collect()));
    }
    let mut hot = vec![0f32; images * classes];
    for (i, row) in rows.iter().enumerate() {
        for &c in row {
            hot[i * classes + c] = 1.0;
        }
    }
    Ok(BatchTargets::Rows(Tensor::from_vec(
        hot,
        (images, classes),
        device,
    )?))
}

/// Normalised pixels `(n, 3, size, size)` of `files` with CLIP's test transform.
fn load_pixels(clip: &Clip, files: &[PathBuf], device: &Device) -> Result<Tensor> {
    let pipeline = Pipeline::clip_test(clip.config.vision.image_size)?;
    let mut rng = mvlpt_framework::rng::seeded(0);
    let tensors = files
        .iter()
        .map(|f| {
            let image = decode_file(f, ExifOrientation::Ignore)?;
            pipeline
                .apply(&image, &mut rng)
                .with_context(|| format!("transforming {}", f.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    stack_batch(&tensors, device)
}

/// Runs `mvlpt forward`.
pub fn run(args: Args) -> Result<()> {
    let config = load_config(&args.method, &args.sets)?;
    let model_config = &config.config.model;
    let options = LoadOptions {
        device: match &args.device {
            Some(name) => parse_device(name)?,
            None => open_device(model_config.device)?,
        },
        dtype: match &args.dtype {
            Some(name) => parse_dtype(name)?,
            None => dtype_of(model_config.dtype),
        },
        cache_dir: model_config.cache_dir.clone(),
    };
    let source = args.model.as_deref().unwrap_or(&model_config.source);
    let clip = load_model(source, &options, config.config.seed)?;
    let tokenizer = ClipTokenizer::new();
    let env = ModelEnv {
        clip: &clip,
        tokenizer: &tokenizer,
        device: &options.device,
    };
    let classes = read_lines(&args.classes)?;
    if classes.is_empty() {
        bail!("{} lists no classes", args.classes.display());
    }
    let files = image_files(&args.images)?;
    let targets = read_targets(&args.labels, files.len(), classes.len(), &options.device)?;
    let pixels = load_pixels(&clip, &files, &options.device)?;

    let mut method = build_method(&config)?;
    let mut rng = mvlpt_framework::rng::seeded(config.config.seed);
    method.bind(&env, &classes, &mut rng)?;
    let init = args.init.clone().or_else(|| {
        config
            .config
            .method
            .init_from
            .as_ref()
            .map(|p| config.resolve_path_of("method.init_from", Path::new(p)))
    });
    if let Some(path) = &init {
        let report = method.load_parameters(&read_prompt_tensors(path)?)?;
        if !report.unexpected.is_empty() {
            bail!(
                "{}: tensors {:?} are not parameters of method `{}` (its parameters: {:?})",
                path.display(),
                report.unexpected,
                config.config.method.name,
                method
                    .parameters()
                    .iter()
                    .map(|(n, _)| n.clone())
                    .collect::<Vec<_>>()
            );
        }
        for name in &report.missing {
            tracing::warn!(
                "{}: no value for `{name}`, keeping its initialisation",
                path.display()
            );
        }
    }

    let mut out: HashMap<String, Tensor> = HashMap::new();
    let parameters = method.parameters();
    for (name, var) in &parameters {
        out.insert(
            name.clone(),
            var.as_tensor().detach().to_device(&Device::Cpu)?,
        );
    }
    let mut step = if args.eval {
        StepContext::evaluation(&mut rng)
    } else {
        StepContext::training(files.len(), &mut rng)
    };
    let prompts = method.prompts(&env, &mut step)?;
    let result = train_step(
        &env,
        method.as_ref(),
        &prompts,
        ImageInput::Pixels(&pixels),
        &targets,
        &[],
        &mut TextFeatureCache::default(),
        ForwardOptions {
            text_chunk: args.text_chunk.max(1),
            masking: TaskMasking::None,
        },
    )?;
    out.insert(
        "logits".into(),
        result
            .logits
            .to_dtype(DType::F32)?
            .to_device(&Device::Cpu)?,
    );
    out.insert(
        "loss".into(),
        Tensor::new(result.loss as f32, &Device::Cpu)?,
    );
    for (name, var) in &parameters {
        let grad = result
            .grads
            .get(var.as_tensor())
            .with_context(|| format!("no gradient reached `{name}`"))?;
        out.insert(
            format!("grad.{name}"),
            grad.to_dtype(DType::F32)?.to_device(&Device::Cpu)?,
        );
    }
    candle_core::safetensors::save(&out, &args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!(
        "{}: loss {:.6}, {} trainable tensors, wrote {}",
        config.config.method.name,
        result.loss,
        parameters.len(),
        args.out.display()
    );
    Ok(())
}
