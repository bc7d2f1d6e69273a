//! Directory listings and the per-class random split shared by the folder-based readers.

use anyhow::{bail, Context, Result};
use mvlpt_framework::data::pyrandom::PyRandom;
use std::path::{Path, PathBuf};

/// Non-hidden entries of `dir` (names not starting with `.`, as Dassl's `listdir_nohidden`),
/// sorted by name. Dassl lists in the file system's order, which differs between machines;
/// sorting makes the result reproducible.
pub fn entries_sorted(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let read = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list directory {}", dir.display()))?;
    let mut entries = Vec::new();
    for entry in read {
        let entry = entry.with_context(|| format!("cannot list directory {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            entries.push((name, entry.path()));
        }
    }
    entries.sort();
    Ok(entries)
}

/// Sorted non-hidden subdirectories of `dir`.
pub fn subdirs_sorted(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    Ok(entries_sorted(dir)?
        .into_iter()
        .filter(|(_, path)| path.is_dir())
        .collect())
}

/// Sorted non-hidden files of `dir` (not recursive). A symbolic link whose target is missing
/// counts as a file, as in the reference's listings (`os.listdir`, `os.walk`): reading it then
/// fails naming it, instead of the sample vanishing without a word.
pub fn files_sorted(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(entries_sorted(dir)?
        .into_iter()
        .filter(|(_, path)| path.is_file() || is_dangling_link(path))
        .map(|(_, path)| path)
        .collect())
}

/// Whether `path` is a symbolic link to nothing.
fn is_dangling_link(path: &Path) -> bool {
    path.symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink())
        && !path.exists()
}

/// Files below `dir` whose extension is one of `extensions` (lower case, no dot), in
/// torchvision's `ImageFolder` order: directories sorted by path, each one's files sorted by
/// name. Hidden entries are skipped.
pub fn image_files_recursive(dir: &Path, extensions: &[String]) -> Result<Vec<PathBuf>> {
    let mut directories = Vec::new();
    collect_directories(dir, &mut directories)?;
    directories.sort_by(|a, b| a.0.cmp(&b.0));
    let mut found = Vec::new();
    for (_, directory) in directories {
        found.extend(
            files_sorted(&directory)?
                .into_iter()
                .filter(|p| has_extension(p, extensions)),
        );
    }
    Ok(found)
}

/// `dir` and every non-hidden directory below it, with its path as a string (the sort key).
fn collect_directories(dir: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<()> {
    out.push((dir.to_string_lossy().into_owned(), dir.to_path_buf()));
    for (_, path) in subdirs_sorted(dir)? {
        collect_directories(&path, out)?;
    }
    Ok(())
}

fn has_extension(path: &Path, extensions: &[String]) -> bool {
    path.extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .is_some_and(|e| extensions.contains(&e))
}

/// Python's `round(x)` for the split sizes: halves go to the even neighbour.
pub fn python_round(x: f64) -> usize {
    x.round_ties_even().max(0.0) as usize
}

/// How many items of a class go to train, val and test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClassSplitSizes {
    /// Training items.
    pub train: usize,
    /// Validation items.
    pub val: usize,
    /// Test items (the rest).
    pub test: usize,
}

/// The sizes CoOp's `read_and_split_data` gives a class of `n` items:
/// `round(n · p_train)`, `round(n · p_val)` and the rest, clamped to `n`.
pub fn class_split_sizes(n: usize, p_train: f64, p_val: f64) -> ClassSplitSizes {
    let train = python_round(n as f64 * p_train).min(n);
    let val = python_round(n as f64 * p_val).min(n - train);
    ClassSplitSizes {
        train,
        val,
        test: n - train - val,
    }
}

/// The fractions and seed of a per-class random split.
#[derive(Clone, Copy, Debug)]
pub struct RandomSplit {
    /// Share of each class for training.
    pub train_fraction: f64,
    /// Share of each class for validation; the rest is the test split.
    pub val_fraction: f64,
    /// Seed of the Python-compatible generator (CoOp: the run's `cfg.SEED`).
    pub seed: u64,
}

impl RandomSplit {
    /// Checks the fractions (each in [0, 1], summing to at most 1).
    pub fn validate(&self) -> Result<()> {
        let ok = |f: f64| (0.0..=1.0).contains(&f);
        if !ok(self.train_fraction)
            || !ok(self.val_fraction)
            || self.train_fraction + self.val_fraction > 1.0 + 1e-12
        {
            bail!(
                "train_fraction = {} and val_fraction = {} must lie in [0, 1] and sum to at most 1",
                self.train_fraction,
                self.val_fraction
            );
        }
        Ok(())
    }

    /// Splits the items of each class (classes in label order) the way CoOp's
    /// `read_and_split_data` does: one Python `random.Random(seed)` shuffles each class's items
    /// in turn, then the first `round(n · train)` go to train, the next `round(n · val)` to val
    /// and the rest to test. Returns `(train, val, test)` lists of `(item, label)`.
    pub fn apply<T>(&self, classes: Vec<Vec<T>>) -> [Vec<(T, usize)>; 3] {
        let mut rng = PyRandom::new(self.seed);
        let mut out: [Vec<(T, usize)>; 3] = [Vec::new(), Vec::new(), Vec::new()];
        for (label, mut items) in classes.into_iter().enumerate() {
            rng.shuffle(&mut items);
            let sizes = class_split_sizes(items.len(), self.train_fraction, self.val_fraction);
            for (i, item) in items.into_iter().enumerate() {
                let part = if i < sizes.train {
                    0
                } else if i < sizes.train + sizes.val {
                    1
                } else {
                    2
                };
                out[part].push((item, label));
            }
        }
        out
    }
}
