//! What a run builds from its config through the registry: the frozen model, the method, the
//! evaluator and the optimiser.

use super::optim::{AdamWConfig, Optimizer, OptimizerKind, SgdConfig};
use crate::config::{LoadedConfig, OptimizerChoice};
use crate::eval::Evaluator;
use crate::method::PromptLearner;
use crate::model::{dtype_of, load_model, open_device, Clip, LoadOptions};
use crate::plugin::Registry;
use anyhow::{Context, Result};

/// Builds the configured evaluator.
pub fn evaluator(loaded: &LoadedConfig, registry: &Registry) -> Result<Box<dyn Evaluator>> {
    let name = &loaded.config.eval.evaluator;
    let factory = registry.evaluator(name)?;
    factory(&loaded.section(format!("eval.{name}")))
}

/// Builds the configured method.
pub fn build_method(loaded: &LoadedConfig, registry: &Registry) -> Result<Box<dyn PromptLearner>> {
    let name = &loaded.config.method.name;
    let factory = registry.method(name)?;
    factory(&loaded.section(format!("method.{name}")))
        .with_context(|| format!("building method `{name}`"))
}

/// Loads the configured frozen model.
pub fn build_model(loaded: &LoadedConfig) -> Result<Clip> {
    let m = &loaded.config.model;
    let options = LoadOptions {
        device: open_device(m.device)?,
        dtype: dtype_of(m.dtype),
        cache_dir: m
            .cache_dir
            .as_ref()
            .map(|d| loaded.resolve_path_of("model.cache_dir", d)),
    };
    load_model(&m.source, &options, loaded.config.seed)
}

/// The configured optimiser over `params`.
pub(super) fn optimizer(
    loaded: &LoadedConfig,
    params: Vec<(String, candle_core::Var)>,
) -> Result<Optimizer> {
    let t = &loaded.config.train;
    let kind = match t.optimizer {
        OptimizerChoice::Sgd => OptimizerKind::Sgd(SgdConfig {
            momentum: t.momentum,
            dampening: t.dampening,
            weight_decay: t.weight_decay,
            nesterov: t.nesterov,
        }),
        OptimizerChoice::Adamw => OptimizerKind::AdamW(AdamWConfig {
            betas: t.betas,
            eps: t.adam_eps,
            weight_decay: t.weight_decay,
        }),
    };
    Optimizer::new(kind, params)
}
