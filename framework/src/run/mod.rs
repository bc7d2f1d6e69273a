//! Runs: where an experiment's outputs live and how a sweep of them is driven and summarised.
//!
//! Every run gets a directory `runs/<experiment>/<run-id>/` whose id is a hash of the resolved
//! config, so the same config always lands in the same place. The directory holds the resolved
//! config and the provenance of each value, an environment record, `log.txt`, `metrics.jsonl`,
//! checkpoints, `result.json` and, written last, `COMPLETE`. Every file except the append-only
//! logs is written atomically (write to a temporary file, then rename).
//!
//! - [`RunDir`]: the directory and its files; [`MetricsLog`]: the append-only metrics.
//! - [`DirLock`]: the lock a process holds on a run directory while it works in it;
//!   [`repair`]: what an interrupted run's directory needs before it resumes.
//! - [`init_logging`] / [`init_run_logging`]: console logging plus a per-run `log.txt`.
//! - [`run_experiment`]: one run trained and evaluated into its directory; [`RunResult`]: its
//!   `result.json`.
//! - [`expand_sweep`]: the `[sweep]` table as a list of runs ([`RunSpec`]).
//! - [`plan_runs`] / [`check_plans`] / [`execute_runs`]: what `mvlpt run` does for every run of an experiment.
//! - [`executor`]: entries spread over worker processes or Slurm job arrays.
//! - [`status`]: the state of every entry of a plan (`mvlpt status`).
//! - [`pipeline`]: stages run in order as one command (experiments, seed averages between
//!   them); an ordinary experiment is a pipeline of one stage.
//! - [`report`]: mean ± std over seeds of the results below a directory; [`chart`]: its bar chart.

pub mod chart;
mod dir;
mod environment;
pub mod executor;
mod experiment;
mod layer;
mod lock;
mod logging;
mod metrics;
pub mod pipeline;
mod planning;
pub mod report;
mod result;
mod resume;
mod runner;
pub mod status;
mod sweep;

pub use dir::{resolved_provenance, run_id, RunDir, RunState};
pub use environment::EnvironmentRecord;
pub use experiment::run_experiment;
pub use lock::{DirLock, LockAttempt, LockHolder, LOCK_FILE};
pub use logging::{init_logging, init_run_logging, RunLogGuard};
pub use metrics::MetricsLog;
pub use planning::{
    check_plans, plan_runs, plan_runs_with, validate_plugins, PlannedRun, ResolvedValues, Resolver,
};
pub use result::RunResult;
pub use resume::{repair, Repair};
pub use runner::{execute_run, execute_runs, Engine, Outcome, RunReport};
pub use sweep::{expand_sweep, RunSpec, MAX_SWEEP_RUNS};
