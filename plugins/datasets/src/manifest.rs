//! `manifest`: custom data listed in a CSV, TSV or JSON-lines file.
//!
//! Each row names an image and its label(s):
//! - CSV/TSV: a header row with the columns `path` and `label` (or `labels`), optionally
//!   `split` (`train`, `val`/`valid`/`validation`, `test`) and `caption`; other columns are
//!   ignored.
//! - JSONL: one object per line with the same keys; `label` may be a string (a class name), an
//!   integer (a class index) or, for multi-label data, a list of them.
//!
//! Image paths are relative to `image_root` (default: the manifest's directory) and may name a
//! zip member as `archive.zip@member`. Labels are class names, or class indices when the
//! classes are given (`classnames`, `classnames_file`) or every label is an integer. Without
//! given classes, the class list is the sorted set of label names. Rows without a split go to
//! `default_split`, or else are split per class at random like `image_folder`.
//!
//! Every error names the manifest file and line.

use crate::custom::{check_templates, default_metric, default_templates, read_classnames_list};
use crate::listing::RandomSplit;
use crate::prepared::{PreparedDataset, SplitSamples, TransformProtocol};
use anyhow::{bail, Context, Result};
use mvlpt_framework::data::image::ExifOrientation;
use mvlpt_framework::data::{Dataset, DatasetContext, DatasetInfo, ImageSource, Sample, Split};
use mvlpt_framework::eval::metrics::Metric;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The manifest's file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManifestFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// Tab-separated values with a header row.
    Tsv,
    /// One JSON object per line.
    Jsonl,
}

/// Options of `manifest` (`[data.manifest]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ManifestOptions {
    /// The manifest file, relative to `data.root` (required).
    pub file: Option<String>,
    /// `csv`, `tsv` or `jsonl` (default: from the file extension).
    pub format: Option<ManifestFormat>,
    /// Directory that relative image paths start from, relative to `data.root` (default: the
    /// manifest's directory).
    pub image_root: Option<String>,
    /// The classes, in label order.
    pub classnames: Option<Vec<String>>,
    /// A file of class names in label order (one per line, or a JSON list), relative to
    /// `data.root`.
    pub classnames_file: Option<String>,
    /// Rows carry several labels (CSV: separated by `label_separator`; JSONL: a list).
    pub multilabel: bool,
    /// Separator of several labels in one CSV cell.
    pub label_separator: String,
    /// The split of rows that name none (default: a random per-class split).
    pub default_split: Option<Split>,
    /// Random split: share of each class for training.
    pub train_fraction: f64,
    /// Random split: share of each class for validation (the rest is test).
    pub val_fraction: f64,
    /// Random split: seed of the per-class shuffle.
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

