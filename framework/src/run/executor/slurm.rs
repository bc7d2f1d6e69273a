//! The Slurm executor: one `sbatch` job array per stage, each task running
//! `mvlpt run <file> --index <i>`, the stages chained with `--dependency=afterok` on every job
//! submitted for the stages before. Only entries that are not complete are submitted, so the
//! same command submitted again after `scancel` or a node failure runs what is left, and each
//! run resumes from its checkpoint. Scripts, task logs and the record of submitted jobs live in
//! `<pipeline dir>/slurm/`.

use super::EntryCommand;
use crate::config::SlurmConfig;
use crate::io::write_json_atomic;
use crate::run::pipeline::Pipeline;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Folder of scripts, task logs and the job record, inside the pipeline's directory.
pub const SLURM_DIR: &str = "slurm";
/// The record of submitted jobs, in [`SLURM_DIR`].
pub const JOBS_FILE: &str = "jobs.json";

/// One job array: a stage's incomplete entries (or those of one window of `max_array_size`
/// indices, for a large stage).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArrayScript {
    /// The stage.
    pub stage: String,
    /// The script file.
    pub path: PathBuf,
    /// The plan entries it runs.
    pub indices: Vec<usize>,
    /// Task id `t` runs entry `offset + t`.
    pub offset: usize,
}

/// A submitted array.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubmittedJob {
    /// Slurm's job id.
    pub job: String,
    /// What it runs.
    #[serde(flatten)]
    pub array: ArrayScript,
    /// The jobs it waits for (`afterok`).
    pub after: Vec<String>,
}

/// Writes the scripts for every entry of `pipeline` that is not complete (every entry with
/// `command.force`), stage by stage; `resources` gives a stage's `[executor.slurm]`. Returns
/// them in submission order (none when everything is complete).
pub fn write_scripts(
    pipeline: &Pipeline,
    command: &EntryCommand,
    resources: &dyn Fn(usize) -> SlurmConfig,
) -> Result<Vec<ArrayScript>> {
    let root = std::path::absolute(&pipeline.root).context("resolving the runs directory")?;
    let dir = root.join(SLURM_DIR);
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let workdir = std::env::current_dir().context("reading the current directory")?;
    let mut scripts = Vec::new();
    for (stage, s) in pipeline.stages.iter().enumerate() {
        let range = pipeline.stage_entries(stage);
        let todo: Vec<usize> = pipeline
            .entries()
            .skip(range.start)
            .take(range.len())
            .filter(|e| command.force || !e.is_complete())
            .map(|e| e.index)
            .collect();
        let config = resources(stage);
        let window = config.max_array_size.max(1);
        let mut windows: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for index in todo {
            windows.entry(index / window).or_default().push(index);
        }
        let several = windows.len() > 1;
        for (w, indices) in windows {
            let offset = w * window;
            let name = if several {
                format!("{}-{w}.sbatch", s.name)
            } else {
                format!("{}.sbatch", s.name)
            };
            let array = ArrayScript {
                stage: s.name.clone(),
                path: dir.join(sanitize(&name)),
                indices,
                offset,
            };
            let text = script_text(pipeline, command, &config, &array, &logs, &workdir);
            crate::io::write_atomic(&array.path, text.as_bytes())?;
            scripts.push(array);
        }
    }
    Ok(scripts)
}

/// The sbatch script of one array.
fn script_text(
    pipeline: &Pipeline,
    command: &EntryCommand,
    config: &SlurmConfig,
    array: &ArrayScript,
    logs: &Path,
    workdir: &Path,
) -> String {
    let ids: Vec<usize> = array.indices.iter().map(|i| i - array.offset).collect();
    let mut spec = compress(&ids);
    if let Some(k) = config.max_parallel {
        spec.push_str(&format!("%{k}"));
    }
    let mut lines = vec![
        "#!/bin/bash".to_string(),
        format!(
            "# Written by `mvlpt run --executor slurm`: stage `{}` of {}, plan entries {} (task t \
             runs entry {} + t).",
            array.stage,
            pipeline.name,
            compress(&array.indices),
            array.offset
        ),
        format!(
            "#SBATCH --job-name={}",
            sanitize(&format!("mvlpt-{}-{}", pipeline.name, array.stage))
        ),
        format!("#SBATCH --array={spec}"),
        format!(
            "#SBATCH --output={}",
            logs.join(format!("{}-%A_%a.out", sanitize(&array.stage)))
                .display()
        ),
        format!("#SBATCH --chdir={}", workdir.display()),
    ];
    let options = [
        ("partition", config.partition.clone()),
        ("time", config.time.clone()),
        ("cpus-per-task", config.cpus_per_task.map(|n| n.to_string())),
        ("mem", config.mem.clone()),
        ("gres", config.gres.clone()),
    ];
    for (name, value) in options {
        if let Some(value) = value {
            lines.push(format!("#SBATCH --{name}={value}"));
        }
    }
    for extra in &config.extra {
        lines.push(format!("#SBATCH {extra}"));
    }
    lines.push("set -euo pipefail".into());
    lines.extend(config.setup.iter().cloned());
    lines.push("# One thread per CPU Slurm gave the task.".into());
    lines.push("export RAYON_NUM_THREADS=\"${SLURM_CPUS_PER_TASK:-1}\"".into());
    let mut exec = vec![
        "exec".to_string(),
        quote(&command.program.to_string_lossy()),
    ];
    exec.extend(
        command
            .args(None)
            .iter()
            .map(|a| quote(&a.to_string_lossy())),
    );
    exec.push(format!("\"$(( {} + SLURM_ARRAY_TASK_ID ))\"", array.offset));
    lines.push(exec.join(" "));
    lines.join("\n") + "\n"
}

