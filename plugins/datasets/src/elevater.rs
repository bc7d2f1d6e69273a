//! The 20 ELEVATER image-classification datasets (reference §3.3, §6.2) in the layout the
//! ELEVATER toolkit downloads them to: `<data.root>/<root_folder>/` holding each split's index
//! file, the archives it points into and, for the IRIS format, a labelmap.
//!
//! Index files, as vision-datasets 0.2 reads them:
//! - IRIS (`train.txt`): one image per line, `<image path> <label>[,<label>...]`, split at the
//!   last space; lines are stripped and blank ones skipped; a line without labels is a negative.
//! - COCO (`train_meta.json`): `images` (`id`, `file_name`, optional `zip_file`), `annotations`
//!   (`image_id`, `category_id`) and `categories` (`id`, `name`); labels are category positions
//!   in id order, images come sorted by id.
//!
//! An image path `archive.zip@member` names a member of a zip archive, read in place.
//!
//! Class names, zero-shot templates and metrics come from `data/elevater.json`, generated from
//! the reference sources by `tools/datasets_data.py`. Images are decoded with their EXIF
//! orientation applied, as vision-datasets' `PILImageLoader` does, and preprocessed by the
//! ELEVATER squash for train and test alike.

use crate::prepared::{PreparedDataset, SplitSamples, TransformProtocol};
use anyhow::{bail, Context, Result};
use mvlpt_framework::data::image::ExifOrientation;
use mvlpt_framework::data::{
    split_archive_path, Dataset, DatasetContext, DatasetInfo, ImageSource, Sample, Split,
};
use mvlpt_framework::eval::metrics::Metric;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

/// One split of an ELEVATER dataset, as `vision_datasets.json` describes it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElevaterSplit {
    /// Index file, relative to the dataset folder.
    pub index: String,
    /// Archives the index points into.
    pub archives: Vec<String>,
    /// Number of images of the full split.
    pub num_images: Option<usize>,
}

/// One ELEVATER dataset: its `vision_datasets.json` entry and its `prompts.py` data.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElevaterSpec {
    /// ELEVATER name, also the plugin name (`cifar-10`).
    pub name: String,
    /// `classification_multiclass` or `classification_multilabel`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Index format: `iris` or `coco`.
    pub format: String,
    /// Dataset folder under the data root (`classification/cifar_10_20211007`).
    pub root_folder: String,
    /// Splits by name (`train`, `val`, `test`).
    pub splits: BTreeMap<String, ElevaterSplit>,
    /// Labelmap file of IRIS datasets.
    pub labelmap: Option<String>,
    /// Number of classes.
    pub num_classes: usize,
    /// Class names (`class_map`).
    pub classnames: Vec<String>,
    /// Zero-shot templates (`template_map`).
    pub templates: Vec<String>,
    /// The metric MVLPT uses (`class_map_metric`).
    pub metric: Metric,
    /// The metric of the ELEVATER toolkit's dataset config.
    pub elevater_metric: Metric,
}

impl ElevaterSpec {
    /// Whether images carry several labels (VOC).
    pub fn is_multilabel(&self) -> bool {
        self.kind == "classification_multilabel"
    }
}

#[derive(Deserialize)]
struct ElevaterCatalog {
    datasets: Vec<ElevaterSpec>,
}

/// The embedded `data/elevater.json`, in the task order of MVLPT's multitask script.
pub fn elevater_specs() -> &'static [ElevaterSpec] {
    static SPECS: OnceLock<Vec<ElevaterSpec>> = OnceLock::new();
    SPECS.get_or_init(|| {
        let catalog: ElevaterCatalog = serde_json::from_str(include_str!("../data/elevater.json"))
            .expect("the embedded data/elevater.json parses (checked by the crate's tests)");
        catalog.datasets
    })
}

/// Where the class names come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassNameSource {
    /// `class_map` of ELEVATER's prompts.py, as MVLPT uses them (the reference).
    #[default]
    Prompts,
    /// The dataset's own labelmap (IRIS) or category names (COCO).
    Labelmap,
}

/// Options of an ELEVATER dataset (`[data.<name>]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ElevaterOptions {
    /// Dataset folder under `data.root` (default: the toolkit's, e.g.
    /// `classification/cifar_10_20211007`).
    pub root_folder: Option<String>,
    /// `DATASET.CENTER_CROP`: resize the short side and centre crop instead of squashing.
    pub center_crop: bool,
    /// `mvlpt` (MVLPT HEAD's `class_map_metric`), `elevater` (the toolkit's official metric;
    /// they differ for hateful-memes: accuracy vs roc_auc) or a metric name.
    pub metric: String,
    /// `prompts` (the reference) or `labelmap`.
    pub classnames: ClassNameSource,
    /// EXIF handling of decoded images (vision-datasets applies the orientation).
    pub exif_orientation: ExifOrientation,
}

