//! `mvlpt run`: run an experiment (each run of its sweep) into `runs/<name>/<run-id>/`, or a
//! pipeline file's stages in order into `runs/<pipeline>/<stage>/`.

use super::config::{find_experiment, ExperimentArgs};
use super::plugins::load_registry_for;
use anyhow::{bail, Result};
use mvlpt_framework::engine::experiment::run_experiment;
use mvlpt_framework::run::pipeline::{
    execute_pipeline, AverageOutcome, Pipeline, PipelineReport, PipelineSource, StageKind,
    StageOutcome,
};
use mvlpt_framework::run::{format_duration, Outcome, RunReport};
use std::path::Path;

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
}

/// Runs `mvlpt run`.
pub fn run(args: Args) -> Result<()> {
    let (pipeline, registry) = load_pipeline(&args.experiment)?;
    if args.dry_run {
        print_dry_run(&pipeline);
        return pipeline.check();
    }
    pipeline.check()?;
    let report = execute_pipeline(&pipeline, &registry, &run_experiment, args.force);
    print_outcomes(&pipeline, &report);
    for (name, stage) in pipeline.experiment_stages() {
        let heading = pipeline.is_pipeline.then(|| format!("stage {name}:"));
        write_stage_report(&stage.dir(), heading.as_deref())?;
    }
    fail_on_failures(&pipeline, &report)
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

/// The table of every run of every stage (`--dry-run`).
fn print_dry_run(pipeline: &Pipeline) {
    let mut rows: Vec<[String; 6]> = Vec::new();
    for stage in &pipeline.stages {
        match &stage.kind {
            StageKind::Experiment(experiment) => {
                for plan in &experiment.runs {
                    rows.push([
                        (rows.len() + 1).to_string(),
                        stage.name.clone(),
                        plan.dir.run_id().to_string(),
                        plan.dir.state().to_string(),
                        plan.spec.describe(),
                        plan.dir.path().display().to_string(),
                    ]);
                }
            }
            StageKind::Average(average) => rows.push([
                (rows.len() + 1).to_string(),
                stage.name.clone(),
                "-".into(),
                if average.is_complete() {
                    "complete"
                } else {
                    "new"
                }
                .into(),
                format!(
                    "average of `{}` by {:?}: {} group(s)",
                    average.of,
                    average.by,
                    average.groups.len()
                ),
                average.dir.display().to_string(),
            ]),
        }
    }
    if pipeline.is_pipeline {
        let cells: Vec<[&str; 6]> = rows
            .iter()
            .map(|r| [&*r[0], &*r[1], &*r[2], &*r[3], &*r[4], &*r[5]])
            .collect();
        print!(
            "{}",
            super::aligned(
                &["#", "stage", "run id", "state", "values", "directory"],
                &cells
            )
        );
        println!(
            "{} run(s) in {} stage(s) of pipeline {}",
            rows.len(),
            pipeline.stages.len(),
            pipeline.name
        );
    } else {
        let cells: Vec<[&str; 5]> = rows
            .iter()
            .map(|r| [&*r[0], &*r[2], &*r[3], &*r[4], &*r[5]])
            .collect();
        print!(
            "{}",
            super::aligned(&["#", "run id", "state", "values", "directory"], &cells)
        );
        println!("{} run(s) of experiment {}", rows.len(), pipeline.name);
    }
}

/// One line per run (and per average stage), under a heading per stage for a pipeline.
fn print_outcomes(pipeline: &Pipeline, report: &PipelineReport) {
    for stage in &report.stages {
        match &stage.outcome {
            StageOutcome::Runs(reports) => {
                if pipeline.is_pipeline {
                    println!("stage {}:", stage.name);
                }
                for run in reports {
                    print_run(run, reports.len());
                }
            }
            StageOutcome::Average(result) => {
                let status = match result {
                    Ok(AverageOutcome::Completed(groups)) => {
                        format!("averaged {groups} group(s)")
                    }
                    Ok(AverageOutcome::Skipped) => "already complete, skipped".into(),
                    Err(message) => format!("FAILED: {message}"),
                };
                println!("stage {}: {status}", stage.name);
            }
        }
    }
    if !report.not_started.is_empty() {
        println!(
            "not started (an earlier stage failed): {}",
            report.not_started.join(", ")
        );
    }
}

fn print_run(report: &RunReport, total: usize) {
    let status = match &report.outcome {
        Outcome::Completed(result) => format!("complete, test {:.2}%", 100.0 * result.test),
        Outcome::Skipped => "already complete, skipped".to_string(),
        Outcome::Failed(message) => format!("FAILED: {message}"),
    };
    println!(
        "run {}/{} {}{} ({}): {status}",
        report.index + 1,
        total,
        report.description,
        if report.resumed { " [resumed]" } else { "" },
        format_duration(report.seconds),
    );
    println!("    {}", report.path.display());
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

/// Prints the table of the complete runs in `root` (mean ± std over seeds), under `heading`
/// if given, and writes `report.md`, `.csv`, `.json` and `.png` there.
fn write_stage_report(root: &Path, heading: Option<&str>) -> Result<()> {
    use mvlpt_framework::run::report::{aggregate, collect};
    if !root.is_dir() {
        return Ok(());
    }
    let collection = collect(root, None)?;
    if collection.records.is_empty() {
        return Ok(());
    }
    let report = aggregate(&collection.records, "test")?;
    println!();
    if let Some(heading) = heading {
        println!("{heading}");
    }
    print!("{}", report.to_text());
    for path in report.write(root)? {
        println!("wrote {}", path.display());
    }
    Ok(())
}