/// Submits `scripts` in order with `sbatch --parsable`, each array depending (`afterok`) on
/// every job submitted for an earlier stage, and appends them to the pipeline's job record.
pub fn submit(pipeline: &Pipeline, scripts: &[ArrayScript]) -> Result<Vec<SubmittedJob>> {
    let mut submitted: Vec<SubmittedJob> = Vec::new();
    for array in scripts {
        let after: Vec<String> = submitted
            .iter()
            .filter(|job| job.array.stage != array.stage)
            .map(|job| job.job.clone())
            .collect();
        let mut sbatch = Command::new("sbatch");
        sbatch.arg("--parsable");
        if !after.is_empty() {
            sbatch
                .arg(format!("--dependency=afterok:{}", after.join(":")))
                .arg("--kill-on-invalid-dep=yes");
        }
        let output = sbatch
            .arg(&array.path)
            .output()
            .context("running sbatch (is Slurm installed and SLURM_CONF set?)")?;
        if !output.status.success() {
            bail!(
                "sbatch {} failed: {}",
                array.path.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let job = stdout
            .trim()
            .split(';')
            .next()
            .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
            .with_context(|| format!("sbatch printed no job id: {stdout:?}"))?
            .to_string();
        submitted.push(SubmittedJob {
            job,
            array: array.clone(),
            after,
        });
    }
    record(pipeline, &submitted)?;
    Ok(submitted)
}

/// Every job ever submitted for `pipeline`, oldest first.
pub fn recorded_jobs(pipeline: &Pipeline) -> Result<Vec<SubmittedJob>> {
    let path = pipeline.root.join(SLURM_DIR).join(JOBS_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .with_context(|| format!("{}: not a job record", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(error) => Err(error).with_context(|| format!("reading {}", path.display())),
    }
}

fn record(pipeline: &Pipeline, submitted: &[SubmittedJob]) -> Result<()> {
    let mut jobs = recorded_jobs(pipeline)?;
    jobs.extend(submitted.iter().cloned());
    write_json_atomic(&pipeline.root.join(SLURM_DIR).join(JOBS_FILE), &jobs)
}

/// Entries of `pipeline` that sit in Slurm's queue (pending or running), from the job record
/// and `squeue`: entry index → `job 123_4 (PENDING)`. Empty when `squeue` is not there.
pub fn queued_entries(pipeline: &Pipeline) -> Result<BTreeMap<usize, String>> {
    let jobs = recorded_jobs(pipeline)?;
    let mut queued = BTreeMap::new();
    if jobs.is_empty() {
        return Ok(queued);
    }
    let ids: Vec<&str> = jobs.iter().map(|j| j.job.as_str()).collect();
    let Ok(output) = Command::new("squeue")
        .args(["-h", "-r", "-o", "%i %T", "-j"])
        .arg(ids.join(","))
        .output()
    else {
        return Ok(queued);
    };
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let mut parts = line.split_whitespace();
        let (Some(task), Some(state)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Some((job, id)) = task.split_once('_') else {
            continue;
        };
        let (Some(submitted), Ok(id)) = (jobs.iter().find(|j| j.job == job), id.parse::<usize>())
        else {
            continue;
        };
        queued.insert(submitted.array.offset + id, format!("job {task} ({state})"));
    }
    Ok(queued)
}

/// `0-3,5,7-9` for sorted ids.
fn compress(ids: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < ids.len() {
        let start = ids[i];
        let mut end = start;
        while i + 1 < ids.len() && ids[i + 1] == end + 1 {
            i += 1;
            end = ids[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(",")
}

/// A single-quoted shell word.
fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// A name safe in a file or job name: letters, digits, `-`, `_`, `.`; anything else `-`.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_specs_are_compressed_ranges() {
        assert_eq!(compress(&[0, 1, 2, 3, 5, 7, 8, 9]), "0-3,5,7-9");
        assert_eq!(compress(&[4]), "4");
        assert_eq!(compress(&[]), "");
    }

    #[test]
    fn shell_words_survive_quotes() {
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(sanitize("study/source avg"), "study-source-avg");
    }
}
