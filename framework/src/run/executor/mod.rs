//! Executors: how `mvlpt run` spreads a pipeline's entries over processes. Both hand out
//! entries stage by stage, each entry run by a child `mvlpt run <file> --index i` (see
//! [`super::pipeline::Entry`]), so a worker process or an array task does exactly what a
//! sequential run does for that entry, with the same lock, skip and resume rules.
//!
//! - [`local`]: worker processes on this machine, threads divided between them, one GPU each.
//! - [`slurm`]: one `sbatch` job array per stage, chained with `afterok` dependencies.

pub mod local;
pub mod slurm;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;

/// How a child process runs one entry: `<program> run <file> [--set k=v]... [--force]
/// --index <i>`.
#[derive(Clone, Debug)]
pub struct EntryCommand {
    /// The `mvlpt` binary (absolute).
    pub program: PathBuf,
    /// The experiment or pipeline file (absolute).
    pub file: PathBuf,
    /// The `--set` overrides of the command line.
    pub sets: Vec<String>,
    /// Start complete runs over.
    pub force: bool,
}

impl EntryCommand {
    /// The arguments after the program, for entry `index` (`None`: left for the caller to
    /// append, as a Slurm script does with its task id).
    pub fn args(&self, index: Option<usize>) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["run".into(), self.file.clone().into_os_string()];
        for set in &self.sets {
            args.push("--set".into());
            args.push(set.into());
        }
        if self.force {
            args.push("--force".into());
        }
        args.push("--index".into());
        if let Some(index) = index {
            args.push(index.to_string().into());
        }
        args
    }

    /// The command for entry `index`.
    pub fn command(&self, index: usize) -> Command {
        let mut command = Command::new(&self.program);
        command.args(self.args(Some(index)));
        command
    }
}

/// The first line of a file (e.g. a run's `error.txt`), if it has one.
pub fn first_line(path: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
}
