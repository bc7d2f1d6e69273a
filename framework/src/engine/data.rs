//! The data of a run: datasets from the registry, the few-shot split of every task, one joint
//! label space (offsets in task order), and the train/test transforms.

use crate::config::{ExperimentConfig, LoadedConfig};
use crate::data::loader::SampleSet;
use crate::data::transforms::Pipeline;
use crate::data::{Dataset, DatasetContext, Sample, Split};
use crate::eval::metrics::TaskSpan;
use crate::plugin::{Factory, PluginKind, Registry};
use anyhow::{bail, Context, Result};
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

/// Dataset plugin names of the run: `data.tasks`, or `data.dataset` alone.
pub fn task_names(config: &ExperimentConfig) -> Vec<String> {
    if config.data.tasks.is_empty() {
        vec![config.data.dataset.clone()]
    } else {
        config.data.tasks.clone()
    }
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
        root: loaded.resolve_path(&loaded.config.data.root),
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

/// Builds the run's data: datasets, few-shot splits (per task, with the run seed), test
/// splits, the joint label space and the transforms at input resolution `image_size`.
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
    let mut datasets = Vec::new();
    let (mut train, mut val, mut test) = (Vec::new(), Vec::new(), Vec::new());
    let (mut classnames, mut tasks, mut notes) = (Vec::new(), Vec::new(), Vec::new());
    let (mut train_pipelines, mut test_pipelines) = (Vec::new(), Vec::new());
    let mut multilabel = false;
    for (task, name) in task_names(config).iter().enumerate() {
        let dataset = build_dataset(loaded, registry, name)?;
        let info = dataset.info().clone();
        let start = classnames.len();
        classnames.extend(info.classnames.iter().cloned());
        tasks.push(TaskSpan {
            name: name.clone(),
            start,
            end: classnames.len(),
            metric: info.metric,
        });
        multilabel |= info.multilabel;
        let split = protocol
            .split(dataset.as_ref(), config.data.shots, config.seed)
            .with_context(|| format!("few-shot split of `{name}`"))?;
        notes.extend(split.notes.iter().map(|n| format!("{name}: {n}")));
        train.extend(offset(split.train, start).into_iter().map(|s| (task, s)));
        val.extend(offset(split.val, start).into_iter().map(|s| (task, s)));
        test.extend(
            offset(dataset.samples(Split::Test)?, start)
                .into_iter()
                .map(|s| (task, s)),
        );
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
        },
        train: set(train),
        val: set(val),
        test: set(test),
        train_pipelines: Arc::new(train_pipelines),
        test_pipelines: Arc::new(test_pipelines),
        notes,
    })
}
