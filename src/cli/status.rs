//! `mvlpt status`: every entry of an experiment's or pipeline's plan with its state: complete,
//! running (and who holds it), failed (the first line of its error.txt) or pending (and the
//! epoch it resumes after, or the Slurm job it waits in). Counts first.

use super::config::ExperimentArgs;
use super::run::load_pipeline;
use anyhow::Result;
use mvlpt_framework::run::status::{pipeline_status, EntryState};

/// Arguments of `mvlpt status`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    experiment: ExperimentArgs,
}

/// Runs `mvlpt status`.
pub fn run(args: Args) -> Result<()> {
    let (pipeline, _) = load_pipeline(&args.experiment)?;
    let lines = pipeline_status(&pipeline)?;
    let count = |name: &str| lines.iter().filter(|l| l.state.name() == name).count();
    println!(
        "{} {}: {} entries: {} complete, {} running, {} failed, {} pending",
        if pipeline.is_pipeline {
            "pipeline"
        } else {
            "experiment"
        },
        pipeline.name,
        lines.len(),
        count("complete"),
        count("running"),
        count("failed"),
        count("pending"),
    );
    let rows: Vec<[String; 6]> = lines
        .iter()
        .map(|l| {
            [
                l.index.to_string(),
                l.stage.clone(),
                l.state.name().to_string(),
                l.run_id.clone(),
                l.description.clone(),
                if l.detail.is_empty() {
                    l.dir.display().to_string()
                } else {
                    format!("{} ({})", l.detail, l.dir.display())
                },
            ]
        })
        .collect();
    let cells: Vec<[&str; 6]> = rows
        .iter()
        .map(|r| [&*r[0], &*r[1], &*r[2], &*r[3], &*r[4], &*r[5]])
        .collect();
    print!(
        "{}",
        super::aligned(
            &["index", "stage", "state", "run id", "values", "detail"],
            &cells
        )
    );
    if lines
        .iter()
        .any(|l| matches!(l.state, EntryState::Failed(_)))
    {
        println!("failed runs keep their error.txt; `mvlpt run` again resumes them");
    }
    Ok(())
}
