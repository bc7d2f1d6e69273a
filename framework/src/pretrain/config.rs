//! The pretraining recipe: architecture, data, optimisation, evaluation and output, read from
//! a TOML file with `--set key=value` overrides (values parsed as TOML), unknown keys refused.
//!
//! Keys shared with experiment files keep their names and meaning (`seed`, `data.dataset`,
//! `data.batch_size`, `[data.<plugin>]` option tables, `train.lr`, `train.betas`, ...); what
//! only pretraining needs is added next to them (`model` is an architecture, `train.steps`).

use crate::config::ranges::{betas, count_in, non_negative, MAX_BATCH};
use crate::config::{ConfigError, PluginTables};
use crate::model::ClipConfig;
use anyhow::{bail, Context, Result};
use figment::providers::{Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A whole pretraining recipe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PretrainConfig {
    /// Run name: checkpoints go to `<output.runs_dir>/<name>/`. Defaults to the file stem.
    #[serde(default)]
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Seed of the initial weights and the batch order.
    #[serde(default)]
    pub seed: u64,
    /// The architecture to train from scratch.
    pub model: ClipConfig,
    /// `cpu`, `cuda` or `cuda:N`.
    #[serde(default = "default_device")]
    pub device: String,
    /// Where image–caption pairs come from.
    #[serde(default)]
    pub data: PretrainData,
    /// Optimisation.
    #[serde(default)]
    pub train: PretrainTrain,
    /// Zero-shot evaluation of the result.
    #[serde(default)]
    pub eval: PretrainEval,
    /// Run directory and the exported model.
    #[serde(default)]
    pub output: PretrainOutput,
}

fn default_device() -> String {
    "cpu".into()
}

/// The image–caption data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PretrainData {
    /// Dataset plugin whose training split carries captions.
    #[serde(default = "default_dataset")]
    pub dataset: String,
    /// Image–caption pairs per step (the contrastive batch).
    #[serde(
        default = "default_batch",
        deserialize_with = "count_in::<0, MAX_BATCH, _>"
    )]
    pub batch_size: usize,
    /// Root directory of datasets on disk, relative to the recipe file.
    #[serde(default = "default_root")]
    pub root: PathBuf,
    /// Options of dataset plugins, in tables named after them (`[data.synthetic]`).
    #[serde(flatten)]
    pub plugins: PluginTables,
}

fn default_dataset() -> String {
    "synthetic".into()
}
fn default_batch() -> usize {
    128
}
fn default_root() -> PathBuf {
    PathBuf::from("data")
}

impl Default for PretrainData {
    fn default() -> Self {
        Self {
            dataset: default_dataset(),
            batch_size: default_batch(),
            root: default_root(),
            plugins: PluginTables::new(),
        }
    }
}

/// The optimisation recipe: AdamW with linear warm-up and cosine decay, per step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PretrainTrain {
    /// Optimiser steps.
    #[serde(default = "default_steps")]
    pub steps: usize,
    /// Peak learning rate.
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// Linear warm-up steps (then cosine decay to zero at `steps`).
    #[serde(default = "default_warmup")]
    pub warmup_steps: usize,
    /// Decoupled weight decay of the matrices (embeddings, gains, biases and the logit scale
    /// are not decayed).
    #[serde(default = "default_weight_decay", deserialize_with = "non_negative")]
    pub weight_decay: f64,
    /// AdamW betas.
    #[serde(default = "default_betas", deserialize_with = "betas")]
    pub betas: [f64; 2],
    /// AdamW epsilon.
    #[serde(default = "default_eps", deserialize_with = "non_negative")]
    pub adam_eps: f64,
    /// Upper bound of `exp(logit_scale)` (CLIP clamps at 100).
    #[serde(default = "default_max_scale", deserialize_with = "non_negative")]
    pub max_logit_scale: f64,
    /// Write a resumable checkpoint every N steps (and after the last).
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: usize,
    /// Log progress every N steps.
    #[serde(default = "default_log_every")]
    pub log_every: usize,
}

