//! The run lock: an OS file lock (`flock`) on `<dir>/.lock`, held while a process works in a
//! run directory (or an average stage's directory) and released by the operating system when
//! the process ends, however it ends. The file holds the holder's pid and host, for the
//! message another process shows. The lock file is never removed: a process that removed it
//! while another waited on it would let a third one lock a new file under the same name.

use anyhow::{Context, Result};
use fs4::FileExt;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Name of the lock file inside a locked directory.
pub const LOCK_FILE: &str = ".lock";

/// Who holds a lock, as its holder wrote it into the lock file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    /// Process id.
    pub pid: u32,
    /// Host name.
    pub host: String,
    /// When it took the lock, seconds since the Unix epoch.
    pub since_unix_seconds: u64,
}

impl LockHolder {
    fn current() -> Self {
        Self {
            pid: std::process::id(),
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            since_unix_seconds: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default(),
        }
    }
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.is_empty() {
            write!(f, "another process")
        } else {
            write!(f, "pid {} on host {}", self.pid, self.host)
        }
    }
}

/// An exclusive lock on a directory, released when dropped (or when the process dies).
#[derive(Debug)]
pub struct DirLock {
    file: File,
    path: PathBuf,
}

/// The result of trying to lock a directory.
#[derive(Debug)]
pub enum LockAttempt {
    /// The lock is ours.
    Acquired(DirLock),
    /// Another process holds it.
    Held(LockHolder),
}

impl DirLock {
    /// Locks `dir` (created if needed) without waiting.
    pub fn try_acquire(dir: &Path) -> Result<LockAttempt> {
        let (file, path) = open_lock_file(dir)?;
        match FileExt::try_lock(&file) {
            Ok(()) => Ok(LockAttempt::Acquired(Self::claim(file, path)?)),
            Err(fs4::TryLockError::WouldBlock) => Ok(LockAttempt::Held(read_holder(&path))),
            Err(fs4::TryLockError::Error(error)) => {
                Err(error).with_context(|| format!("locking {}", path.display()))
            }
        }
    }

    /// Locks `dir` (created if needed), waiting for another holder to finish; `waiting` is
    /// called once with the holder before the wait.
    pub fn acquire(dir: &Path, waiting: impl FnOnce(&LockHolder)) -> Result<Self> {
        match Self::try_acquire(dir)? {
            LockAttempt::Acquired(lock) => Ok(lock),
            LockAttempt::Held(holder) => {
                waiting(&holder);
                let (file, path) = open_lock_file(dir)?;
                FileExt::lock(&file).with_context(|| format!("locking {}", path.display()))?;
                Self::claim(file, path)
            }
        }
    }

    /// Who holds the lock of `dir`, if anyone; looks without creating anything.
    pub fn holder(dir: &Path) -> Result<Option<LockHolder>> {
        let path = dir.join(LOCK_FILE);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error).with_context(|| format!("opening {}", path.display())),
        };
        match FileExt::try_lock_shared(&file) {
            Ok(()) => Ok(None),
            Err(fs4::TryLockError::WouldBlock) => Ok(Some(read_holder(&path))),
            Err(fs4::TryLockError::Error(error)) => {
                Err(error).with_context(|| format!("checking the lock {}", path.display()))
            }
        }
    }

    /// The locked file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes this process as the holder into the freshly locked file.
    fn claim(mut file: File, path: PathBuf) -> Result<Self> {
        let holder =
            serde_json::to_string(&LockHolder::current()).context("serialising the lock holder")?;
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)).map(|_| ()))
            .and_then(|()| file.write_all(format!("{holder}\n").as_bytes()))
            .and_then(|()| file.flush())
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(Self { file, path })
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // Closing the file releases the lock as well; unlocking first makes it explicit.
        let _ = FileExt::unlock(&self.file);
    }
}

fn open_lock_file(dir: &Path) -> Result<(File, PathBuf)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening the lock file {}", path.display()))?;
    Ok((file, path))
}

/// The holder recorded in a lock file; an unreadable or half-written one reads as unknown.
fn read_holder(path: &Path) -> LockHolder {
    let mut text = String::new();
    let _ = File::open(path).and_then(|mut f| f.read_to_string(&mut text));
    serde_json::from_str(text.trim()).unwrap_or_default()
}
