//! The `elevater_multitask` protocol through the engine's data path (`build_run_data`, what a
//! run calls), against `tests/fixtures/sampling/multitask_run.json`
//! (`tools/fixtures/multitask_run.py`: vision-datasets 0.2.23 sampling the merged, name-sorted
//! manifest of a task group jointly, then `train_val_split(0.8)`, as MVLPT's
//! `construct_multitask_dataset` does).
//!
//! Each task of a group is its own dataset plugin, listed in config order (not sorted), so the
//! engine has to sort, merge, sample jointly and hand every sample back to its task.

#[allow(dead_code)] // helpers shared by several test files; this one uses the fixture readers
mod common;

use common::{fixture, label_lists, usizes};
use mvlpt_framework::config::{ConfigLayers, LoadedConfig};
use mvlpt_framework::data::{Dataset, DatasetContext, DatasetInfo, ImageSource, Sample, Split};
use mvlpt_framework::engine::data::{build_run_data, RunData};
use mvlpt_framework::eval::metrics::Metric;
use mvlpt_framework::plugin::{Factory, Origin, Plugin, Registry};
use serde_json::Value;
use std::sync::OnceLock;

/// The fixture, read once.
fn doc() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| fixture("sampling/multitask_run.json"))
}

/// One task of the fixture in merged (name-sorted) order: its name, local labels, class count,
/// multi-label flag, and the position of its first image in the merged list.
struct Task {
    name: String,
    labels: Vec<Vec<usize>>,
    num_classes: usize,
    multilabel: bool,
    first: usize,
}

/// The tasks of `group`, sorted by name as the reference merges them.
fn sorted_tasks(group: &str) -> Vec<Task> {
    let mut tasks: Vec<Task> = doc()["groups"][group]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| Task {
            name: t["name"].as_str().unwrap().to_owned(),
            labels: label_lists(&t["labels"]),
            num_classes: t["num_classes"].as_u64().unwrap() as usize,
            multilabel: t["multilabel"].as_bool().unwrap(),
            first: 0,
        })
        .collect();
    tasks.sort_by(|a, b| a.name.cmp(&b.name));
    let mut first = 0;
    for task in &mut tasks {
        task.first = first;
        first += task.labels.len();
    }
    tasks
}

/// A fixture task as a dataset: training sample `i` is image `Procedural(first + i)`, its
/// position in the merged list, so ids compare directly with the reference's.
struct TaskDataset {
    info: DatasetInfo,
    train: Vec<Sample>,
}

impl Dataset for TaskDataset {
    fn info(&self) -> &DatasetInfo {
        &self.info
    }

    fn samples(&self, split: Split) -> anyhow::Result<Vec<Sample>> {
        Ok(match split {
            Split::Train => self.train.clone(),
            Split::Val | Split::Test => Vec::new(),
        })
    }
}

fn task_dataset(name: &str) -> anyhow::Result<Box<dyn Dataset>> {
    let task = ["with_negatives", "single_label"]
        .iter()
        .flat_map(|g| sorted_tasks(g))
        .find(|t| t.name == name)
        .unwrap();
    Ok(Box::new(TaskDataset {
        info: DatasetInfo {
            name: name.to_owned(),
            classnames: (0..task.num_classes)
                .map(|c| format!("{name} {c}"))
                .collect(),
            templates: vec!["a photo of a {}.".to_owned()],
            metric: Metric::Accuracy,
            multilabel: task.multilabel,
        },
        train: task
            .labels
            .iter()
            .enumerate()
            .map(|(i, labels)| Sample {
                image: ImageSource::Procedural((task.first + i) as u64),
                labels: labels.clone(),
                caption: None,
            })
            .collect(),
    }))
}

macro_rules! task_plugins {
    ($($name:literal => $factory:ident),* $(,)?) => {
        $(fn $factory(_: &DatasetContext<'_>) -> anyhow::Result<Box<dyn Dataset>> {
            task_dataset($name)
        })*
        /// The built-in plugins plus one dataset plugin per fixture task.
        fn registry() -> Registry {
            mvlpt_sampling::link();
            let mut registry = Registry::builtin().unwrap();
            $(registry
                .add(
                    Plugin {
                        name: $name,
                        description: "fixture task",
                        version: "0",
                        factory: Factory::Dataset($factory),
                        options: mvlpt_framework::plugin::options_of::<mvlpt_framework::plugin::NoOptions>,
                    },
                    Origin::BuiltIn,
                )
                .unwrap();)*
            registry
        }
    };
}

