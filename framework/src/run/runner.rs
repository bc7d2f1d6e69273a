//! What `mvlpt run` does: expand the experiment into runs, check every run's config before
//! anything starts, then run them in turn, skipping complete ones, resuming incomplete ones
//! and going on past a failed one.

use super::dir::{RunDir, RunState};
use super::logging::init_run_logging;
use super::progress::format_duration;
use super::sweep::{expand_sweep, RunSpec};
use crate::config::{ExperimentConfig, LoadedConfig};
use crate::engine::experiment::RunResult;
use crate::plugin::{PluginKind, Registry};
use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::Instant;

/// The training entry point each run calls: normally
/// [`crate::engine::experiment::run_experiment`], a stand-in in tests.
pub type Engine<'a> = &'a dyn Fn(&LoadedConfig, &Registry, &RunDir) -> Result<RunResult>;

/// A run ready to start: its sweep values, its resolved config and its directory.
#[derive(Clone, Debug)]
pub struct PlannedRun {
    /// The sweep values.
    pub spec: RunSpec,
    /// The resolved config.
    pub config: LoadedConfig,
    /// Its directory (not yet created).
    pub dir: RunDir,
    /// Why it cannot start (unknown plugins, same config as an earlier run), if so.
    pub problem: Option<String>,
}

/// Expands `base` into its runs and resolves each run's config (any config error fails the
/// whole plan, naming the run). Plugin names and duplicate configs are checked too and kept
/// as each run's [`PlannedRun::problem`], so a dry run can list them; [`check_plans`] turns
/// them into one error before anything starts, so a typo in the 50th run of a sweep does not
/// surface hours later.
pub fn plan_runs(base: &LoadedConfig, registry: &Registry) -> Result<Vec<PlannedRun>> {
    let specs = expand_sweep(base)?;
    let mut plans = Vec::with_capacity(specs.len());
    let mut errors = Vec::new();
    let mut by_id: BTreeMap<String, usize> = BTreeMap::new();
    for spec in specs {
        let loaded = spec
            .load(base)
            .and_then(|config| Ok((RunDir::for_config(&config.config)?, config)));
        let (dir, config) = match loaded {
            Ok(loaded) => loaded,
            Err(error) => {
                errors.push(format!("{error:#}"));
                continue;
            }
        };
        let mut problems = Vec::new();
        if let Err(error) = validate_plugins(&config.config, registry) {
            problems.push(format!("{error:#}"));
        }
        if let Err(error) = crate::plugin::check_options(&config, registry) {
            problems.push(format!("{error:#}"));
        }
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
            config,
            dir,
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

/// How one run ended.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// Trained and evaluated; `result.json` and `COMPLETE` are written.
    Completed(Box<RunResult>),
    /// Already complete; nothing was done.
    Skipped,
    /// The run failed (error or panic); the message is also in its `error.txt` and `log.txt`.
    Failed(String),
}

/// What happened to one run.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// Position in the sweep.
    pub index: usize,
    /// The sweep values (`method.name=coop seed=1`).
    pub description: String,
    /// The run directory.
    pub path: PathBuf,
    /// Whether it continued an incomplete run directory.
    pub resumed: bool,
    /// How it ended.
    pub outcome: Outcome,
    /// Wall-clock seconds spent on it.
    pub seconds: f64,
}

/// Runs every plan in order. A plan with a problem fails without starting. A complete run is skipped unless `force` (which starts it over
/// from an empty directory); an incomplete one is resumed (the engine finds its checkpoint
/// with [`RunDir::latest_checkpoint`]). A failing run is logged, recorded in its `error.txt`
/// and reported; the others still run.
pub fn execute_runs(
    plans: &[PlannedRun],
    registry: &Registry,
    engine: Engine<'_>,
    force: bool,
) -> Vec<RunReport> {
    plans
        .iter()
        .map(|plan| execute_one(plan, plans.len(), registry, engine, force))
        .collect()
}

fn execute_one(
    plan: &PlannedRun,
    total: usize,
    registry: &Registry,
    engine: Engine<'_>,
    force: bool,
) -> RunReport {
    let started = Instant::now();
    let state = plan.dir.state();
    let title = format!(
        "run {}/{} [{}] {}",
        plan.spec.index + 1,
        total,
        plan.dir.run_id(),
        plan.spec.describe()
    );
    let resumed = state == RunState::Incomplete && !force;
    let outcome = if let Some(problem) = &plan.problem {
        tracing::error!("{title}: cannot start: {problem}");
        Outcome::Failed(problem.clone())
    } else if state == RunState::Complete && !force {
        tracing::info!("{title}: complete, skipped ({})", plan.dir.path().display());
        Outcome::Skipped
    } else {
        match attempt(
            plan,
            registry,
            engine,
            force && state != RunState::New,
            resumed,
            &title,
        ) {
            Ok(result) => Outcome::Completed(Box::new(result)),
            Err(message) => Outcome::Failed(message),
        }
    };
    RunReport {
        index: plan.spec.index,
        description: plan.spec.describe(),
        path: plan.dir.path().to_path_buf(),
        resumed,
        outcome,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// One attempt at a run, logged to its `log.txt`; a failure comes back as its message, after
/// being logged and written to `error.txt`.
fn attempt(
    plan: &PlannedRun,
    registry: &Registry,
    engine: Engine<'_>,
    reset: bool,
    resumed: bool,
    title: &str,
) -> std::result::Result<RunResult, String> {
    let dir = &plan.dir;
    let prepared = (|| -> Result<_> {
        if reset {
            dir.reset()?;
        } else {
            dir.create()?;
        }
        init_run_logging(dir)
    })();
    let _log = match prepared {
        Ok(guard) => guard,
        Err(error) => {
            let message = format!("{error:#}");
            tracing::error!("{title}: failed: {message}");
            return Err(message);
        }
    };
    let started = Instant::now();
    match train(plan, registry, engine, resumed, title) {
        Ok(result) => {
            tracing::info!(
                "{title}: complete in {}, test {:.2}%",
                format_duration(started.elapsed().as_secs_f64()),
                100.0 * result.test
            );
            Ok(result)
        }
        Err(error) => {
            let message = format!("{error:#}");
            tracing::error!("{title}: failed: {message}");
            if let Err(write_error) = dir.write_failure(&message) {
                tracing::warn!("could not record the failure: {write_error:#}");
            }
            Err(message)
        }
    }
}

/// Writes the config and environment, runs the engine (a panic counts as a failure), then
/// writes `result.json` and, last, `COMPLETE`.
fn train(
    plan: &PlannedRun,
    registry: &Registry,
    engine: Engine<'_>,
    resumed: bool,
    title: &str,
) -> Result<RunResult> {
    let dir = &plan.dir;
    if resumed {
        match dir.latest_checkpoint()? {
            Some((epoch, _)) => tracing::info!("{title}: resuming after epoch {epoch}"),
            None => tracing::info!("{title}: resuming (no checkpoint yet, starting over)"),
        }
    } else {
        tracing::info!("{title}: starting in {}", dir.path().display());
    }
    dir.write_config(&plan.config)?;
    dir.write_environment(&plan.config.config)?;
    let mut result = catch_unwind(AssertUnwindSafe(|| engine(&plan.config, registry, dir)))
        .unwrap_or_else(|panic| bail!("panicked: {}", panic_message(panic.as_ref())))?;
    result.experiment = dir.experiment().to_string();
    result.run_id = dir.run_id().to_string();
    dir.write_result(&result)?;
    dir.mark_complete()?;
    Ok(result)
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}
