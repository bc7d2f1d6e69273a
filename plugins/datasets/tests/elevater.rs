//! The ELEVATER datasets against vision-datasets 0.2.23 reading the fixture root
//! (tests/fixtures/datasets/expected.json, "elevater"), and the embedded benchmark data against
//! MVLPT's prompts.py and the ELEVATER toolkit's metrics.

mod common;

use common::{build, build_at, copy_tree, error_text, expected, label_set_rows, root, SPLITS};
use mvlpt_datasets::elevater::elevater_specs;
use mvlpt_framework::data::{ImageSource, Split};
use mvlpt_framework::plugin::{PluginKind, Registry};

#[test]
fn every_benchmark_dataset_is_registered() {
    mvlpt_datasets::link();
    let registry = Registry::builtin().unwrap();
    let expected = expected();
    let names = expected["elevater"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .chain(
            mvlpt_datasets::coop::COOP_DATASETS
                .iter()
                .map(|s| s.name.to_string()),
        )
        .chain(["image_folder".to_string(), "manifest".to_string()]);
    for name in names {
        assert!(
            registry.contains(PluginKind::Dataset, &name),
            "dataset {name} is not registered"
        );
    }
    assert_eq!(elevater_specs().len(), 20);
}

#[test]
fn every_elevater_dataset_reads_what_vision_datasets_reads() {
    let expected = expected();
    for (name, reference) in expected["elevater"].as_object().unwrap() {
        let dataset = build(name, &[]).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        let info = dataset.info();
        assert_eq!(
            serde_json::json!(info.classnames),
            reference["classnames"],
            "{name}"
        );
        assert_eq!(
            serde_json::json!(info.templates),
            reference["templates"],
            "{name}"
        );
        assert_eq!(info.metric.name(), reference["metric"], "{name}");
        assert_eq!(
            serde_json::json!(info.multilabel),
            reference["multilabel"],
            "{name}"
        );
        for (split, key) in SPLITS {
            let samples = dataset.samples(split).unwrap();
            assert_eq!(
                label_set_rows(&root(), &samples),
                reference["splits"][key],
                "{name} {key}"
            );
            for sample in &samples {
                dataset
                    .load_image(sample)
                    .unwrap_or_else(|e| panic!("{name}: {e:#}"));
            }
        }
    }
}

#[test]
fn metric_and_class_name_options() {
    let expected = expected();
    for (name, reference) in expected["elevater"].as_object().unwrap() {
        let set = format!("data.{name}.metric=\"elevater\"");
        let dataset = build(name, &[&set]).unwrap();
        assert_eq!(
            dataset.info().metric.name(),
            reference["elevater_metric"],
            "{name}"
        );
        let set = format!("data.{name}.classnames=\"labelmap\"");
        let dataset = build(name, &[&set]).unwrap();
        assert_eq!(
            serde_json::json!(dataset.info().classnames),
            reference["labelmap"],
            "{name}"
        );
    }
    let dataset = build("hateful-memes", &["data.hateful-memes.metric=\"roc_auc\""]).unwrap();
    assert_eq!(dataset.info().metric.name(), "roc_auc");
    let text = error_text(build(
        "hateful-memes",
        &["data.hateful-memes.metric=\"auc\""],
    ));
    assert!(text.contains("data.hateful-memes.metric"), "{text}");
}

#[test]
fn exif_orientation_is_applied_like_vision_datasets() {
    let expected = expected();
    let exif = &expected["exif"];
    let image_of = |sets: &[&str]| {
        let dataset = build("cifar-10", sets).unwrap();
        let samples = dataset.samples(Split::Train).unwrap();
        let sample = samples
            .iter()
            .find(|s| common::relative(&root(), &s.image) == exif["image"])
            .expect("the EXIF image is in cifar-10's train split");
        let image = dataset.load_image(sample).unwrap();
        serde_json::json!([image.width(), image.height()])
    };
    assert_eq!(image_of(&[]), exif["applied_size"]);
    assert_eq!(
        image_of(&["data.cifar-10.exif_orientation=\"ignore\""]),
        exif["ignored_size"]
    );
}

#[test]
fn elevater_transforms_squash_unless_center_crop() {
    use mvlpt_framework::data::transforms::Pipeline;
    let squash = build("mnist", &[]).unwrap().transforms(224).unwrap();
    assert_eq!(
        squash.0.specs(),
        Pipeline::elevater(224, false).unwrap().specs()
    );
    assert_eq!(
        squash.1.specs(),
        Pipeline::elevater(224, false).unwrap().specs()
    );
    let crop = build("mnist", &["data.mnist.center_crop=true"])
        .unwrap()
        .transforms(224)
        .unwrap();
    assert_eq!(
        crop.0.specs(),
        Pipeline::elevater(224, true).unwrap().specs()
    );
}

/// A copy of cifar-10's fixture folder under a temporary root.
fn cifar_copy() -> (tempfile::TempDir, std::path::PathBuf) {
    let spec = elevater_specs()
        .iter()
        .find(|s| s.name == "cifar-10")
        .unwrap();
    let temp = tempfile::tempdir().unwrap();
    let folder = temp.path().join(&spec.root_folder);
    copy_tree(&root().join(&spec.root_folder), &folder);
    (temp, folder)
}

#[test]
fn malformed_index_lines_are_named_by_file_and_line() {
    let (temp, folder) = cifar_copy();
    let index = folder.join("test.txt");
    let mut text = std::fs::read_to_string(&index).unwrap();
    text.push_str("val.zip@test/extra.png seven\n");
    std::fs::write(&index, &text).unwrap();
    let error = error_text(build_at(temp.path(), "cifar-10", &[]));
    assert!(error.contains(&format!("{}:4", index.display())), "{error}");
    assert!(error.contains("`seven`"), "{error}");

    std::fs::write(&index, text.replace(" seven", " 10")).unwrap();
    let error = error_text(build_at(temp.path(), "cifar-10", &[]));
    assert!(error.contains(&format!("{}:4", index.display())), "{error}");
    assert!(error.contains("out of range for 10 classes"), "{error}");
}

#[test]
fn missing_index_files_and_images_are_named() {
    let (temp, folder) = cifar_copy();
    std::fs::write(
        folder.join("test.txt"),
        "val.zip@test/absent.png 1\nloose/absent.png 2\n",
    )
    .unwrap();
    let dataset = build_at(temp.path(), "cifar-10", &[]).unwrap();
    let samples = dataset.samples(Split::Test).unwrap();
    let member = error_text(dataset.load_image(&samples[0]));
    assert!(member.contains("has no member test/absent.png"), "{member}");
    assert!(member.contains("val.zip"), "{member}");
    let file = error_text(dataset.load_image(&samples[1]));
    assert!(file.contains("loose/absent.png"), "{file}");
    assert!(matches!(samples[1].image, ImageSource::File(_)));

    std::fs::remove_file(folder.join("train.txt")).unwrap();
    let error = error_text(build_at(temp.path(), "cifar-10", &[]));
    assert!(
        error.contains(&folder.join("train.txt").display().to_string()),
        "{error}"
    );

    let error = error_text(build_at(&temp.path().join("nothing"), "cifar-10", &[]));
    assert!(
        error.contains("classification/cifar_10_20211007"),
        "{error}"
    );
}
