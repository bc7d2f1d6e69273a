//! The experiment configuration: every key a run reads, with its default. Plugin options live in
//! tables named after the plugin under the section that selects it (`[method.coop]` next to
//! `method.name = "coop"`); the plugin deserialises its own table (see [`super::Section`]).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A plugin's options table, kept as an untyped value until the plugin deserialises it.
pub type PluginTables = BTreeMap<String, figment::value::Value>;

/// One experiment (or one run of a sweep).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Experiment name: the run directory is `runs/<name>/<run-id>/`. Defaults to the file stem.
    #[serde(default)]
    pub name: String,
    /// Free text shown in reports.
    #[serde(default)]
    pub description: String,
    /// The name of this run's row in `mvlpt report` instead of the method name (e.g. "MCoOp"
    /// for CoOp initialised from source prompts). Empty: the method name. Left out of the
    /// resolved config when empty, so configs without it keep their run ids.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub label: String,
    /// Files this one builds on, relative to it; merged before it (later wins). A single path
    /// or a list.
    #[serde(default, deserialize_with = "one_or_many")]
    pub extends: Vec<String>,
    /// Seed of everything random in the run (prompt init, few-shot sampling, batch order).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// The frozen CLIP model.
    #[serde(default)]
    pub model: ModelConfig,
    /// Datasets, few-shot protocol, batching and transforms.
    #[serde(default)]
    pub data: DataConfig,
    /// The prompt method.
    #[serde(default)]
    pub method: MethodConfig,
    /// Optimisation recipe.
    #[serde(default)]
    pub train: TrainConfig,
    /// Evaluation.
    #[serde(default)]
    pub eval: EvalConfig,
    /// Dynamically loaded plugins.
    #[serde(default)]
    pub plugins: PluginsConfig,
    /// Where runs are written.
    #[serde(default)]
    pub output: OutputConfig,
    /// A grid of runs (expanded by `mvlpt run`); absent for a single run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepConfig>,
    /// How `mvlpt run` executes the runs (see [`super::ExecutorConfig`]); not part of a run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<super::ExecutorConfig>,
}

fn default_seed() -> u64 {
    1
}

/// The CLIP model and where it runs.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// `builtin` (the embedded tiny model), a path (file or directory), a Hugging Face hub id
    /// (`openai/clip-vit-base-patch16`), or `random:<preset>` (random weights, for benchmarks).
    #[serde(default = "default_model")]
    pub source: String,
    /// `cpu`, `cuda` or `cuda:N`.
    #[serde(default = "default_device")]
    pub device: String,
    /// Compute precision of the frozen model: `f32` (reference), `bf16`, `f16`.
    #[serde(default = "default_dtype")]
    pub dtype: String,
    /// Hugging Face hub cache directory (default: the standard HF cache).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_dir: Option<PathBuf>,
}

fn default_model() -> String {
    "builtin".into()
}
fn default_device() -> String {
    "cpu".into()
}
fn default_dtype() -> String {
    "f32".into()
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            source: default_model(),
            device: default_device(),
            dtype: default_dtype(),
            cache_dir: None,
        }
    }
}

/// Data: which dataset(s), the few-shot protocol, batching, transforms.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DataConfig {
    /// Dataset plugin for a single-task run.
    #[serde(default = "default_dataset")]
    pub dataset: String,
    /// Datasets of a multitask run, in one joint label space (overrides `dataset` when set).
    #[serde(default)]
    pub tasks: Vec<String>,
    /// Order of the tasks in the joint label space: `given` (list order, the CoOp-datasets
    /// source stage) or `sorted` (alphabetical, ELEVATER's multitask manifest).
    #[serde(default = "default_task_order")]
    pub task_order: String,
    /// Root directory of the datasets on disk (relative to the file that sets it).
    #[serde(default = "default_root")]
    pub root: PathBuf,
    /// Shots per class for training (0 = the whole training split).
    #[serde(default)]
    pub shots: usize,
    /// Few-shot protocol plugin (`elevater`, `dassl`, `all`).
    #[serde(default = "default_fewshot")]
    pub fewshot: String,
    /// Batch sampler plugin (`random`, `sequential`, `class_balanced`, multitask samplers).
    #[serde(default = "default_sampler")]
    pub sampler: String,
    /// Train batch size.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Evaluation batch size.
    #[serde(default = "default_eval_batch")]
    pub eval_batch_size: usize,
    /// Train transform preset (`dataset` = the dataset's own protocol, or a preset name).
    #[serde(default = "default_transform")]
    pub train_transform: String,
    /// Test transform preset.
    #[serde(default = "default_transform")]
    pub test_transform: String,
    /// `error` stops at an unreadable image; `skip` drops it and counts it in the run log.
    #[serde(default = "default_bad_image")]
    pub on_bad_image: String,
    /// Image decoding threads (0 = all cores).
    #[serde(default)]
    pub workers: usize,
    /// Batches decoded ahead of the training step.
    #[serde(default = "default_prefetch")]
    pub prefetch: usize,
    /// Multitask logits outside a sample's task: `none` (one softmax over the joint space, the
    /// reference default), `zero` (the reference's per-task mask: multiplied by 0) or
    /// `neg_infinity` (the fix: excluded from the softmax).
    #[serde(default = "default_masking")]
    pub task_masking: String,
    /// Options of dataset, protocol and sampler plugins, in tables named after them.
    #[serde(flatten)]
    pub plugins: PluginTables,
}

