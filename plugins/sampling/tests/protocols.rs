//! The protocol plugins on real `Sample` lists against the reference pipelines:
//! `tests/fixtures/sampling/protocols.json` (`tools/fixtures/sampling.py`: vision-datasets 0.2.23
//! and MVLPT's split chained as MVLPT's loaders chain them, CoOp's dataset sequence) and the
//! per-algorithm fixtures of `tests/fixtures/fewshot/` (`tools/fixtures/fewshot.py`).

mod common;

use common::{fixture, ids, label_lists, singletons, usizes, ListDataset};
use mvlpt_framework::config::LoadedConfig;
use mvlpt_framework::data::{Dataset, FewShotProtocol};
use mvlpt_sampling::protocols::{
    AllProtocol, DasslOptions, DasslProtocol, ElevaterMultitaskOptions, ElevaterMultitaskProtocol,
    ElevaterOptions, ElevaterProtocol, EmptyVal, ValSource,
};
use serde_json::Value;

fn case_u64(case: &Value, key: &str) -> u64 {
    case[key].as_u64().unwrap()
}

#[test]
fn elevater_matches_mvlpt_single_task_loader() {
    let doc = fixture("sampling/protocols.json");
    assert_eq!(doc["vision_datasets"], "0.2.23");
    let cases = doc["elevater"].as_array().unwrap();
    assert_eq!(cases.len(), 45);
    let protocol = ElevaterProtocol::default();
    for case in cases {
        let dataset = ListDataset::new(
            case["dataset"].as_str().unwrap(),
            case_u64(case, "num_classes") as usize,
            case["multilabel"].as_bool().unwrap(),
            &label_lists(&case["labels"]),
            &[],
        );
        let shots = case_u64(case, "shots") as usize;
        let seed = case_u64(case, "seed");
        let split = protocol.split(&dataset, shots, seed).unwrap();
        let context = format!("{} k={shots} seed={seed}", case["dataset"]);
        assert_eq!(
            ids(&split.train),
            usizes(&case["train"]),
            "train of {context}"
        );
        assert_eq!(ids(&split.val), usizes(&case["val"]), "val of {context}");
        assert_eq!(
            split.notes.len(),
            usize::from(shots == 1),
            "notes of {context}"
        );
    }
}

#[test]
fn elevater_with_dataset_val_keeps_the_whole_subset_for_training() {
    // The subset alone is what vision-datasets' sample_few_shot_subset returns.
    let doc = fixture("fewshot/elevater.json");
    let sets = &doc["label_sets"];
    let protocol = ElevaterProtocol::new(ElevaterOptions {
        val_from: ValSource::Dataset,
    });
    let val = singletons(&[0, 1, 2, 1]);
    let mut checked = 0;
    for case in doc["few_shot"].as_array().unwrap() {
        let name = case["labels"].as_str().unwrap();
        if name == "multitask" {
            continue;
        }
        let set = &sets[name];
        let dataset = ListDataset::new(
            name,
            case_u64(set, "num_classes") as usize,
            name.starts_with("multilabel"),
            &label_lists(&set["labels"]),
            &val,
        );
        let shots = case_u64(case, "num_shots") as usize;
        let split = protocol
            .split(&dataset, shots, case_u64(case, "seed"))
            .unwrap();
        assert_eq!(
            ids(&split.train),
            usizes(&case["result"]),
            "{name} k={shots}"
        );
        assert_eq!(ids(&split.val), vec![0, 1, 2, 3]);
        assert_eq!(split.notes.len(), 1);
        checked += 1;
    }
    assert_eq!(checked, 45);
}

#[test]
fn elevater_refuses_a_missing_val_split_when_asked_to_use_it() {
    let protocol = ElevaterProtocol::new(ElevaterOptions {
        val_from: ValSource::Dataset,
    });
    let dataset = ListDataset::new("tiny", 2, false, &singletons(&[0, 1, 0, 1]), &[]);
    let err = protocol.split(&dataset, 1, 0).unwrap_err();
    assert!(format!("{err:#}").contains("no val split"), "{err:#}");
}

#[test]
fn elevater_names_an_unlabelled_sample_of_a_single_label_dataset() {
    let train = vec![vec![0], vec![1], vec![], vec![0]];
    let dataset = ListDataset::new("tiny", 2, false, &train, &[]);
    let err = ElevaterProtocol::default()
        .split(&dataset, 1, 0)
        .unwrap_err();
    let message = format!("{err:#}");
    assert!(
        message.contains("sample 2") && message.contains("tiny"),
        "{message}"
    );
}

