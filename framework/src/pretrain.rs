//! Contrastive pretraining of a whole CLIP (both towers and the logit scale) from scratch on the
//! image–caption pairs of a dataset plugin, with the same tower code and the real CLIP BPE
//! tokenizer that prompt tuning uses afterwards. This is how the embedded tiny model in
//! `models/` was made (`mvlpt pretrain experiments/pretrain-tiny.toml`).
//!
//! The objective is CLIP's symmetric InfoNCE with a learnable temperature clamped at 100;
//! pairs in a batch whose captions are identical count as matches of each other (soft targets)
//! rather than as negatives. AdamW with linear warm-up and cosine decay, weight decay on the
//! matrices only. A run lives in `<runs_dir>/<name>/`: it checkpoints every N steps and resumes
//! from its checkpoint when started again with the same recipe.

mod checkpoint;
mod config;
mod trainable;
mod zero_shot;

pub use checkpoint::{load_checkpoint, save_checkpoint, Checkpoint, CheckpointState};
pub use config::{
    LoadedPretrain, PretrainConfig, PretrainData, PretrainEval, PretrainOutput, PretrainTrain,
};
pub use trainable::{NamedVars, TrainableClip, LOGIT_SCALE};
pub use zero_shot::{class_features, image_batch, markdown_table, zero_shot, TaskAccuracy};

use crate::config::Section;
use crate::data::transforms::{stack_batch, ImageTensor};
use crate::data::{Dataset, DatasetContext, ImageSource, Split};
use crate::engine::loss::{cross_entropy, BatchTargets};
use crate::engine::{AdamWConfig, Decay, LrSchedule, Optimizer, OptimizerKind, Warmup};
use crate::model::tokenizer::ClipTokenizer;
use crate::model::{l2_normalize, parse_device, parse_dtype, Clip};
use crate::plugin::Registry;
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;
use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Optimiser groups: decayed matrices and undecayed rest.
const GROUPS: [&str; 2] = ["decay", "no_decay"];
/// File names inside a run directory.
const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
const METRICS_FILE: &str = "metrics.jsonl";
const CONFIG_FILE: &str = "config.json";
const RESULT_FILE: &str = "result.json";

/// CLIP's symmetric contrastive loss over a batch of paired features `(n, embed_dim)`:
/// the mean of the image→text and text→image cross-entropies of
/// `exp(logit_scale) · cos(image_i, text_j)`. Pairs whose captions are equal are each other's
/// targets too (uniformly), so duplicate captions are not pushed apart.
pub fn contrastive_loss(
    image_features: &Tensor,
    text_features: &Tensor,
    logit_scale: &Tensor,
    captions: &[String],
) -> Result<Tensor> {
    let n = captions.len();
    if image_features.dim(0)? != n || text_features.dim(0)? != n {
        bail!(
            "contrastive loss: {} images, {} texts, {n} captions",
            image_features.dim(0)?,
            text_features.dim(0)?
        );
    }
    let image = l2_normalize(image_features)?;
    let text = l2_normalize(text_features)?;
    let logits = image
        .matmul(&text.t()?)?
        .broadcast_mul(&logit_scale.exp()?)?;
    let same: Vec<f32> = (0..n * n)
        .map(|ij| f32::from(u8::from(captions[ij / n] == captions[ij % n])))
        .collect();
    let targets = Tensor::from_vec(same, (n, n), logits.device())?;
    let image_to_text = cross_entropy(&logits, &BatchTargets::Rows(targets.clone()))?;
    let text_to_image = cross_entropy(&logits.t()?, &BatchTargets::Rows(targets))?;
    Ok(((image_to_text + text_to_image)? * 0.5)?)
}

/// Builds dataset plugin `name` with its `[data.<name>]` options from the recipe.
pub fn build_dataset(
    loaded: &LoadedPretrain,
    registry: &Registry,
    name: &str,
) -> Result<Box<dyn Dataset>> {
    let factory = registry.dataset(name)?;
    factory(&DatasetContext {
        section: Section::new(&loaded.figment, format!("data.{name}")),
        root: loaded.resolve(&loaded.config.data.root),
    })
    .with_context(|| format!("building dataset `{name}`"))
}

/// How to run a recipe.
#[derive(Clone, Debug, Default)]
pub struct PretrainOptions {
    /// Discard an existing checkpoint (and metrics) of the run first.
    pub fresh: bool,
    /// Stop (after checkpointing) once this many steps have run in this call, to continue
    /// later; the model is exported only when the recipe's last step is done.
    pub stop_after: Option<usize>,
}

