//! `image_folder` against torchvision's `ImageFolder` (and CoOp's per-class split for a flat
//! folder), and `manifest` against the fixture manifests (tests/fixtures/datasets/expected.json).

mod common;

use common::{
    build, build_at, error_text, expected, label_set_rows, relative, root, single_label_rows,
    SPLITS,
};
use mvlpt_framework::data::{ImageSource, Split};

#[test]
fn image_folder_with_split_folders_matches_torchvision() {
    let expected = expected();
    let reference = &expected["image_folder"];
    let dataset = build("image_folder", &["data.image_folder.dir=\"custom_folder\""]).unwrap();
    assert_eq!(
        serde_json::json!(dataset.info().classnames),
        reference["classnames"]
    );
    for (split, key) in SPLITS {
        let samples = dataset.samples(split).unwrap();
        assert_eq!(
            single_label_rows(&root(), &samples),
            reference[key],
            "{key}"
        );
    }
}

#[test]
fn flat_image_folder_is_split_like_coop() {
    let expected = expected();
    let reference = &expected["image_folder_flat"];
    let seed = format!("data.image_folder.split_seed={}", reference["seed"]);
    let dataset = build(
        "image_folder",
        &["data.image_folder.dir=\"custom_flat\"", &seed],
    )
    .unwrap();
    assert_eq!(
        serde_json::json!(dataset.info().classnames),
        reference["classnames"]
    );
    for (split, key) in SPLITS {
        let samples = dataset.samples(split).unwrap();
        assert_eq!(
            single_label_rows(&root(), &samples),
            reference[key],
            "{key}"
        );
    }
    let spaced = build(
        "image_folder",
        &[
            "data.image_folder.dir=\"custom_flat\"",
            "data.image_folder.underscores_to_spaces=true",
        ],
    )
    .unwrap();
    let folders: Vec<String> = reference["classnames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().replace('_', " "))
        .collect();
    assert_eq!(spaced.info().classnames, folders);
}

#[test]
fn image_folder_class_names_can_be_given() {
    let dir = "data.image_folder.dir=\"custom_folder\"";
    let dataset = build(
        "image_folder",
        &[dir, "data.image_folder.classnames=[\"kitten\", \"puppy\"]"],
    )
    .unwrap();
    assert_eq!(dataset.info().classnames, ["kitten", "puppy"]);
    let text = error_text(build(
        "image_folder",
        &[dir, "data.image_folder.classnames=[\"kitten\"]"],
    ));
    assert!(text.contains("1 class names for 2 class folders"), "{text}");
    let text = error_text(build(
        "image_folder",
        &[dir, "data.image_folder.templates=[\"a photo\"]"],
    ));
    assert!(text.contains("data.image_folder.templates"), "{text}");
}

#[test]
fn csv_manifest_rows_keep_their_labels_splits_and_captions() {
    let expected = expected();
    let reference = &expected["manifest_csv"];
    let dataset = build("manifest", &["data.manifest.file=\"manifests/data.csv\""]).unwrap();
    assert_eq!(
        serde_json::json!(dataset.info().classnames),
        reference["classnames"]
    );
    let mut found = Vec::new();
    for (split, key) in SPLITS {
        for sample in dataset.samples(split).unwrap() {
            found.push(serde_json::json!([
                relative(&root(), &sample.image),
                sample.labels[0],
                key,
                sample.caption.clone().unwrap_or_default()
            ]));
        }
    }
    let mut wanted: Vec<serde_json::Value> = reference["rows"].as_array().unwrap().clone();
    let key = |v: &serde_json::Value| v[0].as_str().unwrap().to_string();
    found.sort_by_key(key);
    wanted.sort_by_key(key);
    assert_eq!(found, wanted);
    let zipped = dataset
        .samples(Split::Val)
        .unwrap()
        .into_iter()
        .find(|s| matches!(s.image, ImageSource::Zip { .. }))
        .unwrap();
    dataset.load_image(&zipped).unwrap();
}

#[test]
fn jsonl_manifest_takes_index_and_list_labels() {
    let expected = expected();
    let reference = &expected["manifest_jsonl"];
    let file = "data.manifest.file=\"manifests/multi.jsonl\"";
    let dataset = build("manifest", &[file, "data.manifest.multilabel=true"]).unwrap();
    assert!(dataset.info().multilabel);
    let mut rows = Vec::new();
    for (split, key) in SPLITS {
        for row in label_set_rows(&root(), &dataset.samples(split).unwrap())
            .as_array()
            .unwrap()
        {
            rows.push(serde_json::json!([row[0], row[1], key]));
        }
    }
    assert_eq!(serde_json::json!(rows), reference["rows"]);
    let text = error_text(build("manifest", &[file]));
    assert!(text.contains("multi.jsonl:1"), "{text}");
    assert!(text.contains("multilabel = true"), "{text}");
}

#[test]
fn manifest_errors_name_file_and_line() {
    let temp = tempfile::tempdir().unwrap();
    let csv = temp.path().join("m.csv");
    std::fs::write(&csv, "path,label,split\na.png,cat,train\nb.png,dgo,test\n").unwrap();
    let given = "data.manifest.classnames=[\"cat\", \"dog\"]";
    let text = error_text(build_at(
        temp.path(),
        "manifest",
        &["data.manifest.file=\"m.csv\"", given],
    ));
    assert!(text.contains(&format!("{}:3", csv.display())), "{text}");
    assert!(text.contains("did you mean `dog`?"), "{text}");

    std::fs::write(&csv, "path,label,split\na.png,cat,training\n").unwrap();
    let text = error_text(build_at(
        temp.path(),
        "manifest",
        &["data.manifest.file=\"m.csv\""],
    ));
    assert!(text.contains(&format!("{}:2", csv.display())), "{text}");
    assert!(text.contains("`training`"), "{text}");

    std::fs::write(&csv, "image,class\na.png,cat\n").unwrap();
    let text = error_text(build_at(
        temp.path(),
        "manifest",
        &["data.manifest.file=\"m.csv\""],
    ));
    assert!(text.contains("no `path` column"), "{text}");

    let jsonl = temp.path().join("m.jsonl");
    std::fs::write(
        &jsonl,
        "{\"path\": \"a.png\", \"label\": \"cat\"}\n{\"label\": 1}\n",
    )
    .unwrap();
    let text = error_text(build_at(
        temp.path(),
        "manifest",
        &["data.manifest.file=\"m.jsonl\""],
    ));
    assert!(text.contains(&format!("{}:2", jsonl.display())), "{text}");

    let text = error_text(build_at(temp.path(), "manifest", &[]));
    assert!(text.contains("data.manifest.file"), "{text}");
}
