//! Logging: one global `tracing` subscriber with two layers, the console (stderr, drawn around
//! an active progress bar) and the current run's `log.txt`. The file layer writes wherever the
//! latest [`init_run_logging`] pointed it, so a sweep switches files run by run without
//! reinstalling the subscriber.

use super::dir::{RunDir, LOG_FILE};
use crate::engine::progress::write_console;
use anyhow::{Context, Result};
use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The open `log.txt` of the current run, tagged with the guard that opened it.
static RUN_LOG: Mutex<Option<(u64, File)>> = Mutex::new(None);
/// Tags for [`RunLogGuard`]s.
static NEXT_GUARD: AtomicU64 = AtomicU64::new(1);
/// Whether our subscriber became the global one (decided once).
static INSTALLED: OnceLock<bool> = OnceLock::new();

/// Installs the global subscriber: console and run-file layers, both filtered by `filter`
/// (`info`, `debug`, `mvlpt_framework=trace`, ...; default: `MVLPT_LOG`, else `info`).
/// Only the first call installs; it returns whether our subscriber is the global one (false
/// when another one was set first, e.g. by a test harness).
pub fn init_logging(filter: Option<&str>) -> Result<bool> {
    if let Some(installed) = INSTALLED.get() {
        return Ok(*installed);
    }
    let filter = filter
        .map(str::to_string)
        .or_else(|| std::env::var("MVLPT_LOG").ok())
        .unwrap_or_else(|| "info".into());
    let parse = |f: &str| {
        EnvFilter::try_new(f)
            .with_context(|| format!("invalid log filter {f:?} (--log / MVLPT_LOG)"))
    };
    let console = tracing_subscriber::fmt::layer()
        .with_writer(ConsoleWriter)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(parse(&filter)?);
    let file = tracing_subscriber::fmt::layer()
        .with_writer(RunFileWriter)
        .with_ansi(false)
        .with_filter(parse(&filter)?);
    let installed = tracing_subscriber::registry()
        .with(console)
        .with(file)
        .try_init()
        .is_ok();
    Ok(*INSTALLED.get_or_init(|| installed))
}

/// Sends log lines to `log.txt` of `run_dir` (appending, so a resumed run keeps its history)
/// until the returned guard is dropped. Installs the global subscriber if needed.
pub fn init_run_logging(run_dir: &RunDir) -> Result<RunLogGuard> {
    let installed = init_logging(None)?;
    let path = run_dir.file(LOG_FILE);
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("opening run log {}", path.display()))?;
    let id = NEXT_GUARD.fetch_add(1, Ordering::Relaxed);
    *lock_run_log() = Some((id, file));
    if !installed {
        tracing::warn!(
            "another log subscriber is installed; {} stays empty",
            path.display()
        );
    }
    Ok(RunLogGuard { id })
}

/// Keeps a run's `log.txt` attached to the log; dropping it detaches and flushes the file.
#[derive(Debug)]
#[must_use = "the run log is detached when the guard is dropped"]
pub struct RunLogGuard {
    id: u64,
}

impl Drop for RunLogGuard {
    fn drop(&mut self) {
        let mut current = lock_run_log();
        if current.as_ref().is_some_and(|(id, _)| *id == self.id) {
            if let Some((_, mut file)) = current.take() {
                let _ = file.flush();
            }
        }
    }
}

fn lock_run_log() -> MutexGuard<'static, Option<(u64, File)>> {
    RUN_LOG
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Writes formatted events to stderr, around the active progress bar.
struct ConsoleWriter;

impl Write for ConsoleWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        write_console(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for ConsoleWriter {
    type Writer = ConsoleWriter;

    fn make_writer(&'a self) -> Self::Writer {
        ConsoleWriter
    }
}

/// Writes formatted events to the current run's `log.txt`, or nowhere between runs.
struct RunFileWriter;

impl Write for RunFileWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some((_, file)) = lock_run_log().as_mut() {
            file.write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match lock_run_log().as_mut() {
            Some((_, file)) => file.flush(),
            None => Ok(()),
        }
    }
}

impl<'a> MakeWriter<'a> for RunFileWriter {
    type Writer = RunFileWriter;

    fn make_writer(&'a self) -> Self::Writer {
        RunFileWriter
    }
}
