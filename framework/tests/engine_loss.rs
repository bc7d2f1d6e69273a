//! Soft-target cross-entropy on multi-hot rows with negatives (rows without a positive label)
//! against torch: tests/fixtures/engine/soft_targets.json (tools/fixtures/soft_targets.py). The
//! reference's own loss is NaN on such batches; the port leaves the negative rows out, and the
//! fixture is torch's `F.cross_entropy` over the rows that have a target, with the gradient on
//! the whole logits matrix.

use candle_core::{Device, Tensor, Var};
use mvlpt_framework::engine::{cross_entropy, BatchTargets};
use serde_json::Value;

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/engine/soft_targets.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn matrix(value: &Value) -> Vec<Vec<f32>> {
    serde_json::from_value(value.clone()).unwrap()
}

fn tensor(rows: &[Vec<f32>]) -> Tensor {
    let (n, c) = (rows.len(), rows[0].len());
    Tensor::from_vec(rows.concat(), (n, c), &Device::Cpu).unwrap()
}

/// Loss and gradient with respect to the logits.
fn loss_and_grad(logits: &[Vec<f32>], rows: &[Vec<f32>]) -> (f32, Vec<Vec<f32>>) {
    let logits = Var::from_tensor(&tensor(logits)).unwrap();
    let loss = cross_entropy(logits.as_tensor(), &BatchTargets::Rows(tensor(rows))).unwrap();
    let grads = loss.backward().unwrap();
    let grad = grads.get(logits.as_tensor()).unwrap().to_vec2().unwrap();
    (loss.to_scalar::<f32>().unwrap(), grad)
}

#[test]
fn negative_rows_are_left_out_of_the_soft_target_loss_as_torch_computes_it() {
    let doc = fixture();
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    let mut with_negatives = 0;
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let rows = matrix(&case["rows"]);
        let (loss, grad) = loss_and_grad(&matrix(&case["logits"]), &rows);
        let expected = case["loss"].as_f64().unwrap() as f32;
        assert!(
            (loss - expected).abs() <= 1e-5 * expected.abs(),
            "{name}: loss {loss} vs torch {expected}"
        );
        for (r, (ours, torch)) in grad.iter().zip(matrix(&case["grad"])).enumerate() {
            for (a, b) in ours.iter().zip(&torch) {
                assert!(
                    (a - b).abs() <= 1e-6,
                    "{name} row {r}: {ours:?} vs {torch:?}"
                );
            }
            if rows[r].iter().all(|v| *v == 0.0) {
                assert!(ours.iter().all(|g| *g == 0.0), "{name}: negative row {r}");
            }
        }
        with_negatives += usize::from(case["reference_loss_is_nan"].as_bool().unwrap());
    }
    // Two of the cases are batches on which the reference itself stops with a NaN loss.
    assert_eq!(with_negatives, 2);
}

#[test]
fn a_batch_of_negatives_only_has_loss_zero_and_no_gradient() {
    let logits = vec![vec![1.0, -2.0, 0.5], vec![3.0, 0.0, -1.0]];
    let rows = vec![vec![0.0; 3]; 2];
    let (loss, grad) = loss_and_grad(&logits, &rows);
    assert_eq!(loss, 0.0);
    assert!(grad.iter().flatten().all(|g| *g == 0.0), "{grad:?}");
}

#[test]
fn a_negative_or_non_finite_target_entry_is_refused_naming_its_row() {
    let logits = tensor(&[vec![0.0, 1.0], vec![1.0, 0.0]]);
    for bad in [-1.0, f32::NAN, f32::INFINITY] {
        let rows = tensor(&[vec![1.0, 0.0], vec![bad, 1.0]]);
        let err = cross_entropy(&logits, &BatchTargets::Rows(rows)).unwrap_err();
        assert!(format!("{err}").contains("target row 1"), "{err}");
    }
}
