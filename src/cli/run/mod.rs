//! `mvlpt run`: run an experiment (each run of its sweep) into `runs/<name>/<run-id>/`, or a
//! pipeline file's stages in order into `runs/<pipeline>/<stage>/`.

mod executors;
mod print;

use super::config::{find_experiment, ExperimentArgs};
use super::plugins::load_registry_for;
use anyhow::{bail, Result};
use mvlpt_framework::run::pipeline::{
    execute_pipeline, EntryOutcome, Pipeline, PipelineReport, PipelineSource, StageOutcome,
};
use mvlpt_framework::run::run_experiment;
use mvlpt_framework::run::Outcome;
use print::{print_outcomes, print_plan, print_run, write_stage_report};

/// Arguments of `mvlpt run`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    experiment: ExperimentArgs,
    /// Start complete and incomplete runs over from an empty directory.
    #[arg(long)]
    force: bool,
    /// List the runs (id, state, sweep values, directory) and check their configs and
    /// plugins, without running anything.
    #[arg(long)]
    dry_run: bool,
    /// Write the plan, every run of every stage (run id, values, stage, directory), to
    /// `plan.json` in the experiment's (pipeline's) directory and list it, without running
    /// anything.
    #[arg(long, conflicts_with_all = ["dry_run", "index"])]
    plan: bool,
    /// Run exactly entry I of the plan (from 0; an average stage is one entry), once the
    /// stages before it are complete: skipped if complete, resumed if incomplete, waited for
    /// if another process holds it.
    #[arg(long, value_name = "I", conflicts_with = "dry_run")]
    index: Option<usize>,
    /// Where the runs execute: `local` (this machine) or `slurm` (job arrays); default: the
    /// config's `executor.kind`, else local.
    #[arg(long, value_enum, conflicts_with = "index")]
    executor: Option<ExecutorArg>,
    /// Local executor: this many worker processes at once, each with cores / N threads
    /// (default: `executor.jobs`, else one run at a time in this process).
    #[arg(long, value_name = "N", conflicts_with = "index")]
    jobs: Option<usize>,
    /// Local executor: GPU ids, one per worker in turn (`CUDA_VISIBLE_DEVICES`), e.g. `0,1`.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "IDS",
        conflicts_with = "index"
    )]
    devices: Option<Vec<String>>,
}

/// `--executor`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum ExecutorArg {
    Local,
    Slurm,
}

/// Runs `mvlpt run`.
pub fn run(args: Args) -> Result<()> {
    let (pipeline, registry) = load_pipeline(&args.experiment)?;
    let executor = executors::choose(&pipeline, &args)?;
    if let executors::Choice::Slurm = executor {
        pipeline.check()?;
        return executors::submit_slurm(&pipeline, &args);
    }
    if args.dry_run || args.plan {
        print_plan(&pipeline, args.plan);
        if args.plan {
            pipeline.check()?;
            let path = pipeline.write_plan(&args.experiment.sets)?;
            println!("wrote {}", path.display());
        }
        return pipeline.check();
    }
    pipeline.check()?;
    if let Some(index) = args.index {
        return run_entry(&pipeline, &registry, index, args.force);
    }
    if let executors::Choice::Local(workers) = &executor {
        let report = executors::run_local(&pipeline, &args, workers)?;
        write_reports(&pipeline)?;
        return executors::fail_on_local_failures(&pipeline, &report);
    }
    let report = execute_pipeline(&pipeline, &registry, &run_experiment, args.force);
    print_outcomes(&pipeline, &report);
    write_reports(&pipeline)?;
    fail_on_failures(&pipeline, &report)
}

/// Prints and writes the report of every experiment stage.
fn write_reports(pipeline: &Pipeline) -> Result<()> {
    for (name, stage) in pipeline.experiment_stages() {
        let heading = pipeline.is_pipeline.then(|| format!("stage {name}:"));
        write_stage_report(&stage.dir(), heading.as_deref())?;
    }
    Ok(())
}

/// `--index`: runs one entry and prints its line; fails if it failed.
fn run_entry(
    pipeline: &Pipeline,
    registry: &mvlpt_framework::plugin::Registry,
    index: usize,
    force: bool,
) -> Result<()> {
    let entry = pipeline.entry(index)?;
    let stage = entry.stage_name.to_string();
    let total = pipeline.stage_entries(entry.stage).len();
    match pipeline.execute_entry(index, registry, &run_experiment, force)? {
        EntryOutcome::Run(report) => {
            if pipeline.is_pipeline {
                print!("stage {stage}: ");
            }
            print_run(&report, total);
            if let Outcome::Failed(message) = &report.outcome {
                bail!("entry {index} failed: {message}");
            }
        }
        EntryOutcome::Average(outcome) => {
            println!("stage {stage}: {}", print::describe_average(&outcome));
        }
    }
    Ok(())
}

/// Loads and plans the experiment or pipeline file of `args`, with the registry of every
/// plugin library its stages name.
pub fn load_pipeline(
    args: &ExperimentArgs,
) -> Result<(Pipeline, mvlpt_framework::plugin::Registry)> {
    let file = find_experiment(&args.experiment)?;
    let source = PipelineSource::load(&file, &args.sets)?;
    let registry = load_registry_for(source.experiment_configs().map(|(_, c)| c))?;
    Ok((source.plan(&registry)?, registry))
}

/// The error `mvlpt run` exits with when runs failed: how many, in which stage, and which
/// stages did not start.
fn fail_on_failures(pipeline: &Pipeline, report: &PipelineReport) -> Result<()> {
    let Some(stage) = report.stages.iter().find(|s| s.outcome.failures() > 0) else {
        return Ok(());
    };
    let what = match &stage.outcome {
        StageOutcome::Runs(reports) => {
            format!(
                "{} of {} runs failed",
                stage.outcome.failures(),
                reports.len()
            )
        }
        StageOutcome::Average(_) => "the average failed".to_string(),
    };
    if !pipeline.is_pipeline {
        bail!("{what}");
    }
    let mut message = format!("stage {}: {what}", stage.name);
    if !report.not_started.is_empty() {
        message.push_str(&format!("; not started: {}", report.not_started.join(", ")));
    }
    bail!("{message}")
}
