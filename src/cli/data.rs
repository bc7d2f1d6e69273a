//! `mvlpt data check <experiment>`: verifies that the datasets an experiment names are on disk
//! and readable before a run spends hours on them.
//!
//! For each configured dataset (`data.dataset`, or every entry of `data.tasks`) it builds the
//! dataset plugin from the resolved config, counts the images per split and per class, checks
//! every label against the class list, and opens every image (or `--sample N` per split),
//! naming each missing or unreadable one. Any problem makes the command fail.

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use mvlpt_framework::config::LoadedConfig;
use mvlpt_framework::data::{Dataset, DatasetContext, ImageSource, Sample, Split, ZipArchives};
use mvlpt_framework::plugin::Registry;
use rayon::prelude::*;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// `mvlpt data ...`
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: DataCommand,
}

#[derive(Subcommand, Debug)]
enum DataCommand {
    /// Check an experiment's datasets: counts per split and class, every image opened.
    Check(CheckArgs),
}

#[derive(clap::Args, Debug)]
struct CheckArgs {
    /// The experiment file.
    experiment: PathBuf,
    /// Override a config value (`--set data.root=/data`); repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Open only N images per split (evenly spaced) instead of all of them.
    #[arg(long, value_name = "N")]
    sample: Option<usize>,
    /// Print the number of images of every class in every split.
    #[arg(long)]
    per_class: bool,
    /// How many problems to list by name per dataset (the rest are counted).
    #[arg(long, default_value_t = 20, value_name = "N")]
    max_listed: usize,
}

/// Runs `mvlpt data <command>`.
pub fn run(args: Args) -> Result<()> {
    match args.command {
        DataCommand::Check(args) => check(&args),
    }
}

fn check(args: &CheckArgs) -> Result<()> {
    let loaded = LoadedConfig::load(Some(&args.experiment), &args.sets)?;
    let data = &loaded.config.data;
    let names = if data.tasks.is_empty() {
        vec![data.dataset.clone()]
    } else {
        data.tasks.clone()
    };
    let root = loaded.resolve_path_of("data.root", &data.root);
    if !root.is_dir() {
        let source = loaded
            .provenance()
            .get("data.root")
            .cloned()
            .unwrap_or_else(|| "built-in defaults".into());
        bail!(
            "data.root = {} (from {source}) is not a directory; set it in the experiment, with \
             MVLPT_DATA__ROOT or with --set data.root=<dir>",
            root.display()
        );
    }
    let registry = super::plugins::checked_registry(&loaded)?;
    let mut problems = 0;
    for name in &names {
        println!("dataset {name}");
        match build(&registry, &loaded, &root, name) {
            Ok(dataset) => problems += check_dataset(dataset.as_ref(), args)?,
            Err(e) => {
                println!("  cannot build it: {e:#}");
                problems += 1;
            }
        }
    }
    if problems > 0 {
        bail!(
            "{problems} problem(s) in {} dataset(s) under {}",
            names.len(),
            root.display()
        );
    }
    println!("all {} dataset(s) readable", names.len());
    Ok(())
}

fn build(
    registry: &Registry,
    loaded: &LoadedConfig,
    root: &Path,
    name: &str,
) -> Result<Box<dyn Dataset>> {
    let factory = registry.dataset(name)?;
    factory(&DatasetContext {
        section: loaded.section(format!("data.{name}")),
        root: root.to_path_buf(),
    })
}