/// What a pretraining call did.
#[derive(Clone, Debug, Serialize)]
pub struct PretrainSummary {
    /// Step the call started from (0, or the resumed checkpoint's).
    pub started_at: usize,
    /// Steps completed in total.
    pub steps: usize,
    /// `(step, loss)` of every step run by this call.
    pub losses: Vec<(usize, f32)>,
    /// Training wall time over all sessions, in seconds.
    pub training_seconds: f64,
    /// Trainable parameters.
    pub parameters: usize,
    /// The exported model, once training is complete.
    pub export: Option<Export>,
}

/// The exported model and its evaluation.
#[derive(Clone, Debug, Serialize)]
pub struct Export {
    /// The model file.
    pub model_path: PathBuf,
    /// Its SHA-256.
    pub sha256: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// Zero-shot results of the exported model on `eval.tasks`.
    pub zero_shot: Vec<TaskAccuracy>,
}

/// Runs (or resumes) the recipe; when its last step is done, exports the model, evaluates it
/// zero-shot and writes `result.json` in the run directory.
pub fn pretrain(
    loaded: &LoadedPretrain,
    registry: &Registry,
    options: &PretrainOptions,
) -> Result<PretrainSummary> {
    let config = &loaded.config;
    let device = parse_device(&config.device)?;
    let run_dir = loaded.run_dir();
    std::fs::create_dir_all(&run_dir)
        .with_context(|| format!("creating run directory {}", run_dir.display()))?;
    crate::io::write_json_atomic(&run_dir.join(CONFIG_FILE), config)?;
    let checkpoint_path = run_dir.join(CHECKPOINT_FILE);
    if options.fresh {
        for file in [CHECKPOINT_FILE, METRICS_FILE, RESULT_FILE] {
            let path = run_dir.join(file);
            if path.exists() {
                std::fs::remove_file(&path)
                    .with_context(|| format!("removing {}", path.display()))?;
            }
        }
    }

    let dataset = build_dataset(loaded, registry, &config.data.dataset)?;
    let pairs = caption_pairs(dataset.as_ref())?;
    let (train_pipeline, _) = dataset.transforms(config.model.vision.image_size)?;
    tracing::info!(
        "pretraining {} on {} image–caption pairs of `{}`, batch {}, {} steps, run directory {}",
        config.name,
        pairs.len(),
        config.data.dataset,
        config.data.batch_size,
        config.train.steps,
        run_dir.display()
    );

    let mut session = Session::start(loaded, &device, &checkpoint_path)?;
    let started_at = session.step;
    let tokenizer = ClipTokenizer::new();
    let mut order = EpochOrder::new(config.seed, pairs.len());
    trim_metrics(&run_dir.join(METRICS_FILE), session.step)?;
    let mut metrics = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(run_dir.join(METRICS_FILE))
        .with_context(|| format!("opening {}", run_dir.join(METRICS_FILE).display()))?;
    let eval_sets = build_eval_sets(loaded, registry)?;
    let mut losses = Vec::new();
    let mut window = (0.0f64, 0usize, Instant::now());

    let last_step = match options.stop_after {
        Some(n) => (started_at + n).min(config.train.steps),
        None => config.train.steps,
    };
    while session.step < last_step {
        let step = session.step;
        let clock = Instant::now();
        let positions = order.batch(step, config.data.batch_size);
        let images = load_batch(
            dataset.as_ref(),
            &pairs,
            &positions,
            &train_pipeline,
            config.seed,
            &device,
        )?;
        let captions: Vec<String> = positions.iter().map(|&p| pairs[p].1.clone()).collect();
        let ids = tokenizer
            .tokenize_batch(&captions, config.model.text.context_length, true)
            .context("tokenizing captions")?;
        let loss = session.train_step(&images, &ids, &captions)?;
        session.elapsed += clock.elapsed().as_secs_f64();
        losses.push((step, loss));
        window.0 += f64::from(loss);
        window.1 += 1;

        let done = session.step;
        let lr = session.schedule.lr(step);
        writeln!(
            metrics,
            "{}",
            serde_json::json!({
                "step": done, "loss": loss, "lr": lr,
                "logit_scale": session.logit_scale()?, "elapsed_seconds": session.elapsed,
            })
        )
        .context("writing metrics.jsonl")?;
        if done % config.train.log_every == 0 || done == config.train.steps {
            let seconds = window.2.elapsed().as_secs_f64();
            let per_second = (window.1 * config.data.batch_size) as f64 / seconds.max(1e-9);
            let remaining = (config.train.steps - done) as f64 * seconds / window.1 as f64;
            tracing::info!(
                "step {done}/{} loss {:.4} lr {:.2e} scale {:.1} | {:.0} pairs/s, {} elapsed, ~{} left",
                config.train.steps,
                window.0 / window.1 as f64,
                lr,
                session.logit_scale()?,
                per_second,
                clock_text(session.elapsed),
                clock_text(remaining)
            );
            window = (0.0, 0, Instant::now());
        }
        if done % config.train.checkpoint_every == 0 || done == last_step {
            session.save(&checkpoint_path)?;
        }
        if config.eval.every > 0 && done % config.eval.every == 0 && done < config.train.steps {
            let clip = session.model.frozen_model()?;
            let limit = Some(config.eval.samples_during_training);
            let results = evaluate(&clip, &eval_sets, limit, config.eval.batch_size)?;
            let line: Vec<String> = results
                .iter()
                .map(|r| format!("{} {:.1}%", r.dataset, 100.0 * r.value))
                .collect();
            tracing::info!("step {done} zero-shot: {}", line.join(", "));
        }
    }

    let mut summary = PretrainSummary {
        started_at,
        steps: session.step,
        losses,
        training_seconds: session.elapsed,
        parameters: session.model.parameter_count(),
        export: None,
    };
    if session.step < config.train.steps {
        tracing::info!(
            "stopped at step {} of {}; run the same command again to continue",
            session.step,
            config.train.steps
        );
        return Ok(summary);
    }
    summary.export = Some(export(loaded, &session.model, &eval_sets, &device)?);
    crate::io::write_json_atomic(&run_dir.join(RESULT_FILE), &summary_record(&summary))?;
    Ok(summary)
}

