//! The evaluators against reference values: `tests/fixtures/metrics/` (`tools/fixtures/metrics.py`:
//! scikit-learn, the ELEVATER metric code, Dassl's `Classification` and MVLPT's per-task
//! multitask evaluation), and for the per-task macro-F1 the metrics module's sklearn-parity
//! `f1_score_macro` on the task's own slice.

use mvlpt_evaluators::{ClassificationEvaluator, DasslEvaluator};
use mvlpt_framework::eval::metrics::sklearn::f1_score_macro;
use mvlpt_framework::eval::metrics::{EvalKey, Metric, RowMatrix, Scores, Targets, TaskSpan};
use mvlpt_framework::eval::{EvalInput, EvalReport, Evaluator};
use serde_json::Value;

const RELATIVE_TOLERANCE: f64 = 1e-9;

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../../tests/fixtures/metrics/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn assert_close(got: f64, want: f64, what: &str) {
    let allowed = RELATIVE_TOLERANCE * want.abs().max(f64::MIN_POSITIVE);
    assert!(
        (got - want).abs() <= allowed,
        "{what}: got {got:e}, reference {want:e}"
    );
}

/// A fixture case's scores and targets.
fn matrices(case: &Value) -> (Scores, Targets) {
    let n = case["n"].as_u64().unwrap() as usize;
    let c = case["c"].as_u64().unwrap() as usize;
    let floats = |v: &Value| -> Vec<f32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect()
    };
    let scores = RowMatrix::from_flat(n, c, floats(&case["scores"])).unwrap();
    let targets = if let Some(labels) = case["targets"].get("labels") {
        Targets::Labels(
            labels
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l.as_u64().unwrap() as usize)
                .collect(),
        )
    } else {
        Targets::Rows(RowMatrix::from_flat(n, c, floats(&case["targets"]["rows"])).unwrap())
    };
    (scores, targets)
}

fn spans(case: &Value) -> Vec<TaskSpan> {
    serde_json::from_value(case["tasks"].clone()).unwrap()
}

fn task_ids(case: &Value) -> Vec<usize> {
    serde_json::from_value(case["task_ids"].clone()).unwrap()
}

fn evaluate(
    evaluator: &dyn Evaluator,
    tasks: &[TaskSpan],
    task_ids: &[usize],
    scores: &Scores,
    targets: &Targets,
    key: &EvalKey,
) -> anyhow::Result<EvalReport> {
    evaluator.evaluate(&EvalInput {
        tasks,
        task_ids,
        scores,
        targets,
        key,
    })
}

#[test]
fn classification_matches_mvlpt_multitask_values() {
    let doc = fixture("multitask.json");
    let mut checked = 0;
    for case in doc["cases"].as_array().unwrap() {
        if case["percent"].as_bool().unwrap() {
            continue; // the Dassl-percent case belongs to the dassl evaluator
        }
        let name = case["name"].as_str().unwrap();
        let (scores, targets) = matrices(case);
        let (tasks, ids) = (spans(case), task_ids(case));
        let report = evaluate(
            &ClassificationEvaluator,
            &tasks,
            &ids,
            &scores,
            &targets,
            &EvalKey::Average,
        )
        .unwrap();
        let per_task = case["per_task"].as_array().unwrap();
        assert_eq!(report.tasks.len(), per_task.len());
        for ((result, want), span) in report.tasks.iter().zip(per_task).zip(&tasks) {
            assert_eq!(result.name, span.name);
            assert_eq!(result.metric, span.metric);
            assert_eq!(
                result.samples,
                ids.iter().filter(|&&t| tasks[t].name == span.name).count()
            );
            assert_close(
                result.value,
                want.as_f64().unwrap(),
                &format!("{name} {}", span.name),
            );
        }
        assert_close(report.overall, case["average"].as_f64().unwrap(), name);
        assert!(report.extra.is_empty());
        let key = EvalKey::Task(case["evalkey"]["task"].as_str().unwrap().to_owned());
        let report = evaluate(
            &ClassificationEvaluator,
            &tasks,
            &ids,
            &scores,
            &targets,
            &key,
        )
        .unwrap();
        assert_close(
            report.overall,
            case["evalkey"]["value"].as_f64().unwrap(),
            name,
        );
        checked += 1;
    }
    assert_eq!(checked, 2);
}

#[test]
fn classification_single_task_matches_each_reference_metric() {
    let doc = fixture("cases.json");
    let mut checked = 0;
    for case in doc["cases"].as_array().unwrap() {
        let (scores, targets) = matrices(case);
        let ids = vec![0; scores.n_rows()];
        for metric in Metric::ALL {
            let expected = &case["expected"][metric.name()];
            let task = [TaskSpan {
                name: "only".to_owned(),
                start: 0,
                end: scores.n_cols(),
                metric,
            }];
            let got = evaluate(
                &ClassificationEvaluator,
                &task,
                &ids,
                &scores,
                &targets,
                &EvalKey::Average,
            );
            let what = format!("{} {metric}", case["name"]);
            match expected.get("value") {
                Some(want) => {
                    let report = got.unwrap();
                    assert_close(report.overall, want.as_f64().unwrap(), &what);
                    assert_eq!(report.tasks[0].value, report.overall, "{what}");
                    checked += 1;
                }
                None => assert!(got.is_err(), "{what}: the reference fails"),
            }
        }
    }
    assert!(checked >= 80, "{checked}");
}

