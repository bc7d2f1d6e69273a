//! The data of a run: datasets from the registry, one joint label space (offsets in task
//! order), the train/test transforms, the few-shot split of every task ([`fewshot`]), and the
//! base or new half of every task's classes when the run subsamples them ([`subsample`]).

mod fewshot;
mod subsample;

pub use subsample::ClassSubset;

use crate::config::{ExperimentConfig, LoadedConfig};
use crate::data::loader::SampleSet;
use crate::data::transforms::Pipeline;
use crate::data::{Dataset, DatasetContext, Sample, Split};
use crate::eval::metrics::TaskSpan;
use crate::plugin::Registry;
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::sync::Arc;

/// The joint label space of a run.
#[derive(Clone, Debug)]
pub struct LabelSpace {
    /// Class names, task after task.
    pub classnames: Vec<String>,
    /// Column range and metric of every task.
    pub tasks: Vec<TaskSpan>,
    /// Whether any task is multi-label (targets become multi-hot rows).
    pub multilabel: bool,
    /// The zero-shot templates of each class's dataset (for methods that use them).
    pub class_templates: Vec<Vec<String>>,
}

/// Everything data-related a run needs.
pub struct RunData {
    /// Joint label space.
    pub space: LabelSpace,
    /// Training samples (labels offset into the joint space).
    pub train: Arc<SampleSet>,
    /// Validation samples.
    pub val: Arc<SampleSet>,
    /// Test samples.
    pub test: Arc<SampleSet>,
    /// Train transform per task.
    pub train_pipelines: Arc<Vec<Pipeline>>,
    /// Test transform per task.
    pub test_pipelines: Arc<Vec<Pipeline>>,
    /// Remarks for the run log.
    pub notes: Vec<String>,
}

