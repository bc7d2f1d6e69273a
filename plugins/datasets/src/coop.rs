//! The CoOp benchmark datasets (reference §6.1) in the directory layout of CoOp's `DATASETS.md`.
//!
//! Splits come from CoOp's fixed `split_zhou_<Name>.json` files (`{"train": [[image path
//! relative to the image directory, label, class name], ...], "val": ..., "test": ...}`), except
//! for FGVC Aircraft (the dataset's own `images_variant_{train,val,test}.txt` lists and
//! `variants.txt`) and the ImageNet family (one folder per class, class names from
//! `classnames.txt`). Class names are those of the split file, indexed by label, exactly as
//! Dassl's `DatasetBase` collects them.
//!
//! With `split = "folders"`, Caltech101, DTD, EuroSAT and Food101 are split from their class
//! folders instead, as CoOp does when the split file is missing: the class-folder fixes of
//! `data/coop.json` apply (Caltech101 drops `BACKGROUND_Google` and `Faces_easy` and renames
//! `airplanes` to `airplane`...; EuroSAT expands `AnnualCrop` to `Annual Crop Land`...), and each
//! class is shuffled by a Python-compatible generator seeded with `split_seed` and cut 50/20/30.

use crate::listing::{entries_sorted, files_sorted, subdirs_sorted, RandomSplit};
use crate::prepared::{PreparedDataset, SplitSamples, TransformProtocol};
use anyhow::{bail, Context, Result};
use mvlpt_framework::data::image::ExifOrientation;
use mvlpt_framework::data::{Dataset, DatasetContext, DatasetInfo, Sample};
use mvlpt_framework::eval::metrics::Metric;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// How a CoOp dataset stores its split.
#[derive(Clone, Copy, Debug)]
enum Layout {
    /// A `split_zhou_*.json` file; image paths are relative to `image_dir`. `from_folders` marks
    /// the datasets CoOp can also split from class folders.
    SplitFile {
        file: &'static str,
        image_dir: &'static str,
        from_folders: bool,
    },
    /// FGVC Aircraft's own lists.
    Aircraft,
    /// ImageNet: `train/` and `val/` class folders (val is the test set and the val set).
    ImageNet,
    /// A test-only ImageNet variant: class folders under `image_dir`, numbered `0..1000` in
    /// classnames.txt order (ImageNetV2) or named by WordNet id (the others).
    ImageNetVariant {
        image_dir: &'static str,
        numbered: bool,
    },
}

/// One CoOp dataset.
#[derive(Clone, Copy, Debug)]
pub struct CoopSpec {
    /// Plugin name (`caltech101`).
    pub name: &'static str,
    /// Dassl registry name (`Caltech101`), the key in `data/coop.json`.
    pub registry_name: &'static str,
    /// Directory under `data.root` (`caltech-101`).
    pub dir: &'static str,
    layout: Layout,
}

const fn split_file(file: &'static str, image_dir: &'static str, from_folders: bool) -> Layout {
    Layout::SplitFile {
        file,
        image_dir,
        from_folders,
    }
}

