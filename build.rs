//! Lets `target/<profile>/mvlpt` run without `cargo run`: the binary links the framework
//! dynamically (see `framework/dylib`), so it records where to find `libmvlpt_dylib.so`
//! (next to itself or in `deps/`) and the Rust standard library (the toolchain's sysroot).
use std::process::Command;

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let target = std::env::var("TARGET").unwrap_or_default();
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string());
    // deps/ first: it always holds the dylib of the latest build, while an uplifted copy next to
    // the binary may be left over from an earlier `cargo build --workspace`.
    let mut paths = vec!["$ORIGIN/deps".to_string(), "$ORIGIN".to_string()];
    if let Some(root) = sysroot {
        paths.push(format!("{root}/lib/rustlib/{target}/lib"));
    }
    println!("cargo:rustc-link-arg-bins=-Wl,-rpath,{}", paths.join(":"));
    println!("cargo:rerun-if-changed=build.rs");
}
