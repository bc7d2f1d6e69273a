//! `mvlpt run`: run an experiment (or each run of its sweep) into `runs/<name>/<run-id>/`.

use super::config::ExperimentArgs;
use super::plugins::load_registry;
use anyhow::{bail, Result};
use mvlpt_framework::engine::experiment::run_experiment;
use mvlpt_framework::run::{check_plans, execute_runs, format_duration, plan_runs, Outcome};

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
    let base = args.experiment.load()?;
    let registry = load_registry(Some(&base))?;
    let plans = plan_runs(&base, &registry)?;
    if args.dry_run {
        let rows: Vec<[String; 5]> = plans
            .iter()
            .map(|plan| {
                [
                    (plan.spec.index + 1).to_string(),
                    plan.dir.run_id().to_string(),
                    plan.dir.state().to_string(),
                    plan.spec.describe(),
                    plan.dir.path().display().to_string(),
                ]
            })
            .collect();
        let cells: Vec<[&str; 5]> = rows
            .iter()
            .map(|r| [&*r[0], &*r[1], &*r[2], &*r[3], &*r[4]])
            .collect();
        print!(
            "{}",
            super::aligned(&["#", "run id", "state", "values", "directory"], &cells)
        );
        println!("{} run(s) of experiment {}", plans.len(), base.config.name);
        return check_plans(&plans);
    }
    check_plans(&plans)?;
    let reports = execute_runs(&plans, &registry, &run_experiment, args.force);
    let mut failed = 0;
    for report in &reports {
        let status = match &report.outcome {
            Outcome::Completed(result) => format!("complete, test {:.2}%", 100.0 * result.test),
            Outcome::Skipped => "already complete, skipped".to_string(),
            Outcome::Failed(message) => {
                failed += 1;
                format!("FAILED: {message}")
            }
        };
        println!(
            "run {}/{} {}{} ({}): {status}",
            report.index + 1,
            reports.len(),
            report.description,
            if report.resumed { " [resumed]" } else { "" },
            format_duration(report.seconds),
        );
        println!("    {}", report.path.display());
    }
    write_experiment_report(&base)?;
    if failed > 0 {
        bail!("{failed} of {} runs failed", reports.len());
    }
    Ok(())
}

/// Prints the experiment's table (mean ± std over seeds of its complete runs) and writes
/// `report.md`, `.csv`, `.json` and `.png` into its directory `runs/<name>/`.
fn write_experiment_report(base: &mvlpt_framework::config::LoadedConfig) -> Result<()> {
    use mvlpt_framework::run::report::{aggregate, collect};
    let root = base.config.output.runs_dir.join(&base.config.name);
    if !root.is_dir() {
        return Ok(());
    }
    let collection = collect(&root, None)?;
    for (dir, reason) in &collection.left_out {
        tracing::warn!("run left out of the report: {}: {reason}", dir.display());
    }
    if collection.records.is_empty() {
        return Ok(());
    }
    let report = aggregate(&collection.records, "test")?;
    println!();
    print!("{}", report.to_text());
    for path in report.write(&root)? {
        println!("wrote {}", path.display());
    }
    Ok(())
}
