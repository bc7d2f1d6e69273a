//! Multitask evaluation over a joint label space (MVLPT `test` with `--multi-task`).
//!
//! Each task owns a column range `[start, end)` of the joint scores. Every sample carries its task
//! id; its scores and targets are cut to that range and labels shifted by `start` (the reference
//! does this per sample too). Each task then gets its own metric, and the overall value is the
//! unweighted mean over tasks, or one task's value (`DATASET.MULTITASK_EVALKEY`).

use super::data::{Scores, Target, TargetKind, Targets};
use super::metric::Metric;
use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// One task's part of the joint label space: it owns the columns `start..end`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskSpan {
    /// The task (dataset) name.
    pub name: String,
    /// First joint class of the task.
    pub start: usize,
    /// One past the last joint class of the task.
    pub end: usize,
    /// The metric this task is scored with.
    pub metric: Metric,
}

/// Which value summarises a multitask evaluation (`MULTITASK_EVALKEY`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum EvalKey {
    /// The unweighted mean over tasks (`"average"`).
    Average,
    /// The value of the named task.
    Task(String),
}

impl From<String> for EvalKey {
    fn from(name: String) -> Self {
        if name == "average" {
            EvalKey::Average
        } else {
            EvalKey::Task(name)
        }
    }
}

impl From<EvalKey> for String {
    fn from(key: EvalKey) -> Self {
        match key {
            EvalKey::Average => "average".to_owned(),
            EvalKey::Task(name) => name,
        }
    }
}

/// One task's evaluated value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskResult {
    /// The task name.
    pub name: String,
    /// The metric used.
    pub metric: Metric,
    /// How many samples belonged to the task.
    pub samples: usize,
    /// The metric value, in [0, 1].
    pub value: f64,
}

/// Per-task values and the value selected by the [`EvalKey`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MultitaskReport {
    /// One entry per task, in task order.
    pub tasks: Vec<TaskResult>,
    /// The mean over tasks, or the selected task's value.
    pub overall: f64,
}

/// Collects samples of a joint label space into per-task score and target buffers, cut to each
/// task's columns as they arrive, so no joint-width matrix has to be kept.
#[derive(Clone, Debug)]
pub struct MultitaskAccumulator {
    spans: Vec<TaskSpan>,
    joint_classes: usize,
    buffers: Vec<(Scores, Targets)>,
}

impl MultitaskAccumulator {
    /// An empty accumulator for tasks laid out in a joint space of `joint_classes` columns.
    /// Spans must be non-empty, lie inside the joint space and have distinct names.
    pub fn new(
        spans: Vec<TaskSpan>,
        joint_classes: usize,
        target_kind: TargetKind,
    ) -> Result<Self> {
        ensure!(
            !spans.is_empty(),
            "multitask evaluation needs at least one task"
        );
        let mut names = HashSet::new();
        for span in &spans {
            ensure!(
                span.start < span.end && span.end <= joint_classes,
                "task {:?} spans classes {}..{}, which is empty or outside the {joint_classes} joint classes",
                span.name,
                span.start,
                span.end
            );
            ensure!(
                names.insert(&span.name),
                "task {:?} is listed twice",
                span.name
            );
        }
        let buffers = spans
            .iter()
            .map(|span| {
                let width = span.end - span.start;
                (Scores::new(width), Targets::empty(target_kind, width))
            })
            .collect();
        Ok(Self {
            spans,
            joint_classes,
            buffers,
        })
    }

    /// The task layout.
    pub fn spans(&self) -> &[TaskSpan] {
        &self.spans
    }

    /// Adds one sample of task `task` (an index into the spans): its joint-width scores and its
    /// target (a joint label inside the task's range, or a joint-width row).
    pub fn push(&mut self, task: usize, scores: &[f32], target: Target<'_>) -> Result<()> {
        let span = self.spans.get(task).with_context(|| {
            format!(
                "task id {task} is out of range for {} tasks",
                self.spans.len()
            )
        })?;
        ensure!(
            scores.len() == self.joint_classes,
            "sample has {} scores, but the joint label space has {} classes",
            scores.len(),
            self.joint_classes
        );
        let local = match target {
            Target::Label(label) => {
                ensure!(
                    (span.start..span.end).contains(&label),
                    "label {label} is outside task {:?} (classes {}..{})",
                    span.name,
                    span.start,
                    span.end
                );
                Target::Label(label - span.start)
            }
            Target::Row(row) => {
                ensure!(
                    row.len() == self.joint_classes,
                    "target row has {} values, but the joint label space has {} classes",
                    row.len(),
                    self.joint_classes
                );
                Target::Row(&row[span.start..span.end])
            }
        };
        let (task_scores, task_targets) = &mut self.buffers[task];
        task_targets.push(local)?;
        task_scores.push_row(&scores[span.start..span.end])
    }

    /// Adds a batch: row `i` of `scores` and `targets` belongs to task `task_ids[i]`.
    pub fn push_batch(
        &mut self,
        task_ids: &[usize],
        scores: &Scores,
        targets: &Targets,
    ) -> Result<()> {
        ensure!(
            task_ids.len() == scores.n_rows() && targets.len() == scores.n_rows(),
            "batch has {} task ids, {} score rows and {} targets: the counts differ",
            task_ids.len(),
            scores.n_rows(),
            targets.len()
        );
        for (i, &task) in task_ids.iter().enumerate() {
            self.push(task, scores.row(i), targets.get(i))
                .with_context(|| format!("sample {i} of the batch"))?;
        }
        Ok(())
    }

    /// Computes every task's metric and the overall value. A task without samples is an error
    /// (the reference crashes on it too), as is a key naming no task.
    pub fn finish(&self, key: &EvalKey) -> Result<MultitaskReport> {
        let tasks = self
            .spans
            .iter()
            .zip(&self.buffers)
            .map(|(span, (scores, targets))| {
                ensure!(
                    !targets.is_empty(),
                    "task {:?} has no samples to evaluate",
                    span.name
                );
                let value = span
                    .metric
                    .compute(scores, targets)
                    .with_context(|| format!("task {:?} ({})", span.name, span.metric))?;
                Ok(TaskResult {
                    name: span.name.clone(),
                    metric: span.metric,
                    samples: targets.len(),
                    value,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let overall = match key {
            EvalKey::Average => tasks.iter().map(|t| t.value).sum::<f64>() / tasks.len() as f64,
            EvalKey::Task(name) => match tasks.iter().find(|t| &t.name == name) {
                Some(task) => task.value,
                None => bail!("evaluation key {name:?} names no task of this evaluation"),
            },
        };
        Ok(MultitaskReport { tasks, overall })
    }
}

/// Evaluates a whole joint-space matrix at once: [`MultitaskAccumulator::push_batch`] then
/// [`MultitaskAccumulator::finish`].
pub fn evaluate_multitask(
    spans: Vec<TaskSpan>,
    task_ids: &[usize],
    scores: &Scores,
    targets: &Targets,
    key: &EvalKey,
) -> Result<MultitaskReport> {
    let mut accumulator = MultitaskAccumulator::new(spans, scores.n_cols(), targets.kind())?;
    accumulator.push_batch(task_ids, scores, targets)?;
    accumulator.finish(key)
}
