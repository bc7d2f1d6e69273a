//! Dynamically loaded plugins: the example KgCoOp library loads, registers with its file as
//! origin, shares the host's framework (tensor ids and gradients are consistent), and libraries
//! that are not plugins or were built against another framework build are refused before
//! loading.

// The test links the framework through the shared library, like the mvlpt binary.
#[allow(unused_imports)]
use mvlpt_dylib as _;

use mvlpt_framework::plugin::{Factory, Origin, PluginKind, Registry};
use std::path::{Path, PathBuf};

/// `target/<profile>` of this test binary.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

/// The KgCoOp plugin library. It is a dev-dependency of this package, so cargo builds it in
/// the same invocation as this test, with the same dependency features as the framework the
/// test links (a plugin must be built together with its host: see docs/plugins.md).
fn kgcoop_library() -> PathBuf {
    let dir = profile_dir();
    let lib = dir.join("deps").join("libmvlpt_kgcoop.so");
    assert!(
        lib.is_file(),
        "{} missing: build with `cargo test` (it is a dev-dependency)",
        lib.display()
    );
    lib
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mvlpt-dyn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn the_kgcoop_library_loads_and_registers_with_its_origin() {
    let lib = kgcoop_library();
    let registry = Registry::with_libraries(std::slice::from_ref(&lib)).unwrap();
    let entry = registry.get(PluginKind::Method, "kgcoop").unwrap();
    assert_eq!(entry.origin, Origin::Library(lib.canonicalize().unwrap()));
    assert!(matches!(entry.plugin.factory, Factory::Method(_)));
    // Loading it twice registers the same name twice: refused as a duplicate.
    let mut again = registry.clone();
    let err = again.load_library(&lib).unwrap_err().to_string();
    assert!(err.contains("duplicate method plugin `kgcoop`"), "{err}");
}

#[test]
fn the_plugin_shares_the_hosts_framework_and_gradients_flow() {
    use mvlpt_framework::config::LoadedConfig;
    use mvlpt_framework::engine::{forward, BatchTargets, ForwardOptions, ImageInput, TaskMasking};
    use mvlpt_framework::method::{ModelEnv, StepContext};
    let registry = Registry::with_libraries(&[kgcoop_library()]).unwrap();
    let loaded = LoadedConfig::load(
        None,
        &[
            "method.name=kgcoop".into(),
            "method.kgcoop.lambda=2.0".into(),
        ],
    )
    .unwrap();
    let build = registry.method("kgcoop").unwrap();
    let mut method = build(&loaded.section("method.kgcoop")).unwrap();
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/clip/openai");
    let clip = mvlpt_framework::model::load_clip(model, &Default::default()).unwrap();
    let tokenizer = mvlpt_framework::model::tokenizer::ClipTokenizer::new();
    let device = candle_core::Device::Cpu;
    let env = ModelEnv {
        clip: &clip,
        tokenizer: &tokenizer,
        device: &device,
    };
    let host_var = candle_core::Var::zeros(1, candle_core::DType::F32, &device).unwrap();
    method
        .bind(
            &env,
            &["cat".into(), "dog".into(), "bird".into()],
            &mut mvlpt_framework::rng::seeded(0),
        )
        .unwrap();
    let params = method.parameters();
    assert_eq!(params.len(), 1);
    // One tensor-id counter: the plugin's Var was numbered after the host's.
    assert_ne!(params[0].1.as_tensor().id(), host_var.as_tensor().id());
    let prompts = method
        .prompts(
            &env,
            &mut StepContext::training(2, &mut mvlpt_framework::rng::seeded(1)),
        )
        .unwrap();
    let features = mvlpt_framework::rng::normal(
        (2, clip.config.embed_dim),
        0.0,
        1.0,
        &mut mvlpt_framework::rng::seeded(2),
        &device,
    )
    .unwrap();
    let result = forward::train_step(
        &env,
        method.as_ref(),
        &prompts,
        ImageInput::Features(features),
        &BatchTargets::Labels(vec![0, 2]),
        &[(0, 3), (0, 3)],
        &mut Default::default(),
        ForwardOptions {
            text_chunk: 256,
            masking: TaskMasking::None,
        },
    )
    .unwrap();
    assert_eq!(result.terms.len(), 1, "the regulariser is reported");
    assert!(result.terms[0].1 >= 0.0);
    let norms = forward::grad_norms(&result.grads, &params).unwrap();
    assert!(norms["ctx"].is_finite() && norms["ctx"] > 0.0, "{norms:?}");
}

#[test]
fn a_library_built_against_another_framework_build_is_refused() {
    let lib = kgcoop_library();
    let mut bytes = std::fs::read(&lib).unwrap();
    // Change one byte of the fingerprint inside the header (after magic, ABI, version, rustc).
    let header = bytes
        .windows(8)
        .position(|w| w == b"MVLPTPLG")
        .expect("header in the file");
    let fingerprint = header + 8 + 4 + 32 + 128;
    bytes[fingerprint] ^= 0x01;
    let tampered = scratch("libtampered.so");
    std::fs::write(&tampered, &bytes).unwrap();
    let err = Registry::with_libraries(&[tampered])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("refusing plugin") && err.contains("fingerprint"),
        "{err}"
    );
}

