//! `image_folder`: custom data as one folder per class.
//!
//! Two layouts are recognised under the dataset directory:
//! - split folders `train/`, `val/` (or `valid/`, `validation/`) and `test/`, each holding one
//!   folder per class (a class may be missing from a split);
//! - class folders directly, split per class at random (Python-compatible shuffle with
//!   `split_seed`, then `round(n · train_fraction)` to train, `round(n · val_fraction)` to val,
//!   the rest to test: CoOp's `read_and_split_data` with configurable fractions).
//!
//! Classes are the class folder names in sorted order (labels follow that order), optionally
//! renamed by `classnames` / `classnames_file`. Images are found recursively below each class
//! folder by extension, in sorted order (torchvision's `ImageFolder` order).

use crate::custom::{check_templates, default_metric, default_templates, read_classnames_list};
use crate::listing::{image_files_recursive, subdirs_sorted, RandomSplit};
use crate::prepared::{PreparedDataset, SplitSamples, TransformProtocol};
use anyhow::{bail, Context, Result};
use mvlpt_framework::data::image::ExifOrientation;
use mvlpt_framework::data::{Dataset, DatasetContext, DatasetInfo, Sample, Split};
use mvlpt_framework::eval::metrics::Metric;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Options of `image_folder` (`[data.image_folder]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImageFolderOptions {
    /// The dataset directory, relative to `data.root` (default: `data.root` itself).
    pub dir: String,
    /// Class names in sorted-folder order, replacing the folder names.
    pub classnames: Option<Vec<String>>,
    /// A file of class names, relative to the dataset directory: text with one name per line
    /// in sorted-folder order, a JSON list, or a JSON object mapping folder names to names.
    pub classnames_file: Option<String>,
    /// Class name = folder name with `_` turned into spaces (`golden_retriever`).
    pub underscores_to_spaces: bool,
    /// Image file extensions (lower case, no dot).
    pub extensions: Vec<String>,
    /// Without split folders: share of each class for training.
    pub train_fraction: f64,
    /// Without split folders: share of each class for validation (the rest is test).
    pub val_fraction: f64,
    /// Without split folders: seed of the per-class shuffle.
    pub split_seed: u64,
    /// Preprocessing: `clip`, `dassl`, `elevater` or `elevater_center_crop`.
    pub transforms: TransformProtocol,
    /// Metric.
    pub metric: Metric,
    /// Zero-shot templates with `{}` for the class name.
    pub templates: Vec<String>,
    /// EXIF handling: `ignore` (PIL, Dassl) or `apply` (vision-datasets).
    pub exif_orientation: ExifOrientation,
}

/// The image extensions `image_folder` picks up by default.
pub fn default_extensions() -> Vec<String> {
    ["jpg", "jpeg", "png", "bmp", "gif", "webp", "tif", "tiff"]
        .map(str::to_string)
        .to_vec()
}

impl Default for ImageFolderOptions {
    fn default() -> Self {
        Self {
            dir: String::new(),
            classnames: None,
            classnames_file: None,
            underscores_to_spaces: false,
            extensions: default_extensions(),
            train_fraction: 0.5,
            val_fraction: 0.2,
            split_seed: 1,
            transforms: TransformProtocol::Clip,
            metric: default_metric(),
            templates: default_templates(),
            exif_orientation: ExifOrientation::Ignore,
        }
    }
}

/// The split folder names recognised, by split.
const SPLIT_FOLDERS: [(Split, &[&str]); 3] = [
    (Split::Train, &["train"]),
    (Split::Val, &["val", "valid", "validation"]),
    (Split::Test, &["test"]),
];

/// Builds `image_folder` from its options and `data.root`.
pub fn build(ctx: &DatasetContext<'_>) -> Result<Box<dyn Dataset>> {
    let options: ImageFolderOptions = ctx.section.extract()?;
    let key = ctx.section.path();
    check_templates(&options.templates, key)?;
    let dir = ctx.existing_dir(&options.dir)?;
    let extensions: Vec<String> = options
        .extensions
        .iter()
        .map(|e| e.trim_start_matches('.').to_lowercase())
        .collect();

    let split_dirs = find_split_dirs(&dir)?;
    let (folders, splits) = if split_dirs.is_empty() {
        read_unsplit(&dir, &extensions, &options, key)?
    } else {
        read_split_dirs(&split_dirs, &extensions)?
    };
    if folders.is_empty() {
        bail!(
            "image folder {} has no class folders (expected <class>/ or train|val|test/<class>/)",
            dir.display()
        );
    }
    let classnames = name_classes(&dir, &folders, &options, key)?;
    let info = DatasetInfo {
        name: "image_folder".into(),
        classnames,
        templates: options.templates.clone(),
        metric: options.metric,
        multilabel: false,
    };
    Ok(Box::new(PreparedDataset::new(
        info,
        splits,
        options.exif_orientation,
        options.transforms,
    )?))
}

/// The split folders present, by split; two aliases of one split are an error.
fn find_split_dirs(dir: &Path) -> Result<Vec<(Split, PathBuf)>> {
    let mut found = Vec::new();
    for (split, names) in SPLIT_FOLDERS {
        let present: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| dir.join(n).is_dir())
            .collect();
        match present.as_slice() {
            [] => {}
            [one] => found.push((split, dir.join(one))),
            several => bail!(
                "{} has several {} folders ({}); keep one",
                dir.display(),
                split.as_str(),
                several.join(", ")
            ),
        }
    }
    Ok(found)
}

/// Class folders directly under `dir`, split per class at random.
fn read_unsplit(
    dir: &Path,
    extensions: &[String],
    options: &ImageFolderOptions,
    key: &str,
) -> Result<(Vec<String>, SplitSamples)> {
    let split = RandomSplit {
        train_fraction: options.train_fraction,
        val_fraction: options.val_fraction,
        seed: options.split_seed,
    };
    split.validate().with_context(|| key.to_string())?;
    let mut folders = Vec::new();
    let mut classes = Vec::new();
    for (name, path) in subdirs_sorted(dir)? {
        classes.push(image_files_recursive(&path, extensions)?);
        folders.push(name);
    }
    let [train, val, test] = split.apply(classes);
    let to_samples =
        |items: Vec<(PathBuf, usize)>| items.into_iter().map(|(p, l)| Sample::file(p, l)).collect();
    Ok((
        folders,
        SplitSamples {
            train: to_samples(train),
            val: to_samples(val),
            test: to_samples(test),
        },
    ))
}

/// Class folders inside split folders; labels follow the sorted union of class folder names.
fn read_split_dirs(
    split_dirs: &[(Split, PathBuf)],
    extensions: &[String],
) -> Result<(Vec<String>, SplitSamples)> {
    let mut per_split = Vec::new();
    let mut all: BTreeSet<String> = BTreeSet::new();
    for (split, path) in split_dirs {
        let classes = subdirs_sorted(path)?;
        all.extend(classes.iter().map(|(n, _)| n.clone()));
        per_split.push((*split, classes));
    }
    let label_of: BTreeMap<&str, usize> = all
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let mut samples = SplitSamples::default();
    for (split, classes) in &per_split {
        for (name, path) in classes {
            let label = label_of[name.as_str()];
            samples.get_mut(*split).extend(
                image_files_recursive(path, extensions)?
                    .into_iter()
                    .map(|p| Sample::file(p, label)),
            );
        }
    }
    Ok((all.into_iter().collect(), samples))
}

/// Class names from the options, a class-names file, or the folder names.
fn name_classes(
    dir: &Path,
    folders: &[String],
    options: &ImageFolderOptions,
    key: &str,
) -> Result<Vec<String>> {
    let names = match (&options.classnames, &options.classnames_file) {
        (Some(_), Some(_)) => bail!("{key}: give classnames or classnames_file, not both"),
        (Some(names), None) => names.clone(),
        (None, Some(file)) => {
            let path = dir.join(file);
            if let Some(map) = read_folder_map(&path)? {
                return folders
                    .iter()
                    .map(|f| {
                        map.get(f).cloned().with_context(|| {
                            format!("class folder `{f}` has no name in {}", path.display())
                        })
                    })
                    .collect();
            }
            read_classnames_list(&path)?
        }
        (None, None) => {
            return Ok(folders
                .iter()
                .map(|f| {
                    if options.underscores_to_spaces {
                        f.replace('_', " ")
                    } else {
                        f.clone()
                    }
                })
                .collect())
        }
    };
    if names.len() != folders.len() {
        bail!(
            "{key}: {} class names for {} class folders ({})",
            names.len(),
            folders.len(),
            folders.join(", ")
        );
    }
    Ok(names)
}

/// A JSON object `{folder: name}`, or `None` when the file is not one.
fn read_folder_map(path: &Path) -> Result<Option<BTreeMap<String, String>>> {
    if path.extension().is_none_or(|e| e != "json") {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read class names file {}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: invalid JSON", path.display()))?;
    if !value.is_object() {
        return Ok(None);
    }
    serde_json::from_value(value)
        .map(Some)
        .with_context(|| format!("{}: expected {{\"folder\": \"name\", ...}}", path.display()))
}