#[test]
fn elevater_multitask_matches_mvlpt_joint_sampling_and_split() {
    let doc = fixture("sampling/protocols.json");
    let cases = doc["elevater_multitask"].as_array().unwrap();
    assert_eq!(cases.len(), 24);
    let protocol = ElevaterMultitaskProtocol::default();
    let mut fallbacks = 0;
    for case in cases {
        let dataset = ListDataset::new(
            case["group"].as_str().unwrap(),
            case_u64(case, "num_classes") as usize,
            true,
            &label_lists(&case["labels"]),
            &[],
        );
        let shots = case_u64(case, "shots") as usize;
        let seed = case_u64(case, "seed");
        let split = protocol.split(&dataset, shots, seed).unwrap();
        let context = format!("{} k={shots} seed={seed}", case["group"]);
        let (train, val) = (usizes(&case["train"]), usizes(&case["val"]));
        assert_eq!(ids(&split.train), train, "train of {context}");
        if val.is_empty() {
            // The reference leaves nothing to validate on; the protocol falls back to train.
            assert_eq!(ids(&split.val), train, "val of {context}");
            assert_eq!(split.notes.len(), 1, "{context}");
            fallbacks += 1;
        } else {
            assert_eq!(ids(&split.val), val, "val of {context}");
            assert!(split.notes.is_empty(), "{context}");
        }
    }
    // The single-label group at one shot: every seed's reference val set is empty.
    assert_eq!(fallbacks, 3);
}

#[test]
fn elevater_multitask_can_refuse_an_empty_val_set() {
    let doc = fixture("sampling/protocols.json");
    let case = doc["elevater_multitask"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["val"].as_array().unwrap().is_empty())
        .unwrap();
    let dataset = ListDataset::new(
        "group",
        case_u64(case, "num_classes") as usize,
        false,
        &label_lists(&case["labels"]),
        &[],
    );
    let protocol = ElevaterMultitaskProtocol::new(ElevaterMultitaskOptions {
        empty_val: EmptyVal::Error,
        ..Default::default()
    })
    .unwrap();
    let err = protocol
        .split(
            &dataset,
            case_u64(case, "shots") as usize,
            case_u64(case, "seed"),
        )
        .unwrap_err();
    assert!(format!("{err}").contains("no validation samples"), "{err}");
}

#[test]
fn elevater_multitask_rejects_a_train_ratio_outside_the_unit_interval() {
    for ratio in [0.0, -0.5, 1.5, f64::NAN] {
        let options = ElevaterMultitaskOptions {
            train_ratio: ratio,
            ..Default::default()
        };
        assert!(ElevaterMultitaskProtocol::new(options).is_err(), "{ratio}");
    }
}

/// The `dassl.json` datasets of one case, built with their val splits.
fn dassl_fixture_datasets(doc: &Value, calls: &[Value]) -> Vec<ListDataset> {
    let sets = &doc["label_sets"];
    calls
        .chunks(2)
        .map(|pair| {
            let name = pair[0]["labels"].as_str().unwrap();
            assert_eq!(pair[1]["labels"].as_str().unwrap(), format!("{name}/val"));
            let train = usizes(&sets[name]);
            let val = usizes(&sets[format!("{name}/val").as_str()]);
            let classes = train.iter().chain(&val).max().unwrap() + 1;
            ListDataset::new(name, classes, false, &singletons(&train), &singletons(&val))
        })
        .collect()
}