/// Saves the model in the recipe's storage type, then reloads it through the ordinary loader
/// and evaluates exactly what was written.
fn export(
    loaded: &LoadedPretrain,
    model: &TrainableClip,
    eval_sets: &[Box<dyn Dataset>],
    device: &Device,
) -> Result<Export> {
    let config = &loaded.config;
    let model_path = loaded.model_path();
    let dtype = parse_dtype(&config.output.dtype)?;
    crate::model::weights::save_clip(&model.frozen_model()?, &model_path, dtype)?;
    let (sha256, bytes) = sha256_file(&model_path)?;
    tracing::info!(
        "exported {} ({bytes} bytes, sha256 {sha256})",
        model_path.display()
    );
    let exported = crate::model::load_model(
        &model_path.to_string_lossy(),
        &crate::model::LoadOptions {
            device: device.clone(),
            ..Default::default()
        },
        0,
    )?;
    let zero_shot = evaluate(&exported, eval_sets, None, config.eval.batch_size)?;
    if !zero_shot.is_empty() {
        tracing::info!(
            "zero-shot accuracy of the exported model:\n{}",
            markdown_table(&zero_shot)
        );
    }
    Ok(Export {
        model_path,
        sha256,
        bytes,
        zero_shot,
    })
}

/// Drops metric lines of steps after `step` (written after the checkpoint a run resumes from).
fn trim_metrics(path: &Path, step: usize) -> Result<()> {
    if !path.is_file() {
        return Ok(());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let kept: Vec<&str> = text
        .lines()
        .filter(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v["step"].as_u64())
                .is_some_and(|s| s as usize <= step)
        })
        .collect();
    let mut out = kept.join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    crate::io::write_atomic(path, out.as_bytes())
}

/// The result file's content (the summary without the per-step losses).
fn summary_record(summary: &PretrainSummary) -> serde_json::Value {
    serde_json::json!({
        "steps": summary.steps,
        "training_seconds": summary.training_seconds,
        "parameters": summary.parameters,
        "export": summary.export,
        "framework_version": crate::version(),
    })
}

/// Zero-shot results of `clip` on the recipe's `eval.tasks` (the whole test splits).
pub fn evaluate_recipe(
    loaded: &LoadedPretrain,
    registry: &Registry,
    clip: &Clip,
) -> Result<Vec<TaskAccuracy>> {
    let sets = build_eval_sets(loaded, registry)?;
    evaluate(clip, &sets, None, loaded.config.eval.batch_size)
}

fn build_eval_sets(loaded: &LoadedPretrain, registry: &Registry) -> Result<Vec<Box<dyn Dataset>>> {
    loaded
        .config
        .eval
        .tasks
        .iter()
        .map(|name| build_dataset(loaded, registry, name))
        .collect()
}

fn evaluate(
    clip: &Clip,
    sets: &[Box<dyn Dataset>],
    limit: Option<usize>,
    batch_size: usize,
) -> Result<Vec<TaskAccuracy>> {
    sets.iter()
        .map(|d| zero_shot(clip, d.as_ref(), limit, batch_size))
        .collect()
}