fn default_steps() -> usize {
    1000
}
fn default_lr() -> f64 {
    5e-4
}
fn default_warmup() -> usize {
    100
}
fn default_weight_decay() -> f64 {
    0.1
}
fn default_betas() -> [f64; 2] {
    [0.9, 0.98]
}
fn default_eps() -> f64 {
    1e-6
}
fn default_max_scale() -> f64 {
    100.0
}
fn default_checkpoint_every() -> usize {
    100
}
fn default_log_every() -> usize {
    10
}

impl Default for PretrainTrain {
    fn default() -> Self {
        Self {
            steps: default_steps(),
            lr: default_lr(),
            warmup_steps: default_warmup(),
            weight_decay: default_weight_decay(),
            betas: default_betas(),
            adam_eps: default_eps(),
            max_logit_scale: default_max_scale(),
            checkpoint_every: default_checkpoint_every(),
            log_every: default_log_every(),
        }
    }
}

/// Zero-shot evaluation: each task's test split classified with its own templates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PretrainEval {
    /// Dataset plugins to evaluate (options from their `[data.<name>]` tables).
    #[serde(default)]
    pub tasks: Vec<String>,
    /// Images per forward pass.
    #[serde(
        default = "default_eval_batch",
        deserialize_with = "count_in::<0, MAX_BATCH, _>"
    )]
    pub batch_size: usize,
    /// Also evaluate every N steps during training on the first `samples_during_training`
    /// test images of each task (0 = only at the end).
    #[serde(default)]
    pub every: usize,
    /// Test images per task for the evaluations during training.
    #[serde(default = "default_eval_samples")]
    pub samples_during_training: usize,
}

fn default_eval_batch() -> usize {
    250
}
fn default_eval_samples() -> usize {
    200
}

impl Default for PretrainEval {
    fn default() -> Self {
        Self {
            tasks: Vec::new(),
            batch_size: default_eval_batch(),
            every: 0,
            samples_during_training: default_eval_samples(),
        }
    }
}

/// Where results go.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PretrainOutput {
    /// Root of run directories, relative to the current directory.
    #[serde(default = "default_runs_dir")]
    pub runs_dir: PathBuf,
    /// The exported model file, relative to the recipe file (default: `model.safetensors` in
    /// the run directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<PathBuf>,
    /// Storage type of the exported model: `f32`, `f16` or `bf16`.
    #[serde(default = "default_dtype")]
    pub dtype: String,
}

fn default_runs_dir() -> PathBuf {
    PathBuf::from("runs")
}
fn default_dtype() -> String {
    "f16".into()
}

impl Default for PretrainOutput {
    fn default() -> Self {
        Self {
            runs_dir: default_runs_dir(),
            model: None,
            dtype: default_dtype(),
        }
    }
}

/// A recipe as loaded: the typed config, the merged layers (dataset plugins read their option
/// tables from it) and the recipe's directory for relative paths.
#[derive(Clone, Debug)]
pub struct LoadedPretrain {
    /// The typed recipe.
    pub config: PretrainConfig,
    /// File and `--set` layers merged.
    pub figment: Figment,
    /// Directory of the recipe file.
    pub base_dir: PathBuf,
}

impl LoadedPretrain {
    /// Reads `file`, applies `sets` (`key=value`, later wins) and checks the result.
    pub fn load(file: &Path, sets: &[String]) -> Result<Self> {
        if !file.is_file() {
            bail!("pretraining recipe {} not found", file.display());
        }
        let mut figment = Figment::new().merge(Toml::file_exact(file));
        for set in sets {
            figment = figment.merge(SetArg::parse(set)?);
        }
        let mut config: PretrainConfig = figment.extract().map_err(ConfigError::from_figment)?;
        if config.name.is_empty() {
            config.name = file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "pretrain".into());
        }
        config.validate()?;
        Ok(Self {
            config,
            figment,
            base_dir: file.parent().map(Path::to_path_buf).unwrap_or_default(),
        })
    }

    /// A path from the recipe, relative to the recipe's directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }

    /// The run directory, `<output.runs_dir>/<name>`.
    pub fn run_dir(&self) -> PathBuf {
        self.config.output.runs_dir.join(&self.config.name)
    }

    /// The exported model path.
    pub fn model_path(&self) -> PathBuf {
        match &self.config.output.model {
            Some(path) => self.resolve(path),
            None => self.run_dir().join("model.safetensors"),
        }
    }
}

