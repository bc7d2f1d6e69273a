//! Sizes and inputs that used to crash: huge context lengths and prompt lengths are refused
//! up front, and an empty text file is an error of ours.

use std::io::Write;
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
