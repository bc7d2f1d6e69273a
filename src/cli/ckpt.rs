//! `mvlpt ckpt`: work with prompt checkpoints (average seeds, list contents).

use anyhow::Result;
use clap::Subcommand;
use mvlpt_framework::engine::checkpoint::{load_prompts, save_average};
use std::path::PathBuf;

/// Arguments of `mvlpt ckpt`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: CkptCommand,
}

#[derive(Subcommand, Debug)]
enum CkptCommand {
    /// Element-wise mean of prompt checkpoints (files or run directories), e.g. the source
    /// prompts of seeds 1-3, for `method.init_from`.
    Average {
        /// Prompt files (`prompts.safetensors`) or run directories.
        #[arg(required = true, num_args = 2..)]
        sources: Vec<PathBuf>,
        /// Output file.
        #[arg(short, long)]
        out: PathBuf,
    },
    /// Lists the tensors of a prompt checkpoint.
    Show {
        /// Prompt file or run directory.
        source: PathBuf,
    },
}

/// Runs `mvlpt ckpt`.
pub fn run(args: Args) -> Result<()> {
    match args.command {
        CkptCommand::Average { sources, out } => {
            let tensors = save_average(&sources, &out)?;
            eprintln!(
                "averaged {} checkpoints ({tensors} tensors) into {}",
                sources.len(),
                out.display()
            );
        }
        CkptCommand::Show { source } => {
            let tensors = load_prompts(&source, &candle_core::Device::Cpu)?;
            let mut names: Vec<&String> = tensors.keys().collect();
            names.sort();
            for name in names {
                let t = &tensors[name];
                println!(
                    "{name}\t{:?}\t{:?}\t{} values",
                    t.dims(),
                    t.dtype(),
                    t.elem_count()
                );
            }
        }
    }
    Ok(())
}
