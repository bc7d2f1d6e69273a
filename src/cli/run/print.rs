//! What `mvlpt run` prints: the plan (`--dry-run`, `--plan`), one line per run as runs end, and
//! each experiment stage's report table.

use anyhow::Result;
use mvlpt_framework::engine::format_duration;
use mvlpt_framework::run::pipeline::{
    AverageOutcome, Pipeline, PipelineReport, StageOutcome, Work,
};
use mvlpt_framework::run::{Outcome, RunReport};
use std::path::Path;

/// The table of every run of every stage: `--dry-run` numbers them from 1 (`#`), `--plan`
/// gives the plan's index (from 0, what `--index` takes).
pub fn print_plan(pipeline: &Pipeline, plan_indices: bool) {
    let rows: Vec<[String; 6]> = pipeline
        .entries()
        .map(|entry| {
            let (id, state) = match entry.work {
                Work::Run(run) => (run.dir.run_id().to_string(), run.dir.state().to_string()),
                Work::Average(average) => (
                    "-".to_string(),
                    if average.is_complete() {
                        "complete"
                    } else {
                        "new"
                    }
                    .to_string(),
                ),
            };
            [
                (entry.index + usize::from(!plan_indices)).to_string(),
                entry.stage_name.to_string(),
                id,
                state,
                entry.describe(),
                entry.dir().display().to_string(),
            ]
        })
        .collect();
    let number = if plan_indices { "index" } else { "#" };
    if pipeline.is_pipeline {
        let cells: Vec<[&str; 6]> = rows
            .iter()
            .map(|r| [&*r[0], &*r[1], &*r[2], &*r[3], &*r[4], &*r[5]])
            .collect();
        print!(
            "{}",
            super::super::aligned(
                &[number, "stage", "run id", "state", "values", "directory"],
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
            super::super::aligned(&[number, "run id", "state", "values", "directory"], &cells)
        );
        println!("{} run(s) of experiment {}", rows.len(), pipeline.name);
    }
}

/// One line per run (and per average stage), under a heading per stage for a pipeline.
pub fn print_outcomes(pipeline: &Pipeline, report: &PipelineReport) {
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
                    Ok(outcome) => describe_average(outcome),
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

pub fn print_run(report: &RunReport, total: usize) {
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

/// Prints the table of the complete runs in `root` (mean ± std over seeds), under `heading`
/// if given, and writes `report.md`, `.csv`, `.json` and `.png` there.
pub fn write_stage_report(root: &Path, heading: Option<&str>) -> Result<()> {
    use mvlpt_framework::run::report::{aggregate, collect};
    if !root.is_dir() {
        return Ok(());
    }
    let collection = collect(root, None)?;
    for (dir, reason) in &collection.left_out {
        tracing::warn!("run left out of the report: {}: {reason}", dir.display());
    }
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

/// `averaged 2 group(s)` or `already complete, skipped`.
pub fn describe_average(outcome: &AverageOutcome) -> String {
    match outcome {
        AverageOutcome::Completed(groups) => format!("averaged {groups} group(s)"),
        AverageOutcome::Skipped => "already complete, skipped".into(),
    }
}
