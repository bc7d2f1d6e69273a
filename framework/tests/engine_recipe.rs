//! The optimisation recipe against PyTorch: learning-rate sequences (PyTorch schedulers wrapped
//! by Dassl's warm-up, stepped per epoch) and optimiser trajectories (torch.optim.SGD / AdamW).
//! Fixtures: tools/fixtures/engine.py.

use candle_core::{Device, Tensor, Var};
use mvlpt_framework::config::TrainConfig;
use mvlpt_framework::engine::{AdamWConfig, LrSchedule, Optimizer, OptimizerKind, SgdConfig};
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/engine/").to_string() + name;
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn learning_rate_sequences_match_dassl_and_pytorch() {
    for case in fixture("schedules.json").as_array().unwrap() {
        let train = TrainConfig {
            lr: case["lr"].as_f64().unwrap(),
            epochs: case["epochs"].as_u64().unwrap() as usize,
            schedule: serde_json::from_value(case["schedule"].clone()).unwrap(),
            warmup_epochs: case["warmup_epochs"].as_u64().unwrap() as usize,
            warmup_type: serde_json::from_value(case["warmup_type"].clone()).unwrap(),
            warmup_lr: case["warmup_lr"].as_f64().unwrap(),
            milestones: case["milestones"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m.as_u64().unwrap() as usize)
                .collect(),
            gamma: case["gamma"].as_f64().unwrap(),
            ..TrainConfig::default()
        };
        let schedule = LrSchedule::from_config(&train).unwrap();
        for (epoch, expected) in case["lrs"].as_array().unwrap().iter().enumerate() {
            let expected = expected.as_f64().unwrap();
            let ours = schedule.lr(epoch);
            assert!(
                (ours - expected).abs() <= 1e-12 * expected.abs().max(1e-12),
                "{} epoch {epoch}: {ours} vs {expected}",
                case["name"]
            );
        }
    }
}

#[test]
fn reference_recipe_is_the_default() {
    // §4.1: epoch 0 at 1e-5, epoch 1 at exactly 0.002, cosine afterwards over 200 epochs.
    let reference = &fixture("schedules.json")[0];
    assert_eq!(reference["name"], "mvlpt_vit_b16");
    let train = TrainConfig {
        epochs: 200,
        ..TrainConfig::default()
    };
    let schedule = LrSchedule::from_config(&train).unwrap();
    for (epoch, expected) in reference["lrs"].as_array().unwrap().iter().enumerate() {
        assert!((schedule.lr(epoch) - expected.as_f64().unwrap()).abs() < 1e-15);
    }
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[test]
fn optimizer_trajectories_match_torch_optim() {
    for case in fixture("optimizers.json").as_array().unwrap() {
        let kind = match case["kind"].as_str().unwrap() {
            "sgd" => OptimizerKind::Sgd(SgdConfig {
                momentum: case["momentum"].as_f64().unwrap(),
                dampening: case["dampening"].as_f64().unwrap(),
                weight_decay: case["weight_decay"].as_f64().unwrap(),
                nesterov: case["nesterov"].as_bool().unwrap(),
            }),
            _ => OptimizerKind::AdamW(AdamWConfig {
                betas: [
                    case["betas"][0].as_f64().unwrap(),
                    case["betas"][1].as_f64().unwrap(),
                ],
                eps: case["eps"].as_f64().unwrap(),
                weight_decay: case["weight_decay"].as_f64().unwrap(),
            }),
        };
        let var = Var::from_tensor(
            &Tensor::from_vec(floats(&case["init"]), (3, 4), &Device::Cpu).unwrap(),
        )
        .unwrap();
        let mut optim = Optimizer::new(kind, vec![("p".into(), var.clone())]).unwrap();
        let lrs = case["lrs"].as_array().unwrap();
        for (step, (grad, expected)) in case["grads"]
            .as_array()
            .unwrap()
            .iter()
            .zip(case["params"].as_array().unwrap())
            .enumerate()
        {
            // A loss whose gradient with respect to p is exactly `grad`: sum(p * grad).
            let g = Tensor::from_vec(floats(grad), (3, 4), &Device::Cpu).unwrap();
            let grads = (var.as_tensor() * &g)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            optim.step(&grads, lrs[step].as_f64().unwrap()).unwrap();
            let ours: Vec<f32> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
            for (a, b) in ours.iter().zip(floats(expected)) {
                assert!(
                    (a - b).abs() <= 1e-6 * (1.0 + b.abs()),
                    "{} step {step}: {a} vs {b}",
                    case["name"]
                );
            }
        }
    }
}

#[test]
fn optimizer_state_round_trips() {
    let var = Var::from_tensor(&Tensor::new(&[1.0f32, -2.0, 3.0], &Device::Cpu).unwrap()).unwrap();
    let kind = OptimizerKind::AdamW(AdamWConfig {
        betas: [0.9, 0.999],
        eps: 1e-8,
        weight_decay: 0.01,
    });
    let mut a = Optimizer::new(kind.clone(), vec![("p".into(), var.clone())]).unwrap();
    let grads = (var.as_tensor() * 0.5)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    a.step(&grads, 0.1).unwrap();
    let (state, steps) = a.state_tensors();
    let copy = Var::from_tensor(&var.as_tensor().copy().unwrap()).unwrap();
    let mut b = Optimizer::new(kind, vec![("p".into(), copy.clone())]).unwrap();
    b.load_state(&state, steps).unwrap();
    for (v, o) in [(&var, &mut a), (&copy, &mut b)] {
        let g = (v.as_tensor() * 0.5)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        o.step(&g, 0.1).unwrap();
    }
    let (x, y): (Vec<f32>, Vec<f32>) = (
        var.as_tensor().to_vec1().unwrap(),
        copy.as_tensor().to_vec1().unwrap(),
    );
    assert_eq!(x, y);
}
