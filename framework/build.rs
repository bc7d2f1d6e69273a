//! Computes the build fingerprint that dynamically loaded plugins must match: a hash of the
//! compiler, target, profile, enabled features, crate version and every framework source file.
//! A plugin compiled against a different framework build is refused before it is loaded.

use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::Command;

fn hash_dir(dir: &Path, hasher: &mut Sha256) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            hash_dir(&path, hasher);
        } else if let Ok(bytes) = std::fs::read(&path) {
            hasher.update(
                path.to_string_lossy()
                    .rsplit("src")
                    .next()
                    .unwrap_or_default()
                    .as_bytes(),
            );
            hasher.update(&bytes);
        }
    }
}

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = Command::new(&rustc)
        .arg("-vV")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .unwrap_or_default();
    let release = rustc_version
        .lines()
        .next()
        .unwrap_or("rustc unknown")
        .to_string();
    let mut features: Vec<String> = std::env::vars()
        .filter(|(k, _)| k.starts_with("CARGO_FEATURE_"))
        .map(|(k, _)| k)
        .collect();
    features.sort();
    let mut hasher = Sha256::new();
    for part in [
        rustc_version.as_str(),
        &std::env::var("TARGET").unwrap_or_default(),
        &std::env::var("PROFILE").unwrap_or_default(),
        &std::env::var("OPT_LEVEL").unwrap_or_default(),
        &std::env::var("DEBUG").unwrap_or_default(),
        &features.join(","),
        &std::env::var("CARGO_PKG_VERSION").unwrap_or_default(),
    ] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    // The framework's sources and those of the tokenizer crate it includes.
    hash_dir(Path::new("src"), &mut hasher);
    hash_dir(Path::new("tokenizer/src"), &mut hasher);
    let digest: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let feature_list: Vec<String> = features
        .iter()
        .map(|f| f.trim_start_matches("CARGO_FEATURE_").to_lowercase())
        .collect();
    // Not MVLPT_*: cargo also sets these when it runs tests, and MVLPT_* is the config layer.
    println!(
        "cargo:rustc-env=BUILD_FINGERPRINT_OF_MVLPT={}",
        &digest[..32]
    );
    println!("cargo:rustc-env=BUILD_RUSTC_OF_MVLPT={release}");
    println!(
        "cargo:rustc-env=BUILD_FEATURES_OF_MVLPT={}",
        feature_list.join(",")
    );
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=tokenizer/src");
    println!("cargo:rerun-if-changed=build.rs");
}