impl PretrainConfig {
    /// Checks values serde cannot: positive sizes, a sane schedule, option tables that are
    /// tables (anything else under `data` is a misspelt key).
    pub fn validate(&self) -> Result<()> {
        self.model.validate().context("config key `model`")?;
        for (key, value) in &self.data.plugins {
            if !matches!(value, Value::Dict(..)) {
                bail!(
                    "config key `data.{key}`: unknown key (data takes dataset, batch_size, root and [data.<plugin>] option tables)"
                );
            }
        }
        let t = &self.train;
        if self.data.batch_size < 2 {
            bail!(
                "config key `data.batch_size` = {}: a contrastive batch needs at least 2 pairs",
                self.data.batch_size
            );
        }
        if t.steps == 0 || t.warmup_steps >= t.steps {
            bail!(
                "config keys `train.steps` = {} and `train.warmup_steps` = {}: need 0 ≤ warmup < steps",
                t.steps,
                t.warmup_steps
            );
        }
        if !(t.lr > 0.0 && t.lr.is_finite()) {
            bail!("config key `train.lr` = {}: must be positive", t.lr);
        }
        if t.max_logit_scale < 1.0 {
            bail!(
                "config key `train.max_logit_scale` = {}: must be at least 1",
                t.max_logit_scale
            );
        }
        if t.checkpoint_every == 0 || t.log_every == 0 || self.eval.batch_size == 0 {
            bail!("config keys `train.checkpoint_every`, `train.log_every` and `eval.batch_size` must be positive");
        }
        Ok(())
    }

    /// What a checkpoint must agree on to be resumed: everything that changes the training
    /// trajectory (not the device, logging, evaluation or output).
    pub fn trajectory(&self) -> Result<serde_json::Value> {
        let t = &self.train;
        Ok(serde_json::json!({
            "seed": self.seed,
            "model": serde_json::to_value(&self.model)?,
            "data": serde_json::to_value(&self.data)?,
            "train": {
                "steps": t.steps, "lr": t.lr, "warmup_steps": t.warmup_steps,
                "weight_decay": t.weight_decay, "betas": t.betas, "adam_eps": t.adam_eps,
                "max_logit_scale": t.max_logit_scale,
            },
        }))
    }
}

/// One `--set key=value` layer, named in errors as the command line.
struct SetArg {
    raw: String,
    value: Value,
}

impl SetArg {
    fn parse(raw: &str) -> Result<Self> {
        let Some((key, text)) = raw.split_once('=') else {
            bail!("--set {raw}: expected key=value");
        };
        let key = key.trim();
        if key.is_empty() || key.split('.').any(str::is_empty) {
            bail!("--set {raw}: invalid key {key:?}");
        }
        let text = text.trim();
        let leaf = match toml::from_str::<toml::Table>(&format!("v = {text}")) {
            Ok(mut table) => table
                .remove("v")
                .map(Value::serialize)
                .transpose()
                .ok()
                .flatten()
                .unwrap_or_else(|| Value::from(text.to_string())),
            Err(_) => Value::from(text.to_string()),
        };
        let value = key.rsplit('.').fold(leaf, |inner, part| {
            let mut dict = Dict::new();
            dict.insert(part.to_string(), inner);
            Value::from(dict)
        });
        Ok(Self {
            raw: raw.to_string(),
            value,
        })
    }
}

impl Provider for SetArg {
    fn metadata(&self) -> Metadata {
        Metadata::named("command line").source(Source::Custom(format!("--set {}", self.raw)))
    }

    fn data(&self) -> figment::Result<Map<Profile, Dict>> {
        Ok(Profile::Default.collect(self.value.clone().into_dict().unwrap_or_default()))
    }
}
