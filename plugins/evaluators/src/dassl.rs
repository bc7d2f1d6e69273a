//! `dassl`: Dassl's `Classification` evaluator (§4.6), per task as MVLPT's source stage runs it
//! (§3.1: logits cut to the task's columns, labels shifted by the task's offset).
//!
//! For each task: accuracy `100 · correct / total`, error rate `100 − accuracy` and macro-F1 over
//! the classes present in the task's targets, all in percent. Each task's value is its accuracy
//! in percent; `overall` is the unweighted mean of the task accuracies (MVLPT's `average` key) or
//! the named task's accuracy. `extra` holds `accuracy`, `error_rate` and `macro_f1` (means over
//! tasks), and with several tasks also `<task>/accuracy`, `<task>/error_rate`, `<task>/macro_f1`.

use anyhow::{bail, ensure, Context, Result};
use mvlpt_framework::config::Section;
use mvlpt_framework::eval::metrics::{
    dassl_classification, DasslClassification, EvalKey, Metric, Scores, Target, Targets,
    TaskResult, TaskSpan,
};
use mvlpt_framework::eval::{EvalInput, EvalReport, Evaluator};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Options of `dassl` (`[eval.dassl]`): none, but unknown keys are refused.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DasslOptions {}

/// Dassl's accuracy, error rate and macro-F1, in percent, per task.
#[derive(Clone, Copy, Debug, Default)]
pub struct DasslEvaluator;

fn build(section: &Section<'_>) -> Result<Box<dyn Evaluator>> {
    section.extract::<DasslOptions>()?;
    Ok(Box::new(DasslEvaluator))
}

mvlpt_framework::register_plugin!(
    Evaluator,
    "dassl",
    "Dassl Classification: accuracy, error rate, macro-F1 in percent per task; overall = mean accuracy or eval.key",
    build,
    DasslOptions
);

/// One task's scores cut to its columns and its targets in its local label space.
struct TaskPart {
    scores: Scores,
    targets: Targets,
}

/// Splits the joint scores and targets by task (row `i` belongs to task `task_ids[i]`).
fn split_by_task(input: &EvalInput<'_>) -> Result<Vec<TaskPart>> {
    let rows = input.scores.n_rows();
    ensure!(
        input.task_ids.len() == rows && input.targets.len() == rows,
        "{} task ids and {} targets for {rows} score rows: the counts differ",
        input.task_ids.len(),
        input.targets.len()
    );
    let mut parts: Vec<TaskPart> = input
        .tasks
        .iter()
        .map(|span| {
            ensure!(
                span.start < span.end && span.end <= input.scores.n_cols(),
                "task {:?} spans classes {}..{}, which is empty or outside the {} score columns",
                span.name,
                span.start,
                span.end,
                input.scores.n_cols()
            );
            let width = span.end - span.start;
            Ok(TaskPart {
                scores: Scores::new(width),
                targets: Targets::empty(input.targets.kind(), width),
            })
        })
        .collect::<Result<_>>()?;
    for (i, &task) in input.task_ids.iter().enumerate() {
        let span = input.tasks.get(task).with_context(|| {
            format!(
                "sample {i} has task id {task}, but there are {} tasks",
                input.tasks.len()
            )
        })?;
        let part = &mut parts[task];
        part.targets.push(
            local_target(input.targets.get(i), span).with_context(|| format!("sample {i}"))?,
        )?;
        part.scores
            .push_row(&input.scores.row(i)[span.start..span.end])?;
    }
    Ok(parts)
}

/// A joint target moved into `span`'s local label space.
fn local_target<'a>(target: Target<'a>, span: &TaskSpan) -> Result<Target<'a>> {
    match target {
        Target::Label(label) => {
            ensure!(
                (span.start..span.end).contains(&label),
                "label {label} is outside task {:?} (classes {}..{})",
                span.name,
                span.start,
                span.end
            );
            Ok(Target::Label(label - span.start))
        }
        Target::Row(row) => Ok(Target::Row(&row[span.start..span.end])),
    }
}

/// The mean of `values` (which are never empty: there is at least one task).
fn mean(values: impl ExactSizeIterator<Item = f64>) -> f64 {
    let count = values.len() as f64;
    values.sum::<f64>() / count
}

impl Evaluator for DasslEvaluator {
    fn unit(&self) -> f64 {
        0.01
    }

    fn evaluate(&self, input: &EvalInput<'_>) -> Result<EvalReport> {
        ensure!(
            !input.tasks.is_empty(),
            "evaluation needs at least one task"
        );
        let parts = split_by_task(input)?;
        let results: Vec<DasslClassification> = input
            .tasks
            .iter()
            .zip(&parts)
            .map(|(span, part)| {
                ensure!(
                    !part.targets.is_empty(),
                    "task {:?} has no samples to evaluate",
                    span.name
                );
                dassl_classification(&part.scores, &part.targets)
                    .with_context(|| format!("task {:?}", span.name))
            })
            .collect::<Result<_>>()?;
        let tasks: Vec<TaskResult> = input
            .tasks
            .iter()
            .zip(&parts)
            .zip(&results)
            .map(|((span, part), result)| TaskResult {
                name: span.name.clone(),
                metric: Metric::Accuracy,
                samples: part.targets.len(),
                value: result.accuracy,
            })
            .collect();
        let overall = match input.key {
            EvalKey::Average => mean(results.iter().map(|r| r.accuracy)),
            EvalKey::Task(name) => match tasks.iter().find(|t| &t.name == name) {
                Some(task) => task.value,
                None => bail!("evaluation key {name:?} names no task of this evaluation"),
            },
        };
        Ok(EvalReport {
            overall,
            tasks,
            extra: extra_values(input.tasks, &results),
        })
    }
}

/// Reads one of the three numbers of a task's result.
type FieldOf = fn(&DasslClassification) -> f64;

/// The `extra` map (see the module docs).
fn extra_values(spans: &[TaskSpan], results: &[DasslClassification]) -> BTreeMap<String, f64> {
    let fields: [(&str, FieldOf); 3] = [
        ("accuracy", |r| r.accuracy),
        ("error_rate", |r| r.error_rate),
        ("macro_f1", |r| r.macro_f1),
    ];
    let mut extra = BTreeMap::new();
    for (key, field) in fields {
        extra.insert(key.to_owned(), mean(results.iter().map(field)));
        if spans.len() > 1 {
            for (span, result) in spans.iter().zip(results) {
                extra.insert(format!("{}/{key}", span.name), field(result));
            }
        }
    }
    extra
}
