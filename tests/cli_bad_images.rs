//! Bad images on disk, end to end: a truncated JPEG (PIL refuses it), a dangling symbolic link
//! and a PNG whose header claims 100000×100000 pixels are each named by `data check`, skipped
//! and counted by a run with `on_bad_image = "skip"` (even alone in the last evaluation batch),
//! and refused with an error, never an abort, by `encode`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

/// A PNG whose header claims `width` × `height` RGB pixels, with almost no pixel data.
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in bytes {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let body: Vec<u8> = kind.iter().chain(data).copied().collect();
        out.extend(&body);
        out.extend(crc32(&body).to_be_bytes());
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::new();
    header.extend(width.to_be_bytes());
    header.extend(height.to_be_bytes());
    header.extend([8, 2, 0, 0, 0]);
    chunk(&mut png, b"IHDR", &header);
    chunk(
        &mut png,
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    chunk(&mut png, b"IEND", &[]);
    png
}

/// `root/shapes/{train,val,test}/{cat,dog}/` with good images, plus `bad` files (name,
/// content) in `test/dog`, which sort after the good ones. Returns the experiment file.
fn dataset(dir: &Path, bad: &[(&str, Vec<u8>)], dangling: bool) -> PathBuf {
    let good = std::fs::read(fixture("transforms/images/rgb_37x53.png")).unwrap();
    for (split, per_class) in [("train", 2), ("val", 1), ("test", 1)] {
        for class in ["cat", "dog"] {
            let folder = dir.join("root/shapes").join(split).join(class);
            std::fs::create_dir_all(&folder).unwrap();
            for i in 0..per_class {
                std::fs::write(folder.join(format!("good{i}.png")), &good).unwrap();
            }
        }
    }
    let test_dog = dir.join("root/shapes/test/dog");
    for (name, content) in bad {
        std::fs::write(test_dog.join(name), content).unwrap();
    }
    if dangling {
        std::os::unix::fs::symlink(dir.join("nowhere.jpg"), test_dog.join("zz-link.jpg")).unwrap();
    }
    let experiment = dir.join("bad.toml");
    std::fs::write(
        &experiment,
        format!(
            r#"[model]
source = "random:tiny"
[data]
root = "root"
dataset = "image_folder"
fewshot = "all"
batch_size = 2
eval_batch_size = 3
on_bad_image = "skip"
[data.image_folder]
dir = "shapes"
[method]
name = "vpt"
[method.vpt]
n_ctx = 2
[train]
epochs = 1
[output]
runs_dir = {:?}
"#,
            dir.join("runs")
        ),
    )
    .unwrap();
    experiment
}

fn mvlpt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mvlpt"))
        .args(args)
        .env_remove("MVLPT_LOG")
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

fn truncated_jpeg() -> Vec<u8> {
    std::fs::read(fixture("images/truncated/baseline-cut-90.jpg")).unwrap()
}

#[test]
fn data_check_names_truncated_dangling_and_oversized_images() {
    let dir = tempfile::tempdir().unwrap();
    let experiment = dataset(
        dir.path(),
        &[
            ("zz-bomb.png", png_claiming(100_000, 100_000)),
            ("zz-cut.jpg", truncated_jpeg()),
        ],
        true,
    );
    let output = mvlpt(&["data", "check", experiment.to_str().unwrap()]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(out.contains("3 missing or unreadable"), "{out}");
    for part in [
        "zz-bomb.png declares 100000x100000 pixels",
        "zz-cut.jpg: the file ends before all its image data",
        "zz-link.jpg (a symbolic link to",
    ] {
        assert!(out.contains(part), "{part:?} missing from:\n{out}");
    }
}

#[test]
fn a_bad_image_alone_in_the_last_evaluation_batch_is_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    // The test split in batches of 3: [cat/good0, dog/good0, dog/zz-bomb.png] and the
    // dangling dog/zz-link.jpg alone in the last batch.
    let experiment = dataset(
        dir.path(),
        &[("zz-bomb.png", png_claiming(100_000, 100_000))],
        true,
    );
    let output = mvlpt(&["run", experiment.to_str().unwrap()]);
    let out = text(&output);
    assert!(output.status.success(), "{out}");
    let run = std::fs::read_dir(dir.path().join("runs/bad"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap();
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(metrics.lines().last().unwrap()).unwrap();
    assert_eq!(last["test_skipped_images"], 2, "{metrics}");
    let log = std::fs::read_to_string(run.join("log.txt")).unwrap();
    assert!(log.contains("2 unreadable test images skipped"), "{log}");
}

#[test]
fn encode_refuses_an_oversized_image_without_aborting() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    std::fs::write(images.join("bomb.png"), png_claiming(100_000, 100_000)).unwrap();
    let out_file = dir.path().join("out.safetensors");
    let output = mvlpt(&[
        "encode",
        "--model",
        "random:tiny",
        "--images",
        images.to_str().unwrap(),
        "--out",
        out_file.to_str().unwrap(),
    ]);
    let out = text(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(
        out.contains("bomb.png declares 100000x100000 pixels"),
        "{out}"
    );
    assert!(!out_file.exists());
}
