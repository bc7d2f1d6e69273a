//! The data of a run: datasets from the registry, the few-shot split of every task, one joint
//! label space (offsets in task order), and the train/test transforms.

use crate::config::{ExperimentConfig, LoadedConfig, TaskOrder};
use crate::data::loader::SampleSet;
use crate::data::transforms::Pipeline;
use crate::data::{Dataset, DatasetContext, DatasetInfo, ImageSource, Sample, Split};
use crate::eval::metrics::TaskSpan;
use crate::plugin::{Factory, PluginKind, Registry};
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
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
    if config.data.task_order == TaskOrder::Sorted {
        names.sort();
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = names.iter().find(|n| !seen.insert(n.as_str())) {
        bail!("data.tasks lists `{dup}` twice");
    }
    Ok(names)
}

/// All tasks merged into one dataset with global labels, for protocols that sample the joint
/// label space at once (ELEVATER's multitask manifest). It describes samples only; images
/// are read through each task's own dataset.
struct JointDataset {
    info: DatasetInfo,
    parts: Vec<(Arc<dyn Dataset>, usize)>,
}

impl Dataset for JointDataset {
    fn info(&self) -> &DatasetInfo {
        &self.info
    }

    fn samples(&self, split: Split) -> Result<Vec<Sample>> {
        let mut all = Vec::new();
        for (dataset, start) in &self.parts {
            all.extend(offset(dataset.samples(split)?, *start));
        }
        Ok(all)
    }
}

/// The task of each sample chosen from a joint dataset: by its first label's column range, or
/// for a negative sample (no label) by where its image came from.
fn assign_tasks(
    samples: Vec<Sample>,
    tasks: &[TaskSpan],
    negatives: &HashMap<ImageSource, usize>,
) -> Result<Vec<(usize, Sample)>> {
    samples
        .into_iter()
        .map(|s| {
            let task = match s.label() {
                Some(l) => tasks.iter().position(|t| (t.start..t.end).contains(&l)),
                None => negatives.get(&s.image).copied(),
            };
            let task = task.with_context(|| format!("sample {} belongs to no task", s.image))?;
            Ok((task, s))
        })
        .collect()
}

/// Builds dataset `name` through the registry.
pub fn build_dataset(
    loaded: &LoadedConfig,
    registry: &Registry,
    name: &str,
) -> Result<Arc<dyn Dataset>> {
    let Factory::Dataset(factory) = registry.factory(PluginKind::Dataset, name)? else {
        bail!("plugin `{name}` is not a dataset");
    };
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

/// Builds the run's data: datasets, few-shot splits (per task, or jointly for protocols that
/// ask for it), test splits, the joint label space and the transforms at input resolution
/// `image_size`.
pub fn build_run_data(
    loaded: &LoadedConfig,
    registry: &Registry,
    image_size: usize,
) -> Result<RunData> {
    let config = &loaded.config;
    let Factory::FewShot(protocol_factory) =
        registry.factory(PluginKind::FewShot, &config.data.fewshot)?
    else {
        bail!(
            "plugin `{}` is not a few-shot protocol",
            config.data.fewshot
        );
    };
    let protocol = protocol_factory(&loaded.section(format!("data.{}", config.data.fewshot)))?;
    let mut datasets: Vec<Arc<dyn Dataset>> = Vec::new();
    let (mut classnames, mut tasks, mut notes) = (Vec::new(), Vec::new(), Vec::new());
    let mut class_templates: Vec<Vec<String>> = Vec::new();
    let (mut train_pipelines, mut test_pipelines) = (Vec::new(), Vec::new());
    let mut multilabel = false;
    for name in task_names(config)? {
        let dataset = build_dataset(loaded, registry, &name)?;
        let info = dataset.info().clone();
        let start = classnames.len();
        classnames.extend(info.classnames.iter().cloned());
        class_templates.extend(info.classnames.iter().map(|_| info.templates.clone()));
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
    let (mut train, mut val, mut test) = (Vec::new(), Vec::new(), Vec::new());
    for (task, dataset) in datasets.iter().enumerate() {
        test.extend(
            offset(dataset.samples(Split::Test)?, tasks[task].start)
                .into_iter()
                .map(|s| (task, s)),
        );
    }
    if protocol.joint() && datasets.len() > 1 {
        let joint = JointDataset {
            info: DatasetInfo {
                name: tasks
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join("+"),
                classnames: classnames.clone(),
                templates: Vec::new(),
                metric: tasks[0].metric,
                multilabel,
            },
            parts: datasets
                .iter()
                .cloned()
                .zip(tasks.iter().map(|t| t.start))
                .collect(),
        };
        let mut negatives = HashMap::new();
        for (task, dataset) in datasets.iter().enumerate() {
            for split in [Split::Train, Split::Val] {
                for s in dataset
                    .samples(split)?
                    .into_iter()
                    .filter(|s| s.labels.is_empty())
                {
                    negatives.insert(s.image, task);
                }
            }
        }
        let split = protocol
            .split(&joint, config.data.shots, config.seed)
            .context("joint few-shot split")?;
        notes.extend(split.notes.iter().cloned());
        train = assign_tasks(split.train, &tasks, &negatives)?;
        val = assign_tasks(split.val, &tasks, &negatives)?;
    } else {
        for (task, dataset) in datasets.iter().enumerate() {
            let name = &tasks[task].name;
            let split = protocol
                .split(dataset.as_ref(), config.data.shots, config.seed)
                .with_context(|| format!("few-shot split of `{name}`"))?;
            notes.extend(split.notes.iter().map(|n| format!("{name}: {n}")));
            train.extend(
                offset(split.train, tasks[task].start)
                    .into_iter()
                    .map(|s| (task, s)),
            );
            val.extend(
                offset(split.val, tasks[task].start)
                    .into_iter()
                    .map(|s| (task, s)),
            );
        }
    }
    if train.is_empty() && config.train.epochs > 0 {
        bail!(
            "the few-shot split left no training samples (data.shots = {})",
            config.data.shots
        );
    }
    let set = |items| {
        Arc::new(SampleSet {
            datasets: datasets.clone(),
            items,
        })
    };
    Ok(RunData {
        space: LabelSpace {
            classnames,
            tasks,
            multilabel,
            class_templates,
        },
        train: set(train),
        val: set(val),
        test: set(test),
        train_pipelines: Arc::new(train_pipelines),
        test_pipelines: Arc::new(test_pipelines),
        notes,
    })
}
