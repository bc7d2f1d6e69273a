//! Times one CoOp training step and an image-tower forward on random weights and prints the
//! JSON report of [`mvlpt_framework::bench::run_step_bench`] (the library behind
//! `mvlpt bench step`; `benches/compare_step.sh` runs it alternately with PyTorch).
//!
//! `cargo run --release --example bench_step -p mvlpt-framework -- [options]`, options:
//! `--preset NAME --classes N --context-length N --n-ctx N --batch N --warmup N
//! --iterations N --threads N --seed N --no-cut --no-image`.

use anyhow::{bail, Context, Result};
use mvlpt_framework::bench::{run_step_bench, StepBenchConfig};

fn main() -> Result<()> {
    let config = parse_args(std::env::args().skip(1))?;
    // candle's GEMM splits work by RAYON_NUM_THREADS (else the core count): make it agree with
    // the pool the benchmark runs in. Set before any thread is spawned.
    std::env::set_var("RAYON_NUM_THREADS", config.threads.to_string());
    mvlpt_framework::ops::tune_allocator();
    let report = run_step_bench(&config)?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<StepBenchConfig> {
    let mut config = StepBenchConfig::default();
    while let Some(flag) = args.next() {
        let mut value = |name: &str| -> Result<String> {
            args.next().with_context(|| format!("{name} needs a value"))
        };
        let number = |name: &str, text: String| -> Result<usize> {
            text.parse()
                .with_context(|| format!("{name} expects a whole number, got {text:?}"))
        };
        match flag.as_str() {
            "--preset" => config.preset = value(&flag)?,
            "--classes" => config.classes = number(&flag, value(&flag)?)?,
            "--context-length" => config.context_length = number(&flag, value(&flag)?)?,
            "--n-ctx" => config.n_ctx = number(&flag, value(&flag)?)?,
            "--batch" => config.batch = number(&flag, value(&flag)?)?,
            "--warmup" => config.warmup = number(&flag, value(&flag)?)?,
            "--iterations" => config.iterations = number(&flag, value(&flag)?)?,
            "--threads" => config.threads = number(&flag, value(&flag)?)?,
            "--seed" => config.seed = number(&flag, value(&flag)?)? as u64,
            "--no-cut" => config.cut_after_eot = false,
            "--no-image" => config.image_forward = false,
            "--json" => {}
            other => bail!("unknown option {other:?} (see the header of examples/bench_step.rs)"),
        }
    }
    Ok(config)
}
