//! The training and validation samples of a run: the few-shot protocol applied to every task
//! on its own, or once to all tasks merged (protocols that sample jointly, as ELEVATER's
//! multitask manifest), or not at all when nothing trains and a task has no training split.

use super::{offset, task_name};
use crate::config::LoadedConfig;
use crate::data::{Dataset, DatasetInfo, FewShotProtocol, ImageSource, Sample, Split};
use crate::eval::metrics::TaskSpan;
use crate::plugin::Registry;
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::sync::Arc;

/// Samples tagged with their task.
pub(super) type TaskSamples = Vec<(usize, Sample)>;

/// What the protocol chose, with remarks for the run log.
pub(super) struct Chosen {
    pub train: TaskSamples,
    pub val: TaskSamples,
    pub notes: Vec<String>,
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
) -> Result<TaskSamples> {
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

/// The configured few-shot protocol.
fn protocol(loaded: &LoadedConfig, registry: &Registry) -> Result<Box<dyn FewShotProtocol>> {
    let name = &loaded.config.data.fewshot;
    let factory = registry.fewshot(name)?;
    factory(&loaded.section(format!("data.{name}")))
}

/// The training and validation samples of the run's `datasets` (spans `tasks`, in label-space
/// order). `trains` says whether the run trains anything: when it does not, a task without
/// a training split is no error; no few-shot split is drawn then, and each dataset's own val
/// split validates.
pub(super) fn choose(
    loaded: &LoadedConfig,
    registry: &Registry,
    datasets: &[Arc<dyn Dataset>],
    tasks: &[TaskSpan],
    trains: bool,
) -> Result<Chosen> {
    let protocol = protocol(loaded, registry)?;
    if !trains {
        let mut untrained = Vec::new();
        for (dataset, task) in datasets.iter().zip(tasks) {
            if dataset.samples(Split::Train)?.is_empty() {
                untrained.push(task.name.as_str());
            }
        }
        if !untrained.is_empty() {
            let mut val = Vec::new();
            for (i, (dataset, task)) in datasets.iter().zip(tasks).enumerate() {
                let own = offset(dataset.samples(Split::Val)?, task.start);
                val.extend(own.into_iter().map(|s| (i, s)));
            }
            let note = format!(
                "{} has no training split and nothing trains in this run: no few-shot split \
                 is drawn, and each dataset's own val split (if any) validates",
                untrained.join(", ")
            );
            return Ok(Chosen {
                train: Vec::new(),
                val,
                notes: vec![note],
            });
        }
    }
    if protocol.joint() && datasets.len() > 1 {
        joint(loaded, protocol.as_ref(), datasets, tasks)
    } else {
        per_task(loaded, protocol.as_ref(), datasets, tasks)
    }
}

/// The protocol applied to every task on its own.
fn per_task(
    loaded: &LoadedConfig,
    protocol: &dyn FewShotProtocol,
    datasets: &[Arc<dyn Dataset>],
    tasks: &[TaskSpan],
) -> Result<Chosen> {
    let config = &loaded.config;
    let mut chosen = Chosen {
        train: Vec::new(),
        val: Vec::new(),
        notes: Vec::new(),
    };
    for (i, (dataset, task)) in datasets.iter().zip(tasks).enumerate() {
        let name = &task.name;
        let split = protocol
            .split(dataset.as_ref(), config.data.shots, config.seed)
            .with_context(|| format!("few-shot split of `{name}`"))?;
        chosen
            .notes
            .extend(split.notes.iter().map(|n| format!("{name}: {n}")));
        let tag = |samples| offset(samples, task.start).into_iter().map(move |s| (i, s));
        chosen.train.extend(tag(split.train));
        chosen.val.extend(tag(split.val));
    }
    Ok(chosen)
}

/// The protocol applied once to all tasks merged in label-space order; every chosen sample
/// goes back to its task.
fn joint(
    loaded: &LoadedConfig,
    protocol: &dyn FewShotProtocol,
    datasets: &[Arc<dyn Dataset>],
    tasks: &[TaskSpan],
) -> Result<Chosen> {
    let config = &loaded.config;
    let joint = JointDataset {
        info: DatasetInfo {
            name: task_name(tasks),
            classnames: datasets
                .iter()
                .flat_map(|d| d.info().classnames.iter().cloned())
                .collect(),
            templates: Vec::new(),
            metric: tasks[0].metric,
            multilabel: datasets.iter().any(|d| d.info().multilabel),
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
    let mut notes = Vec::new();
    if config.data.task_order != crate::config::TaskOrder::Sorted {
        notes.push(format!(
            "data.fewshot = \"{}\" samples the tasks merged in the given order; the \
             reference merges them sorted by name (data.task_order = \"sorted\")",
            config.data.fewshot
        ));
    }
    let split = protocol
        .split(&joint, config.data.shots, config.seed)
        .context("joint few-shot split")?;
    notes.extend(split.notes.iter().cloned());
    Ok(Chosen {
        train: assign_tasks(split.train, tasks, &negatives)?,
        val: assign_tasks(split.val, tasks, &negatives)?,
        notes,
    })
}
