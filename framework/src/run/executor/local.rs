//! The local executor: `--jobs N` worker processes on this machine. Each entry of a stage runs
//! in a child `mvlpt run --index i`; a worker starts the next entry when its child ends. The
//! cores are divided (`RAYON_NUM_THREADS` = cores / N in each child, so N × threads ≤ cores),
//! and `--devices 0,1` gives worker `w` the GPU `devices[w % len]` (`CUDA_VISIBLE_DEVICES`).
//! A failed run does not stop the other runs of its stage; the pipeline stops after a stage
//! with failures.

use super::{first_line, EntryCommand};
use crate::run::dir::{ERROR_FILE, RESULT_FILE};
use crate::run::pipeline::{Pipeline, Work};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// How many workers, and what each gets.
#[derive(Clone, Debug, PartialEq)]
pub struct Workers {
    /// Worker processes at once.
    pub jobs: usize,
    /// Threads per run (`RAYON_NUM_THREADS` of each child).
    pub threads: usize,
    /// GPU ids handed out to workers in turn (empty: none set).
    pub devices: Vec<String>,
}

impl Workers {
    /// `jobs` workers (0: one per device, else 1) on `cores` cores: at most `cores` workers,
    /// each with `cores / jobs` threads. Returns a note when `jobs` was lowered.
    pub fn plan(jobs: usize, devices: Vec<String>, cores: usize) -> (Self, Option<String>) {
        let cores = cores.max(1);
        let wanted = if jobs == 0 {
            devices.len().max(1)
        } else {
            jobs
        };
        let jobs = wanted.min(cores);
        let note = (jobs < wanted).then(|| {
            format!("--jobs {wanted} is more than the {cores} cores: running {jobs} at a time")
        });
        let workers = Self {
            jobs,
            threads: (cores / jobs).max(1),
            devices,
        };
        (workers, note)
    }

    /// `CUDA_VISIBLE_DEVICES` of worker `worker`, if devices were given.
    pub fn device(&self, worker: usize) -> Option<&str> {
        (!self.devices.is_empty()).then(|| self.devices[worker % self.devices.len()].as_str())
    }
}