/// Dataset plugin names of the run in label-space order: `data.tasks` (as listed, or sorted
/// when `data.task_order = "sorted"`), or `data.dataset` alone.
pub fn task_names(config: &ExperimentConfig) -> Result<Vec<String>> {
    if config.data.tasks.is_empty() {
        return Ok(vec![config.data.dataset.clone()]);
    }
    let mut names = config.data.tasks.clone();
    if config.data.task_order == crate::config::TaskOrder::Sorted {
        names.sort();
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = names.iter().find(|n| !seen.insert(n.as_str())) {
        bail!("data.tasks lists `{dup}` twice");
    }
    Ok(names)
}

/// Builds dataset `name` through the registry.
pub fn build_dataset(
    loaded: &LoadedConfig,
    registry: &Registry,
    name: &str,
) -> Result<Arc<dyn Dataset>> {
    let factory = registry.dataset(name)?;
    let context = DatasetContext {
        section: loaded.section(format!("data.{name}")),
        root: loaded.resolve_path_of("data.root", &loaded.config.data.root),
    };
    Ok(Arc::from(
        factory(&context).with_context(|| format!("building dataset `{name}`"))?,
    ))
}

/// Resolves a transform setting: `dataset` (the benchmark's own) or a preset name.
fn pipeline(setting: &str, own: &Pipeline, size: usize) -> Result<Pipeline> {
    Ok(match setting {
        "dataset" => own.clone(),
        "clip" => Pipeline::clip_test(size)?,
        "elevater" => Pipeline::elevater(size, false)?,
        "elevater_center_crop" => Pipeline::elevater(size, true)?,
        "dassl_train" => Pipeline::dassl_train(size)?,
        "dassl_test" => Pipeline::dassl_test(size)?,
        other => bail!(
            "unknown transform preset {other:?}: expected dataset, clip, elevater, elevater_center_crop, dassl_train or dassl_test"
        ),
    })
}

/// Offsets every label of `samples` by `offset`.
fn offset(samples: Vec<Sample>, offset: usize) -> Vec<Sample> {
    samples
        .into_iter()
        .map(|mut s| {
            s.labels.iter_mut().for_each(|l| *l += offset);
            s
        })
        .collect()
}

/// A task-set name for messages: the task names joined with `+`.
fn task_name(tasks: &[TaskSpan]) -> String {
    tasks
        .iter()
        .map(|t| t.name.as_str())
        .collect::<Vec<_>>()
        .join("+")
}

impl RunData {
    /// Writes the run's samples as `split.jsonl` (one object per sample: `path`, `labels` as joint
    /// class indices, `split`, and `task` when there are several) and the joint class names as
    /// `classnames.json`, so the exact split can be inspected or re-used with the `manifest`
    /// dataset (`file = "<run>/split.jsonl"`, `classnames_file = "<run>/classnames.json"`,
    /// `data.fewshot = "all"`).
    pub fn write_split(&self, dir: &Path) -> Result<()> {
        let multitask = self.space.tasks.len() > 1;
        let mut lines = String::new();
        for (split, set) in [
            (Split::Train, &self.train),
            (Split::Val, &self.val),
            (Split::Test, &self.test),
        ] {
            for (task, sample) in &set.items {
                let mut row = serde_json::json!({
                    "path": sample.image.to_string(),
                    "labels": sample.labels,
                    "split": split.as_str(),
                });
                if multitask {
                    row["task"] = serde_json::json!(self.space.tasks[*task].name);
                }
                lines.push_str(&row.to_string());
                lines.push('\n');
            }
        }
        crate::io::write_atomic(&dir.join("split.jsonl"), lines.as_bytes())?;
        crate::io::write_json_atomic(&dir.join("classnames.json"), &self.space.classnames)
    }
}

/// The datasets of a run, opened: the joint label space and the transforms, before any samples
/// are read or chosen. A method can bind to the label space first, and the run then
/// knows whether it trains anything ([`RunDatasets::into_run_data`]).
pub struct RunDatasets {
    /// The joint label space.
    pub space: LabelSpace,
    datasets: Vec<Arc<dyn Dataset>>,
    /// Every task's span in the datasets' own (unsubsampled) joint label space.
    origin: Vec<TaskSpan>,
    /// Every task's class subset (`data.subsample_classes`), `None` when it keeps all.
    subsets: Vec<Option<ClassSubset>>,
    train_pipelines: Vec<Pipeline>,
    test_pipelines: Vec<Pipeline>,
}

impl RunDatasets {
    /// Builds every dataset of the run through the registry, with transforms at input
    /// resolution `image_size`.
    pub fn open(loaded: &LoadedConfig, registry: &Registry, image_size: usize) -> Result<Self> {
        let config = &loaded.config;
        let mut datasets: Vec<Arc<dyn Dataset>> = Vec::new();
        let (mut classnames, mut tasks) = (Vec::new(), Vec::new());
        let mut class_templates: Vec<Vec<String>> = Vec::new();
        let (mut train_pipelines, mut test_pipelines) = (Vec::new(), Vec::new());
        let mut multilabel = false;
        let (mut origin, mut subsets) = (Vec::new(), Vec::new());
        for name in task_names(config)? {
            let dataset = build_dataset(loaded, registry, &name)?;
            let info = dataset.info().clone();
            let mode = config.data.subsample_classes;
            let subset = ClassSubset::of_dataset(dataset.as_ref(), mode, &name)?;
            let names = match &subset {
                Some(subset) => subset.classnames(&info.classnames)?,
                None => info.classnames.clone(),
            };
            let origin_start = origin.last().map_or(0, |t: &TaskSpan| t.end);
            origin.push(TaskSpan {
                name: name.clone(),
                start: origin_start,
                end: origin_start + info.classnames.len(),
                metric: info.metric,
            });
            subsets.push(subset);
            let start = classnames.len();
            classnames.extend(names.iter().cloned());
            class_templates.extend(names.iter().map(|_| info.templates.clone()));
            tasks.push(TaskSpan {
                name: name.clone(),
                start,
                end: classnames.len(),
                metric: info.metric,
            });
            multilabel |= info.multilabel;
            let (own_train, own_test) = dataset.transforms(image_size)?;
            train_pipelines.push(pipeline(
                &config.data.train_transform,
                &own_train,
                image_size,
            )?);
            test_pipelines.push(pipeline(
                &config.data.test_transform,
                &own_test,
                image_size,
            )?);
            datasets.push(dataset);
        }
        Ok(Self {
            space: LabelSpace {
                classnames,
                tasks,
                multilabel,
                class_templates,
            },
            datasets,
            origin,
            subsets,
            train_pipelines,
            test_pipelines,
        })
    }

    /// Draws the few-shot split (per task, or jointly for protocols that ask for it) and reads
    /// the test split. `trains` says whether the run trains anything; only then must the
    /// split leave training samples, and when it does not, a dataset with a test split only
    /// is evaluated as it is.
    pub fn into_run_data(
        self,
        loaded: &LoadedConfig,
        registry: &Registry,
        trains: bool,
    ) -> Result<RunData> {
        let config = &loaded.config;
        let origin = &self.origin;
        let mut test = Vec::new();
        for (task, dataset) in self.datasets.iter().enumerate() {
            test.extend(
                offset(dataset.samples(Split::Test)?, origin[task].start)
                    .into_iter()
                    .map(|s| (task, s)),
            );
        }
        let fewshot::Chosen {
            mut train,
            mut val,
            mut notes,
        } = fewshot::choose(loaded, registry, &self.datasets, origin, trains)?;
        if self.subsets.iter().any(Option::is_some) {
            subsample::check_train_classes(&train, &self.subsets, origin)?;
            let restrict =
                |items| subsample::restrict(items, &self.subsets, origin, &self.space.tasks);
            (train, val, test) = (restrict(train), restrict(val), restrict(test));
            notes.push(format!(
                "data.subsample_classes = \"{}\": {} of the datasets' classes, relabelled",
                config.data.subsample_classes,
                self.space.classnames.len()
            ));
        }
        let negatives = train.iter().filter(|(_, s)| s.labels.is_empty()).count();
        if negatives > 0 {
            notes.push(format!(
                "{negatives} of {} training samples have no label (negatives of a multi-label \
                 split): they take no part in the loss or the training accuracy",
                train.len()
            ));
        }
        if train.is_empty() && trains {
            bail!(
                "the few-shot split left no training samples (data.shots = {})",
                config.data.shots
            );
        }
        let set = |items| {
            Arc::new(SampleSet {
                datasets: self.datasets.clone(),
                items,
            })
        };
        Ok(RunData {
            train: set(train),
            val: set(val),
            test: set(test),
            space: self.space,
            train_pipelines: Arc::new(self.train_pipelines),
            test_pipelines: Arc::new(self.test_pipelines),
            notes,
        })
    }
}

/// Builds the run's data in one go ([`RunDatasets::open`], then the few-shot split), for a
/// run that trains when `train.epochs > 0`.
pub fn build_run_data(
    loaded: &LoadedConfig,
    registry: &Registry,
    image_size: usize,
) -> Result<RunData> {
    RunDatasets::open(loaded, registry, image_size)?.into_run_data(
        loaded,
        registry,
        loaded.config.train.epochs > 0,
    )
}
