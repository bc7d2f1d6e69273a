//! Command definitions and dispatch.

mod bench;
mod ckpt;
mod config;
mod data;
mod encode;
mod forward;
mod plugins;
mod pretrain;
mod report;
mod run;
mod status;
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
    /// Benchmarks: `bench step` times one training step (JSON report).
    Bench(bench::Args),
    /// Prompt checkpoints: average seeds, list tensors.
    Ckpt(ckpt::Args),
    /// Inspect datasets: `data check <experiment>` verifies them on disk.
    Data(data::Args),
    /// Encode images and texts with a CLIP model into a safetensors file.
    Encode(encode::Args),
    /// One forward/backward pass of a prompt method: logits, loss and every prompt gradient.
    Forward(forward::Args),
    /// Tokenize lines from stdin with the CLIP tokenizer (one JSON array per line).
    Tokenize(tokenize::Args),
    /// Zero-shot classification of images: top-5 classes per image.
    ZeroShot(zero_shot::Args),
    /// Run an experiment (each run of its sweep) into runs/<name>/<run-id>/, or a pipeline
    /// file's stages in order; locally, in worker processes or as Slurm job arrays.
    Run(run::Args),
    /// The state of every run of an experiment or pipeline: complete, running, failed, pending.
    Status(status::Args),
    /// Inspect an experiment's resolved config.
    Config(config::Args),
    /// Mean ± std over seeds of the runs below a directory, as tables (Markdown, CSV, JSON).
    Report(report::Args),
    /// Inspect the registered plugins.
    Plugins(plugins::Args),
    /// Contrastive pretraining of a whole CLIP from a recipe (resumable), or `--eval-only`
    /// zero-shot accuracy of a model on the recipe's tasks.
    Pretrain(pretrain::Args),
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    // Console logging, plus each run's log.txt while `mvlpt run` works on it.
    mvlpt_framework::run::init_logging(cli.log.as_deref())?;
    match cli.command {
        Command::Bench(args) => bench::run(args),
        Command::Ckpt(args) => ckpt::run(args),
        Command::Data(args) => data::run(args),
        Command::Encode(args) => encode::run(args),
        Command::Forward(args) => forward::run(args),
        Command::Tokenize(args) => tokenize::run(args),
        Command::ZeroShot(args) => zero_shot::run(args),
        Command::Run(args) => run::run(args),
        Command::Status(args) => status::run(args),
        Command::Config(args) => config::run(args),
        Command::Report(args) => report::run(args),
        Command::Plugins(args) => plugins::run(args),
        Command::Pretrain(args) => pretrain::run(args),
    }
}

/// An error and its causes as one line, `outer: inner: ...`. Backtraces that candle errors
/// carry when `RUST_BACKTRACE` is set are left out, and candle's context and path wrappers are
/// joined like the other causes: a user error reads as one line. (Panics keep their
/// backtraces: they do not come through here.)
pub fn error_line(error: &anyhow::Error) -> String {
    error
        .chain()
        .map(|cause| match cause.downcast_ref::<candle_core::Error>() {
            Some(candle) => candle_line(candle),
            None => cause.to_string(),
        })
        .collect::<Vec<_>>()
        .join(": ")
}

fn candle_line(error: &candle_core::Error) -> String {
    use candle_core::Error;
    match error {
        Error::WithBacktrace { inner, .. } => candle_line(inner),
        Error::Context { inner, context } => format!("{context}: {}", candle_line(inner)),
        Error::WithPath { inner, path } => format!("{}: {}", path.display(), candle_line(inner)),
        Error::WrappedContext { wrapped, context } => format!("{context}: {wrapped}"),
        other => other.to_string(),
    }
}

/// A table with columns padded to their widest cell, two spaces apart.
fn aligned<const N: usize>(headers: &[&str; N], rows: &[[&str; N]]) -> String {
    let mut widths = headers.map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str; N]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, &w)| format!("{cell:<w$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(headers);
    for row in rows {
        out.push_str(&line(row));
    }
    out
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

#[cfg(test)]
mod tests {
    use super::error_line;
    use candle_core::Error;

    #[test]
    fn errors_print_as_one_line_without_candles_backtrace() {
        let with_backtrace = Error::WithBacktrace {
            inner: Box::new(Error::Msg("cat expects at least one tensor".into())),
            backtrace: Box::new(std::backtrace::Backtrace::force_capture()),
        };
        let error =
            anyhow::Error::from(with_backtrace.context("encoding texts")).context("mvlpt encode");
        assert_eq!(
            error_line(&error),
            "mvlpt encode: encoding texts: cat expects at least one tensor"
        );
        let ours = anyhow::anyhow!("file.txt is empty").context("reading texts");
        assert_eq!(error_line(&ours), "reading texts: file.txt is empty");
    }
}
