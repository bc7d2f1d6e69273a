//! Base-to-novel against the reference (`tests/fixtures/base2new/cases.json`, written by
//! `tools/fixtures/base2new.py` from CoOp's `subsample_classes` and Dassl's `get_lab2cname`):
//! which samples every split keeps, their new labels, the class names the model sees, the
//! error for an empty half; and the harmonic mean of the published average rows.

use mvlpt_framework::config::SubsampleClasses;
use mvlpt_framework::data::Sample;
use mvlpt_framework::engine::data::ClassSubset;
use mvlpt_framework::run::report::harmonic_mean;
use serde_json::Value;
use std::path::PathBuf;

fn manifest() -> Value {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/base2new/cases.json");
    let text = std::fs::read_to_string(&path).expect("reading the base2new fixture");
    serde_json::from_str(&text).expect("parsing the base2new fixture")
}

/// The samples of one input split: the image path is the sample's index in the split.
fn split(items: &Value) -> Vec<Sample> {
    items
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, item)| Sample::file(i.to_string(), item[0].as_u64().unwrap() as usize))
        .collect()
}

fn indices_and_labels(samples: &[Sample]) -> (Vec<u64>, Vec<u64>) {
    samples
        .iter()
        .map(|s| {
            let index: u64 = s.image.to_string().parse().unwrap();
            (index, s.label().unwrap() as u64)
        })
        .unzip()
}

fn numbers(value: &Value) -> Vec<u64> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect()
}

#[test]
fn subsampling_matches_the_reference_on_every_case_and_mode() {
    let manifest = manifest();
    let cases = manifest["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    let names: Vec<String> = (0..12).map(|i| format!("class_{i:02}")).collect();
    let mut checked = 0;
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let splits: Vec<(&str, Vec<Sample>)> = ["train", "val", "test"]
            .into_iter()
            .map(|s| (s, split(&case["inputs"][s])))
            .collect();
        let train_labels: Vec<usize> = splits[0].1.iter().filter_map(Sample::label).collect();
        for (mode, text) in [
            (SubsampleClasses::All, "all"),
            (SubsampleClasses::Base, "base"),
            (SubsampleClasses::New, "new"),
        ] {
            let expected = &case["outputs"][text];
            let what = format!("case {name}, mode {text}");
            let subset = ClassSubset::choose(train_labels.iter().copied(), mode, name);
            if let Some(error) = expected.get("error") {
                let err = subset.expect_err(&what);
                assert!(
                    format!("{err}").contains("leaves no class of"),
                    "{what}: {err} (reference: {error})"
                );
                checked += 1;
                continue;
            }
            let subset = subset.unwrap_or_else(|e| panic!("{what}: {e}"));
            for (split_name, samples) in &splits {
                let kept = match &subset {
                    None => samples.clone(),
                    Some(subset) => subset.apply(samples.clone(), 0, 0),
                };
                let (indices, labels) = indices_and_labels(&kept);
                assert_eq!(
                    indices,
                    numbers(&expected[split_name]["indices"]),
                    "{what}, {split_name}: kept samples"
                );
                assert_eq!(
                    labels,
                    numbers(&expected[split_name]["labels"]),
                    "{what}, {split_name}: labels"
                );
            }
            let classnames: Vec<String> = expected["classnames"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect();
            let num_classes = expected["num_classes"].as_u64().unwrap() as usize;
            match &subset {
                Some(subset) => {
                    assert_eq!(subset.classnames(&names).unwrap(), classnames, "{what}");
                    assert_eq!(subset.kept().len(), num_classes, "{what}");
                }
                // `all` keeps the dataset's label space. Dassl names it from the training
                // split, which differs only when labels below the largest are missing from it
                // (cases `gaps` and `one_class`: fewer names than classes, a Dassl quirk
                // that does not arise on the real datasets).
                None if classnames.len() == num_classes => {
                    assert_eq!(names[..num_classes], classnames[..], "{what}");
                }
                None => assert!(
                    ["gaps", "one_class"].contains(&name) && classnames.len() < num_classes,
                    "{what}"
                ),
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 12);
}

#[test]
fn a_half_is_cut_at_the_ceiling_of_half_the_classes() {
    // The published splits (refnotes §9): 37 pets → 19/18, 397 SUN classes → 199/198.
    for (n, base) in [(37usize, 19usize), (397, 199), (100, 50), (10, 5)] {
        let b = ClassSubset::choose(0..n, SubsampleClasses::Base, "t")
            .unwrap()
            .unwrap();
        let new = ClassSubset::choose(0..n, SubsampleClasses::New, "t")
            .unwrap()
            .unwrap();
        assert_eq!((b.kept().len(), new.kept().len()), (base, n - base));
        assert_eq!(new.relabel(base), Some(0));
        assert_eq!(b.relabel(base), None);
    }
}

#[test]
fn the_harmonic_mean_of_averaged_base_and_novel_gives_the_published_average_rows() {
    let manifest = manifest();
    let rows = manifest["harmonic_mean"].as_array().unwrap();
    assert_eq!(rows.len(), 10);
    for row in rows {
        let (base, novel) = (
            row["base"].as_f64().unwrap(),
            row["novel"].as_f64().unwrap(),
        );
        let hm = harmonic_mean(base, novel);
        let method = row["method"].as_str().unwrap();
        assert!(
            (hm - row["hm"].as_f64().unwrap()).abs() < 1e-9,
            "{method}: {hm}"
        );
        let published = row["published_hm"].as_f64().unwrap();
        assert!(
            (hm - published).abs() < 0.005 + 1e-9,
            "{method}: {hm} vs {published}"
        );
    }
}