/// The CoOp datasets: the 11 of the source stage, then the ImageNet domain-shift test sets.
pub const COOP_DATASETS: [CoopSpec; 15] = [
    CoopSpec {
        name: "imagenet",
        registry_name: "ImageNet",
        dir: "imagenet",
        layout: Layout::ImageNet,
    },
    CoopSpec {
        name: "caltech101",
        registry_name: "Caltech101",
        dir: "caltech-101",
        layout: split_file("split_zhou_Caltech101.json", "101_ObjectCategories", true),
    },
    CoopSpec {
        name: "oxford_pets",
        registry_name: "OxfordPets",
        dir: "oxford_pets",
        layout: split_file("split_zhou_OxfordPets.json", "images", false),
    },
    CoopSpec {
        name: "stanford_cars",
        registry_name: "StanfordCars",
        dir: "stanford_cars",
        layout: split_file("split_zhou_StanfordCars.json", "", false),
    },
    CoopSpec {
        name: "oxford_flowers",
        registry_name: "OxfordFlowers",
        dir: "oxford_flowers",
        layout: split_file("split_zhou_OxfordFlowers.json", "jpg", false),
    },
    CoopSpec {
        name: "food101",
        registry_name: "Food101",
        dir: "food-101",
        layout: split_file("split_zhou_Food101.json", "images", true),
    },
    CoopSpec {
        name: "fgvc_aircraft",
        registry_name: "FGVCAircraft",
        dir: "fgvc_aircraft",
        layout: Layout::Aircraft,
    },
    CoopSpec {
        name: "sun397",
        registry_name: "SUN397",
        dir: "sun397",
        layout: split_file("split_zhou_SUN397.json", "SUN397", false),
    },
    CoopSpec {
        name: "describable_textures",
        registry_name: "DescribableTextures",
        dir: "dtd",
        layout: split_file("split_zhou_DescribableTextures.json", "images", true),
    },
    CoopSpec {
        name: "eurosat",
        registry_name: "EuroSAT",
        dir: "eurosat",
        layout: split_file("split_zhou_EuroSAT.json", "2750", true),
    },
    CoopSpec {
        name: "ucf101",
        registry_name: "UCF101",
        dir: "ucf101",
        layout: split_file("split_zhou_UCF101.json", "UCF-101-midframes", false),
    },
    CoopSpec {
        name: "imagenet_v2",
        registry_name: "ImageNetV2",
        dir: "imagenetv2",
        layout: Layout::ImageNetVariant {
            image_dir: "imagenetv2-matched-frequency-format-val",
            numbered: true,
        },
    },
    CoopSpec {
        name: "imagenet_sketch",
        registry_name: "ImageNetSketch",
        dir: "imagenet-sketch",
        layout: Layout::ImageNetVariant {
            image_dir: "images",
            numbered: false,
        },
    },
    CoopSpec {
        name: "imagenet_a",
        registry_name: "ImageNetA",
        dir: "imagenet-adversarial",
        layout: Layout::ImageNetVariant {
            image_dir: "imagenet-a",
            numbered: false,
        },
    },
    CoopSpec {
        name: "imagenet_r",
        registry_name: "ImageNetR",
        dir: "imagenet-rendition",
        layout: Layout::ImageNetVariant {
            image_dir: "imagenet-r",
            numbered: false,
        },
    },
];

/// What `data/coop.json` records per dataset (generated from CoOp's sources).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoopData {
    /// CoOp's zero-shot template (`CUSTOM_TEMPLATES`).
    pub template: String,
    /// Class folders skipped when splitting from folders.
    pub ignored_folders: Vec<String>,
    /// Class-folder renames applied when splitting from folders.
    pub renamed_folders: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct CoopCatalog {
    datasets: BTreeMap<String, CoopData>,
}

/// The embedded `data/coop.json`, by Dassl registry name.
pub fn coop_data() -> &'static BTreeMap<String, CoopData> {
    static DATA: OnceLock<BTreeMap<String, CoopData>> = OnceLock::new();
    DATA.get_or_init(|| {
        let catalog: CoopCatalog = serde_json::from_str(include_str!("../data/coop.json"))
            .expect("the embedded data/coop.json parses (checked by the crate's tests)");
        catalog.datasets
    })
}

/// The embedded copy of the ImageNet `classnames.txt` (MVLPT's `scripts/classnames.txt`).
pub const IMAGENET_CLASSNAMES: &str = include_str!("../data/imagenet_classnames.txt");

/// Where the split comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitSource {
    /// CoOp's fixed split file (the reference).
    #[default]
    File,
    /// Class folders, shuffled with `split_seed` (CoOp's fallback when the file is missing).
    Folders,
}

/// Options of a CoOp dataset (`[data.<name>]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CoopOptions {
    /// Dataset directory under `data.root` (default: CoOp's name, e.g. `caltech-101`).
    pub dir: Option<String>,
    /// `file` (the `split_zhou` json) or `folders` (caltech101, describable_textures, eurosat,
    /// food101 only).
    pub split: SplitSource,
    /// Seed of the folder split (CoOp uses the run's seed).
    pub split_seed: u64,
    /// ImageNet family: the `classnames.txt` to use, relative to the dataset directory
    /// (default: the dataset's own `classnames.txt`, else the embedded copy).
    pub classnames_file: Option<String>,
    /// ImageNet: directory holding `train/` and `val/`, relative to the dataset directory
    /// (default: `images` when `images/train` exists, as in CoOp, else the dataset directory
    /// itself, as in MVLPT).
    pub image_dir: Option<String>,
}

impl Default for CoopOptions {
    fn default() -> Self {
        Self {
            dir: None,
            split: SplitSource::File,
            split_seed: 1,
            classnames_file: None,
            image_dir: None,
        }
    }
}

