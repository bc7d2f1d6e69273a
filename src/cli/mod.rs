//! Command definitions and dispatch.

mod encode;
mod pretrain;
mod tokenize;
mod zero_shot;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Prompt tuning of frozen vision-language models (CoOp, VPT, UPT, MVLPT).
#[derive(Parser, Debug)]
#[command(name = "mvlpt", version, about)]
pub struct Cli {
    /// Log filter (e.g. `info`, `debug`, `mvlpt_framework=trace`); also `MVLPT_LOG`.
    #[arg(long, global = true)]
    pub log: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Encode images and texts with a CLIP model into a safetensors file.
    Encode(encode::Args),
    /// Tokenize lines from stdin with the CLIP tokenizer (one JSON array per line).
    Tokenize(tokenize::Args),
    /// Zero-shot classification of images: top-5 classes per image.
    ZeroShot(zero_shot::Args),
    /// Contrastive pretraining of a whole CLIP from a recipe (resumable), or `--eval-only`
    /// zero-shot accuracy of a model on the recipe's tasks.
    Pretrain(pretrain::Args),
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    init_logging(cli.log.as_deref());
    match cli.command {
        Command::Encode(args) => encode::run(args),
        Command::Tokenize(args) => tokenize::run(args),
        Command::ZeroShot(args) => zero_shot::run(args),
        Command::Pretrain(args) => pretrain::run(args),
    }
}

/// Console logging for commands that do not write a run directory.
fn init_logging(filter: Option<&str>) {
    let filter = filter
        .map(str::to_string)
        .or_else(|| std::env::var("MVLPT_LOG").ok())
        .unwrap_or_else(|| "info".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Options shared by commands that load a model.
#[derive(clap::Args, Debug, Clone)]
pub struct ModelArgs {
    /// Model: `builtin`, a .safetensors file, a model directory, a hub id
    /// (`openai/clip-vit-base-patch16`) or `random:<preset>`.
    #[arg(long, default_value = "builtin")]
    pub model: String,
    /// `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// `f32`, `bf16` or `f16`.
    #[arg(long, default_value = "f32")]
    pub dtype: String,
}

impl ModelArgs {
    /// Loads the model.
    pub fn load(&self) -> Result<mvlpt_framework::model::Clip> {
        use mvlpt_framework::model::{load_model, parse_device, parse_dtype, LoadOptions};
        let options = LoadOptions {
            device: parse_device(&self.device)?,
            dtype: parse_dtype(&self.dtype)?,
            cache_dir: None,
        };
        load_model(&self.model, &options, 0)
    }
}
