//! `mvlpt data check` end to end on copies of the dataset fixtures (written by
//! tools/fixtures/datasets.py), and the paper's experiment files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/datasets/root")
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A temporary data root holding copies of the named fixture directories, and an experiment
/// file next to it.
fn workspace(dirs: &[&str], experiment: &str) -> (tempfile::TempDir, PathBuf) {
    let temp = tempfile::tempdir().unwrap();
    for dir in dirs {
        copy_tree(
            &fixture_root().join(dir),
            &temp.path().join("root").join(dir),
        );
    }
    let file = temp.path().join("experiment.toml");
    std::fs::write(&file, format!("[data]\nroot = \"root\"\n{experiment}")).unwrap();
    (temp, file)
}

fn check(file: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mvlpt"))
        .args(["data", "check"])
        .arg(file)
        .args(extra)
        .env_remove("MVLPT_DATA__ROOT")
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn a_complete_dataset_passes_with_counts() {
    let (_temp, file) = workspace(
        &["classification/voc2007_20211007", "caltech-101"],
        "tasks = [\"voc-2007-classification\", \"caltech101\"]\n",
    );
    let output = check(&file, &["--per-class"]);
    let out = text(&output);
    assert!(output.status.success(), "{out}");
    assert!(out.contains("dataset voc-2007-classification"), "{out}");
    assert!(
        out.contains("20 classes, metric 11point_mAP, multi-label"),
        "{out}"
    );
    assert!(out.contains("dataset caltech101"), "{out}");
    assert!(out.contains("all 2 dataset(s) readable"), "{out}");
    assert!(out.contains("leopard"), "{out}");
}

#[test]
fn missing_and_unreadable_images_are_named_and_fail() {
    let (temp, file) = workspace(&["caltech-101"], "dataset = \"caltech101\"\n");
    let images = temp.path().join("root/caltech-101/101_ObjectCategories");
    let missing = images.join("accordion/image_0001.jpg");
    let broken = images.join("airplanes/image_0002.jpg");
    std::fs::remove_file(&missing).unwrap();
    std::fs::write(&broken, b"not an image").unwrap();
    let output = check(&file, &[]);
    let out = text(&output);
    assert!(!output.status.success(), "{out}");
    assert!(
        out.contains(&format!("missing image file {}", missing.display())),
        "{out}"
    );
    assert!(
        out.contains(&format!("unreadable image {}", broken.display())),
        "{out}"
    );
    assert!(out.contains("2 problem(s)"), "{out}");
}

#[test]
fn a_missing_zip_member_fails_and_sampling_limits_the_opened_images() {
    let (temp, file) = workspace(
        &["classification/cifar_10_20211007"],
        "dataset = \"cifar-10\"\n",
    );
    let index = temp
        .path()
        .join("root/classification/cifar_10_20211007/test.txt");
    let mut lines = std::fs::read_to_string(&index).unwrap();
    lines.push_str("val.zip@test/absent.png 3\n");
    std::fs::write(&index, lines).unwrap();
    let output = check(&file, &[]);
    let out = text(&output);
    assert!(!output.status.success(), "{out}");
    assert!(out.contains("val.zip@test/absent.png"), "{out}");

    let output = check(&file, &["--sample", "1"]);
    let out = text(&output);
    assert!(out.contains("opened 2 images"), "{out}");
}

#[test]
fn bad_configuration_is_reported() {
    let (_temp, file) = workspace(
        &["classification/cifar_10_20211007"],
        "dataset = \"cifar-10\"\n[data.cifar-10]\ncentre_crop = true\n",
    );
    let output = check(&file, &[]);
    let out = text(&output);
    assert!(!output.status.success(), "{out}");
    assert!(out.contains("centre_crop"), "{out}");

    let output = check(&file, &["--set", "data.root=nowhere"]);
    let out = text(&output);
    assert!(!output.status.success(), "{out}");
    assert!(out.contains("data.root"), "{out}");
    assert!(out.contains("--set data.root=nowhere"), "{out}");

    let output = check(&file, &["--set", "data.dataset=cifar10"]);
    let out = text(&output);
    assert!(out.contains("did you mean `cifar-10`?"), "{out}");
}

#[test]
fn every_paper_experiment_checks_out_on_the_fixture_root() {
    // The fixture root holds every CoOp and ELEVATER dataset in its real layout (a few images
    // each), so each experiment of the paper must resolve, build its datasets and open them all.
    let paper = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("experiments/paper");
    let set_root = format!("data.root={}", fixture_root().display());
    let mut checked = 0;
    for group in ["elevater", "coop", "elevater/multitask"] {
        for entry in std::fs::read_dir(paper.join(group)).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() || path.file_name().is_some_and(|n| n == "base.toml") {
                continue;
            }
            let output = check(&path, &["--set", &set_root]);
            let out = text(&output);
            assert!(output.status.success(), "{}: {out}", path.display());
            checked += 1;
        }
    }
    // The 20 ELEVATER datasets; the 11 CoOp datasets and the CoOp multitask source; the VPT and
    // UPT multitask sources; the two multitask target files (all 20 tasks, example groups).
    assert_eq!(checked, 20 + 12 + 2 + 2);
}
