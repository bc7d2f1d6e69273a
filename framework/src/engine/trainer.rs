//! The training loop (§4): few-shot data → prompt method → SGD/AdamW with a per-epoch
//! schedule → validation-based model selection → test with the selected prompts. Resumable
//! from the checkpoint of the last completed epoch, and deterministic on the CPU: the same
//! config and seed give bit-identical metrics, interrupted or not.

pub use super::build::{build_method, build_model, evaluator};

use super::build::optimizer;
use super::checkpoint::{self, CheckpointRecord};
use super::data::RunDatasets;
use super::forward::{train_step, ForwardOptions, ImageInput, TextFeatureCache};
use super::loss::{BatchTargets, TaskMasking};
use super::run_state::Run;
use super::schedule::LrSchedule;
use crate::config::{LoadedConfig, SelectChoice, TaskMaskingChoice};
use crate::data::loader::{BatchStream, LoaderOptions, SampleSet};
use crate::data::{SampleMeta, Split};
use crate::eval::metrics::EvalKey;
use crate::eval::EvalReport;
use crate::method::{ModelEnv, StepContext};
use crate::model::tokenizer::ClipTokenizer;
use crate::plugin::Registry;
use crate::rng::{self, Rng};
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Where a run writes: its directory, its checkpoints and its metrics log.
pub trait RunSink {
    /// The run directory.
    fn dir(&self) -> &Path;
    /// Appends one record to `metrics.jsonl`.
    fn log_metrics(&mut self, record: &serde_json::Value) -> Result<()>;
    /// Directory of resumable checkpoints.
    fn checkpoint_dir(&self) -> PathBuf {
        self.dir().join("checkpoints")
    }
}

/// What a finished training run reports.
#[derive(Clone, Debug, Serialize)]
pub struct TrainOutcome {
    /// Test metrics with the selected prompts.
    pub test: EvalReport,
    /// Best validation metrics (None without validation); for a run that trains nothing, the
    /// validation value of its prompts.
    pub val: Option<f64>,
    /// Epoch (0-based) of the selected prompts (None when nothing was selected: no validation,
    /// or no epoch).
    pub selected_epoch: Option<usize>,
    /// Epochs trained (0 when nothing trains: `train.epochs = 0` or a method without
    /// trainable parameters).
    pub epochs: usize,
    /// Trainable parameters of the method.
    pub trainable_parameters: usize,
    /// Number of training / validation / test samples.
    pub samples: [usize; 3],
    /// Remarks (protocol fallbacks, skipped images).
    pub notes: Vec<String>,
    /// Measurements of the prompts that are not test metrics: `class_text_cosine_start` and
    /// `class_text_cosine` (see [`super::run_state::Run::class_text_cosine`]) before training
    /// and with the selected prompts.
    pub diagnostics: BTreeMap<String, f64>,
}

/// Seed streams of a run, kept apart so that changing one use of randomness does not shift
/// the others.
fn stream_seed(seed: u64, stream: u64) -> u64 {
    crate::data::loader::sample_seed(seed, stream as usize, usize::MAX)
}