#[test]
fn dassl_matches_coop_train_then_val_from_one_stream() {
    let doc = fixture("fewshot/dassl.json");
    let mut checked = 0;
    for case in doc["cases"].as_array().unwrap() {
        let calls = case["calls"].as_array().unwrap();
        if calls.len() != 6 {
            continue; // the num_shots = 0 case draws train twice, not train then val
        }
        let shots = case_u64(&calls[0], "num_shots") as usize;
        let repeat = calls[0]["repeat"].as_bool().unwrap();
        let protocol = DasslProtocol::new(DasslOptions {
            repeat,
            ..Default::default()
        });
        let seed = case_u64(case, "seed");
        let datasets = dassl_fixture_datasets(&doc, calls);
        // Alone, a dataset starts from a fresh generator: the case's first two calls.
        let alone = protocol.split(&datasets[0], shots, seed).unwrap();
        assert_eq!(ids(&alone.train), usizes(&calls[0]["result"]));
        assert_eq!(ids(&alone.val), usizes(&calls[1]["result"]));
        // In sequence, each dataset continues the stream: all six calls.
        let refs: Vec<&dyn Dataset> = datasets.iter().map(|d| d as &dyn Dataset).collect();
        let splits = protocol.split_tasks(&refs, shots, seed).unwrap();
        for (split, pair) in splits.iter().zip(calls.chunks(2)) {
            let context = format!(
                "seed {seed} k={shots} repeat={repeat} {}",
                pair[0]["labels"]
            );
            assert_eq!(ids(&split.train), usizes(&pair[0]["result"]), "{context}");
            assert_eq!(ids(&split.val), usizes(&pair[1]["result"]), "{context}");
        }
        checked += 1;
    }
    assert_eq!(checked, 40);
}

#[test]
fn dassl_sequence_keeps_imagenet_val_whole_without_drawing() {
    let doc = fixture("sampling/protocols.json");
    let sequence = &doc["dassl_sequence"];
    let datasets: Vec<ListDataset> = sequence["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|task| {
            let (train, val) = (usizes(&task["train"]), usizes(&task["val"]));
            let classes = train.iter().chain(&val).max().unwrap() + 1;
            ListDataset::new(
                task["name"].as_str().unwrap(),
                classes,
                false,
                &singletons(&train),
                &singletons(&val),
            )
        })
        .collect();
    let refs: Vec<&dyn Dataset> = datasets.iter().map(|d| d as &dyn Dataset).collect();
    let protocol = DasslProtocol::default();
    let cases = sequence["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 12);
    for case in cases {
        let (seed, shots) = (case_u64(case, "seed"), case_u64(case, "shots") as usize);
        let splits = protocol.split_tasks(&refs, shots, seed).unwrap();
        for ((split, expected), dataset) in splits
            .iter()
            .zip(case["results"].as_array().unwrap())
            .zip(&datasets)
        {
            let context = format!("seed {seed} k={shots} {}", dataset.info().name);
            assert_eq!(ids(&split.train), usizes(&expected["train"]), "{context}");
            assert_eq!(ids(&split.val), usizes(&expected["val"]), "{context}");
            let whole_val = dataset.info().name == "imagenet";
            assert_eq!(split.notes.len(), usize::from(whole_val), "{context}");
        }
    }
}

#[test]
fn all_returns_the_splits_unchanged_and_notes_ignored_shots() {
    let train = singletons(&[2, 0, 1, 1, 0]);
    let val = singletons(&[1, 0]);
    let dataset = ListDataset::new("tiny", 3, false, &train, &val);
    let split = AllProtocol.split(&dataset, 0, 7).unwrap();
    assert_eq!(ids(&split.train), vec![0, 1, 2, 3, 4]);
    assert_eq!(ids(&split.val), vec![0, 1]);
    assert!(split.notes.is_empty());
    let split = AllProtocol.split(&dataset, 5, 7).unwrap();
    assert_eq!(ids(&split.train), vec![0, 1, 2, 3, 4]);
    assert_eq!(split.notes.len(), 1);
}

#[test]
fn options_tables_are_read_and_unknown_keys_refused() {
    let loaded = LoadedConfig::load(
        None,
        &[
            "data.elevater_multitask.train_ratio=0.5".to_owned(),
            "data.dassl.max_val_shots=2".to_owned(),
            "data.elevater.val_form=\"dataset\"".to_owned(),
        ],
    )
    .unwrap();
    let options: ElevaterMultitaskOptions =
        loaded.section("data.elevater_multitask").extract().unwrap();
    assert_eq!(options.train_ratio, 0.5);
    assert_eq!(options.empty_val, EmptyVal::Train);
    let options: DasslOptions = loaded.section("data.dassl").extract().unwrap();
    assert_eq!(options.max_val_shots, 2);
    assert_eq!(options.whole_val, vec!["imagenet".to_owned()]);
    let err = ElevaterProtocol::from_section(&loaded.section("data.elevater")).unwrap_err();
    assert!(format!("{err:#}").contains("val_form"), "{err:#}");
}
