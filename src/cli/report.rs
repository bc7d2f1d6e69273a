//! `mvlpt report`: mean ± std over seeds of the complete runs below a directory (or of an
//! experiment), printed and written as Markdown, CSV and JSON.

use super::config::find_experiment;
use anyhow::{bail, Result};
use mvlpt_framework::config::LoadedConfig;
use mvlpt_framework::run::report::{aggregate, collect, TableLayout};
use std::path::PathBuf;

/// Arguments of `mvlpt report`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A directory of runs (`runs/`, `runs/<experiment>/`) or an experiment file or name.
    target: PathBuf,
    /// Config overrides when `target` is an experiment (they can move `output.runs_dir`).
    #[arg(long = "set", short = 's', value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Aggregate this entry of each result's `metrics` instead of the overall test value.
    #[arg(long)]
    metric: Option<String>,
    /// Where to write report.md, report.csv and report.json (default: the runs directory).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also lay the results out as a paper table (datasets as columns, named averages), e.g.
    /// experiments/paper/elevater-table.toml; printed and written as table.md.
    #[arg(long)]
    layout: Option<PathBuf>,
}

/// Runs `mvlpt report`.
pub fn run(args: Args) -> Result<()> {
    let root = if args.target.is_dir() {
        args.target.clone()
    } else {
        let loaded = LoadedConfig::load(Some(&find_experiment(&args.target)?), &args.sets)?;
        loaded.config.output.runs_dir.join(&loaded.config.name)
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
        let table = report.layout_markdown(&TableLayout::load(layout)?);
        println!("\n{table}");
        let path = out.join("table.md");
        mvlpt_framework::io::write_atomic(&path, table.as_bytes())?;
        tracing::info!("wrote {}", path.display());
    }
    Ok(())
}