impl Default for ElevaterOptions {
    fn default() -> Self {
        Self {
            root_folder: None,
            center_crop: false,
            metric: "mvlpt".into(),
            classnames: ClassNameSource::Prompts,
            exif_orientation: ExifOrientation::Apply,
        }
    }
}

/// Resolves the `metric` option.
fn choose_metric(spec: &ElevaterSpec, choice: &str, key: &str) -> Result<Metric> {
    match choice {
        "mvlpt" => Ok(spec.metric),
        "elevater" => Ok(spec.elevater_metric),
        other => other.parse().map_err(|_| {
            let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
            anyhow::anyhow!(
                "{key}.metric = {other:?}: expected \"mvlpt\", \"elevater\" or a metric name ({})",
                names.join(", ")
            )
        }),
    }
}

/// Builds the ELEVATER dataset `name` from its options and `data.root`.
pub fn build(name: &str, ctx: &DatasetContext<'_>) -> Result<Box<dyn Dataset>> {
    let spec = elevater_specs()
        .iter()
        .find(|s| s.name == name)
        .with_context(|| format!("{name} is not an ELEVATER dataset"))?;
    let options: ElevaterOptions = ctx.section.extract()?;
    let key = ctx.section.path();
    let metric = choose_metric(spec, &options.metric, key)?;
    let dir = ctx.existing_dir(options.root_folder.as_deref().unwrap_or(&spec.root_folder))?;

    let mut samples = SplitSamples::default();
    let mut index_classnames = None;
    for split in [Split::Train, Split::Val, Split::Test] {
        let Some(split_spec) = spec.splits.get(split.as_str()) else {
            continue;
        };
        let index = dir.join(&split_spec.index);
        let parsed = match spec.format.as_str() {
            "iris" => read_iris(&index, &dir, spec.num_classes)?,
            "coco" => {
                let (names, parsed) = read_coco(&index, &dir)?;
                index_classnames.get_or_insert(names);
                parsed
            }
            other => bail!("{}: unknown index format {other}", spec.name),
        };
        if let Some(expected) = split_spec.num_images.filter(|&n| n != parsed.len()) {
            tracing::warn!(
                "{} {}: {} lists {} images; the full ELEVATER split has {expected}",
                spec.name,
                split.as_str(),
                index.display(),
                parsed.len()
            );
        }
        *samples.get_mut(split) = parsed;
    }
    if let Some(labelmap) = &spec.labelmap {
        let path = dir.join(labelmap);
        if let Ok(names) = read_labelmap(&path) {
            if names.len() != spec.num_classes {
                tracing::warn!(
                    "{}: labelmap {} has {} names for {} classes",
                    spec.name,
                    path.display(),
                    names.len(),
                    spec.num_classes
                );
            }
        }
    }
    let classnames = match options.classnames {
        ClassNameSource::Prompts => spec.classnames.clone(),
        ClassNameSource::Labelmap => match (&spec.labelmap, index_classnames) {
            (Some(labelmap), _) => read_labelmap(&dir.join(labelmap))?,
            (None, Some(names)) => names,
            (None, None) => bail!("{}: no labelmap and no COCO categories", spec.name),
        },
    };
    if classnames.len() != spec.num_classes {
        bail!(
            "{}: {} class names for {} classes",
            spec.name,
            classnames.len(),
            spec.num_classes
        );
    }
    let info = DatasetInfo {
        name: spec.name.clone(),
        classnames,
        templates: spec.templates.clone(),
        metric,
        multilabel: spec.is_multilabel(),
    };
    let protocol = if options.center_crop {
        TransformProtocol::ElevaterCenterCrop
    } else {
        TransformProtocol::Elevater
    };
    Ok(Box::new(PreparedDataset::new(
        info,
        samples,
        options.exif_orientation,
        protocol,
    )?))
}

/// An ELEVATER image path relative to the dataset folder: a file or `archive.zip@member`.
pub fn image_source(dir: &Path, path: &str) -> ImageSource {
    match split_archive_path(path) {
        Some((archive, member)) => ImageSource::Zip {
            archive: dir.join(archive),
            member: member.to_string(),
        },
        None => ImageSource::File(dir.join(path)),
    }
}