#[test]
fn dassl_single_task_matches_dassl_classification() {
    let doc = fixture("cases.json");
    for case in doc["cases"].as_array().unwrap() {
        let (scores, targets) = matrices(case);
        let ids = vec![0; scores.n_rows()];
        let task = [TaskSpan {
            name: "only".to_owned(),
            start: 0,
            end: scores.n_cols(),
            metric: Metric::Accuracy,
        }];
        let report = evaluate(
            &DasslEvaluator,
            &task,
            &ids,
            &scores,
            &targets,
            &EvalKey::Average,
        )
        .unwrap();
        let expected = &case["expected"]["dassl"];
        let name = case["name"].as_str().unwrap();
        for key in ["accuracy", "error_rate", "macro_f1"] {
            assert_close(
                report.extra[key],
                expected[key].as_f64().unwrap(),
                &format!("{name} {key}"),
            );
        }
        assert_eq!(report.extra.len(), 3, "{name}: one task, no per-task keys");
        assert_eq!(report.overall, report.extra["accuracy"]);
        assert_eq!(report.tasks[0].value, report.overall);
        assert_eq!(report.tasks[0].samples, ids.len());
    }
}

#[test]
fn dassl_multitask_matches_mvlpt_source_stage_values() {
    let doc = fixture("multitask.json");
    let case = doc["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["percent"].as_bool().unwrap())
        .unwrap();
    let (scores, targets) = matrices(case);
    let (tasks, ids) = (spans(case), task_ids(case));
    let report = evaluate(
        &DasslEvaluator,
        &tasks,
        &ids,
        &scores,
        &targets,
        &EvalKey::Average,
    )
    .unwrap();
    let per_task = case["per_task"].as_array().unwrap();
    for ((result, want), span) in report.tasks.iter().zip(per_task).zip(&tasks) {
        let want = want.as_f64().unwrap();
        assert_close(result.value, want, &span.name);
        assert_close(
            report.extra[&format!("{}/accuracy", span.name)],
            want,
            &span.name,
        );
        assert_close(
            report.extra[&format!("{}/error_rate", span.name)],
            100.0 - want,
            &span.name,
        );
        // Macro-F1 of the task's own slice, by the sklearn-parity metrics function.
        let Targets::Labels(labels) = &targets else {
            panic!("the Dassl case has label targets")
        };
        let (mut truth, mut predicted) = (Vec::new(), Vec::new());
        for (i, &t) in ids.iter().enumerate() {
            if tasks[t].name == span.name {
                let row = &scores.row(i)[span.start..span.end];
                truth.push(labels[i] - span.start);
                predicted.push(mvlpt_framework::eval::metrics::sklearn::argmax(row));
            }
        }
        let f1 = 100.0 * f1_score_macro(&truth, &predicted).unwrap();
        assert_close(
            report.extra[&format!("{}/macro_f1", span.name)],
            f1,
            &span.name,
        );
    }
    assert_close(report.overall, case["average"].as_f64().unwrap(), "average");
    assert_close(report.extra["accuracy"], report.overall, "mean accuracy");
    let key = EvalKey::Task(case["evalkey"]["task"].as_str().unwrap().to_owned());
    let report = evaluate(&DasslEvaluator, &tasks, &ids, &scores, &targets, &key).unwrap();
    assert_close(
        report.overall,
        case["evalkey"]["value"].as_f64().unwrap(),
        "evalkey",
    );
}

#[test]
fn bad_inputs_are_errors_naming_the_problem() {
    let scores = RowMatrix::from_flat(3, 4, vec![0.0; 12]).unwrap();
    let tasks = vec![
        TaskSpan {
            name: "a".to_owned(),
            start: 0,
            end: 2,
            metric: Metric::Accuracy,
        },
        TaskSpan {
            name: "b".to_owned(),
            start: 2,
            end: 4,
            metric: Metric::Accuracy,
        },
    ];
    let evaluators: [(&str, &dyn Evaluator); 2] = [
        ("classification", &ClassificationEvaluator),
        ("dassl", &DasslEvaluator),
    ];
    for (name, evaluator) in evaluators {
        let labels = Targets::Labels(vec![0, 3, 1]);
        let unknown_key = EvalKey::Task("c".to_owned());
        let err = evaluate(
            evaluator,
            &tasks,
            &[0, 1, 0],
            &scores,
            &labels,
            &unknown_key,
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("\"c\""), "{name}: {err:#}");
        let err = evaluate(
            evaluator,
            &tasks,
            &[0, 0, 0],
            &scores,
            &Targets::Labels(vec![0, 1, 1]),
            &EvalKey::Average,
        )
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("\"b\""),
            "{name}: task without samples: {err:#}"
        );
        let err = evaluate(
            evaluator,
            &tasks,
            &[0, 0, 0],
            &scores,
            &labels,
            &EvalKey::Average,
        )
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("label 3"),
            "{name}: label outside its task: {err:#}"
        );
        let err = evaluate(
            evaluator,
            &tasks,
            &[0, 2, 0],
            &scores,
            &labels,
            &EvalKey::Average,
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("task id 2"), "{name}: {err:#}");
        assert!(
            evaluate(
                evaluator,
                &tasks,
                &[0, 1],
                &scores,
                &labels,
                &EvalKey::Average
            )
            .is_err(),
            "{name}: task ids and rows differ in number"
        );
    }
}