impl Default for ManifestOptions {
    fn default() -> Self {
        Self {
            file: None,
            format: None,
            image_root: None,
            classnames: None,
            classnames_file: None,
            multilabel: false,
            label_separator: ";".into(),
            default_split: None,
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

/// A label as written: a name, or an index (JSON integers).
#[derive(Clone, Debug, PartialEq, Eq)]
enum RawLabel {
    Name(String),
    Index(usize),
}

/// One row before labels are resolved.
struct Row {
    line: u64,
    path: String,
    labels: Vec<RawLabel>,
    split: Option<Split>,
    caption: Option<String>,
}

/// Builds `manifest` from its options and `data.root`.
pub fn build(ctx: &DatasetContext<'_>) -> Result<Box<dyn Dataset>> {
    let options: ManifestOptions = ctx.section.extract()?;
    let key = ctx.section.path();
    check_templates(&options.templates, key)?;
    let file = options
        .file
        .as_deref()
        .with_context(|| format!("{key}.file is not set: name the CSV, TSV or JSONL manifest"))?;
    let path = ctx.root.join(file);
    let format = match options.format {
        Some(format) => format,
        None => format_from_extension(&path).with_context(|| {
            format!("{key}.format: cannot tell the format of {}", path.display())
        })?,
    };
    let rows = match format {
        ManifestFormat::Csv => read_delimited(&path, b',', &options)?,
        ManifestFormat::Tsv => read_delimited(&path, b'\t', &options)?,
        ManifestFormat::Jsonl => read_jsonl(&path, &options)?,
    };
    if rows.is_empty() {
        bail!("manifest {} lists no images", path.display());
    }
    let given = match (&options.classnames, &options.classnames_file) {
        (Some(_), Some(_)) => bail!("{key}: give classnames or classnames_file, not both"),
        (Some(names), None) => Some(names.clone()),
        (None, Some(file)) => Some(read_classnames_list(&ctx.root.join(file))?),
        (None, None) => None,
    };
    let resolver = LabelResolver::new(given, &rows, &path)?;
    let image_root = match &options.image_root {
        Some(dir) => ctx.root.join(dir),
        None => path.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    let splits = assign_splits(rows, &resolver, &image_root, &path, &options, key)?;
    let info = DatasetInfo {
        name: "manifest".into(),
        classnames: resolver.classnames,
        templates: options.templates.clone(),
        metric: options.metric,
        multilabel: options.multilabel,
    };
    Ok(Box::new(PreparedDataset::new(
        info,
        splits,
        options.exif_orientation,
        options.transforms,
    )?))
}

fn format_from_extension(path: &Path) -> Option<ManifestFormat> {
    match path.extension()?.to_str()?.to_lowercase().as_str() {
        "csv" => Some(ManifestFormat::Csv),
        "tsv" => Some(ManifestFormat::Tsv),
        "jsonl" | "ndjson" => Some(ManifestFormat::Jsonl),
        _ => None,
    }
}

fn parse_split(text: &str, at: &dyn Fn() -> String) -> Result<Option<Split>> {
    Ok(match text.trim().to_lowercase().as_str() {
        "" => None,
        "train" => Some(Split::Train),
        "val" | "valid" | "validation" => Some(Split::Val),
        "test" => Some(Split::Test),
        other => bail!(
            "{}: split `{other}` is not one of train, val (valid, validation), test",
            at()
        ),
    })
}

/// Labels of a text cell: one name, or several separated by `separator` in multi-label mode.
fn labels_from_text(text: &str, options: &ManifestOptions) -> Vec<RawLabel> {
    let parts: Vec<&str> = if options.multilabel {
        text.split(options.label_separator.as_str()).collect()
    } else {
        vec![text]
    };
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| RawLabel::Name(p.to_string()))
        .collect()
}

fn read_delimited(path: &Path, delimiter: u8, options: &ManifestOptions) -> Result<Vec<Row>> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .from_path(path)
        .with_context(|| format!("cannot read manifest {}", path.display()))?;
    let headers = reader
        .headers()
        .with_context(|| format!("{}:1: cannot read the header row", path.display()))?
        .clone();
    let column = |names: &[&str]| {
        headers
            .iter()
            .position(|h| names.contains(&h.trim().to_lowercase().as_str()))
    };
    let columns: Vec<&str> = headers.iter().collect();
    let path_column = column(&["path"]).with_context(|| {
        format!(
            "{}:1: the header has no `path` column (columns: {})",
            path.display(),
            columns.join(", ")
        )
    })?;
    let label_column = column(&["label", "labels"]).with_context(|| {
        format!(
            "{}:1: the header has no `label` column (columns: {})",
            path.display(),
            columns.join(", ")
        )
    })?;
    let split_column = column(&["split"]);
    let caption_column = column(&["caption"]);
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.with_context(|| format!("cannot read manifest {}", path.display()))?;
        let line = record.position().map_or(0, |p| p.line());
        let at = || format!("{}:{line}", path.display());
        let cell = |i: usize| record.get(i).unwrap_or("");
        let image = cell(path_column).trim();
        if image.is_empty() {
            bail!("{}: empty `path`", at());
        }
        rows.push(Row {
            line,
            path: image.to_string(),
            labels: labels_from_text(cell(label_column), options),
            split: split_column
                .map(|c| parse_split(cell(c), &at))
                .transpose()?
                .flatten(),
            caption: caption_column
                .map(|c| cell(c).to_string())
                .filter(|c| !c.is_empty()),
        });
    }
    Ok(rows)
}

/// One JSONL object.
#[derive(Deserialize)]
struct JsonRow {
    path: String,
    #[serde(alias = "labels", default)]
    label: Option<JsonLabel>,
    #[serde(default)]
    split: Option<String>,
    #[serde(default)]
    caption: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum JsonLabel {
    Index(usize),
    Name(String),
    Several(Vec<JsonLabel>),
}

impl JsonLabel {
    fn flatten(self, options: &ManifestOptions, out: &mut Vec<RawLabel>) {
        match self {
            Self::Index(i) => out.push(RawLabel::Index(i)),
            Self::Name(name) => out.extend(labels_from_text(&name, options)),
            Self::Several(items) => items.into_iter().for_each(|l| l.flatten(options, out)),
        }
    }
}

fn read_jsonl(path: &Path, options: &ManifestOptions) -> Result<Vec<Row>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read manifest {}", path.display()))?;
    let mut rows = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index as u64 + 1;
        let at = || format!("{}:{number}", path.display());
        if line.trim().is_empty() {
            continue;
        }
        let row: JsonRow = serde_json::from_str(line).with_context(|| {
            format!(
                "{}: expected an object with \"path\" and \"label\" (and optionally \"split\", \
                 \"caption\")",
                at()
            )
        })?;
        let mut labels = Vec::new();
        if let Some(label) = row.label {
            label.flatten(options, &mut labels);
        }
        rows.push(Row {
            line: number,
            path: row.path,
            labels,
            split: row
                .split
                .as_deref()
                .map(|s| parse_split(s, &at))
                .transpose()?
                .flatten(),
            caption: row.caption,
        });
    }
    Ok(rows)
}