task_plugins!(
    "voc_like" => voc_like,
    "pets" => pets,
    "cars" => cars,
    "flowers" => flowers,
    "aircraft" => aircraft,
);

/// The run data of `group` with `shots` and `seed`, built as a run builds it.
fn run_data(group: &str, shots: usize, seed: u64, extra: &[&str]) -> anyhow::Result<RunData> {
    let names: Vec<String> = doc()["groups"][group]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| format!("{:?}", t["name"].as_str().unwrap()))
        .collect();
    let mut sets = vec![
        format!("data.tasks=[{}]", names.join(", ")),
        "data.task_order=\"sorted\"".to_owned(),
        "data.fewshot=\"elevater_multitask\"".to_owned(),
        format!("data.shots={shots}"),
        format!("seed={seed}"),
    ];
    sets.extend(extra.iter().map(|s| s.to_string()));
    let loaded: LoadedConfig = ConfigLayers {
        file: None,
        use_env: false,
        sets,
    }
    .load()?;
    build_run_data(&loaded, &registry(), 32)
}

/// Merged-list positions of a sample set, checking on the way that every sample sits in the
/// task its image came from and carries that task's labels offset into the joint space.
fn checked_ids(items: &[(usize, Sample)], tasks: &[Task], context: &str) -> Vec<usize> {
    let offsets: Vec<usize> = tasks
        .iter()
        .scan(0, |start, t| {
            let here = *start;
            *start += t.num_classes;
            Some(here)
        })
        .collect();
    items
        .iter()
        .map(|(task, sample)| {
            let ImageSource::Procedural(id) = sample.image else {
                panic!("{context}: unexpected image {}", sample.image);
            };
            let id = id as usize;
            let owner = tasks
                .iter()
                .rposition(|t| t.first <= id)
                .expect("every id lies in a task");
            assert_eq!(*task, owner, "{context}: task of image {id}");
            let local = &tasks[owner].labels[id - tasks[owner].first];
            let joint: Vec<usize> = local.iter().map(|l| l + offsets[owner]).collect();
            assert_eq!(sample.labels, joint, "{context}: labels of image {id}");
            id
        })
        .collect()
}

#[test]
fn a_multitask_run_samples_the_merged_task_group_jointly_like_the_reference() {
    assert_eq!(doc()["vision_datasets"], "0.2.23");
    let (mut cases, mut negatives, mut fallbacks) = (0, 0, 0);
    for group in ["with_negatives", "single_label"] {
        let tasks = sorted_tasks(group);
        for case in doc()["groups"][group]["cases"].as_array().unwrap() {
            let shots = case["shots"].as_u64().unwrap() as usize;
            let seed = case["seed"].as_u64().unwrap();
            let context = format!("{group} k={shots} seed={seed}");
            let data = run_data(group, shots, seed, &[]).unwrap();
            let names: Vec<&str> = data.space.tasks.iter().map(|t| t.name.as_str()).collect();
            let sorted: Vec<&str> = tasks.iter().map(|t| t.name.as_str()).collect();
            assert_eq!(names, sorted, "{context}: label space in name order");
            let train = checked_ids(&data.train.items, &tasks, &context);
            let val = checked_ids(&data.val.items, &tasks, &context);
            let expected_train = usizes(&case["train"]);
            let expected_val = usizes(&case["val"]);
            assert_eq!(train, expected_train, "train of {context}");
            if expected_val.is_empty() {
                // The reference leaves nothing to validate on: the training samples validate.
                assert_eq!(val, expected_train, "val of {context}");
                assert!(
                    data.notes
                        .iter()
                        .any(|n| n.contains("no validation samples")),
                    "{context}: {:?}",
                    data.notes
                );
                fallbacks += 1;
            } else {
                assert_eq!(val, expected_val, "val of {context}");
            }
            negatives += data
                .train
                .items
                .iter()
                .chain(&data.val.items)
                .filter(|(_, s)| s.labels.is_empty())
                .count();
            cases += 1;
        }
    }
    assert_eq!(cases, 18);
    // The single-label group at one shot, every seed.
    assert_eq!(fallbacks, 3);
    // Negatives of the multi-label task were sampled (and found their task above).
    assert!(negatives > 20, "{negatives} negatives");
}

#[test]
fn a_given_task_order_is_noted_because_the_reference_sorts() {
    let data = run_data("single_label", 5, 1, &["data.task_order=\"given\""]).unwrap();
    let names: Vec<&str> = data.space.tasks.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["flowers", "aircraft"]);
    assert!(
        data.notes.iter().any(|n| n.contains("sorted by name")),
        "{:?}",
        data.notes
    );
}