/// Prints the counts and the problems of one dataset; returns the number of problems.
fn check_dataset(dataset: &dyn Dataset, args: &CheckArgs) -> Result<usize> {
    let info = dataset.info();
    let classes = info.classnames.len();
    println!(
        "  {classes} classes, metric {}{}",
        info.metric.name(),
        if info.multilabel { ", multi-label" } else { "" }
    );
    let mut problems = Vec::new();
    let mut per_class = vec![[0usize; 3]; classes];
    let mut to_open: Vec<Sample> = Vec::new();
    let mut seen = HashSet::new();
    for (column, split) in [Split::Train, Split::Val, Split::Test]
        .into_iter()
        .enumerate()
    {
        let samples = dataset
            .samples(split)
            .with_context(|| format!("listing the {} split", split.as_str()))?;
        let mut covered = HashSet::new();
        for sample in &samples {
            for &label in &sample.labels {
                match per_class.get_mut(label) {
                    Some(counts) => {
                        counts[column] += 1;
                        covered.insert(label);
                    }
                    None => problems.push(format!(
                        "{}: label {label} is out of range for {classes} classes",
                        sample.image
                    )),
                }
            }
        }
        println!(
            "  {:<5} {:>8} images, {} of {classes} classes",
            split.as_str(),
            samples.len(),
            covered.len()
        );
        for sample in chosen(&samples, args.sample) {
            if seen.insert(sample.image.clone()) {
                to_open.push(sample.clone());
            }
        }
    }
    print_classes(&info.classnames, &per_class, args.per_class);

    let failures: Vec<String> = to_open
        .par_iter()
        .filter_map(|sample| open_problem(dataset, sample))
        .collect();
    println!(
        "  opened {} images: {} missing or unreadable",
        to_open.len(),
        failures.len()
    );
    problems.extend(failures);
    for problem in problems.iter().take(args.max_listed) {
        println!("  problem: {problem}");
    }
    if problems.len() > args.max_listed {
        println!(
            "  ... and {} more problems",
            problems.len() - args.max_listed
        );
    }
    Ok(problems.len())
}

/// All samples, or `n` evenly spaced ones.
fn chosen(samples: &[Sample], n: Option<usize>) -> Vec<&Sample> {
    match n {
        Some(n) if n < samples.len() => (0..n).map(|i| &samples[i * samples.len() / n]).collect(),
        _ => samples.iter().collect(),
    }
}

/// Classes without training images, and with `--per-class` the whole table.
fn print_classes(classnames: &[String], per_class: &[[usize; 3]], full: bool) {
    if full {
        println!("  {:>6} {:>6} {:>6}  class", "train", "val", "test");
        for (name, [train, val, test]) in classnames.iter().zip(per_class) {
            println!("  {train:>6} {val:>6} {test:>6}  {name}");
        }
        return;
    }
    let empty: Vec<&str> = classnames
        .iter()
        .zip(per_class)
        .filter(|(_, counts)| counts[0] == 0)
        .map(|(name, _)| name.as_str())
        .collect();
    if !empty.is_empty() {
        let shown: Vec<&str> = empty.iter().take(10).copied().collect();
        let more = empty.len().saturating_sub(shown.len());
        println!(
            "  {} classes without training images: {}{}",
            empty.len(),
            shown.join(", "),
            if more > 0 {
                format!(", ... ({more} more)")
            } else {
                String::new()
            }
        );
    }
}

/// Why a sample's image cannot be used, if it cannot.
fn open_problem(dataset: &dyn Dataset, sample: &Sample) -> Option<String> {
    match &sample.image {
        ImageSource::File(path) if !path.is_file() => {
            let link = std::fs::read_link(path)
                .map(|target| {
                    format!(
                        " (a symbolic link to {}, which does not exist)",
                        target.display()
                    )
                })
                .unwrap_or_default();
            return Some(format!("missing image file {}{link}", path.display()));
        }
        ImageSource::Zip { archive, .. } if !archive.is_file() => {
            return Some(format!(
                "missing zip archive {} (for {})",
                archive.display(),
                sample.image
            ))
        }
        ImageSource::Zip { archive, member } => {
            match ZipArchives::global().contains(archive, member) {
                Ok(true) => {}
                Ok(false) => return Some(format!("missing image {}", sample.image)),
                Err(e) => return Some(format!("unreadable archive: {e}")),
            }
        }
        _ => {}
    }
    dataset
        .load_image(sample)
        .err()
        .map(|e| format!("unreadable image {}: {e:#}", sample.image))
}