/// Maps raw labels to class indices.
struct LabelResolver {
    classnames: Vec<String>,
    by_name: BTreeMap<String, usize>,
}

impl LabelResolver {
    /// Classes as given, or all-integer labels as indices, or the sorted set of names.
    fn new(given: Option<Vec<String>>, rows: &[Row], path: &Path) -> Result<Self> {
        let classnames = match given {
            Some(names) => names,
            None => Self::infer(rows, path)?,
        };
        if classnames.is_empty() {
            bail!("manifest {}: no classes", path.display());
        }
        let by_name = classnames
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        Ok(Self {
            classnames,
            by_name,
        })
    }

    fn infer(rows: &[Row], path: &Path) -> Result<Vec<String>> {
        let all_numeric = rows.iter().flat_map(|r| &r.labels).all(|l| match l {
            RawLabel::Index(_) => true,
            RawLabel::Name(n) => n.parse::<usize>().is_ok(),
        });
        if all_numeric {
            let max = rows
                .iter()
                .flat_map(|r| &r.labels)
                .map(|l| match l {
                    RawLabel::Index(i) => *i,
                    RawLabel::Name(n) => n.parse().unwrap_or(0),
                })
                .max();
            return Ok((0..=max.unwrap_or(0)).map(|i| i.to_string()).collect());
        }
        if let Some(row) = rows
            .iter()
            .find(|r| r.labels.iter().any(|l| matches!(l, RawLabel::Index(_))))
        {
            bail!(
                "{}:{}: an integer label among named ones needs the classes (set classnames or \
                 classnames_file)",
                path.display(),
                row.line
            );
        }
        let names: BTreeSet<&str> = rows
            .iter()
            .flat_map(|r| &r.labels)
            .filter_map(|l| match l {
                RawLabel::Name(n) => Some(n.as_str()),
                RawLabel::Index(_) => None,
            })
            .collect();
        Ok(names.into_iter().map(str::to_string).collect())
    }

    fn resolve(&self, label: &RawLabel, at: &dyn Fn() -> String) -> Result<usize> {
        let index = match label {
            RawLabel::Index(i) => *i,
            RawLabel::Name(name) => match (self.by_name.get(name), name.parse()) {
                (Some(&i), _) | (None, Ok(i)) => i,
                (None, Err(_)) => bail!(
                    "{}: label `{name}` is not one of the {} classes{}",
                    at(),
                    self.classnames.len(),
                    self.closest(name)
                ),
            },
        };
        if index >= self.classnames.len() {
            bail!(
                "{}: label {index} is out of range for {} classes",
                at(),
                self.classnames.len()
            );
        }
        Ok(index)
    }

    /// "; did you mean `x`?" for the class name closest to `name`, if any is close.
    fn closest(&self, name: &str) -> String {
        mvlpt_framework::suggest::did_you_mean(name, self.classnames.iter().map(String::as_str))
    }
}

/// An image path relative to `image_root`; `archive.zip@member` names a zip member.
fn manifest_image(image_root: &Path, path: &str) -> ImageSource {
    let lower = path.to_lowercase();
    match lower.find(".zip@") {
        Some(at) => ImageSource::Zip {
            archive: image_root.join(&path[..at + 4]),
            member: path[at + 5..].to_string(),
        },
        None => ImageSource::File(image_root.join(path)),
    }
}

/// Resolves labels and places every row in its split.
fn assign_splits(
    rows: Vec<Row>,
    resolver: &LabelResolver,
    image_root: &Path,
    path: &Path,
    options: &ManifestOptions,
    key: &str,
) -> Result<SplitSamples> {
    let mut splits = SplitSamples::default();
    let mut unsplit: BTreeMap<Option<usize>, Vec<Sample>> = BTreeMap::new();
    for row in rows {
        let at = || format!("{}:{}", path.display(), row.line);
        let labels = row
            .labels
            .iter()
            .map(|l| resolver.resolve(l, &at))
            .collect::<Result<Vec<_>>>()?;
        if !options.multilabel && labels.len() != 1 {
            bail!(
                "{}: expected one label, found {} (set multilabel = true for several)",
                at(),
                labels.len()
            );
        }
        let sample = Sample {
            image: manifest_image(image_root, &row.path),
            labels,
            caption: row.caption,
        };
        match row.split.or(options.default_split) {
            Some(split) => splits.get_mut(split).push(sample),
            None => unsplit.entry(sample.label()).or_default().push(sample),
        }
    }
    if !unsplit.is_empty() {
        let split = RandomSplit {
            train_fraction: options.train_fraction,
            val_fraction: options.val_fraction,
            seed: options.split_seed,
        };
        split.validate().with_context(|| key.to_string())?;
        let [train, val, test] = split.apply(unsplit.into_values().collect());
        splits.train.extend(train.into_iter().map(|(s, _)| s));
        splits.val.extend(val.into_iter().map(|(s, _)| s));
        splits.test.extend(test.into_iter().map(|(s, _)| s));
    }
    Ok(splits)
}
