//! `mvlpt pretrain`: contrastive pretraining of a whole CLIP from a recipe, resumable, and the
//! zero-shot evaluation of a model on the recipe's tasks (`--eval-only`).

use anyhow::{Context, Result};
use mvlpt_framework::model::{load_model, parse_device, LoadOptions};
use mvlpt_framework::plugin::Registry;
use mvlpt_framework::pretrain::{
    evaluate_recipe, markdown_table, pretrain, sha256_file, LoadedPretrain, PretrainOptions,
};
use std::path::PathBuf;

/// Arguments of `mvlpt pretrain`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The recipe, e.g. experiments/pretrain-tiny.toml.
    experiment: PathBuf,
    /// Override a recipe value (`--set train.steps=200`); repeatable, later wins.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Discard the run's checkpoint and start from step 0.
    #[arg(long)]
    fresh: bool,
    /// Stop after this many steps (checkpointed); run the command again to continue.
    #[arg(long, value_name = "STEPS")]
    stop_after: Option<usize>,
    /// Do not train: evaluate a model zero-shot on the recipe's `eval.tasks` and print a table.
    #[arg(long)]
    eval_only: bool,
    /// The model to evaluate with --eval-only (default: the recipe's exported model).
    #[arg(long, requires = "eval_only")]
    model: Option<String>,
    /// With --eval-only, also write the results as JSON to this file.
    #[arg(long, requires = "eval_only")]
    json: Option<PathBuf>,
}

/// Runs `mvlpt pretrain`.
pub fn run(args: Args) -> Result<()> {
    let loaded = LoadedPretrain::load(&args.experiment, &args.sets)?;
    let registry = Registry::builtin()?;
    if args.eval_only {
        return eval_only(&loaded, &registry, &args);
    }
    let options = PretrainOptions {
        fresh: args.fresh,
        stop_after: args.stop_after,
    };
    let summary = pretrain(&loaded, &registry, &options)?;
    if let Some(export) = &summary.export {
        println!(
            "model: {} ({} bytes)\nsha256: {}\nsteps: {}, training time {:.0} s, {} parameters\n",
            export.model_path.display(),
            export.bytes,
            export.sha256,
            summary.steps,
            summary.training_seconds,
            summary.parameters
        );
        print!("{}", markdown_table(&export.zero_shot));
    }
    Ok(())
}

fn eval_only(loaded: &LoadedPretrain, registry: &Registry, args: &Args) -> Result<()> {
    let source = args
        .model
        .clone()
        .unwrap_or_else(|| loaded.model_path().to_string_lossy().into_owned());
    let options = LoadOptions {
        device: parse_device(&loaded.config.device)?,
        ..Default::default()
    };
    let clip = load_model(&source, &options, loaded.config.seed)?;
    let results = evaluate_recipe(loaded, registry, &clip)?;
    let path = PathBuf::from(&source);
    if path.is_file() {
        let (sha256, bytes) = sha256_file(&path)?;
        println!("model: {source} ({bytes} bytes)\nsha256: {sha256}\n");
    }
    print!("{}", markdown_table(&results));
    if let Some(json) = &args.json {
        let record = serde_json::json!({ "model": source, "zero_shot": results });
        mvlpt_framework::io::write_json_atomic(json, &record)
            .with_context(|| format!("writing {}", json.display()))?;
    }
    Ok(())
}
