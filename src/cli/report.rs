//! `mvlpt report`: mean ± std over seeds of the complete runs below a directory (or of an
//! experiment), printed and written as Markdown, CSV, JSON and charts; optionally laid out as
//! a paper table.

use super::config::find_experiment;
use anyhow::{bail, Result};
use mvlpt_framework::run::chart::write_line_chart;
use mvlpt_framework::run::pipeline::{PipelineSource, SourceStageKind};
use mvlpt_framework::run::report::{aggregate, collect, TableLayout};
use std::path::{Path, PathBuf};

/// Arguments of `mvlpt report`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A directory of runs (`runs/`, `runs/<experiment>/`) or an experiment file or name.
    target: PathBuf,
    /// Config overrides when `target` is an experiment (they can move `output.runs_dir`).
    #[arg(long = "set", short = 's', value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// When `target` is a pipeline file: the experiment stage to report (default: the last
    /// one). The report is written into that stage's directory.
    #[arg(long)]
    stage: Option<String>,
    /// Aggregate this entry of each result's `metrics` instead of the overall test value.
    #[arg(long)]
    metric: Option<String>,
    /// Where to write report.md, report.csv and report.json (default: the runs directory).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also lay the results out as a paper table (datasets as columns, named averages), e.g.
    /// experiments/paper/elevater-table.toml; printed and written as table.md, with its first
    /// average against shots as table-shots.png.
    #[arg(long)]
    layout: Option<PathBuf>,
}

/// Runs `mvlpt report`.
pub fn run(args: Args) -> Result<()> {
    let root = if args.target.is_dir() {
        if args.stage.is_some() {
            bail!(
                "--stage needs a pipeline file, not the directory {}",
                args.target.display()
            );
        }
        args.target.clone()
    } else {
        report_dir(
            &find_experiment(&args.target)?,
            &args.sets,
            args.stage.as_deref(),
        )?
    };
    let collection = collect(&root, args.metric.as_deref())?;
    for dir in &collection.incomplete {
        tracing::warn!("incomplete run left out: {}", dir.display());
    }
    for (dir, reason) in &collection.left_out {
        tracing::warn!("run left out: {}: {reason}", dir.display());
    }
    if collection.records.is_empty() {
        bail!("no complete runs below {}", root.display());
    }
    let metric = args.metric.as_deref().unwrap_or("test");
    let report = aggregate(&collection.records, metric)?;
    print!("{}", report.to_text());
    let out = args.out.unwrap_or(root);
    for path in report.write(&out)? {
        tracing::info!("wrote {}", path.display());
    }
    if let Some(layout) = &args.layout {
        let layout = TableLayout::load(layout)?;
        let table = report.layout_markdown(&layout)?;
        println!("\n{table}");
        let path = out.join("table.md");
        mvlpt_framework::io::write_atomic(&path, table.as_bytes())?;
        tracing::info!("wrote {}", path.display());
        if let Some(chart) = report.layout_chart(&layout)? {
            let path = out.join("table-shots.png");
            write_line_chart(&chart, &path)?;
            tracing::info!("wrote {}", path.display());
        }
    }
    Ok(())
}

/// The runs directory to report for an experiment file (`<runs_dir>/<name>/`) or a pipeline
/// file (`<runs_dir>/<pipeline>/<stage>/` of `stage`, default the last experiment stage).
fn report_dir(file: &Path, sets: &[String], stage: Option<&str>) -> Result<PathBuf> {
    let source = PipelineSource::load(file, sets)?;
    if !source.is_pipeline {
        if stage.is_some() {
            bail!(
                "--stage needs a pipeline file; {} is an experiment",
                file.display()
            );
        }
        return source.stage_dir(&source.name);
    }
    let name = match stage {
        Some(name) => {
            if let SourceStageKind::Average { .. } = source.stage(name)?.kind {
                bail!("stage `{name}` averages prompts; it has no results to report");
            }
            name.to_string()
        }
        None => source
            .experiment_configs()
            .last()
            .map(|(name, _)| name.to_string())
            .unwrap_or_default(),
    };
    source.stage_dir(&name)
}
