//! Plugins: the extension points of the framework.
//!
//! A plugin is a named factory of one [`PluginKind`]. Built-in plugins (the crates under
//! `plugins/`) register at compile time with [`inventory`] through the `register_*!` macros;
//! dynamically loaded libraries register through their exported entry point (see
//! [`dynamic`]). The [`Registry`] holds both, refuses duplicate names, and answers an unknown
//! name with the list of what exists and the closest match. Every plugin declares the type of
//! its options table, so the tables of a config are checked before anything runs (see
//! [`check_options`]).

pub mod dynamic;
mod options;
mod registry;

pub use options::{check_options, options_of, NoOptions, OptionsCheck};
pub use registry::{Entry, Origin, Registry};

use crate::config::Section;
use crate::data::{BatchSampler, Dataset, DatasetContext, FewShotProtocol};
use crate::eval::Evaluator;
use crate::method::PromptLearner;
use anyhow::Result;

/// The kinds of plugins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginKind {
    /// A dataset: class names, splits, images (`data.dataset`, `data.tasks`).
    Dataset,
    /// A prompt method (`method.name`).
    Method,
    /// A few-shot protocol choosing train/val samples (`data.fewshot`).
    FewShot,
    /// A batch sampler ordering training samples (`data.sampler`).
    Sampler,
    /// An evaluator turning scores into metrics (`eval.evaluator`).
    Evaluator,
}

impl PluginKind {
    /// All kinds, in display order.
    pub const ALL: [PluginKind; 5] = [
        Self::Dataset,
        Self::Method,
        Self::FewShot,
        Self::Sampler,
        Self::Evaluator,
    ];

    /// Lower-case name used in messages and listings.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dataset => "dataset",
            Self::Method => "method",
            Self::FewShot => "fewshot",
            Self::Sampler => "sampler",
            Self::Evaluator => "evaluator",
        }
    }

    /// The config section whose sub-tables hold this kind's options (`method.coop`).
    pub fn section(self) -> &'static str {
        match self {
            Self::Dataset | Self::FewShot | Self::Sampler => "data",
            Self::Method => "method",
            Self::Evaluator => "eval",
        }
    }
}

impl std::fmt::Display for PluginKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Builds a dataset from its options and the data root.
pub type DatasetFactory = fn(&DatasetContext<'_>) -> Result<Box<dyn Dataset>>;
/// Builds a prompt learner from its options table.
pub type MethodFactory = fn(&Section<'_>) -> Result<Box<dyn PromptLearner>>;
/// Builds a few-shot protocol from its options table.
pub type FewShotFactory = fn(&Section<'_>) -> Result<Box<dyn FewShotProtocol>>;
/// Builds a batch sampler from its options table.
pub type SamplerFactory = fn(&Section<'_>) -> Result<Box<dyn BatchSampler>>;
/// Builds an evaluator from its options table.
pub type EvaluatorFactory = fn(&Section<'_>) -> Result<Box<dyn Evaluator>>;

/// A kind-specific factory.
#[derive(Clone, Copy)]
pub enum Factory {
    /// See [`DatasetFactory`].
    Dataset(DatasetFactory),
    /// See [`MethodFactory`].
    Method(MethodFactory),
    /// See [`FewShotFactory`].
    FewShot(FewShotFactory),
    /// See [`SamplerFactory`].
    Sampler(SamplerFactory),
    /// See [`EvaluatorFactory`].
    Evaluator(EvaluatorFactory),
}

impl Factory {
    /// The kind this factory builds.
    pub fn kind(&self) -> PluginKind {
        match self {
            Self::Dataset(_) => PluginKind::Dataset,
            Self::Method(_) => PluginKind::Method,
            Self::FewShot(_) => PluginKind::FewShot,
            Self::Sampler(_) => PluginKind::Sampler,
            Self::Evaluator(_) => PluginKind::Evaluator,
        }
    }
}

/// One registered plugin.
#[derive(Clone, Copy)]
pub struct Plugin {
    /// Unique name within its kind, used in configs (`coop`, `oxford_pets`).
    pub name: &'static str,
    /// One line for `mvlpt plugins list`.
    pub description: &'static str,
    /// Version of the crate that provides it.
    pub version: &'static str,
    /// The factory.
    pub factory: Factory,
    /// Checks the plugin's options table without building anything: [`options_of::<T>`] for
    /// the serde struct `T` the factory reads (with `deny_unknown_fields`), or
    /// `options_of::<NoOptions>` for a plugin without options.
    pub options: OptionsCheck,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("kind", &self.factory.kind())
            .finish()
    }
}

inventory::collect!(Plugin);

/// Registers a built-in plugin at compile time, with the type of its options table:
/// `register_plugin!(Method, "coop", "CoOp: learned text context", build_coop, CoopOptions);`
/// (`NoOptions` for a plugin that reads none).
#[macro_export]
macro_rules! register_plugin {
    ($kind:ident, $name:expr, $description:expr, $factory:path, $options:ty) => {
        $crate::inventory::submit! {
            $crate::plugin::Plugin {
                name: $name,
                description: $description,
                version: env!("CARGO_PKG_VERSION"),
                factory: $crate::plugin::Factory::$kind($factory),
                options: $crate::plugin::options_of::<$options>,
            }
        }
    };
}