fn default_dataset() -> String {
    "synthetic".into()
}
fn default_task_order() -> String {
    "given".into()
}
fn default_root() -> PathBuf {
    PathBuf::from("data")
}
fn default_fewshot() -> String {
    "elevater".into()
}
fn default_sampler() -> String {
    "random".into()
}
fn default_batch() -> usize {
    32
}
fn default_eval_batch() -> usize {
    100
}
fn default_transform() -> String {
    "dataset".into()
}
fn default_bad_image() -> String {
    "error".into()
}
fn default_prefetch() -> usize {
    2
}
fn default_masking() -> String {
    "none".into()
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            dataset: default_dataset(),
            tasks: Vec::new(),
            task_order: default_task_order(),
            root: default_root(),
            shots: 0,
            fewshot: default_fewshot(),
            sampler: default_sampler(),
            batch_size: default_batch(),
            eval_batch_size: default_eval_batch(),
            train_transform: default_transform(),
            test_transform: default_transform(),
            on_bad_image: default_bad_image(),
            workers: 0,
            prefetch: default_prefetch(),
            task_masking: default_masking(),
            plugins: PluginTables::new(),
        }
    }
}

/// The prompt method.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MethodConfig {
    /// Prompt-learner plugin (`coop`, `vpt`, `upt`, `cocoop`, `zero_shot`, ...).
    #[serde(default = "default_method")]
    pub name: String,
    /// Initialise the prompts from a checkpoint file or a run directory (source-prompt transfer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_from: Option<String>,
    /// Options of method plugins, in tables named after them (`[method.coop]`).
    #[serde(flatten)]
    pub plugins: PluginTables,
}

fn default_method() -> String {
    "coop".into()
}

impl Default for MethodConfig {
    fn default() -> Self {
        Self {
            name: default_method(),
            init_from: None,
            plugins: PluginTables::new(),
        }
    }
}

/// The optimisation recipe (reference: §4.1).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Epochs (0 = evaluate only).
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    /// `sgd` or `adamw`.
    #[serde(default = "default_optimizer")]
    pub optimizer: String,
    /// Base learning rate.
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// SGD momentum.
    #[serde(default = "default_momentum")]
    pub momentum: f64,
    /// Weight decay (L2 for SGD, decoupled for AdamW).
    #[serde(default = "default_weight_decay")]
    pub weight_decay: f64,
    /// SGD dampening.
    #[serde(default)]
    pub dampening: f64,
    /// SGD Nesterov momentum.
    #[serde(default)]
    pub nesterov: bool,
    /// AdamW betas.
    #[serde(default = "default_betas")]
    pub betas: [f64; 2],
    /// AdamW epsilon.
    #[serde(default = "default_adam_eps")]
    pub adam_eps: f64,
    /// `cosine`, `constant` or `step`.
    #[serde(default = "default_schedule")]
    pub schedule: String,
    /// Warm-up epochs before the schedule (the reference uses 1).
    #[serde(default = "default_warmup_epochs")]
    pub warmup_epochs: usize,
    /// `constant` (fixed `warmup_lr`) or `linear` (from `warmup_lr` to `lr`).
    #[serde(default = "default_warmup_type")]
    pub warmup_type: String,
    /// Learning rate during warm-up.
    #[serde(default = "default_warmup_lr")]
    pub warmup_lr: f64,
    /// Step schedule: epochs at which the rate is multiplied by `gamma`.
    #[serde(default)]
    pub milestones: Vec<usize>,
    /// Step schedule factor.
    #[serde(default = "default_gamma")]
    pub gamma: f64,
    /// Validate every N epochs (0 = never).
    #[serde(default = "default_one")]
    pub eval_every: usize,
    /// `best_val` (test with the best validated prompts) or `last`.
    #[serde(default = "default_select")]
    pub select: String,
    /// Write a resumable checkpoint every N epochs (the last epoch is always written).
    #[serde(default = "default_one")]
    pub checkpoint_every: usize,
    /// Classes per text-tower chunk: learned context over more classes than this is encoded
    /// chunk by chunk with an exact gradient and memory bounded by one chunk.
    #[serde(default = "default_text_chunk")]
    pub text_chunk: usize,
}