/// Builds the CoOp dataset `name` from its options and `data.root`.
pub fn build(name: &str, ctx: &DatasetContext<'_>) -> Result<Box<dyn Dataset>> {
    let spec = COOP_DATASETS
        .iter()
        .find(|s| s.name == name)
        .with_context(|| format!("{name} is not a CoOp dataset"))?;
    let options: CoopOptions = ctx.section.extract()?;
    let key = ctx.section.path();
    let data = coop_data()
        .get(spec.registry_name)
        .with_context(|| format!("data/coop.json has no entry {}", spec.registry_name))?;
    let dir = ctx.existing_dir(options.dir.as_deref().unwrap_or(spec.dir))?;
    check_applicable(spec, &options, key)?;
    let (classnames, splits) = match spec.layout {
        Layout::SplitFile {
            file, image_dir, ..
        } => match options.split {
            SplitSource::File => read_split_file(&dir.join(file), &dir.join(image_dir))?,
            SplitSource::Folders => {
                split_from_folders(&dir.join(image_dir), data, options.split_seed)?
            }
        },
        Layout::Aircraft => read_aircraft(&dir)?,
        Layout::ImageNet => read_imagenet(&dir, &options)?,
        Layout::ImageNetVariant {
            image_dir,
            numbered,
        } => read_imagenet_variant(&dir, &dir.join(image_dir), numbered, data, &options)?,
    };
    let info = DatasetInfo {
        name: spec.name.to_string(),
        classnames,
        templates: vec![data.template.clone()],
        metric: Metric::Accuracy,
        multilabel: false,
    };
    Ok(Box::new(PreparedDataset::new(
        info,
        splits,
        ExifOrientation::Ignore,
        TransformProtocol::Dassl,
    )?))
}

/// Refuses options that have no meaning for this dataset.
fn check_applicable(spec: &CoopSpec, options: &CoopOptions, key: &str) -> Result<()> {
    let folders_ok = matches!(
        spec.layout,
        Layout::SplitFile {
            from_folders: true,
            ..
        }
    );
    if options.split == SplitSource::Folders && !folders_ok {
        bail!(
            "{key}.split = \"folders\": only caltech101, describable_textures, eurosat and food101 can be split \
             from class folders"
        );
    }
    let imagenet_family = matches!(
        spec.layout,
        Layout::ImageNet | Layout::ImageNetVariant { .. }
    );
    if options.classnames_file.is_some() && !imagenet_family {
        bail!("{key}.classnames_file: only the ImageNet datasets read a classnames file");
    }
    if options.image_dir.is_some() && !matches!(spec.layout, Layout::ImageNet) {
        bail!("{key}.image_dir: only imagenet takes an image directory");
    }
    Ok(())
}

/// One item of a split file: `[path, label, class name]`.
#[derive(Deserialize)]
struct SplitItem(String, LabelValue, String);

/// A label written as a number or, as Python's `int(label)` also accepts, a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum LabelValue {
    Number(u64),
    Text(String),
}

/// Reads a `split_zhou_*.json` file: samples per split and class names by label.
pub fn read_split_file(file: &Path, image_dir: &Path) -> Result<(Vec<String>, SplitSamples)> {
    let text = std::fs::read_to_string(file).with_context(|| {
        format!(
            "cannot read split file {} (CoOp's split_zhou files are linked from its DATASETS.md)",
            file.display()
        )
    })?;
    let split: BTreeMap<String, Vec<SplitItem>> = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a CoOp split file", file.display()))?;
    let mut names = ClassNames::default();
    let mut samples = SplitSamples::default();
    for (key, target) in [
        ("train", &mut samples.train),
        ("val", &mut samples.val),
        ("test", &mut samples.test),
    ] {
        let items = split
            .get(key)
            .with_context(|| format!("{}: no \"{key}\" list", file.display()))?;
        for (index, SplitItem(path, label, classname)) in items.iter().enumerate() {
            let where_ = || format!("{}: {key}[{index}]", file.display());
            let label = match label {
                LabelValue::Number(n) => usize::try_from(*n).ok(),
                LabelValue::Text(t) => t.trim().parse().ok(),
            }
            .with_context(|| format!("{}: the label is not a class index", where_()))?;
            names.insert(label, classname, &where_)?;
            target.push(Sample::file(image_dir.join(path), label));
        }
    }
    Ok((names.into_list(&file.display().to_string())?, samples))
}

