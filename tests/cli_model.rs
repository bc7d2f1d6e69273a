//! The model commands end to end: `encode` reproduces open_clip's features for the fixture
//! model, `tokenize` prints the reference ids and names an over-long line, `zero-shot` prints
//! a ranking per image.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

fn mvlpt() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mvlpt"))
}

fn load(path: &std::path::Path) -> std::collections::HashMap<String, candle_core::Tensor> {
    candle_core::safetensors::load(path, &candle_core::Device::Cpu).unwrap()
}

#[test]
fn encode_matches_the_reference_features() {
    let out = std::env::temp_dir().join(format!("mvlpt-encode-{}.safetensors", std::process::id()));
    for layout in ["openai", "hf"] {
        let status = mvlpt()
            .args(["encode", "--model"])
            .arg(fixture(&format!("clip/{layout}")))
            .arg("--images")
            .arg(fixture("clip/images"))
            .arg("--texts")
            .arg(fixture("clip/texts.txt"))
            .arg("--out")
            .arg(&out)
            .status()
            .unwrap();
        assert!(status.success());
        let ours = load(&out);
        let reference = load(&fixture("clip/reference.safetensors"));
        for key in ["image_embeds", "text_embeds", "logits_per_image"] {
            let diff = (&ours[key] - &reference[key])
                .unwrap()
                .abs()
                .unwrap()
                .flatten_all()
                .unwrap()
                .max(0)
                .unwrap();
            let diff: f32 = diff.to_scalar().unwrap();
            assert!(diff < 1e-4, "{layout} {key}: max difference {diff}");
        }
    }
    std::fs::remove_file(&out).unwrap();
}

fn tokenize(input: &str, extra: &[&str]) -> std::process::Output {
    let mut child = mvlpt()
        .arg("tokenize")
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn tokenize_prints_reference_ids_and_names_the_long_line() {
    let reference = load(&fixture("clip/reference.safetensors"))["input_ids"]
        .to_dtype(candle_core::DType::U32)
        .unwrap()
        .to_vec2::<u32>()
        .unwrap();
    let texts = std::fs::read_to_string(fixture("clip/texts.txt")).unwrap();
    let out = tokenize(&texts, &[]);
    assert!(out.status.success());
    let rows: Vec<Vec<u32>> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows, reference);

    let out = tokenize(
        "short\nthis line is much too long for four tokens\n",
        &["--context-length", "4"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("line 2"), "{err}");
    let out = tokenize(
        "this line is much too long for four tokens\n",
        &["--context-length", "4", "--truncate"],
    );
    assert!(out.status.success());
    let row: Vec<u32> =
        serde_json::from_str(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
    assert_eq!(row.len(), 4);
    assert_eq!(row[3], 49407);
}

#[test]
fn zero_shot_ranks_every_class_for_every_image() {
    let classes = std::env::temp_dir().join(format!("mvlpt-classes-{}.txt", std::process::id()));
    std::fs::write(&classes, "cat\ndog\nstar\n").unwrap();
    let out = mvlpt()
        .args(["zero-shot", "--top", "3", "--model"])
        .arg(fixture("clip/openai"))
        .arg("--images")
        .arg(fixture("clip/images"))
        .arg("--classes")
        .arg(&classes)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4);
    for line in lines {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 4, "{line}");
        let percents: f32 = fields[1..]
            .iter()
            .map(|f| {
                f.rsplit(' ')
                    .next()
                    .unwrap()
                    .trim_end_matches('%')
                    .parse::<f32>()
                    .unwrap()
            })
            .sum();
        assert!((percents - 100.0).abs() < 0.5, "{line}");
    }
    std::fs::remove_file(&classes).unwrap();
}