/// Targets of the samples `indices` of `set`.
fn batch_targets(
    set: &SampleSet,
    indices: &[usize],
    classes: usize,
    multilabel: bool,
    device: &Device,
) -> Result<BatchTargets> {
    if multilabel {
        let mut rows = vec![0f32; indices.len() * classes];
        for (r, &i) in indices.iter().enumerate() {
            for &l in &set.items[i].1.labels {
                rows[r * classes + l] = 1.0;
            }
        }
        Ok(BatchTargets::Rows(Tensor::from_vec(
            rows,
            (indices.len(), classes),
            device,
        )?))
    } else {
        let labels = indices
            .iter()
            .map(|&i| {
                set.items[i]
                    .1
                    .label()
                    .with_context(|| format!("sample {} has no label", set.items[i].1.image))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(BatchTargets::Labels(labels))
    }
}

/// Trains and tests the configured method, writing metrics and checkpoints through `sink`.
pub fn train(
    loaded: &LoadedConfig,
    registry: &Registry,
    sink: &mut dyn RunSink,
) -> Result<TrainOutcome> {
    let config = &loaded.config;
    let started = Instant::now();
    let clip = build_model(loaded)?;
    let device = clip.text.token_embedding.device().clone();
    let datasets = RunDatasets::open(loaded, registry, clip.config.vision.image_size)?;
    let mut method = build_method(loaded, registry)?;
    let tokenizer = ClipTokenizer::new();
    let mut init_rng = rng::seeded(stream_seed(config.seed, 1));
    method.set_class_templates(&datasets.space.class_templates);
    method.bind(
        &ModelEnv {
            clip: &clip,
            tokenizer: &tokenizer,
            device: &device,
        },
        &datasets.space.classnames,
        &mut init_rng,
    )?;
    if let Some(source) = &config.method.init_from {
        let path = loaded.resolve_path_of("method.init_from", Path::new(source));
        let tensors = checkpoint::load_prompts(&path, &device)?;
        let report = method.load_parameters(&tensors)?;
        tracing::info!(
            "initialised prompts from {}: loaded {:?}, kept {:?}",
            path.display(),
            report.loaded,
            report.missing
        );
        if report.loaded.is_empty() {
            bail!(
                "method.init_from = {}: no tensor matches the method's parameters {:?}",
                path.display(),
                report.missing
            );
        }
    }
    let params = method.parameters();
    let trainable: usize = params.iter().map(|(_, v)| v.elem_count()).sum();
    tracing::info!(
        "method `{}`: {} trainable parameters in {} tensors",
        config.method.name,
        trainable,
        params.len()
    );
    // Nothing to train: no epochs run (they would change nothing), and no training split is
    // required.
    let untrained = if config.train.epochs == 0 {
        Some("train.epochs = 0".to_string())
    } else if params.is_empty() {
        Some(format!(
            "method `{}` has no trainable parameters",
            config.method.name
        ))
    } else {
        None
    };
    let trains = untrained.is_none();
    let mut data = datasets.into_run_data(loaded, registry, trains)?;
    if let Some(reason) = &untrained {
        data.notes.push(format!(
            "nothing trains ({reason}): the prompts are evaluated as they are, without epochs"
        ));
    }
    data.write_split(sink.dir())?;
    for note in &data.notes {
        tracing::info!("{note}");
    }
    tracing::info!(
        "{} classes in {} task(s); {} train / {} val / {} test samples",
        data.space.classnames.len(),
        data.space.tasks.len(),
        data.train.len(),
        data.val.len(),
        data.test.len()
    );
    let epochs = if trains { config.train.epochs } else { 0 };
    let masking = match config.data.task_masking {
        TaskMaskingChoice::None => TaskMasking::None,
        TaskMaskingChoice::Zero => TaskMasking::Zero,
        TaskMaskingChoice::NegInfinity => TaskMasking::NegInfinity,
    };
    let loader = LoaderOptions {
        pipelines: data.train_pipelines.clone(),
        prefetch: config.data.prefetch,
        on_bad_image: config.data.on_bad_image.into(),
        seed: config.seed,
        epoch: 0,
    };
    let mut run = Run {
        loaded,
        clip,
        tokenizer,
        device: device.clone(),
        data,
        evaluator: evaluator(loaded, registry)?,
        key: match config.eval.key.as_str() {
            "average" => EvalKey::Average,
            task => EvalKey::Task(task.to_string()),
        },
        method,
        forward: ForwardOptions {
            text_chunk: config.train.text_chunk.max(1),
            masking,
        },
        loader,
        text_cache: TextFeatureCache::default(),
        feature_cache: HashMap::new(),
    };
    // The text head before training (the initial or transferred prompts; a resumed run still
    // holds them here, before its checkpoint is loaded).
    let mut diagnostics = BTreeMap::new();
    if let Some(cosine) = run.class_text_cosine()? {
        diagnostics.insert("class_text_cosine_start".to_string(), cosine);
    }
    let sampler_factory = registry.sampler(&config.data.sampler)?;
    let sampler = sampler_factory(&loaded.section(format!("data.{}", config.data.sampler)))?;
    let schedule = LrSchedule::from_config(&config.train)?;
    let mut optim = optimizer(loaded, params.clone())?;
    let mut step_rng = rng::seeded(stream_seed(config.seed, 2));
    let mut best: Option<(f64, usize)> = None;
    let mut best_prompts: Vec<(String, Tensor)> = Vec::new();
    let mut start_epoch = 0;
    let ckpt_dir = sink.checkpoint_dir();
    if trains {
        std::fs::create_dir_all(&ckpt_dir)
            .with_context(|| format!("creating {}", ckpt_dir.display()))?;
    }
    if let Some(ckpt) = checkpoint::load(&ckpt_dir, &device)?.filter(|_| trains) {
        let report = crate::method::load_named(&params, &ckpt.params)?;
        if !report.missing.is_empty() {
            bail!(
                "checkpoint in {} lacks prompt tensors {:?}",
                ckpt_dir.display(),
                report.missing
            );
        }
        optim.load_state(&ckpt.optimizer, ckpt.record.optimizer_steps)?;
        best = ckpt.record.best;
        best_prompts = params
            .iter()
            .filter_map(|(n, _)| ckpt.best.get(n).map(|t| (n.clone(), t.clone())))
            .collect();
        step_rng = ckpt.record.rng.clone();
        start_epoch = ckpt.record.epochs_done;
        tracing::info!(
            "resuming after epoch {start_epoch} from {}",
            ckpt_dir.display()
        );
    }
    let metas: Vec<SampleMeta> = run
        .data
        .train
        .items
        .iter()
        .map(|(t, s)| SampleMeta {
            task: *t,
            label: s.label(),
        })
        .collect();
    let task_ranges: Vec<(usize, usize)> = run
        .data
        .space
        .tasks
        .iter()
        .map(|t| (t.start, t.end))
        .collect();
    let select_best = config.train.select == SelectChoice::BestVal
        && !run.data.val.is_empty()
        && config.train.eval_every > 0;
    if config.train.select == SelectChoice::BestVal && !select_best && trains {
        tracing::warn!(
            "no validation (empty val split or eval_every = 0): testing the last prompts"
        );
    }
    let classes = run.data.space.classnames.len();
    for epoch in start_epoch..epochs {
        let epoch_start = Instant::now();
        let lr = schedule.lr(epoch);
        let batches = sampler.batches(&metas, config.data.batch_size, config.seed, epoch)?;
        let progress = super::progress::Progress::new(
            format!("epoch {}/{}", epoch + 1, config.train.epochs),
            batches.len() as u64,
        );
        let train_cached = run.cached_features(Split::Train)?;
        let (mut loss_sum, mut correct, mut seen, mut steps) = (0f64, 0usize, 0usize, 0usize);
        let mut scored = 0usize;
        // The method's own loss terms (e.g. a regulariser), summed like the loss.
        let mut term_sums: std::collections::BTreeMap<String, f64> = Default::default();
        // Training images dropped under data.on_bad_image = "skip" this epoch.
        let mut skipped_images = 0usize;
        let mut waited = 0.0;
        let mut process = |run: &mut Run<'_>,
                           indices: &[usize],
                           images: ImageInput<'_>,
                           step_rng: &mut Rng|
         -> Result<()> {
            let targets = batch_targets(
                &run.data.train,
                indices,
                classes,
                run.data.space.multilabel,
                &run.device,
            )?;
            let ranges: Vec<(usize, usize)> = indices
                .iter()
                .map(|&i| task_ranges[run.data.train.items[i].0])
                .collect();
            let env = ModelEnv {
                clip: &run.clip,
                tokenizer: &run.tokenizer,
                device: &run.device,
            };
            let prompts = run
                .method
                .prompts(&env, &mut StepContext::training(indices.len(), step_rng))?;
            let result = train_step(
                &env,
                run.method.as_ref(),
                &prompts,
                images,
                &targets,
                &ranges,
                &mut run.text_cache,
                run.forward,
            )?;
            if !result.loss.is_finite() {
                bail!(
                    "loss is {} at epoch {} step {} ({})",
                    result.loss,
                    epoch + 1,
                    steps + 1,
                    checkpoint::kept(&ckpt_dir)?
                );
            }
            optim.step(&result.grads, lr)?;
            loss_sum += result.loss * indices.len() as f64;
            for (name, value) in &result.terms {
                *term_sums.entry(name.clone()).or_default() += value * indices.len() as f64;
            }
            let predictions: Vec<u32> = result
                .logits
                .argmax(1)?
                .to_device(&Device::Cpu)?
                .to_vec1()?;
            // Samples without a label (negatives of a multi-label split) have no class to hit.
            for (p, &i) in predictions.iter().zip(indices) {
                let labels = &run.data.train.items[i].1.labels;
                scored += usize::from(!labels.is_empty());
                correct += usize::from(labels.contains(&(*p as usize)));
            }
            seen += indices.len();
            steps += 1;
            progress.inc(1);
            Ok(())
        };
        match &train_cached {
            Some(features) => {
                for indices in &batches {
                    let idx = Tensor::from_vec(
                        indices.iter().map(|&i| i as u32).collect::<Vec<_>>(),
                        indices.len(),
                        features.device(),
                    )?;
                    process(
                        &mut run,
                        indices,
                        ImageInput::Features(features.index_select(&idx, 0)?),
                        &mut step_rng,
                    )?;
                }
            }
            None => {
                let options = LoaderOptions {
                    epoch,
                    ..run.loader.clone()
                };
                let mut stream = BatchStream::start(run.data.train.clone(), batches, options);
                for loaded_batch in stream.by_ref() {
                    let loaded_batch = loaded_batch?;
                    for (_, reason) in &loaded_batch.skipped {
                        tracing::warn!("skipped an unreadable training image: {reason}");
                    }
                    skipped_images += loaded_batch.skipped.len();
                    let Some(images) = &loaded_batch.images else {
                        continue; // every image of the batch was skipped: no step
                    };
                    let pixels = images.to_device(&run.device)?;
                    process(
                        &mut run,
                        &loaded_batch.indices,
                        ImageInput::Pixels(&pixels),
                        &mut step_rng,
                    )?;
                }
                waited = stream.waited().as_secs_f64();
            }
        }
        progress.finish();
        let mut record = serde_json::json!({
            "epoch": epoch + 1,
            "lr": lr,
            "loss": loss_sum / seen.max(1) as f64,
            "train_accuracy": correct as f64 / scored.max(1) as f64,
            "steps": steps,
            "data_wait_seconds": waited,
        });
        if skipped_images > 0 {
            record["skipped_images"] = serde_json::json!(skipped_images);
        }
        for (name, sum) in &term_sums {
            record[format!("loss_{name}")] = serde_json::json!(sum / seen.max(1) as f64);
        }
        let evaluate_now = select_best
            && ((epoch + 1) % config.train.eval_every == 0 || epoch + 1 == config.train.epochs);
        if evaluate_now {
            let (report, skipped) = run.evaluate(Split::Val, &mut rng::seeded(0))?;
            record["val"] = serde_json::json!(report.overall);
            if skipped > 0 {
                record["val_skipped_images"] = serde_json::json!(skipped);
            }
            if report.tasks.len() > 1 {
                record["val_tasks"] = serde_json::to_value(&report.tasks)?;
            }
            if best.is_none_or(|(b, _)| report.overall > b) {
                best = Some((report.overall, epoch));
                best_prompts = params
                    .iter()
                    .map(|(n, v)| Ok((n.clone(), v.as_tensor().copy()?)))
                    .collect::<Result<_>>()?;
                record["best"] = serde_json::json!(true);
            }
        }
        record["epoch_seconds"] = serde_json::json!(epoch_start.elapsed().as_secs_f64());
        tracing::info!("epoch {}/{}: {}", epoch + 1, config.train.epochs, record);
        // Logged before the checkpoint: a crash in between redoes (and logs again) this epoch
        // rather than losing its record.
        sink.log_metrics(&record)?;
        let last = epoch + 1 == config.train.epochs;
        if last || (epoch + 1) % config.train.checkpoint_every.max(1) == 0 {
            let (optim_state, optim_steps) = optim.state_tensors();
            let record = CheckpointRecord {
                epochs_done: epoch + 1,
                optimizer_steps: optim_steps,
                best,
                rng: step_rng.clone(),
                tensors: format!("epoch-{}.safetensors", epoch + 1),
                sha256: None,
            };
            let current: Vec<(String, Tensor)> = params
                .iter()
                .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
                .collect();
            checkpoint::save(&ckpt_dir, &record, &current, &optim_state, &best_prompts)?;
        }
    }
    // Untrained prompts are validated once, for the value a trained run would report.
    if !trains && select_best {
        let (report, skipped) = run.evaluate(Split::Val, &mut rng::seeded(0))?;
        let mut record = serde_json::json!({ "val": report.overall });
        if skipped > 0 {
            record["val_skipped_images"] = serde_json::json!(skipped);
        }
        if report.tasks.len() > 1 {
            record["val_tasks"] = serde_json::to_value(&report.tasks)?;
        }
        sink.log_metrics(&record)?;
        best = Some((report.overall, 0));
    }
    // Select the prompts to test.
    if select_best && !best_prompts.is_empty() {
        let best_map: HashMap<String, Tensor> = best_prompts.iter().cloned().collect();
        crate::method::load_named(&params, &best_map)?;
    }
    let final_prompts: Vec<(String, Tensor)> = params
        .iter()
        .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
        .collect();
    let metadata = HashMap::from([
        ("method".to_string(), config.method.name.clone()),
        (
            "classes".to_string(),
            run.data.space.classnames.len().to_string(),
        ),
    ]);
    checkpoint::save_prompts(
        &checkpoint::prompts_path(sink.dir()),
        &final_prompts,
        metadata,
    )?;
    if let Some(cosine) = run.class_text_cosine()? {
        diagnostics.insert("class_text_cosine".to_string(), cosine);
    }
    let (test, skipped) = run.evaluate(Split::Test, &mut rng::seeded(0))?;
    let mut record = serde_json::json!({ "test": test.overall, "wall_seconds": started.elapsed().as_secs_f64() });
    if skipped > 0 {
        record["test_skipped_images"] = serde_json::json!(skipped);
    }
    if test.tasks.len() > 1 {
        record["test_tasks"] = serde_json::to_value(&test.tasks)?;
    }
    sink.log_metrics(&record)?;
    Ok(TrainOutcome {
        test,
        val: best.map(|(v, _)| v),
        selected_epoch: if select_best && trains {
            best.map(|(_, e)| e)
        } else {
            None
        },
        epochs,
        trainable_parameters: trainable,
        samples: [
            run.data.train.len(),
            run.data.val.len(),
            run.data.test.len(),
        ],
        notes: run.data.notes.clone(),
        diagnostics,
    })
}
