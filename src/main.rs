//! The `mvlpt` command-line interface: one module per command under `cli/`.

// Link the framework through its shared library (one copy of candle for the host and any
// dynamically loaded plugin).
#[allow(unused_imports)]
use mvlpt_dylib as _;

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    // A user error is one line: error values carry no backtrace (candle and anyhow capture one
    // whenever RUST_BACKTRACE is set). Panics keep theirs (they follow RUST_BACKTRACE alone),
    // and an explicit RUST_LIB_BACKTRACE still wins.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    // Before any worker thread starts: keep tensor-sized blocks in the reusable heap.
    mvlpt_framework::ops::tune_allocator();
    // Keep the built-in plugin crates (and their registrations) in the binary.
    mvlpt_methods::link();
    mvlpt_sampling::link();
    mvlpt_evaluators::link();
    mvlpt_datasets::link();
    mvlpt_synthetic::link();
    let args = cli::Cli::parse();
    match configure_threads().and_then(|()| cli::run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", cli::error_line(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// Applies `MVLPT_THREADS` (checked) to the rayon pool and candle's matrix products, both of
/// which read `RAYON_NUM_THREADS` when they first start threads.
fn configure_threads() -> anyhow::Result<()> {
    if let Some(threads) = mvlpt_framework::config::threads_from_env()? {
        std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    }
    Ok(())
}
