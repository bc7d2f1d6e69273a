//! Sizes and inputs that used to crash or pass silently: huge context lengths and prompt
//! lengths are refused up front, an empty text file is an error of ours, a model with NaN
//! weights is refused at load, and a user error is one line even with `RUST_BACKTRACE=1`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn mvlpt(args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mvlpt"))
        .args(args)
        .envs(env.iter().copied())
        .env_remove("MVLPT_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// stderr of a command that must fail with an error (exit code 1, not a panic or an abort).
fn error_of(args: &[&str], env: &[(&str, &str)]) -> String {
    let output = mvlpt(args, env, "a photo of a cat\n");
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
    stderr
}

#[test]
fn context_and_prompt_lengths_are_bounded_up_front() {
    for length in ["18446744073709551615", "100000000000", "65537"] {
        let stderr = error_of(&["tokenize", "--context-length", length], &[]);
        assert!(
            stderr.contains("--context-length") && stderr.contains("limit of 65536 tokens"),
            "{stderr}"
        );
    }
    let output = mvlpt(&["tokenize", "--context-length", "65536"], &[], "hi\n");
    assert!(output.status.success());
    for set in ["method.vpt.n_ctx=1000000", "method.coop.n_ctx=1000000"] {
        let stderr = error_of(
            &[
                "run",
                "experiments/quickstart.toml",
                "--dry-run",
                "--set",
                set,
            ],
            &[],
        );
        let key = set.split('=').next().unwrap();
        assert!(
            stderr.contains(&format!("`{key}`")) && stderr.contains("from 0 to 1024"),
            "{stderr}"
        );
    }
}

#[test]
fn encoding_an_empty_text_file_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let texts = dir.path().join("empty.txt");
    std::fs::write(&texts, "").unwrap();
    let out = dir.path().join("out.safetensors");
    let stderr = error_of(
        &[
            "encode",
            "--model",
            "random:tiny",
            "--texts",
            texts.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        stderr.contains("empty.txt is empty: expected one text per line"),
        "{stderr}"
    );
    assert!(!stderr.contains("cat expects"), "{stderr}");
}

/// The embedded model with the first value of `ln_final.weight` set to NaN.
fn nan_model(path: &Path) {
    let bytes = std::fs::read("models/mvlpt-tiny.safetensors").unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let entry = &header["ln_final.weight"];
    assert_eq!(entry["dtype"], "F16");
    let start = 8 + header_len + entry["data_offsets"][0].as_u64().unwrap() as usize;
    let mut bytes = bytes;
    bytes[start..start + 2].copy_from_slice(&0x7e00u16.to_le_bytes()); // f16 NaN
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_model_with_nan_weights_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("nan.safetensors");
    nan_model(&model);
    let texts = dir.path().join("texts.txt");
    std::fs::write(&texts, "a photo of a cat\n").unwrap();
    let out = dir.path().join("out.safetensors");
    let stderr = error_of(
        &[
            "encode",
            "--model",
            model.to_str().unwrap(),
            "--texts",
            texts.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        stderr.contains("nan.safetensors")
            && stderr.contains("NaN or infinite")
            && stderr.contains("`ln_final.weight` (1 of"),
        "{stderr}"
    );
    assert!(!out.exists());
}

#[test]
fn a_user_error_is_one_line_even_with_rust_backtrace() {
    let dir = tempfile::tempdir().unwrap();
    let texts = dir.path().join("empty.txt");
    std::fs::write(&texts, "").unwrap();
    let model = dir.path().join("nan.safetensors");
    nan_model(&model);
    // Errors from our code (on main the first one came from candle, with its backtrace), from
    // a bad tensor file and from config loading.
    let bad_file = dir.path().join("bad.safetensors");
    std::fs::write(&bad_file, b"\x10\0\0\0\0\0\0\0{\"a\": 1}        ").unwrap();
    let out = dir.path().join("out.safetensors");
    let (texts, model, bad_file, out) = (
        texts.to_str().unwrap(),
        model.to_str().unwrap(),
        bad_file.to_str().unwrap(),
        out.to_str().unwrap(),
    );
    let commands: [&[&str]; 4] = [
        &[
            "encode",
            "--model",
            "random:tiny",
            "--texts",
            texts,
            "--out",
            out,
        ],
        &["encode", "--model", model, "--texts", texts, "--out", out],
        &["ckpt", "show", bad_file],
        &[
            "config",
            "show",
            "experiments/quickstart.toml",
            "--set",
            "train.lr=-1",
        ],
    ];
    for args in commands {
        let stderr = error_of(args, &[("RUST_BACKTRACE", "1")]);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}:\n{stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(!stderr.contains("stack backtrace"), "{stderr}");
    }
}
