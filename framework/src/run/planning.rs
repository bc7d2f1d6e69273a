//! Planning an experiment's runs: its sweep expanded, every run's config resolved once to
//! find its directory and check its plugins, before anything starts. A plan keeps each run's
//! sweep values and directory, not its config, so that large sweeps stay small in memory.

use super::dir::RunDir;
use super::layer::with_values;
use super::sweep::{expand_sweep, RunSpec};
use crate::config::{ExperimentConfig, LoadedConfig};
use crate::plugin::{PluginKind, Registry};
use anyhow::{bail, Context, Result};
use figment::value::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A run ready to start: its sweep values, its directory and whether it can start. The
/// resolved config is not kept (a figment per run does not scale to large sweeps); it is
/// derived again, identically, by [`PlannedRun::config`].
#[derive(Clone, Debug)]
pub struct PlannedRun {
    /// The sweep values.
    pub spec: RunSpec,
    /// Its directory (not yet created).
    pub dir: RunDir,
    /// Why it cannot start (unknown plugins, same config as an earlier run), if so.
    pub problem: Option<String>,
    /// The experiment's config before sweep values, shared by every run of the plan.
    base: Arc<LoadedConfig>,
    /// Values a pipeline resolved for this run (its `@stage` references).
    resolved: Option<ResolvedValues>,
}

impl PlannedRun {
    /// The run's resolved config: the experiment's layers, this run's sweep values, then any
    /// values the pipeline resolved for it.
    pub fn config(&self) -> Result<LoadedConfig> {
        resolve_config(&self.base, &self.spec, self.resolved.as_ref())
    }

    /// The values a pipeline resolved for this run (its `@stage` references), if any.
    pub fn resolved(&self) -> Option<&ResolvedValues> {
        self.resolved.as_ref()
    }
}

/// `base` plus the sweep values of `spec`, plus `resolved`.
fn resolve_config(
    base: &LoadedConfig,
    spec: &RunSpec,
    resolved: Option<&ResolvedValues>,
) -> Result<LoadedConfig> {
    let config = spec.load(base)?;
    match resolved {
        None => Ok(config),
        Some(resolved) => with_values(&config, &resolved.source, &resolved.values, || {
            format!("sweep run {} ({})", spec.index, spec.describe())
        }),
    }
}

/// Values a pipeline adds to a run's config after its sweep values (its resolved `@stage`
/// references), with the name provenance gives them; `None` when there is nothing to add.
pub type Resolver<'a> = &'a dyn Fn(&LoadedConfig) -> Result<Option<ResolvedValues>>;

/// Config values resolved by a pipeline for one run.
#[derive(Clone, Debug)]
pub struct ResolvedValues {
    /// How provenance names them (`pipeline reference @source-avg`).
    pub source: String,
    /// Dotted keys and their values.
    pub values: Vec<(String, Value)>,
}

/// Expands `base` into its runs and resolves each run's config (any config error fails the
/// whole plan, naming the run). Plugin names and duplicate configs are checked too and kept
/// as each run's [`PlannedRun::problem`], so a dry run can list them; [`check_plans`] turns
/// them into one error before anything starts, so a typo in the 50th run of a sweep does not
/// surface hours later.
pub fn plan_runs(base: &LoadedConfig, registry: &Registry) -> Result<Vec<PlannedRun>> {
    plan_runs_with(base, registry, &|_| Ok(None))
}

/// [`plan_runs`], with `resolve` adding values to each run's config after its sweep values.
pub fn plan_runs_with(
    base: &LoadedConfig,
    registry: &Registry,
    resolve: Resolver<'_>,
) -> Result<Vec<PlannedRun>> {
    let specs = expand_sweep(base)?;
    let shared = Arc::new(base.clone());
    let mut plans = Vec::with_capacity(specs.len());
    let mut errors = Vec::new();
    let mut by_id: BTreeMap<String, usize> = BTreeMap::new();
    for spec in specs {
        let planned = spec.load(base).and_then(|config| {
            let what = || format!("sweep run {} ({})", spec.index, spec.describe());
            let resolved = resolve(&config).with_context(what)?;
            let config = match &resolved {
                None => config,
                Some(resolved) => with_values(&config, &resolved.source, &resolved.values, what)?,
            };
            let dir = RunDir::for_config(&config.config)?;
            let mut problems = Vec::new();
            if let Err(error) = validate_plugins(&config.config, registry) {
                problems.push(format!("{error:#}"));
            }
            if let Err(error) = crate::plugin::check_options(&config, registry) {
                problems.push(format!("{error:#}"));
            }
            Ok((dir, resolved, problems))
        });
        let (dir, resolved, mut problems) = match planned {
            Ok(planned) => planned,
            Err(error) => {
                errors.push(format!("{error:#}"));
                continue;
            }
        };
        if let Some(first) = by_id.insert(dir.run_id().to_string(), spec.index) {
            problems.push(format!(
                "same resolved config as run {} (run id {})",
                first + 1,
                dir.run_id()
            ));
        }
        plans.push(PlannedRun {
            problem: (!problems.is_empty()).then(|| problems.join("; ")),
            spec,
            dir,
            base: Arc::clone(&shared),
            resolved,
        });
    }
    if !errors.is_empty() {
        bail!("invalid config:\n  {}", errors.join("\n  "));
    }
    Ok(plans)
}

/// Fails, listing every problem, if any planned run cannot start.
pub fn check_plans(plans: &[PlannedRun]) -> Result<()> {
    let problems: Vec<String> = plans
        .iter()
        .filter_map(|plan| {
            plan.problem.as_ref().map(|problem| {
                format!(
                    "run {} ({}): {problem}",
                    plan.spec.index + 1,
                    plan.spec.describe()
                )
            })
        })
        .collect();
    if problems.is_empty() {
        return Ok(());
    }
    bail!(
        "{} of {} runs cannot start:\n  {}",
        problems.len(),
        plans.len(),
        problems.join("\n  ")
    )
}

/// Checks that every plugin `config` names is registered: the method, the dataset (or every
/// task), the few-shot protocol, the sampler and the evaluator. An unknown name is reported
/// with the available ones and the closest match.
pub fn validate_plugins(config: &ExperimentConfig, registry: &Registry) -> Result<()> {
    let mut wanted = vec![(
        PluginKind::Method,
        "method.name",
        config.method.name.as_str(),
    )];
    if config.data.tasks.is_empty() {
        wanted.push((PluginKind::Dataset, "data.dataset", &config.data.dataset));
    } else {
        for task in &config.data.tasks {
            wanted.push((PluginKind::Dataset, "data.tasks", task));
        }
    }
    wanted.push((PluginKind::FewShot, "data.fewshot", &config.data.fewshot));
    wanted.push((PluginKind::Sampler, "data.sampler", &config.data.sampler));
    wanted.push((
        PluginKind::Evaluator,
        "eval.evaluator",
        &config.eval.evaluator,
    ));
    let errors: Vec<String> = wanted
        .into_iter()
        .filter_map(|(kind, key, name)| {
            registry
                .get(kind, name)
                .err()
                .map(|e| format!("config key `{key}`: {e}"))
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        bail!("{}", errors.join("; "))
    }
}