/// The training split's (image, caption) pairs; every sample must have a caption.
fn caption_pairs(dataset: &dyn Dataset) -> Result<Vec<(ImageSource, String)>> {
    let name = &dataset.info().name;
    let samples = dataset.samples(Split::Train)?;
    if samples.len() < 2 {
        bail!(
            "dataset {name}: {} training samples; pretraining needs pairs to contrast",
            samples.len()
        );
    }
    samples
        .into_iter()
        .enumerate()
        .map(|(i, s)| match s.caption {
            Some(caption) => Ok((s.image, caption)),
            None => bail!(
                "dataset {name}: training sample {i} ({}) has no caption; pretraining needs image–caption pairs (for `synthetic`, set data.synthetic.pretraining = true)",
                s.image
            ),
        })
        .collect()
}

/// Loads, transforms and stacks the images at `positions` in parallel. Random transforms draw
/// from a generator seeded by the run seed and the position, so a batch never depends on
/// thread scheduling or on where a run was resumed.
fn load_batch(
    dataset: &dyn Dataset,
    pairs: &[(ImageSource, String)],
    positions: &[usize],
    pipeline: &crate::data::transforms::Pipeline,
    seed: u64,
    device: &Device,
) -> Result<Tensor> {
    let images: Vec<ImageTensor> = positions
        .par_iter()
        .map(|&p| {
            let sample = crate::data::Sample {
                image: pairs[p].0.clone(),
                labels: Vec::new(),
                caption: None,
            };
            let image = dataset
                .load_image(&sample)
                .with_context(|| format!("loading {}", sample.image))?;
            let mut rng = crate::rng::seeded(seed ^ (p as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            pipeline.apply(&image, &mut rng)
        })
        .collect::<Result<_>>()?;
    stack_batch(&images, device)
}

/// The order in which pairs are visited: a fresh permutation per epoch, derived from the seed
/// and the epoch number alone, so step `s` always sees the same batch.
struct EpochOrder {
    seed: u64,
    len: usize,
    cached: Option<(usize, Vec<usize>)>,
}

impl EpochOrder {
    fn new(seed: u64, len: usize) -> Self {
        Self {
            seed,
            len,
            cached: None,
        }
    }

    fn permutation(&mut self, epoch: usize) -> &[usize] {
        if self.cached.as_ref().map(|(e, _)| *e) != Some(epoch) {
            let mut order: Vec<usize> = (0..self.len).collect();
            let mut rng =
                crate::rng::seeded(self.seed.wrapping_add(0x0E90_C400_0000_0000) ^ epoch as u64);
            order.shuffle(&mut rng);
            self.cached = Some((epoch, order));
        }
        &self.cached.as_ref().expect("just filled").1
    }

    /// Pair indices of step `step`'s batch.
    fn batch(&mut self, step: usize, batch_size: usize) -> Vec<usize> {
        (step * batch_size..(step + 1) * batch_size)
            .map(|p| {
                let (epoch, offset) = (p / self.len, p % self.len);
                self.permutation(epoch)[offset]
            })
            .collect()
    }
}

/// The trainable state of a run.
struct Session {
    model: TrainableClip,
    optimizers: Vec<(&'static str, Optimizer)>,
    schedule: LrSchedule,
    max_logit_scale: f64,
    step: usize,
    elapsed: f64,
    trajectory: serde_json::Value,
}

impl Session {
    /// Resumes from `checkpoint` when it exists (same trajectory required), else starts from
    /// CLIP's random initialisation.
    fn start(loaded: &LoadedPretrain, device: &Device, checkpoint: &Path) -> Result<Self> {
        let config = &loaded.config;
        let trajectory = config.trajectory()?;
        let resumed = if checkpoint.is_file() {
            let ckpt = load_checkpoint(checkpoint, &GROUPS, device)?;
            if ckpt.state.trajectory != trajectory {
                bail!(
                    "{} was written by a different recipe ({}); rerun with --fresh to start over, or restore the recipe",
                    checkpoint.display(),
                    first_difference(&ckpt.state.trajectory, &trajectory)
                );
            }
            Some(ckpt)
        } else {
            None
        };
        let model = match &resumed {
            Some(ckpt) => {
                TrainableClip::from_state_dict(&config.model, ckpt.model.clone(), device)?
            }
            None => TrainableClip::random(&config.model, config.seed, device)?,
        };
        let t = &config.train;
        let adamw = |weight_decay| {
            OptimizerKind::AdamW(AdamWConfig {
                betas: t.betas,
                eps: t.adam_eps,
                weight_decay,
            })
        };
        let (decay, no_decay) = model.decay_groups();
        let mut optimizers = vec![
            (GROUPS[0], Optimizer::new(adamw(t.weight_decay), decay)?),
            (GROUPS[1], Optimizer::new(adamw(0.0), no_decay)?),
        ];
        let (step, elapsed) = match &resumed {
            Some(ckpt) => {
                for (group, optimizer) in &mut optimizers {
                    let steps = ckpt.state.optimizer_steps.get(*group).copied().unwrap_or(0);
                    let empty = Default::default();
                    let tensors = ckpt.optimizers.get(*group).unwrap_or(&empty);
                    optimizer.load_state(tensors, steps)?;
                }
                tracing::info!(
                    "resuming from {} at step {}",
                    checkpoint.display(),
                    ckpt.state.step
                );
                (ckpt.state.step, ckpt.state.elapsed_seconds)
            }
            None => (0, 0.0),
        };
        let schedule = LrSchedule {
            base_lr: t.lr,
            epochs: t.steps - t.warmup_steps,
            decay: Decay::Cosine,
            warmup: if t.warmup_steps == 0 {
                Warmup::None
            } else {
                Warmup::Linear {
                    epochs: t.warmup_steps,
                    min_lr: t.lr / t.warmup_steps as f64,
                }
            },
        };
        Ok(Self {
            model,
            optimizers,
            schedule,
            max_logit_scale: t.max_logit_scale,
            step,
            elapsed,
            trajectory,
        })
    }

    /// One optimiser step on a batch; returns the loss before the update.
    fn train_step(
        &mut self,
        images: &Tensor,
        ids: &[Vec<u32>],
        captions: &[String],
    ) -> Result<f32> {
        let clip = self.model.model()?;
        let image_features = clip.encode_image(images)?;
        let text_features = clip.encode_text(ids)?;
        let loss = contrastive_loss(&image_features, &text_features, &clip.logit_scale, captions)?;
        let value = loss.to_scalar::<f32>()?;
        if !value.is_finite() {
            bail!("loss became {value} at step {}", self.step);
        }
        let grads = loss.backward()?;
        let lr = self.schedule.lr(self.step);
        for (_, optimizer) in &mut self.optimizers {
            optimizer.step(&grads, lr)?;
        }
        self.model.clamp_logit_scale(self.max_logit_scale)?;
        self.step += 1;
        Ok(value)
    }

    fn logit_scale(&self) -> Result<f64> {
        let var = self
            .model
            .vars()
            .get(LOGIT_SCALE)
            .context("no logit_scale")?;
        Ok(f64::from(var.as_tensor().to_scalar::<f32>()?).exp())
    }

    fn save(&self, path: &Path) -> Result<()> {
        let state = CheckpointState {
            step: self.step,
            elapsed_seconds: self.elapsed,
            optimizer_steps: self
                .optimizers
                .iter()
                .map(|(g, o)| (g.to_string(), o.steps()))
                .collect(),
            trajectory: self.trajectory.clone(),
            framework_version: crate::version().to_string(),
        };
        let optimizers: Vec<(&str, &Optimizer)> =
            self.optimizers.iter().map(|(g, o)| (*g, o)).collect();
        save_checkpoint(path, &self.model.state_dict(), &optimizers, &state)
    }
}

/// The first key path where two JSON values differ, with both values.
fn first_difference(old: &serde_json::Value, new: &serde_json::Value) -> String {
    fn walk(a: &serde_json::Value, b: &serde_json::Value, path: &str) -> Option<String> {
        match (a, b) {
            (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
                let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                keys.into_iter().find_map(|k| {
                    let null = serde_json::Value::Null;
                    let sub = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(x.get(k).unwrap_or(&null), y.get(k).unwrap_or(&null), &sub)
                })
            }
            _ if a != b => Some(format!("`{path}` was {a}, now {b}")),
            _ => None,
        }
    }
    walk(old, new, "").unwrap_or_else(|| "no visible difference".into())
}

/// SHA-256 (hex) and size of a file.
pub fn sha256_file(path: &Path) -> Result<(String, u64)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let digest = Sha256::digest(&bytes);
    let hex = digest.iter().map(|b| format!("{b:02x}")).collect();
    Ok((hex, bytes.len() as u64))
}

/// `1h02m`, `3m05s`, `12s`.
fn clock_text(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m{sec:02}s"),
        (h, m, _) => format!("{h}h{m:02}m"),
    }
}

#[cfg(test)]
mod tests;
