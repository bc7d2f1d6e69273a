//! Parity with `tests/fixtures/metrics/` (scikit-learn and ELEVATER reference values written by
//! `tools/fixtures/metrics.py`) and the error cases.

use super::elevater::{eleven_point_recall_levels, top_k_accuracy};
use super::sklearn::{
    argmax, balanced_accuracy_score, f1_score_macro, precision_recall_curve, roc_auc_score_binary,
    roc_curve,
};
use super::*;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::HashMap;

const FIXTURE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/metrics/");
const RELATIVE_TOLERANCE: f64 = 1e-9;

fn load<T: DeserializeOwned>(file: &str) -> T {
    let path = format!("{FIXTURE_DIR}{file}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn assert_close(got: f64, want: f64, what: &str) {
    let allowed = RELATIVE_TOLERANCE * want.abs().max(f64::MIN_POSITIVE);
    assert!(
        (got - want).abs() <= allowed,
        "{what}: got {got:e}, reference {want:e}"
    );
}

fn assert_all_close(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert_close(g, w, &format!("{what}[{i}]"));
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum TargetsJson {
    Labels(Vec<usize>),
    Rows(Vec<f32>),
}

impl TargetsJson {
    fn build(&self, n: usize, c: usize) -> Targets {
        match self {
            TargetsJson::Labels(labels) => Targets::Labels(labels.clone()),
            TargetsJson::Rows(rows) => {
                Targets::Rows(RowMatrix::from_flat(n, c, rows.clone()).unwrap())
            }
        }
    }
}

/// A reference result: a value, or the message of the error the reference raised.
#[derive(Deserialize)]
struct Outcome {
    value: Option<f64>,
    error: Option<String>,
}

impl Outcome {
    fn check(&self, got: anyhow::Result<f64>, what: &str) {
        match (&self.value, &self.error, got) {
            (Some(want), None, Ok(got)) => assert_close(got, *want, what),
            (None, Some(_), Err(_)) => {}
            (_, reference_error, got) => {
                panic!("{what}: got {got:?}, reference error {reference_error:?}")
            }
        }
    }
}

#[derive(Deserialize)]
struct CaseFile {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    n: usize,
    c: usize,
    scores: Vec<f32>,
    targets: TargetsJson,
    expected: Expected,
}

#[derive(Deserialize)]
struct Expected {
    top_k: Vec<(usize, f64)>,
    dassl: DasslClassification,
    #[serde(flatten)]
    metrics: HashMap<String, Outcome>,
}

impl Case {
    fn scores(&self) -> Scores {
        RowMatrix::from_flat(self.n, self.c, self.scores.clone()).unwrap()
    }

    fn targets(&self) -> Targets {
        self.targets.build(self.n, self.c)
    }
}

#[test]
fn every_metric_matches_the_reference_on_every_case() {
    let file: CaseFile = load("cases.json");
    assert!(file.cases.len() >= 20);
    for case in &file.cases {
        let (scores, targets) = (case.scores(), case.targets());
        for metric in Metric::ALL {
            let outcome = case.expected.metrics.get(metric.name()).unwrap();
            outcome.check(
                metric.compute(&scores, &targets),
                &format!("{} {metric}", case.name),
            );
        }
        for &(k, want) in &case.expected.top_k {
            let got = top_k_accuracy(&scores, &targets, k).unwrap();
            assert_close(got, want, &format!("{} top-{k}", case.name));
        }
        let dassl = dassl_classification(&scores, &targets).unwrap();
        let want = case.expected.dassl;
        assert_close(
            dassl.accuracy,
            want.accuracy,
            &format!("{} dassl accuracy", case.name),
        );
        assert_close(
            dassl.error_rate,
            want.error_rate,
            &format!("{} dassl error", case.name),
        );
        assert_close(
            dassl.macro_f1,
            want.macro_f1,
            &format!("{} dassl macro_f1", case.name),
        );
    }
}

#[test]
fn batch_accumulation_gives_the_same_values_as_whole_matrices() {
    let file: CaseFile = load("cases.json");
    for case in &file.cases {
        let (scores, targets) = (case.scores(), case.targets());
        let mut batched_scores = Scores::new(case.c);
        let mut batched_targets = Targets::empty(targets.kind(), case.c);
        for start in (0..case.n).step_by(7) {
            let end = (start + 7).min(case.n);
            batched_scores
                .push_rows(&scores.as_slice()[start * case.c..end * case.c])
                .unwrap();
            for i in start..end {
                batched_targets.push(targets.get(i)).unwrap();
            }
        }
        assert_eq!(batched_scores, scores, "{}", case.name);
        assert_eq!(batched_targets, targets, "{}", case.name);
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum JsonNumber {
    Finite(f32),
    NonFinite(String),
}

impl JsonNumber {
    fn value(&self) -> f32 {
        match self {
            JsonNumber::Finite(v) => *v,
            JsonNumber::NonFinite(text) => text.parse().unwrap(),
        }
    }
}

#[derive(Deserialize)]
struct Primitives {
    argmax: Vec<ArgmaxCase>,
    classification: Vec<ClassificationCase>,
    curves: Vec<CurveCase>,
    recall_levels: Vec<f64>,
}

#[derive(Deserialize)]
struct ArgmaxCase {
    row: Vec<JsonNumber>,
    argmax: usize,
}

#[derive(Deserialize)]
struct ClassificationCase {
    y_true: Vec<usize>,
    y_pred: Vec<usize>,
    balanced_accuracy: f64,
    f1_macro: f64,
}

#[derive(Deserialize)]
struct CurveCase {
    y_true: Vec<u8>,
    y_score: Vec<f32>,
    precision: Vec<f64>,
    recall: Vec<f64>,
    pr_thresholds: Vec<f32>,
    roc: Outcome,
    fpr: Option<Vec<f64>>,
    tpr: Option<Vec<f64>>,
    /// sklearn's float64 thresholds are the float32 scores, so they compare exactly as `f32`
    /// (serde_json's default float parsing may be one f64 ulp off).
    roc_thresholds: Option<Vec<f32>>,
}

#[test]
fn argmax_matches_numpy_on_ties_and_non_finite_values() {
    let primitives: Primitives = load("primitives.json");
    for case in &primitives.argmax {
        let row: Vec<f32> = case.row.iter().map(JsonNumber::value).collect();
        assert_eq!(argmax(&row), case.argmax, "row {row:?}");
    }
}

#[test]
fn balanced_accuracy_and_f1_match_sklearn() {
    let primitives: Primitives = load("primitives.json");
    for case in &primitives.classification {
        let what = format!("{:?} vs {:?}", case.y_true, case.y_pred);
        let balanced = balanced_accuracy_score(&case.y_true, &case.y_pred).unwrap();
        assert_close(
            balanced,
            case.balanced_accuracy,
            &format!("balanced accuracy {what}"),
        );
        let f1 = f1_score_macro(&case.y_true, &case.y_pred).unwrap();
        assert_close(f1, case.f1_macro, &format!("f1 {what}"));
    }
}

#[test]
fn curves_match_sklearn_including_tied_scores() {
    let primitives: Primitives = load("primitives.json");
    for case in &primitives.curves {
        let y_true: Vec<bool> = case.y_true.iter().map(|&y| y == 1).collect();
        let what = format!("curve of {:?}", case.y_score);
        let pr = precision_recall_curve(&y_true, &case.y_score).unwrap();
        assert_all_close(
            &pr.precision,
            &case.precision,
            &format!("precision, {what}"),
        );
        assert_all_close(&pr.recall, &case.recall, &format!("recall, {what}"));
        assert_eq!(pr.thresholds, case.pr_thresholds, "thresholds, {what}");
        case.roc.check(
            roc_auc_score_binary(&y_true, &case.y_score),
            &format!("auc, {what}"),
        );
        if let (Some(fpr), Some(tpr), Some(thresholds)) =
            (&case.fpr, &case.tpr, &case.roc_thresholds)
        {
            let roc = roc_curve(&y_true, &case.y_score).unwrap();
            assert_all_close(&roc.fpr, fpr, &format!("fpr, {what}"));
            assert_all_close(&roc.tpr, tpr, &format!("tpr, {what}"));
            assert_eq!(roc.thresholds[0], f64::INFINITY);
            let got: Vec<f32> = roc.thresholds[1..].iter().map(|&t| t as f32).collect();
            assert_eq!(&got, thresholds, "roc thresholds, {what}");
        }
    }
}

#[test]
fn recall_levels_are_bit_identical_to_numpy_linspace() {
    let primitives: Primitives = load("primitives.json");
    let levels = eleven_point_recall_levels();
    let got: Vec<u64> = levels.iter().map(|v| v.to_bits()).collect();
    let want: Vec<u64> = primitives
        .recall_levels
        .iter()
        .map(|v| v.to_bits())
        .collect();
    assert_eq!(got, want);
}

#[derive(Deserialize)]
struct MultitaskFile {
    cases: Vec<MultitaskCase>,
}

#[derive(Deserialize)]
struct MultitaskCase {
    name: String,
    tasks: Vec<TaskSpan>,
    task_ids: Vec<usize>,
    n: usize,
    c: usize,
    scores: Vec<f32>,
    targets: TargetsJson,
    /// Values in percent (the CoOp path reports Dassl accuracy %).
    percent: bool,
    per_task: Vec<f64>,
    average: f64,
    evalkey: NamedValue,
}

#[derive(Deserialize)]
struct NamedValue {
    task: String,
    value: f64,
}

#[test]
fn multitask_matches_the_reference_loop() {
    let file: MultitaskFile = load("multitask.json");
    assert_eq!(file.cases.len(), 3);
    for case in &file.cases {
        let scores = RowMatrix::from_flat(case.n, case.c, case.scores.clone()).unwrap();
        let targets = case.targets.build(case.n, case.c);
        let scale = if case.percent { 100.0 } else { 1.0 };
        let report = evaluate_multitask(
            case.tasks.clone(),
            &case.task_ids,
            &scores,
            &targets,
            &EvalKey::Average,
        )
        .unwrap();
        let per_task: Vec<f64> = report.tasks.iter().map(|t| scale * t.value).collect();
        assert_all_close(
            &per_task,
            &case.per_task,
            &format!("{} per task", case.name),
        );
        assert_close(
            scale * report.overall,
            case.average,
            &format!("{} average", case.name),
        );
        let total: usize = report.tasks.iter().map(|t| t.samples).sum();
        assert_eq!(total, case.n);

        let key = EvalKey::Task(case.evalkey.task.clone());
        let named = evaluate_multitask(case.tasks.clone(), &case.task_ids, &scores, &targets, &key)
            .unwrap();
        assert_close(
            scale * named.overall,
            case.evalkey.value,
            &format!("{} evalkey", case.name),
        );
    }
}

#[test]
fn multitask_sample_by_sample_equals_whole_batch() {
    let file: MultitaskFile = load("multitask.json");
    for case in &file.cases {
        let scores = RowMatrix::from_flat(case.n, case.c, case.scores.clone()).unwrap();
        let targets = case.targets.build(case.n, case.c);
        let mut accumulator =
            MultitaskAccumulator::new(case.tasks.clone(), case.c, targets.kind()).unwrap();
        for (i, &task) in case.task_ids.iter().enumerate() {
            accumulator
                .push(task, scores.row(i), targets.get(i))
                .unwrap();
        }
        let one_by_one = accumulator.finish(&EvalKey::Average).unwrap();
        let whole = evaluate_multitask(
            case.tasks.clone(),
            &case.task_ids,
            &scores,
            &targets,
            &EvalKey::Average,
        )
        .unwrap();
        assert_eq!(one_by_one, whole, "{}", case.name);
    }
}

// ---- Names and error cases -------------------------------------------------------------------

fn three_samples() -> (Scores, Targets) {
    let scores = RowMatrix::from_flat(3, 2, vec![0.1, 0.9, 0.8, 0.2, 0.4, 0.6]).unwrap();
    (scores, Targets::Labels(vec![1, 0, 0]))
}

fn error_text(result: anyhow::Result<impl std::fmt::Debug>) -> String {
    format!("{:#}", result.unwrap_err())
}

#[test]
fn metric_names_round_trip_through_serde_and_from_str() {
    let names = [
        "accuracy",
        "mean-per-class",
        "11point_mAP",
        "roc_auc",
        "macro_f1",
    ];
    for (metric, name) in Metric::ALL.into_iter().zip(names) {
        assert_eq!(metric.name(), name);
        assert_eq!(
            serde_json::to_string(&metric).unwrap(),
            format!("\"{name}\"")
        );
        assert_eq!(
            serde_json::from_str::<Metric>(&format!("\"{name}\"")).unwrap(),
            metric
        );
        assert_eq!(name.parse::<Metric>().unwrap(), metric);
    }
    assert!(error_text("top5".parse::<Metric>()).contains("unknown metric \"top5\""));
    let key: EvalKey = serde_json::from_str("\"average\"").unwrap();
    assert_eq!(key, EvalKey::Average);
    let key: EvalKey = serde_json::from_str("\"dtd\"").unwrap();
    assert_eq!(key, EvalKey::Task("dtd".into()));
}

#[test]
fn shape_mismatches_name_the_sizes() {
    let (scores, _) = three_samples();
    for metric in Metric::ALL {
        let text = error_text(metric.compute(&scores, &Targets::Labels(vec![0, 1])));
        assert!(
            text.contains("2 targets for 3 score rows"),
            "{metric}: {text}"
        );
    }
    let rows = Targets::Rows(RowMatrix::from_flat(3, 3, vec![0.0; 9]).unwrap());
    let text = error_text(Metric::Accuracy.compute(&scores, &rows));
    assert!(
        text.contains("target rows have 3 columns, but scores have 2"),
        "{text}"
    );
    let text = error_text(Metric::Accuracy.compute(&scores, &Targets::Labels(vec![0, 2, 1])));
    assert!(
        text.contains("label 2 of sample 1 is out of range for 2 classes"),
        "{text}"
    );
    let text = error_text(RowMatrix::from_flat(2, 3, vec![0.0; 5]));
    assert!(
        text.contains("5 values, but 2 rows x 3 columns need 6"),
        "{text}"
    );
    let mut matrix = Scores::new(3);
    assert!(error_text(matrix.push_row(&[1.0])).contains("row has 1 values"));
    assert!(error_text(matrix.push_rows(&[1.0; 4])).contains("batch has 4 values"));
    let empty = Scores::new(2);
    let text = error_text(Metric::Accuracy.compute(&empty, &Targets::Labels(vec![])));
    assert!(text.contains("no samples"), "{text}");
}

#[test]
fn invalid_inputs_are_rejected() {
    let (scores, labels) = three_samples();
    assert!(error_text(top_k_accuracy(&scores, &labels, 0)).contains("k >= 1"));
    let three_classes = RowMatrix::from_flat(2, 3, vec![0.0, 1.0, 2.0, 2.0, 1.0, 0.0]).unwrap();
    let text = error_text(Metric::RocAuc.compute(&three_classes, &Targets::Labels(vec![0, 2])));
    assert!(text.contains("needs exactly 2 classes"), "{text}");
    let soft =
        Targets::Rows(RowMatrix::from_flat(3, 2, vec![0.5, 0.5, 1.0, 0.0, 0.0, 1.0]).unwrap());
    let text = error_text(Metric::ElevenPointMap.compute(&scores, &soft));
    assert!(
        text.contains("target value 0.5 at sample 0 class 0 is not 0 or 1"),
        "{text}"
    );
    let nan_target =
        Targets::Rows(RowMatrix::from_flat(3, 2, vec![0.0, f32::NAN, 1.0, 0.0, 0.0, 1.0]).unwrap());
    let text = error_text(Metric::Accuracy.compute(&scores, &nan_target));
    assert!(text.contains("sample 0 class 1 is not finite"), "{text}");
    let nan_scores = RowMatrix::from_flat(3, 2, vec![0.1, f32::NAN, 0.8, 0.2, 0.4, 0.6]).unwrap();
    let text = error_text(Metric::RocAuc.compute(&nan_scores, &labels));
    assert!(
        text.contains("score NaN of sample 0 is not finite"),
        "{text}"
    );
    let mut targets = Targets::empty(TargetKind::Labels, 2);
    assert!(error_text(targets.push(Target::Row(&[1.0, 0.0]))).contains("target row onto labels"));
}

fn three_tasks() -> Vec<TaskSpan> {
    let span = |name: &str, start, end, metric| TaskSpan {
        name: name.into(),
        start,
        end,
        metric,
    };
    vec![
        span("a", 0, 2, Metric::Accuracy),
        span("b", 2, 5, Metric::MeanPerClass),
        span("c", 5, 6, Metric::Accuracy),
    ]
}

#[test]
fn multitask_errors_name_the_task_and_sizes() {
    let mut acc = MultitaskAccumulator::new(three_tasks(), 6, TargetKind::Labels).unwrap();
    let row = [0.0_f32; 6];
    let text = error_text(acc.push(0, &row, Target::Label(3)));
    assert!(
        text.contains("label 3 is outside task \"a\" (classes 0..2)"),
        "{text}"
    );
    assert!(error_text(acc.push(3, &row, Target::Label(0)))
        .contains("task id 3 is out of range for 3 tasks"));
    assert!(error_text(acc.push(0, &row[..5], Target::Label(0))).contains("sample has 5 scores"));
    acc.push(0, &row, Target::Label(1)).unwrap();
    acc.push(1, &row, Target::Label(4)).unwrap();
    let text = error_text(acc.finish(&EvalKey::Average));
    assert!(text.contains("task \"c\" has no samples"), "{text}");
    acc.push(2, &row, Target::Label(5)).unwrap();
    let report = acc.finish(&EvalKey::Average).unwrap();
    assert_eq!(
        report.tasks.iter().map(|t| t.samples).collect::<Vec<_>>(),
        [1, 1, 1]
    );
    let text = error_text(acc.finish(&EvalKey::Task("z".into())));
    assert!(
        text.contains("evaluation key \"z\" names no task"),
        "{text}"
    );

    let text = error_text(MultitaskAccumulator::new(
        three_tasks(),
        5,
        TargetKind::Labels,
    ));
    assert!(text.contains("task \"c\" spans classes 5..6"), "{text}");
    let mut duplicated = three_tasks();
    duplicated[2].name = "a".into();
    let text = error_text(MultitaskAccumulator::new(duplicated, 6, TargetKind::Labels));
    assert!(text.contains("task \"a\" is listed twice"), "{text}");
    let mut rows = MultitaskAccumulator::new(three_tasks(), 6, TargetKind::Rows).unwrap();
    let text = error_text(rows.push(0, &row, Target::Row(&[1.0; 4])));
    assert!(
        text.contains("target row has 4 values, but the joint label space has 6"),
        "{text}"
    );
}