/// Class names collected from labelled items; one name per label.
#[derive(Default)]
struct ClassNames(BTreeMap<usize, String>);

impl ClassNames {
    fn insert(&mut self, label: usize, name: &str, at: &dyn Fn() -> String) -> Result<()> {
        match self.0.get(&label) {
            Some(existing) if existing != name => bail!(
                "{}: label {label} is named `{name}`, but earlier items name it `{existing}`",
                at()
            ),
            Some(_) => Ok(()),
            None => {
                self.0.insert(label, name.to_string());
                Ok(())
            }
        }
    }

    /// The names of labels `0..=max`; a label without items is an error.
    fn into_list(self, source: &str) -> Result<Vec<String>> {
        let count = self.0.keys().next_back().map_or(0, |max| max + 1);
        if let Some(missing) = (0..count).find(|l| !self.0.contains_key(l)) {
            bail!("{source}: no item has label {missing}, so the class has no name");
        }
        Ok(self.0.into_values().collect())
    }
}

/// CoOp's `read_and_split_data` on class folders, with the dataset's folder fixes.
fn split_from_folders(
    image_dir: &Path,
    data: &CoopData,
    seed: u64,
) -> Result<(Vec<String>, SplitSamples)> {
    let mut classnames = Vec::new();
    let mut classes = Vec::new();
    for (folder, path) in subdirs_sorted(image_dir)? {
        if data.ignored_folders.contains(&folder) {
            continue;
        }
        let images = files_sorted(&path)?;
        let sizes = crate::listing::class_split_sizes(images.len(), 0.5, 0.2);
        if sizes.train == 0 || sizes.val == 0 || sizes.test == 0 {
            bail!(
                "class folder {} has {} images: too few for a 50/20/30 split",
                path.display(),
                images.len()
            );
        }
        classnames.push(data.renamed_folders.get(&folder).unwrap_or(&folder).clone());
        classes.push(images);
    }
    if classes.is_empty() {
        bail!("no class folders in {}", image_dir.display());
    }
    let split = RandomSplit {
        train_fraction: 0.5,
        val_fraction: 0.2,
        seed,
    };
    let [train, val, test] = split.apply(classes);
    let to_samples =
        |items: Vec<(PathBuf, usize)>| items.into_iter().map(|(p, l)| Sample::file(p, l)).collect();
    Ok((
        classnames,
        SplitSamples {
            train: to_samples(train),
            val: to_samples(val),
            test: to_samples(test),
        },
    ))
}

/// FGVC Aircraft: `variants.txt` (class names in label order) and
/// `images_variant_{train,val,test}.txt` (`<image id> <variant name>` per line).
fn read_aircraft(dir: &Path) -> Result<(Vec<String>, SplitSamples)> {
    let variants_file = dir.join("variants.txt");
    let classnames: Vec<String> = read_text(&variants_file)?
        .lines()
        .map(|l| l.trim().to_string())
        .collect();
    let label_of: BTreeMap<&str, usize> = classnames
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    let mut samples = SplitSamples::default();
    for (split, target) in [
        ("train", &mut samples.train),
        ("val", &mut samples.val),
        ("test", &mut samples.test),
    ] {
        let file = dir.join(format!("images_variant_{split}.txt"));
        for (index, line) in read_text(&file)?.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (image, variant) = line.split_once(' ').unwrap_or((line, ""));
            let label = *label_of.get(variant).with_context(|| {
                format!(
                    "{}:{}: variant `{variant}` is not in {}",
                    file.display(),
                    index + 1,
                    variants_file.display()
                )
            })?;
            let path = dir.join("images").join(format!("{image}.jpg"));
            target.push(Sample::file(path, label));
        }
    }
    Ok((classnames, samples))
}

/// `classnames.txt`: `<folder> <class name>` per line, in file order.
fn read_classnames(dir: &Path, options: &CoopOptions) -> Result<(Vec<(String, String)>, String)> {
    let (text, source) = match &options.classnames_file {
        Some(file) => {
            let path = dir.join(file);
            (read_text(&path)?, path.display().to_string())
        }
        None => {
            let own = dir.join("classnames.txt");
            if own.is_file() {
                (read_text(&own)?, own.display().to_string())
            } else {
                (
                    IMAGENET_CLASSNAMES.to_string(),
                    "the embedded ImageNet classnames.txt".to_string(),
                )
            }
        }
    };
    let pairs = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (folder, name) = l.split_once(' ').unwrap_or((l, ""));
            (folder.to_string(), name.to_string())
        })
        .collect();
    Ok((pairs, source))
}

