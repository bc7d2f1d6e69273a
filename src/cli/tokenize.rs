//! `mvlpt tokenize`: CLIP token ids of each stdin line.

use anyhow::{Context, Result};
use mvlpt_framework::model::tokenizer::{
    check_context_length, ClipTokenizer, DEFAULT_CONTEXT_LENGTH,
};
use std::io::{BufRead, Write};

/// Arguments of `mvlpt tokenize`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Token sequence length (SOT + tokens + EOT, padded with 0), at most 65536.
    #[arg(long, default_value_t = DEFAULT_CONTEXT_LENGTH)]
    context_length: usize,
    /// Cut over-long lines (last token becomes EOT) instead of failing.
    #[arg(long)]
    truncate: bool,
}

/// Reads lines on stdin and prints one JSON array of ids per line.
pub fn run(args: Args) -> Result<()> {
    check_context_length(args.context_length).context("--context-length")?;
    let tokenizer = ClipTokenizer::new();
    let stdin = std::io::stdin();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for (i, line) in stdin.lock().lines().enumerate() {
        let line = line.with_context(|| format!("reading stdin line {}", i + 1))?;
        let ids = tokenizer
            .tokenize(&line, args.context_length, args.truncate)
            .with_context(|| format!("line {}", i + 1))?;
        writeln!(out, "{}", serde_json::to_string(&ids)?)?;
    }
    out.flush()?;
    Ok(())
}