/// Reads an IRIS labelmap: one class name per non-blank line (stripped).
pub fn read_labelmap(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read labelmap {}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

/// Reads an IRIS image-classification index file; labels must be below `num_classes`.
pub fn read_iris(index: &Path, dir: &Path, num_classes: usize) -> Result<Vec<Sample>> {
    let text = std::fs::read_to_string(index)
        .with_context(|| format!("cannot read index file {}", index.display()))?;
    let mut samples = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let at = || format!("{}:{}", index.display(), number + 1);
        // Only the image path may contain spaces: the labels follow the last one.
        let (path, labels) = match line.rsplit_once(' ') {
            Some((path, labels)) => (path, Some(labels)),
            None => (line, None),
        };
        let mut parsed = Vec::new();
        for label in labels.into_iter().flat_map(|l| l.split(',')) {
            let value: usize = label.trim().parse().with_context(|| {
                format!(
                    "{}: label `{label}` is not a class index (line: `{line}`)",
                    at()
                )
            })?;
            if value >= num_classes {
                bail!(
                    "{}: label {value} is out of range for {num_classes} classes",
                    at()
                );
            }
            parsed.push(value);
        }
        samples.push(Sample {
            image: image_source(dir, path),
            labels: parsed,
            caption: None,
        });
    }
    Ok(samples)
}

/// A COCO id: vision-datasets sorts images by it, so all ids of a file share one type.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(untagged)]
enum CocoId {
    Number(i64),
    Text(String),
}

#[derive(Deserialize)]
struct CocoImage {
    id: CocoId,
    file_name: String,
    #[serde(default)]
    zip_file: Option<String>,
}

#[derive(Deserialize)]
struct CocoAnnotation {
    image_id: CocoId,
    category_id: CocoId,
}

#[derive(Deserialize)]
struct CocoCategory {
    id: CocoId,
    name: String,
}

#[derive(Deserialize)]
struct CocoFile {
    images: Vec<CocoImage>,
    #[serde(default)]
    annotations: Vec<CocoAnnotation>,
    categories: Vec<CocoCategory>,
}

/// Reads a COCO image-classification index: category names (in id order) and the samples,
/// sorted by image id.
pub fn read_coco(index: &Path, dir: &Path) -> Result<(Vec<String>, Vec<Sample>)> {
    let text = std::fs::read_to_string(index)
        .with_context(|| format!("cannot read index file {}", index.display()))?;
    let coco: CocoFile = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a COCO index file", index.display()))?;
    let mut categories: Vec<&CocoCategory> = coco.categories.iter().collect();
    categories.sort_by(|a, b| a.id.cmp(&b.id));
    let position: BTreeMap<&CocoId, usize> = categories
        .iter()
        .enumerate()
        .map(|(i, c)| (&c.id, i))
        .collect();
    let names = categories.iter().map(|c| c.name.clone()).collect();

    let mut by_id: BTreeMap<&CocoId, Sample> = BTreeMap::new();
    let id_kinds: std::collections::HashSet<_> = coco
        .images
        .iter()
        .map(|i| std::mem::discriminant(&i.id))
        .collect();
    if id_kinds.len() > 1 {
        bail!(
            "{}: image ids mix numbers and strings, so they have no order",
            index.display()
        );
    }
    for image in &coco.images {
        let path = match &image.zip_file {
            Some(zip) if !zip.is_empty() => format!("{zip}@{}", image.file_name),
            _ => image.file_name.clone(),
        };
        let sample = Sample {
            image: image_source(dir, &path),
            labels: Vec::new(),
            caption: None,
        };
        if by_id.insert(&image.id, sample).is_some() {
            bail!("{}: image id {:?} appears twice", index.display(), image.id);
        }
    }
    for (number, annotation) in coco.annotations.iter().enumerate() {
        let at = || format!("{}: annotations[{number}]", index.display());
        let label = *position.get(&annotation.category_id).with_context(|| {
            format!(
                "{}: category_id {:?} is not among the categories",
                at(),
                annotation.category_id
            )
        })?;
        by_id
            .get_mut(&annotation.image_id)
            .with_context(|| {
                format!(
                    "{}: image_id {:?} is not among the images",
                    at(),
                    annotation.image_id
                )
            })?
            .labels
            .push(label);
    }
    Ok((names, by_id.into_values().collect()))
}
