//! `mvlpt report`: mean ± std over seeds of the complete runs below a directory (or of an
//! experiment), printed and written as Markdown, CSV, JSON and charts; optionally laid out as
//! a paper table.

use super::config::find_experiment;
use anyhow::{bail, Result};
use mvlpt_framework::run::chart::{write_chart, write_line_chart};
use mvlpt_framework::run::pipeline::{PipelineSource, SourceStageKind};
use mvlpt_framework::run::report::{aggregate, collect_all, TableLayout};
use std::path::{Path, PathBuf};

/// Arguments of `mvlpt report`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A directory of runs (`runs/`, `runs/<experiment>/`) or an experiment file or name.
    target: PathBuf,
    /// Config overrides when `target` is an experiment (they can move `output.runs_dir`).
    #[arg(long = "set", short = 's', value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// When `target` is a pipeline file: the experiment stage(s) to report in one table
    /// (repeatable; default: the file's `[report] stages`, else its last experiment stage).
    /// One stage's report is written into its directory, several stages' into the pipeline's.
    #[arg(long)]
    stage: Vec<String>,
    /// Aggregate this entry of each result's `metrics` instead of the overall test value.
    #[arg(long)]
    metric: Option<String>,
    /// Where to write report.md, report.csv and report.json (default: the runs directory).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also lay the results out as a paper table (datasets as columns, named averages), e.g.
    /// experiments/paper/elevater-table.toml; printed and written as table.md, with its first
    /// average against shots as table-shots.png (a base-to-novel layout: base, novel and
    /// harmonic mean, its first average drawn as table.png).
    #[arg(long)]
    layout: Option<PathBuf>,
}

/// Runs `mvlpt report`.
pub fn run(args: Args) -> Result<()> {
    let (roots, out, default_layout) = if args.target.is_dir() {
        if !args.stage.is_empty() {
            bail!(
                "--stage needs a pipeline file, not the directory {}",
                args.target.display()
            );
        }
        (vec![args.target.clone()], args.target.clone(), None)
    } else {
        report_dirs(&find_experiment(&args.target)?, &args.sets, &args.stage)?
    };
    let collection = collect_all(&roots, args.metric.as_deref())?;
    for dir in &collection.incomplete {
        tracing::warn!("incomplete run left out: {}", dir.display());
    }
    for (dir, reason) in &collection.left_out {
        tracing::warn!("run left out: {}: {reason}", dir.display());
    }
    if collection.records.is_empty() {
        let dirs: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
        bail!("no complete runs below {}", dirs.join(", "));
    }
    let metric = args.metric.as_deref().unwrap_or("test");
    let report = aggregate(&collection.records, metric)?;
    print!("{}", report.to_text());
    let out = args.out.unwrap_or(out);
    for path in report.write(&out)? {
        tracing::info!("wrote {}", path.display());
    }
    if let Some(layout) = args.layout.as_ref().or(default_layout.as_ref()) {
        let layout = TableLayout::load(layout)?;
        let table = report.layout_markdown(&layout)?;
        println!("\n{table}");
        let path = out.join("table.md");
        mvlpt_framework::io::write_atomic(&path, table.as_bytes())?;
        tracing::info!("wrote {}", path.display());
        if layout.base_to_novel {
            if let Some(chart) = report.base_to_novel_chart(&layout)? {
                let path = out.join("table.png");
                write_chart(&chart, &path)?;
                tracing::info!("wrote {}", path.display());
            }
        } else if let Some(chart) = report.layout_chart(&layout)? {
            let path = out.join("table-shots.png");
            write_line_chart(&chart, &path)?;
            tracing::info!("wrote {}", path.display());
        }
    }
    Ok(())
}

/// What to report for an experiment file (`<runs_dir>/<name>/`) or a pipeline file: the
/// directories of `stages` (default: the file's `[report] stages`, else its last experiment
/// stage), where to write the report (the stage's directory, or the pipeline's for several
/// stages) and the pipeline's default layout.
fn report_dirs(
    file: &Path,
    sets: &[String],
    stages: &[String],
) -> Result<(Vec<PathBuf>, PathBuf, Option<PathBuf>)> {
    let source = PipelineSource::load(file, sets)?;
    if !source.is_pipeline {
        if !stages.is_empty() {
            bail!(
                "--stage needs a pipeline file; {} is an experiment",
                file.display()
            );
        }
        let dir = source.stage_dir(&source.name)?;
        return Ok((vec![dir.clone()], dir, None));
    }
    let names: Vec<String> = if !stages.is_empty() {
        stages.to_vec()
    } else if !source.report.stages.is_empty() {
        source.report.stages.clone()
    } else {
        source
            .experiment_configs()
            .last()
            .map(|(name, _)| vec![name.to_string()])
            .unwrap_or_default()
    };
    let mut dirs = Vec::new();
    for name in &names {
        if let SourceStageKind::Average { .. } = source.stage(name)?.kind {
            bail!("stage `{name}` averages prompts; it has no results to report");
        }
        dirs.push(source.stage_dir(name)?);
    }
    let out = match dirs.as_slice() {
        [one] => one.clone(),
        _ => source.root(),
    };
    let layout = if stages.is_empty() {
        source.report.layout.clone()
    } else {
        None
    };
    Ok((dirs, out, layout))
}