/// What happened to one entry.
#[derive(Clone, Debug)]
pub struct EntryResult {
    /// Its index in the plan.
    pub index: usize,
    /// Its stage.
    pub stage: String,
    /// Its position in the stage and the stage's size (`run 3/8`).
    pub position: (usize, usize),
    /// Sweep values or the average it computes.
    pub description: String,
    /// Its directory.
    pub dir: PathBuf,
    /// The worker that ran it (None: complete before, not started).
    pub worker: Option<usize>,
    /// How it ended.
    pub status: EntryStatus,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// How an entry ended.
#[derive(Clone, Debug, PartialEq)]
pub enum EntryStatus {
    /// It ran to completion; a run's test value from its `result.json`.
    Completed(Option<f64>),
    /// It was complete before; nothing ran.
    Skipped,
    /// It failed: the first line of its `error.txt`, else the child's last error line.
    Failed(String),
}

/// What the local executor did.
#[derive(Clone, Debug)]
pub struct LocalReport {
    /// Every entry that was handed out or found complete, in plan order.
    pub results: Vec<EntryResult>,
    /// Stages that did not start because an earlier one failed.
    pub not_started: Vec<String>,
}

impl LocalReport {
    /// The failed entries.
    pub fn failures(&self) -> impl Iterator<Item = &EntryResult> {
        self.results
            .iter()
            .filter(|r| matches!(r.status, EntryStatus::Failed(_)))
    }
}

/// Runs `pipeline` stage by stage with `workers` child processes started by `command`;
/// `on_done` is called as each entry ends (from the worker threads).
pub fn execute_local(
    pipeline: &Pipeline,
    command: &EntryCommand,
    workers: &Workers,
    on_done: &(dyn Fn(&EntryResult) + Sync),
) -> LocalReport {
    let mut report = LocalReport {
        results: Vec::new(),
        not_started: Vec::new(),
    };
    for (stage, s) in pipeline.stages.iter().enumerate() {
        if report.failures().next().is_some() {
            report.not_started.push(s.name.clone());
            continue;
        }
        let range = pipeline.stage_entries(stage);
        let total = range.len();
        let mut results: Vec<Option<EntryResult>> = vec![None; total];
        let mut todo = Vec::new();
        for entry in pipeline.entries().skip(range.start).take(total) {
            let position = entry.index - range.start;
            let result = EntryResult {
                index: entry.index,
                stage: entry.stage_name.to_string(),
                position: (position + 1, total),
                description: entry.describe(),
                dir: entry.dir().to_path_buf(),
                worker: None,
                status: EntryStatus::Skipped,
                seconds: 0.0,
            };
            if entry.is_complete() && !command.force {
                on_done(&result);
                results[position] = Some(result);
            } else {
                todo.push((position, result, matches!(entry.work, Work::Run(_))));
            }
        }
        let next = AtomicUsize::new(0);
        let done = Mutex::new(results);
        std::thread::scope(|scope| {
            for worker in 0..workers.jobs.min(todo.len()) {
                let (todo, next, done) = (&todo, &next, &done);
                scope.spawn(move || {
                    while let Some((position, result, is_run)) =
                        todo.get(next.fetch_add(1, Ordering::SeqCst))
                    {
                        let result = run_child(command, workers, worker, result.clone(), *is_run);
                        on_done(&result);
                        done.lock().unwrap_or_else(|p| p.into_inner())[*position] = Some(result);
                    }
                });
            }
        });
        report.results.extend(
            done.into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .into_iter()
                .flatten(),
        );
    }
    report
}

/// Runs one entry in a child process on `worker` and reads how it ended.
fn run_child(
    command: &EntryCommand,
    workers: &Workers,
    worker: usize,
    mut result: EntryResult,
    is_run: bool,
) -> EntryResult {
    let started = Instant::now();
    let mut child = command.command(result.index);
    child
        .env("RAYON_NUM_THREADS", workers.threads.to_string())
        .stdin(Stdio::null());
    if let Some(device) = workers.device(worker) {
        child.env("CUDA_VISIBLE_DEVICES", device);
    }
    tracing::info!(
        "worker {worker}: entry {} ({} {}/{}: {}){}",
        result.index,
        result.stage,
        result.position.0,
        result.position.1,
        result.description,
        workers
            .device(worker)
            .map(|d| format!(" on device {d}"))
            .unwrap_or_default()
    );
    result.worker = Some(worker);
    result.status = match child.output() {
        Err(error) => EntryStatus::Failed(format!(
            "could not start {}: {error}",
            command.program.display()
        )),
        Ok(output) if output.status.success() => {
            EntryStatus::Completed(is_run.then(|| test_value(&result.dir)).flatten())
        }
        Ok(output) => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let last = stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(|l| l.trim().to_string())
                .unwrap_or_else(|| format!("exited with {}", output.status));
            EntryStatus::Failed(first_line(&result.dir.join(ERROR_FILE)).unwrap_or(last))
        }
    };
    result.seconds = started.elapsed().as_secs_f64();
    result
}

/// The `test` value of a complete run's `result.json`.
fn test_value(dir: &std::path::Path) -> Option<f64> {
    let text = std::fs::read_to_string(dir.join(RESULT_FILE)).ok()?;
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()?
        .get("test")?
        .as_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_never_use_more_threads_than_cores() {
        for cores in 1..=16 {
            for jobs in 0..=20 {
                let (workers, note) = Workers::plan(jobs, Vec::new(), cores);
                assert!(workers.jobs >= 1 && workers.threads >= 1);
                assert!(
                    workers.jobs * workers.threads <= cores,
                    "{jobs} jobs on {cores} cores"
                );
                assert_eq!(note.is_some(), jobs > cores, "{jobs} jobs on {cores} cores");
            }
        }
        let (workers, _) = Workers::plan(2, Vec::new(), 16);
        assert_eq!((workers.jobs, workers.threads), (2, 8));
    }

    #[test]
    fn devices_go_to_workers_in_turn_and_set_the_default_job_count() {
        let devices = vec!["0".to_string(), "1".to_string()];
        let (workers, _) = Workers::plan(0, devices.clone(), 8);
        assert_eq!((workers.jobs, workers.threads), (2, 4));
        let (workers, _) = Workers::plan(4, devices, 8);
        let given: Vec<_> = (0..4).map(|w| workers.device(w).unwrap()).collect();
        assert_eq!(given, ["0", "1", "0", "1"]);
        assert_eq!(Workers::plan(2, Vec::new(), 8).0.device(0), None);
    }
}
