//! The CoOp datasets against CoOp's own dataset classes run on the fixture root
//! (tests/fixtures/datasets/expected.json, "coop").

mod common;

use common::{build, build_at, copy_tree, error_text, expected, root, single_label_rows, SPLITS};
use mvlpt_datasets::coop::COOP_DATASETS;
use mvlpt_framework::eval::metrics::Metric;

#[test]
fn every_coop_dataset_reads_what_coop_reads() {
    let expected = expected();
    for spec in COOP_DATASETS {
        let reference = &expected["coop"][spec.registry_name];
        assert!(
            reference.is_object(),
            "no reference for {}",
            spec.registry_name
        );
        let dataset = build(spec.name, &[]).unwrap_or_else(|e| panic!("{}: {e:#}", spec.name));
        let info = dataset.info();
        assert_eq!(
            serde_json::json!(info.classnames),
            reference["classnames"],
            "{}",
            spec.name
        );
        assert_eq!(
            serde_json::json!(info.templates),
            serde_json::json!([reference["template"]]),
            "{}",
            spec.name
        );
        assert_eq!(info.metric, Metric::Accuracy);
        assert!(!info.multilabel);
        for (split, key) in SPLITS {
            let samples = dataset.samples(split).unwrap();
            assert_eq!(
                single_label_rows(&root(), &samples),
                reference[key],
                "{} {key}",
                spec.name
            );
        }
    }
}

#[test]
fn folder_splits_reproduce_coop_with_the_class_fixes() {
    // CoOp wrote these datasets' split files from their folders with random.seed(split_seed);
    // splitting from the folders again must give the same splits and the fixed class names
    // (Caltech101 without BACKGROUND_Google and Faces_easy, airplanes -> airplane, EuroSAT's
    // expanded names).
    let expected = expected();
    let seed = expected["split_seed"].as_u64().unwrap();
    for (name, registry_name) in [
        ("caltech101", "Caltech101"),
        ("describable_textures", "DescribableTextures"),
        ("eurosat", "EuroSAT"),
        ("food101", "Food101"),
    ] {
        let reference = &expected["coop"][registry_name];
        let split = "split=\"folders\"";
        let set_split = format!("data.{name}.{split}");
        let set_seed = format!("data.{name}.split_seed={seed}");
        let dataset = build(name, &[&set_split, &set_seed]).unwrap();
        assert_eq!(
            serde_json::json!(dataset.info().classnames),
            reference["classnames"],
            "{name}"
        );
        for (split, key) in SPLITS {
            let samples = dataset.samples(split).unwrap();
            assert_eq!(
                single_label_rows(&root(), &samples),
                reference[key],
                "{name} {key}"
            );
        }
    }
}

#[test]
fn coop_datasets_use_the_dassl_transforms() {
    let dataset = build("oxford_pets", &[]).unwrap();
    let (train, test) = dataset.transforms(224).unwrap();
    let (dassl_train, dassl_test) = (
        mvlpt_framework::data::transforms::Pipeline::dassl_train(224).unwrap(),
        mvlpt_framework::data::transforms::Pipeline::dassl_test(224).unwrap(),
    );
    assert_eq!(train.specs(), dassl_train.specs());
    assert_eq!(test.specs(), dassl_test.specs());
}

#[test]
fn imagenet_validates_on_its_test_set() {
    let dataset = build("imagenet", &[]).unwrap();
    assert_eq!(
        dataset.samples(mvlpt_framework::data::Split::Val).unwrap(),
        dataset.samples(mvlpt_framework::data::Split::Test).unwrap()
    );
}

#[test]
fn options_that_do_not_apply_are_refused() {
    let text = error_text(build(
        "oxford_pets",
        &["data.oxford_pets.split=\"folders\""],
    ));
    assert!(text.contains("data.oxford_pets.split"), "{text}");
    let text = error_text(build(
        "caltech101",
        &["data.caltech101.classnames_file=\"x.txt\""],
    ));
    assert!(text.contains("classnames_file"), "{text}");
}

#[test]
fn unknown_options_are_errors_naming_the_key() {
    let text = error_text(build("caltech101", &["data.caltech101.splt=\"folders\""]));
    assert!(text.contains("splt"), "{text}");
    assert!(text.contains("--set data.caltech101.splt"), "{text}");
}

#[test]
fn missing_root_and_split_file_are_named() {
    let missing = root().join("no-such-root");
    let text = error_text(build_at(&missing, "eurosat", &[]));
    assert!(text.contains("eurosat"), "{text}");
    assert!(text.contains(&missing.display().to_string()), "{text}");

    let temp = tempfile::tempdir().unwrap();
    copy_tree(&root().join("sun397"), &temp.path().join("sun397"));
    std::fs::remove_file(temp.path().join("sun397/split_zhou_SUN397.json")).unwrap();
    let text = error_text(build_at(temp.path(), "sun397", &[]));
    assert!(text.contains("split_zhou_SUN397.json"), "{text}");
}

#[test]
fn malformed_split_files_and_lists_are_named() {
    let temp = tempfile::tempdir().unwrap();
    copy_tree(&root().join("ucf101"), &temp.path().join("ucf101"));
    let file = temp.path().join("ucf101/split_zhou_UCF101.json");
    let text = std::fs::read_to_string(&file).unwrap();
    // The first train entry's label (the first `0` after its path) becomes a string.
    let label = text.find("\",\n").expect("a path entry") + 1;
    let zero = label + text[label..].find('0').expect("a label");
    let broken = format!("{}\"zero\"{}", &text[..zero], &text[zero + 1..]);
    assert_ne!(broken, text);
    std::fs::write(&file, broken).unwrap();
    let error = error_text(build_at(temp.path(), "ucf101", &[]));
    assert!(
        error.contains("split_zhou_UCF101.json: train[0]"),
        "{error}"
    );

    copy_tree(
        &root().join("fgvc_aircraft"),
        &temp.path().join("fgvc_aircraft"),
    );
    let list = temp.path().join("fgvc_aircraft/images_variant_val.txt");
    let mut lines = std::fs::read_to_string(&list).unwrap();
    lines.push_str("1234567 Spitfire\n");
    std::fs::write(&list, lines).unwrap();
    let error = error_text(build_at(temp.path(), "fgvc_aircraft", &[]));
    assert!(error.contains("images_variant_val.txt:7"), "{error}");
    assert!(error.contains("Spitfire"), "{error}");
}