#[test]
fn a_library_that_is_not_a_plugin_is_refused() {
    // The framework's own shared library is a valid ELF library without a plugin header.
    let framework = profile_dir().join("libmvlpt_dylib.so");
    let framework = if framework.is_file() {
        framework
    } else {
        profile_dir().join("deps/libmvlpt_dylib.so")
    };
    let err = Registry::with_libraries(&[framework])
        .unwrap_err()
        .to_string();
    assert!(err.contains("is not an mvlpt plugin"), "{err}");
    let text = scratch("libnotes.so");
    std::fs::write(&text, "just text").unwrap();
    let err = Registry::with_libraries(&[text]).unwrap_err().to_string();
    assert!(err.contains("not a shared library"), "{err}");
}

/// `mvlpt plugins list` shows the loaded library as the plugin's origin, and `mvlpt run` trains
/// KgCoOp from it through the ordinary experiment path: run directory, metrics with the
/// plugin's own loss term, result.
#[test]
fn mvlpt_run_trains_the_kgcoop_plugin_like_a_built_in_method() {
    let lib = kgcoop_library();
    let dir = scratch("kgcoop-run");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let experiment = dir.join("kgcoop.toml");
    std::fs::write(
        &experiment,
        format!(
            r#"name = "kgcoop-tiny"
[plugins]
paths = [{lib:?}]
[model]
source = "random:tiny"
[data]
dataset = "synthetic_shape"
fewshot = "dassl"
shots = 2
batch_size = 4
[data.synthetic_shape]
train_size = 60
val_size = 12
test_size = 12
[method]
name = "kgcoop"
[method.kgcoop]
n_ctx = 2
lambda = 8.0
[train]
epochs = 2
lr = 0.01
[output]
runs_dir = {runs:?}
"#,
            runs = dir.join("runs"),
        ),
    )
    .unwrap();
    let mvlpt = env!("CARGO_BIN_EXE_mvlpt");
    let list = std::process::Command::new(mvlpt)
        .args(["plugins", "list"])
        .env("MVLPT_PLUGIN_PATH", &lib)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&list.stdout).to_string();
    let line = text
        .lines()
        .find(|l| l.starts_with("kgcoop "))
        .unwrap_or_else(|| panic!("kgcoop not listed:\n{text}"));
    assert!(
        line.contains("method") && line.contains("libmvlpt_kgcoop.so"),
        "{line}"
    );

    let output = std::process::Command::new(mvlpt)
        .arg("run")
        .arg(&experiment)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let runs = dir.join("runs/kgcoop-tiny");
    let run = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .expect("a run directory");
    assert!(run.join("COMPLETE").is_file());
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("result.json")).unwrap()).unwrap();
    assert_eq!(result["method"], "kgcoop");
    assert_eq!(result["epochs"], 2);
    let test = result["test"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&test), "{test}");
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert!(
        metrics.contains("kg"),
        "the plugin's loss term is logged:\n{metrics}"
    );
    assert!(runs.join("report.png").is_file());
}

/// A dynamically loaded plugin's options are checked like a built-in's when the config is
/// loaded: a misspelt KgCoOp key fails the dry run naming the key and the closest one.
#[test]
fn a_dynamic_plugins_options_are_checked_before_anything_runs() {
    let lib = kgcoop_library();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_mvlpt"))
        .args(["run", "experiments/quickstart.toml", "--dry-run"])
        .args(["--set", "method.kgcoop.lamda=2.0"])
        .env("MVLPT_PLUGIN_PATH", &lib)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("`method.kgcoop.lamda`")
            && stderr.contains("--set method.kgcoop.lamda=2.0")
            && stderr.contains("did you mean `method.kgcoop.lambda`?"),
        "{stderr}"
    );
}

/// A directory is scanned for plugins: shared libraries without a plugin header (the
/// framework's own `libmvlpt_dylib.so`, which cargo puts next to every plugin it builds) are
/// skipped, the plugins in it load. Named explicitly, such a file is still refused.
#[test]
fn a_directory_scan_skips_libraries_that_are_not_plugins() {
    let dir = scratch("scan");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let framework = ["libmvlpt_dylib.so", "deps/libmvlpt_dylib.so"]
        .map(|name| profile_dir().join(name))
        .into_iter()
        .find(|path| path.is_file())
        .unwrap();
    std::os::unix::fs::symlink(&framework, dir.join("libmvlpt_dylib.so")).unwrap();
    std::os::unix::fs::symlink(kgcoop_library(), dir.join("libmvlpt_kgcoop.so")).unwrap();
    std::fs::write(dir.join("libnotes.so"), "not a library").unwrap();
    let registry = Registry::with_libraries(std::slice::from_ref(&dir)).unwrap();
    assert!(registry.contains(PluginKind::Method, "kgcoop"));
    let err = Registry::with_libraries(&[dir.join("libmvlpt_dylib.so")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("is not an mvlpt plugin"), "{err}");
}
