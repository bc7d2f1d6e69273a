//! Checks every protocol against the reference outputs written by `tools/fixtures/fewshot.py`
//! (Dassl's algorithm, the vision-datasets 0.2.23 package itself, MVLPT's split code).

use serde_json::Value;

use super::pyset::PyIntSet;
use super::*;
use crate::data::pyrandom::PyRandom;

fn load(name: &str) -> Value {
    let path = format!(
        "{}/../tests/fixtures/fewshot/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["python"].as_str().unwrap().get(..5), Some("3.11."));
    doc
}

fn usizes(value: &Value) -> Vec<usize> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect()
}

fn label_lists(value: &Value) -> Vec<Vec<usize>> {
    value.as_array().unwrap().iter().map(usizes).collect()
}

/// Expands `[[first, length], ...]` runs.
fn expand_runs(value: &Value) -> Vec<usize> {
    value
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|run| {
            let run = usizes(run);
            run[0]..run[0] + run[1]
        })
        .collect()
}

#[test]
fn dassl_matches_reference_across_successive_calls() {
    let doc = load("dassl.json");
    let sets = &doc["label_sets"];
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 40);
    for case in cases {
        let mut rng = PyRandom::new(case["seed"].as_u64().unwrap());
        for call in case["calls"].as_array().unwrap() {
            let labels = usizes(&sets[call["labels"].as_str().unwrap()]);
            let shots = call["num_shots"].as_u64().unwrap() as usize;
            let repeat = call["repeat"].as_bool().unwrap();
            let got = dassl_fewshot(&labels, shots, repeat, &mut rng).unwrap();
            assert_eq!(
                got,
                usizes(&call["result"]),
                "seed {} call {call:?}",
                case["seed"]
            );
        }
    }
}

#[test]
fn elevater_few_shot_matches_vision_datasets_0_2() {
    let doc = load("elevater.json");
    assert_eq!(doc["vision_datasets"], "0.2.23");
    let sets = &doc["label_sets"];
    let cases = doc["few_shot"].as_array().unwrap();
    assert!(cases.len() >= 60);
    for case in cases {
        let set = &sets[case["labels"].as_str().unwrap()];
        let labels = label_lists(&set["labels"]);
        let num_classes = set["num_classes"].as_u64().unwrap() as usize;
        let shots = case["num_shots"].as_u64().unwrap() as usize;
        let seed = case["seed"].as_u64().unwrap();
        let got = elevater_sample_few_shot(&labels, num_classes, shots, seed).unwrap();
        assert_eq!(
            got,
            usizes(&case["result"]),
            "{} k={shots} seed={seed}",
            case["labels"]
        );
    }
}

#[test]
fn elevater_train_val_split_matches_vision_datasets_0_2() {
    let doc = load("elevater.json");
    let sets = &doc["label_sets"];
    let cases = doc["train_val_split"].as_array().unwrap();
    assert!(cases.len() >= 60);
    for case in cases {
        let set = &sets[case["labels"].as_str().unwrap()];
        let labels = label_lists(&set["labels"]);
        let num_classes = set["num_classes"].as_u64().unwrap() as usize;
        let ratio = f64::from_bits(case["train_ratio_bits"].as_u64().unwrap());
        let seed = case["seed"].as_u64().unwrap();
        let got = elevater_train_val_split(&labels, num_classes, ratio, seed).unwrap();
        let expected = TrainValSplit {
            train: usizes(&case["train"]),
            val: usizes(&case["val"]),
        };
        assert_eq!(
            got, expected,
            "{} ratio={ratio} seed={seed}",
            case["labels"]
        );
    }
}

#[test]
fn mvlpt_single_task_split_matches_reference() {
    let doc = load("single_task_split.json");
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 80);
    for case in cases {
        let expected = TrainValSplit {
            train: expand_runs(&case["train"]),
            val: expand_runs(&case["val"]),
        };
        let got = match case["kind"].as_str().unwrap() {
            "multiclass" => {
                let labels = usizes(&case["labels"]);
                let via_dispatch =
                    mvlpt_single_task_split(SingleTaskLabels::Multiclass(&labels), 5).unwrap();
                let direct = mvlpt_split_multiclass(&labels, MVLPT_VAL_FRACTION).unwrap();
                assert_eq!(via_dispatch, direct);
                direct
            }
            _ => {
                let labels = label_lists(&case["labels"]);
                let num_classes = case["num_classes"].as_u64().unwrap() as usize;
                mvlpt_split_multilabel(&labels, num_classes, MVLPT_VAL_FRACTION).unwrap()
            }
        };
        assert_eq!(got, expected, "case {}", case["name"]);
    }
}

