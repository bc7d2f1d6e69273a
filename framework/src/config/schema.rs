//! The experiment configuration: every key a run reads, with its default. Plugin options live in
//! tables named after the plugin under the section that selects it (`[method.coop]` next to
//! `method.name = "coop"`); the plugin deserialises its own table (see [`super::Section`]).

use super::choices::{
    ComputeDevice, OnBadImage, Precision, SubsampleClasses, TaskMaskingChoice, TaskOrder,
};
use super::ranges::{count_in, MAX_BATCH, MAX_COUNT, MAX_PREFETCH, MAX_THREADS};
pub use super::train::TrainConfig;
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
    #[serde(default)]
    pub device: ComputeDevice,
    /// Compute precision of the frozen model: `f32` (reference), `bf16`, `f16`.
    #[serde(default)]
    pub dtype: Precision,
    /// Hugging Face hub cache directory (default: the standard HF cache).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_dir: Option<PathBuf>,
}

fn default_model() -> String {
    "builtin".into()
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            source: default_model(),
            device: ComputeDevice::default(),
            dtype: Precision::default(),
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
    #[serde(default)]
    pub task_order: TaskOrder,
    /// Root directory of the datasets on disk (relative to the file that sets it).
    #[serde(default = "default_root")]
    pub root: PathBuf,
    /// Shots per class for training (0 = the whole training split).
    #[serde(default, deserialize_with = "count_in::<0, MAX_COUNT, _>")]
    pub shots: usize,
    /// Few-shot protocol plugin (`elevater`, `dassl`, `all`).
    #[serde(default = "default_fewshot")]
    pub fewshot: String,
    /// Batch sampler plugin (`random`, `sequential`, `class_balanced`, multitask samplers).
    #[serde(default = "default_sampler")]
    pub sampler: String,
    /// Train batch size.
    #[serde(
        default = "default_batch",
        deserialize_with = "count_in::<1, MAX_BATCH, _>"
    )]
    pub batch_size: usize,
    /// Evaluation batch size.
    #[serde(
        default = "default_eval_batch",
        deserialize_with = "count_in::<1, MAX_BATCH, _>"
    )]
    pub eval_batch_size: usize,
    /// Train transform preset (`dataset` = the dataset's own protocol, or a preset name).
    #[serde(default = "default_transform")]
    pub train_transform: String,
    /// Test transform preset.
    #[serde(default = "default_transform")]
    pub test_transform: String,
    /// `error` stops at an unreadable image; `skip` drops it and counts it in the run log.
    #[serde(default)]
    pub on_bad_image: OnBadImage,
    /// Image decoding threads (0 = all cores).
    #[serde(default, deserialize_with = "count_in::<0, MAX_THREADS, _>")]
    pub workers: usize,
    /// Batches decoded ahead of the training step.
    #[serde(
        default = "default_prefetch",
        deserialize_with = "count_in::<0, MAX_PREFETCH, _>"
    )]
    pub prefetch: usize,
    /// Multitask logits outside a sample's task: `none` (one softmax over the joint space, the
    /// reference default), `zero` (the reference's per-task mask: multiplied by 0) or
    /// `neg_infinity` (the fix: excluded from the softmax).
    #[serde(default)]
    pub task_masking: TaskMaskingChoice,
    /// Base-to-novel: `all` (default), `base` or `new` — keep only that half of every task's
    /// classes, chosen from the few-shot training split after it is drawn, relabelled, with
    /// the half's class names only (Dassl's `SUBSAMPLE_CLASSES`). Left out of the resolved
    /// config when `all`.
    #[serde(default, skip_serializing_if = "SubsampleClasses::is_all")]
    pub subsample_classes: SubsampleClasses,
    /// Options of dataset, protocol and sampler plugins, in tables named after them.
    #[serde(flatten)]
    pub plugins: PluginTables,
}

fn default_dataset() -> String {
    "synthetic".into()
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
fn default_prefetch() -> usize {
    2
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            dataset: default_dataset(),
            tasks: Vec::new(),
            task_order: TaskOrder::default(),
            root: default_root(),
            shots: 0,
            fewshot: default_fewshot(),
            sampler: default_sampler(),
            batch_size: default_batch(),
            eval_batch_size: default_eval_batch(),
            train_transform: default_transform(),
            test_transform: default_transform(),
            on_bad_image: OnBadImage::default(),
            workers: 0,
            prefetch: default_prefetch(),
            task_masking: TaskMaskingChoice::default(),
            subsample_classes: SubsampleClasses::default(),
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
    /// Initialise the prompts from a checkpoint file or a run directory (source-prompt transfer),
    /// or `"@<stage>"`, a pipeline's averaged source prompts. An empty string means no
    /// initialisation (so that a sweep can mix runs with and without one).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "empty_as_none"
    )]
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

/// Reads an optional string, an empty string as absent.
fn empty_as_none<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.filter(|s| !s.is_empty()))
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
