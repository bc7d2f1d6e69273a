//! What `mvlpt run` does with planned runs: runs them in turn, each with its directory
//! locked, skipping complete ones, resuming incomplete ones and going on past a failed one.

use super::dir::{RunDir, RunState};
use super::lock::{DirLock, LockAttempt};
use super::logging::init_run_logging;
use super::planning::PlannedRun;
use super::resume::repair;
use super::RunResult;
use crate::config::LoadedConfig;
use crate::engine::format_duration;
use crate::plugin::Registry;
use anyhow::{bail, Result};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::Instant;

/// The training entry point each run calls: normally
/// [`super::run_experiment`], a stand-in in tests.
pub type Engine<'a> = &'a dyn Fn(&LoadedConfig, &Registry, &RunDir) -> Result<RunResult>;

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

/// Runs every plan in order. A plan with a problem fails without starting. A complete run is
/// skipped unless `force` (which starts it over from an empty directory); an incomplete one is
/// resumed (the engine finds its checkpoint with [`RunDir::latest_checkpoint`]). A failing
/// run is logged, recorded in its `error.txt` and reported; the others still run.
///
/// Each run is worked on with its directory locked ([`DirLock`]). A run another process holds
/// is left for later: the others go first, then this one waits for the lock and is skipped if
/// the other process completed it, resumed if not.
pub fn execute_runs(
    plans: &[PlannedRun],
    registry: &Registry,
    engine: Engine<'_>,
    force: bool,
) -> Vec<RunReport> {
    let mut reports: Vec<Option<RunReport>> = vec![None; plans.len()];
    let mut held = Vec::new();
    for (i, plan) in plans.iter().enumerate() {
        match execute_one(plan, plans.len(), registry, engine, force, false) {
            Some(report) => reports[i] = Some(report),
            None => held.push(i),
        }
    }
    for i in held {
        reports[i] = execute_one(&plans[i], plans.len(), registry, engine, force, true);
    }
    reports.into_iter().flatten().collect()
}

/// Runs one plan (of `total`) like [`execute_runs`], waiting for its lock if another process
/// holds it: what `mvlpt run --index` does.
pub fn execute_run(
    plan: &PlannedRun,
    total: usize,
    registry: &Registry,
    engine: Engine<'_>,
    force: bool,
) -> RunReport {
    execute_one(plan, total, registry, engine, force, true)
        .unwrap_or_else(|| unreachable!("a waiting attempt always gets the lock or fails"))
}

/// One run, with its lock held; `None` when another process holds the lock and `wait` is
/// false.
fn execute_one(
    plan: &PlannedRun,
    total: usize,
    registry: &Registry,
    engine: Engine<'_>,
    force: bool,
    wait: bool,
) -> Option<RunReport> {
    let started = Instant::now();
    let title = format!(
        "run {}/{} [{}] {}",
        plan.spec.index + 1,
        total,
        plan.dir.run_id(),
        plan.spec.describe()
    );
    let report = |resumed: bool, outcome: Outcome| RunReport {
        index: plan.spec.index,
        description: plan.spec.describe(),
        path: plan.dir.path().to_path_buf(),
        resumed,
        outcome,
        seconds: started.elapsed().as_secs_f64(),
    };
    if let Some(problem) = &plan.problem {
        tracing::error!("{title}: cannot start: {problem}");
        return Some(report(false, Outcome::Failed(problem.clone())));
    }
    let locked = if wait {
        DirLock::acquire(plan.dir.path(), |holder| {
            tracing::info!("{title}: being run by {holder}; waiting for it");
        })
    } else {
        match DirLock::try_acquire(plan.dir.path()) {
            Ok(LockAttempt::Acquired(lock)) => Ok(lock),
            Ok(LockAttempt::Held(holder)) => {
                tracing::info!(
                    "{title}: being run by {holder}; coming back to it after the others"
                );
                return None;
            }
            Err(error) => Err(error),
        }
    };
    let _lock = match locked {
        Ok(lock) => lock,
        Err(error) => {
            let message = format!("{error:#}");
            tracing::error!("{title}: failed: {message}");
            return Some(report(false, Outcome::Failed(message)));
        }
    };
    // Read under the lock: another process may have completed or reset it meanwhile.
    let state = plan.dir.state();
    let resumed = state == RunState::Incomplete && !force;
    let outcome = if state == RunState::Complete && !force {
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
    Some(report(resumed, outcome))
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
        let repair = repair(dir)?;
        if !repair.removed_temporary.is_empty() {
            tracing::info!(
                "{title}: removed temporary files of an interrupted attempt: {}",
                repair.removed_temporary.join(", ")
            );
        }
        if repair.metrics_lines_cut > 0 {
            tracing::info!(
                "{title}: metrics.jsonl cut back to epoch {} (where the checkpoint is): {} \
                 later line(s) removed, those epochs run again",
                repair.epochs_done,
                repair.metrics_lines_cut
            );
        }
        match dir.latest_checkpoint()? {
            Some((epoch, _)) => tracing::info!("{title}: resuming after epoch {epoch}"),
            None => tracing::info!("{title}: resuming (no checkpoint yet, starting over)"),
        }
    } else {
        tracing::info!("{title}: starting in {}", dir.path().display());
    }
    let config = plan.config()?;
    dir.write_config(&config)?;
    dir.write_environment(&config.config)?;
    let mut result = catch_unwind(AssertUnwindSafe(|| engine(&config, registry, dir)))
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