#[test]
fn fixture_exercises_unsorted_set_orders() {
    // Guards the fixture itself: CPython's set order must differ from sorted order somewhere,
    // or the set emulation would go untested.
    let doc = load("single_task_split.json");
    let unsorted = |runs: &Value| {
        let values = expand_runs(runs);
        values.windows(2).any(|pair| pair[0] > pair[1])
    };
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.iter().any(|case| unsorted(&case["train"])));
    assert!(cases.iter().any(|case| unsorted(&case["val"])));
}

#[test]
fn one_shot_single_task_uses_the_whole_subset_for_train_and_val() {
    // construct_dataloader: for NUM_SAMPLES_PER_CLASS == 1 both loaders wrap the same manifest.
    let labels = [3usize, 0, 2, 1];
    let split = mvlpt_single_task_split(SingleTaskLabels::Multiclass(&labels), 1).unwrap();
    assert_eq!(split.train, vec![0, 1, 2, 3]);
    assert_eq!(split.val, split.train);
    let multi = vec![vec![0], vec![], vec![1, 0]];
    let split = mvlpt_single_task_split(
        SingleTaskLabels::Multilabel {
            labels: &multi,
            num_classes: 2,
        },
        1,
    )
    .unwrap();
    assert_eq!(split.train, vec![0, 1, 2]);
    assert_eq!(split.val, split.train);
}

/// The digest `tools/fixtures/fewshot.py` stores for long orders (`order_checksum`).
fn order_checksum(values: &[usize]) -> u64 {
    const MODULUS: u128 = (1 << 61) - 1;
    let digest = values.iter().fold(0u128, |digest, &v| {
        (digest * 1_000_003 + v as u128 + 1) % MODULUS
    });
    digest as u64
}

#[test]
fn large_set_orders_match_cpython() {
    let doc = load("set_order.json");
    for case in doc["cases"].as_array().unwrap() {
        let field = |name: &str| case[name].as_u64().unwrap() as usize;
        let order = match case["kind"].as_str().unwrap() {
            "set" => {
                let (count, step, modulus, start) = (
                    field("count"),
                    field("step"),
                    field("modulus"),
                    field("start"),
                );
                PyIntSet::from_adds((0..count).map(|i| (start + i * step) % modulus)).to_list()
            }
            _ => {
                let (n, count, step) = (field("n"), field("count"), field("step"));
                let removed = PyIntSet::from_adds((0..count).map(|i| (i * step) % n));
                PyIntSet::range_difference(n, &removed)
            }
        };
        assert_eq!(order.len(), field("len"), "{case}");
        assert_eq!(
            order[..order.len().min(64)],
            usizes(&case["head"])[..],
            "{case}"
        );
        assert_eq!(
            order_checksum(&order),
            case["checksum"].as_u64().unwrap(),
            "{case}"
        );
    }
}

#[test]
fn range_difference_keeps_every_other_key_once() {
    let removed = PyIntSet::from_adds((0..1000).step_by(7));
    let mut rest = PyIntSet::range_difference(1000, &removed);
    rest.sort_unstable();
    let expected: Vec<usize> = (0..1000).filter(|i| i % 7 != 0).collect();
    assert_eq!(rest, expected);
    assert!(removed.contains(994) && !removed.contains(995));
}

#[test]
fn bad_inputs_are_reported() {
    let labels = vec![vec![0], vec![4]];
    assert_eq!(
        elevater_sample_few_shot(&labels, 3, 5, 0),
        Err(FewShotError::LabelOutOfRange {
            item: 1,
            label: 4,
            num_classes: 3
        })
    );
    assert_eq!(
        elevater_sample_few_shot(&[vec![0]], 1, 0, 0),
        Err(FewShotError::ZeroShots)
    );
    assert!(matches!(
        elevater_train_val_split(&[vec![0]], 1, 1.5, 0),
        Err(FewShotError::InvalidFraction { .. })
    ));
    assert_eq!(
        mvlpt_split_multiclass(&[], MVLPT_VAL_FRACTION),
        Err(FewShotError::EmptyDataset)
    );
}