/// Class folders of `dir` as `(label order) → samples`, naming each through `classnames`.
fn read_class_folders(
    dir: &Path,
    folders: &[(String, PathBuf)],
    classnames: &BTreeMap<&str, &str>,
    source: &str,
    samples: &mut Vec<Sample>,
) -> Result<Vec<String>> {
    let mut names = Vec::with_capacity(folders.len());
    for (label, (folder, path)) in folders.iter().enumerate() {
        let name = classnames.get(folder.as_str()).with_context(|| {
            format!(
                "class folder {folder} of {} is not listed in {source}",
                dir.display()
            )
        })?;
        names.push(name.to_string());
        samples.extend(
            files_sorted(path)?
                .into_iter()
                .map(|p| Sample::file(p, label)),
        );
    }
    Ok(names)
}

/// ImageNet: class folders of `train/` and `val/` in sorted order give the labels; the val
/// images are both the test and the val split (Dassl: `val=test`).
fn read_imagenet(dir: &Path, options: &CoopOptions) -> Result<(Vec<String>, SplitSamples)> {
    let image_dir = match &options.image_dir {
        Some(sub) => dir.join(sub),
        None if dir.join("images").join("train").is_dir() => dir.join("images"),
        None => dir.to_path_buf(),
    };
    let (pairs, source) = read_classnames(dir, options)?;
    let lookup: BTreeMap<&str, &str> = pairs
        .iter()
        .map(|(f, n)| (f.as_str(), n.as_str()))
        .collect();
    let folders_of = |split: &str| -> Result<(PathBuf, Vec<(String, PathBuf)>)> {
        let split_dir = image_dir.join(split);
        if !split_dir.is_dir() {
            bail!(
                "ImageNet directory {} not found (expected class folders in train/ and val/ of {})",
                split_dir.display(),
                image_dir.display()
            );
        }
        let folders = subdirs_sorted(&split_dir)?;
        Ok((split_dir, folders))
    };
    let (train_dir, train_folders) = folders_of("train")?;
    let (val_dir, val_folders) = folders_of("val")?;
    let same = train_folders.len() == val_folders.len()
        && train_folders
            .iter()
            .zip(&val_folders)
            .all(|(a, b)| a.0 == b.0);
    if !same {
        bail!(
            "the class folders of {} and {} differ, so their labels would not match",
            train_dir.display(),
            val_dir.display()
        );
    }
    let mut samples = SplitSamples::default();
    let classnames = read_class_folders(
        &train_dir,
        &train_folders,
        &lookup,
        &source,
        &mut samples.train,
    )?;
    read_class_folders(&val_dir, &val_folders, &lookup, &source, &mut samples.test)?;
    samples.val = samples.test.clone();
    Ok((classnames, samples))
}

/// The test-only ImageNet variants.
fn read_imagenet_variant(
    dir: &Path,
    image_dir: &Path,
    numbered: bool,
    data: &CoopData,
    options: &CoopOptions,
) -> Result<(Vec<String>, SplitSamples)> {
    let (pairs, source) = read_classnames(dir, options)?;
    let mut samples = SplitSamples::default();
    if numbered {
        // ImageNetV2: folder `i` holds class i of classnames.txt.
        let mut classnames = Vec::with_capacity(pairs.len());
        for (label, (_, name)) in pairs.iter().enumerate() {
            let class_dir = image_dir.join(label.to_string());
            if !class_dir.is_dir() {
                bail!("ImageNetV2 class folder {} not found", class_dir.display());
            }
            classnames.push(name.clone());
            samples.test.extend(
                files_sorted(&class_dir)?
                    .into_iter()
                    .map(|p| Sample::file(p, label)),
            );
        }
        return Ok((classnames, samples));
    }
    let lookup: BTreeMap<&str, &str> = pairs
        .iter()
        .map(|(f, n)| (f.as_str(), n.as_str()))
        .collect();
    // Dassl lists every non-hidden entry; CoOp drops the README of ImageNet-A and -R.
    let folders: Vec<(String, PathBuf)> = entries_sorted(image_dir)?
        .into_iter()
        .filter(|(name, path)| path.is_dir() && !data.ignored_folders.contains(name))
        .collect();
    let classnames = read_class_folders(image_dir, &folders, &lookup, &source, &mut samples.test)?;
    Ok((classnames, samples))
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}