fn default_text_chunk() -> usize {
    128
}

fn default_epochs() -> usize {
    10
}
fn default_optimizer() -> String {
    "sgd".into()
}
fn default_lr() -> f64 {
    0.002
}
fn default_momentum() -> f64 {
    0.9
}
fn default_weight_decay() -> f64 {
    5e-4
}
fn default_betas() -> [f64; 2] {
    [0.9, 0.999]
}
fn default_adam_eps() -> f64 {
    1e-8
}
fn default_schedule() -> String {
    "cosine".into()
}
fn default_warmup_epochs() -> usize {
    1
}
fn default_warmup_type() -> String {
    "constant".into()
}
fn default_warmup_lr() -> f64 {
    1e-5
}
fn default_gamma() -> f64 {
    0.1
}
fn default_one() -> usize {
    1
}
fn default_select() -> String {
    "best_val".into()
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: default_epochs(),
            optimizer: default_optimizer(),
            lr: default_lr(),
            momentum: default_momentum(),
            weight_decay: default_weight_decay(),
            dampening: 0.0,
            nesterov: false,
            betas: default_betas(),
            adam_eps: default_adam_eps(),
            schedule: default_schedule(),
            warmup_epochs: default_warmup_epochs(),
            warmup_type: default_warmup_type(),
            warmup_lr: default_warmup_lr(),
            milestones: Vec::new(),
            gamma: default_gamma(),
            eval_every: 1,
            select: default_select(),
            checkpoint_every: 1,
            text_chunk: default_text_chunk(),
        }
    }
}

/// Evaluation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EvalConfig {
    /// Evaluator plugin.
    #[serde(default = "default_evaluator")]
    pub evaluator: String,
    /// Multitask model selection key: `average` or one task's name (reference `MULTITASK_EVALKEY`).
    #[serde(default = "default_eval_key")]
    pub key: String,
    /// Options of evaluator plugins, in tables named after them.
    #[serde(flatten)]
    pub plugins: PluginTables,
}

fn default_evaluator() -> String {
    "classification".into()
}
fn default_eval_key() -> String {
    "average".into()
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            evaluator: default_evaluator(),
            key: default_eval_key(),
            plugins: PluginTables::new(),
        }
    }
}

/// Dynamically loaded plugin libraries.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginsConfig {
    /// Plugin library files or directories holding them (relative to the file that sets them).
    #[serde(default)]
    pub paths: Vec<PathBuf>,
}

/// Where runs go.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Root of run directories.
    #[serde(default = "default_runs_dir")]
    pub runs_dir: PathBuf,
}

fn default_runs_dir() -> PathBuf {
    PathBuf::from("runs")
}

impl Default for OutputConfig {
    fn default() -> Self {
        Self {
            runs_dir: default_runs_dir(),
        }
    }
}

/// A grid of runs over config keys.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepConfig {
    /// Cartesian product over these dotted keys (`"method.name" = ["coop", "vpt"]`).
    #[serde(default)]
    pub grid: BTreeMap<String, Vec<figment::value::Value>>,
    /// Groups of keys varied together (same length lists, taken index by index), crossed with
    /// the grid.
    #[serde(default)]
    pub zip: Vec<BTreeMap<String, Vec<figment::value::Value>>>,
    /// Seeds: every grid point runs once per seed (sets `seed`).
    #[serde(default)]
    pub seeds: Vec<u64>,
}

/// Accepts `key = "a"` as well as `key = ["a", "b"]`.
fn one_or_many<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    })
}
