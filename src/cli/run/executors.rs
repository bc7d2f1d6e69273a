//! `mvlpt run --executor local|slurm`, `--jobs`, `--devices`: which executor runs the plan,
//! and what the command line prints about it.

use super::Args;
use anyhow::{bail, Context, Result};
use mvlpt_framework::config::{ExecutorKind, SlurmConfig};
use mvlpt_framework::engine::format_duration;
use mvlpt_framework::run::executor::local::{
    execute_local, EntryResult, EntryStatus, LocalReport, Workers,
};
use mvlpt_framework::run::executor::{slurm, EntryCommand};
use mvlpt_framework::run::pipeline::{Pipeline, StageKind};

/// How this `mvlpt run` executes.
pub enum Choice {
    /// One run after another in this process.
    InProcess,
    /// Worker processes.
    Local(Workers),
    /// Slurm job arrays, one per stage.
    Slurm,
}

/// The executor: command-line flags over the config's `[executor]` (of the first experiment
/// stage, which holds a pipeline file's `[executor]` too).
pub fn choose(pipeline: &Pipeline, args: &Args) -> Result<Choice> {
    let config = pipeline
        .experiment_stages()
        .next()
        .and_then(|(_, stage)| stage.base.config.executor.clone())
        .unwrap_or_default();
    let kind = match args.executor {
        Some(super::ExecutorArg::Local) => ExecutorKind::Local,
        Some(super::ExecutorArg::Slurm) => ExecutorKind::Slurm,
        None if args.index.is_some() => ExecutorKind::Local,
        None => config.kind,
    };
    let jobs = args.jobs.unwrap_or(config.jobs);
    let devices = args.devices.clone().unwrap_or(config.devices);
    match kind {
        ExecutorKind::Slurm => {
            if args.jobs.is_some() || args.devices.is_some() {
                bail!("--jobs and --devices belong to the local executor; Slurm takes its resources from [executor.slurm]");
            }
            if args.plan {
                bail!("--plan lists the plan; with the Slurm executor, --dry-run writes the scripts without submitting");
            }
            Ok(Choice::Slurm)
        }
        ExecutorKind::Local if jobs <= 1 && devices.is_empty() => Ok(Choice::InProcess),
        ExecutorKind::Local => {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let (workers, note) = Workers::plan(jobs, devices, cores);
            if let Some(note) = note {
                tracing::warn!("{note}");
            }
            Ok(Choice::Local(workers))
        }
    }
}

/// How a child runs one entry of this command line.
pub fn entry_command(pipeline: &Pipeline, args: &Args) -> Result<EntryCommand> {
    Ok(EntryCommand {
        program: std::env::current_exe().context("finding the mvlpt binary")?,
        file: std::path::absolute(&pipeline.file)
            .with_context(|| format!("resolving {}", pipeline.file.display()))?,
        sets: args.experiment.sets.clone(),
        force: args.force,
    })
}

/// Runs the plan with worker processes, printing a line as each entry ends.
pub fn run_local(pipeline: &Pipeline, args: &Args, workers: &Workers) -> Result<LocalReport> {
    if args.dry_run || args.plan {
        bail!("--dry-run and --plan run nothing; drop --jobs/--devices");
    }
    let path = pipeline.write_plan(&args.experiment.sets)?;
    tracing::info!(
        "{} entries, {} worker process(es) with {} thread(s) each{}; plan in {}",
        pipeline.entry_count(),
        workers.jobs,
        workers.threads,
        if workers.devices.is_empty() {
            String::new()
        } else {
            format!(", devices {}", workers.devices.join(","))
        },
        path.display()
    );
    let command = entry_command(pipeline, args)?;
    let print = |result: &EntryResult| print_result(pipeline, result);
    Ok(execute_local(pipeline, &command, workers, &print))
}

