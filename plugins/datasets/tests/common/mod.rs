//! Helpers shared by the dataset tests: the fixture data root, the reference expectations, and
//! building a dataset plugin through the registry as a run does.

#![allow(dead_code)]

use anyhow::Result;
use mvlpt_framework::config::ConfigLayers;
use mvlpt_framework::data::{Dataset, DatasetContext, ImageSource, Sample, Split};
use mvlpt_framework::plugin::Registry;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// `tests/fixtures/datasets`, written by `tools/fixtures/datasets.py`.
pub fn fixtures() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/datasets"
    ))
}

/// The fixture data root.
pub fn root() -> PathBuf {
    fixtures().join("root")
}

/// What the reference loaders read from the fixture root.
pub fn expected() -> Value {
    let text = std::fs::read_to_string(fixtures().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Builds dataset plugin `name` under `root` with `--set` style overrides.
pub fn build_at(root: &Path, name: &str, sets: &[&str]) -> Result<Box<dyn Dataset>> {
    mvlpt_datasets::link();
    let layers = ConfigLayers {
        file: None,
        use_env: false,
        sets: sets.iter().map(|s| s.to_string()).collect(),
    };
    let loaded = layers.load()?;
    let registry = Registry::builtin()?;
    let factory = registry.dataset(name)?;
    factory(&DatasetContext {
        section: loaded.section(format!("data.{name}")),
        root: root.to_path_buf(),
    })
}

/// Builds dataset plugin `name` on the fixture root.
pub fn build(name: &str, sets: &[&str]) -> Result<Box<dyn Dataset>> {
    build_at(&root(), name, sets)
}

/// An image source as expected.json writes it: relative to `root`, `<archive>@<member>`.
pub fn relative(root: &Path, image: &ImageSource) -> String {
    let rel = |p: &Path| {
        p.strip_prefix(root)
            .unwrap_or_else(|_| panic!("{} is outside {}", p.display(), root.display()))
            .to_string_lossy()
            .replace('\\', "/")
    };
    match image {
        ImageSource::File(path) => rel(path),
        ImageSource::Zip { archive, member } => format!("{}@{member}", rel(archive)),
        ImageSource::Procedural(seed) => format!("procedural#{seed}"),
    }
}

/// `[[path, label], ...]` of single-label samples.
pub fn single_label_rows(root: &Path, samples: &[Sample]) -> Value {
    samples
        .iter()
        .map(|s| {
            assert_eq!(s.labels.len(), 1, "{}", s.image);
            serde_json::json!([relative(root, &s.image), s.labels[0]])
        })
        .collect()
}

/// `[[path, [labels]], ...]`.
pub fn label_set_rows(root: &Path, samples: &[Sample]) -> Value {
    samples
        .iter()
        .map(|s| serde_json::json!([relative(root, &s.image), s.labels]))
        .collect()
}

/// The three splits in order with their names.
pub const SPLITS: [(Split, &str); 3] = [
    (Split::Train, "train"),
    (Split::Val, "val"),
    (Split::Test, "test"),
];

/// Copies a directory tree (fixture subtrees into temporary roots that tests then break).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The error chain of a failed build as one string.
pub fn error_text<T>(result: Result<T>) -> String {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => format!("{e:#}"),
    }
}