fn print_result(pipeline: &Pipeline, result: &EntryResult) {
    let status = match &result.status {
        EntryStatus::Completed(Some(test)) => format!("complete, test {:.2}%", 100.0 * test),
        EntryStatus::Completed(None) => "complete".to_string(),
        EntryStatus::Skipped => "already complete, skipped".to_string(),
        EntryStatus::Failed(message) => format!("FAILED: {message}"),
    };
    let stage = if pipeline.is_pipeline {
        format!("stage {}: ", result.stage)
    } else {
        String::new()
    };
    let worker = result
        .worker
        .map(|w| format!(", worker {w}"))
        .unwrap_or_default();
    println!(
        "{stage}run {}/{} {} ({}{worker}): {status}\n    {}",
        result.position.0,
        result.position.1,
        result.description,
        format_duration(result.seconds),
        result.dir.display()
    );
}

/// The summary of failed entries (with their error.txt) and the error `mvlpt run` exits with.
pub fn fail_on_local_failures(pipeline: &Pipeline, report: &LocalReport) -> Result<()> {
    let failures: Vec<&EntryResult> = report.failures().collect();
    if failures.is_empty() {
        return Ok(());
    }
    println!("\n{} run(s) failed:", failures.len());
    for failure in &failures {
        if let EntryStatus::Failed(message) = &failure.status {
            println!(
                "  index {} ({}, {}): {message}\n    {}",
                failure.index,
                failure.stage,
                failure.description,
                failure.dir.join("error.txt").display()
            );
        }
    }
    let mut message = format!("{} run(s) failed", failures.len());
    if pipeline.is_pipeline {
        message = format!("stage {}: {message}", failures[0].stage);
    }
    if !report.not_started.is_empty() {
        message.push_str(&format!("; not started: {}", report.not_started.join(", ")));
    }
    bail!("{message}")
}

/// `--executor slurm`: writes the plan and one sbatch script per stage for the entries that
/// are not complete, then submits them chained with `afterok` (`--dry-run`: only writes).
pub fn submit_slurm(pipeline: &Pipeline, args: &Args) -> Result<()> {
    let plan = pipeline.write_plan(&args.experiment.sets)?;
    let command = entry_command(pipeline, args)?;
    let resources = |stage: usize| stage_resources(pipeline, stage);
    let scripts = slurm::write_scripts(pipeline, &command, &resources)?;
    println!("wrote {}", plan.display());
    if scripts.is_empty() {
        println!(
            "every entry of {} is complete: nothing to submit",
            pipeline.name
        );
        return Ok(());
    }
    for script in &scripts {
        println!(
            "stage {}: {} entr{} in {}",
            script.stage,
            script.indices.len(),
            if script.indices.len() == 1 {
                "y"
            } else {
                "ies"
            },
            script.path.display()
        );
    }
    if args.dry_run {
        println!("--dry-run: nothing submitted");
        return Ok(());
    }
    let active = slurm::queued_entries(pipeline)?;
    if !active.is_empty() {
        tracing::warn!(
            "{} entries are still in Slurm's queue from an earlier submission; a run is locked \
             while a task works on it, so a second task waits for it instead of clashing",
            active.len()
        );
    }
    let jobs = slurm::submit(pipeline, &scripts)?;
    for job in &jobs {
        println!(
            "stage {}: submitted job {}{}",
            job.array.stage,
            job.job,
            if job.after.is_empty() {
                String::new()
            } else {
                format!(" (after {})", job.after.join(", "))
            }
        );
    }
    println!(
        "job ids: {}",
        jobs.iter()
            .map(|j| j.job.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    );
    Ok(())
}

/// `[executor.slurm]` of a stage: an experiment stage's own, an average stage's that of the
/// stage it averages.
fn stage_resources(pipeline: &Pipeline, stage: usize) -> SlurmConfig {
    let of_experiment = |e: &mvlpt_framework::run::pipeline::ExperimentStage| {
        e.base
            .config
            .executor
            .as_ref()
            .map(|x| x.slurm.clone())
            .unwrap_or_default()
    };
    match &pipeline.stages[stage].kind {
        StageKind::Experiment(e) => of_experiment(e),
        StageKind::Average(a) => pipeline
            .experiment_stages()
            .find(|(name, _)| *name == a.of)
            .map(|(_, e)| of_experiment(e))
            .unwrap_or_default(),
    }
}
