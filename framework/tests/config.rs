//! Config layering (defaults < file < extends < env < --set), provenance in errors, unknown keys.

use mvlpt_framework::config::LoadedConfig;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Tests touching process environment variables run one at a time.
static ENV: Mutex<()> = Mutex::new(());

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

fn tempdir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mvlpt-config-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn sets(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn later_layers_win_and_provenance_names_each_layer() {
    let _guard = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempdir("layers");
    write(
        &dir,
        "base/common.toml",
        "seed = 7\n[train]\nlr = 0.1\nepochs = 3\nbatch_size_unused = 0\n"
            .replace("batch_size_unused = 0\n", "")
            .as_str(),
    );
    let exp = write(
        &dir,
        "exp.toml",
        "extends = [\"base/common.toml\"]\n[train]\nlr = 0.2\n[data]\nshots = 4\n",
    );
    std::env::set_var("MVLPT_DATA__SHOTS", "8");
    let loaded =
        LoadedConfig::load(Some(&exp), &sets(&["train.epochs=5", "method.name=vpt"])).unwrap();
    std::env::remove_var("MVLPT_DATA__SHOTS");
    let c = &loaded.config;
    assert_eq!(c.seed, 7, "from the extended file");
    assert_eq!(c.train.lr, 0.2, "the file beats what it extends");
    assert_eq!(c.data.shots, 8, "env beats the file");
    assert_eq!(c.train.epochs, 5, "--set beats the file");
    assert_eq!(c.method.name, "vpt");
    assert_eq!(c.name, "exp", "name defaults to the file stem");
    assert_eq!(
        c.train.momentum, 0.9,
        "untouched values keep their defaults"
    );

    let p = loaded.provenance();
    assert!(p["seed"].contains("common.toml"), "{}", p["seed"]);
    assert!(p["train.lr"].contains("exp.toml"), "{}", p["train.lr"]);
    assert_eq!(p["data.shots"], "environment variable MVLPT_DATA__SHOTS");
    assert_eq!(p["train.epochs"], "--set train.epochs=5");
    assert!(
        p["train.momentum"].contains("built-in"),
        "{}",
        p["train.momentum"]
    );
}

#[test]
fn a_bad_value_is_reported_with_key_value_and_source() {
    let _guard = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempdir("bad");
    let exp = write(&dir, "bad.toml", "[train]\nlr = \"fast\"\n");
    let err = LoadedConfig::load(Some(&exp), &[]).unwrap_err().to_string();
    assert!(
        err.contains("train.lr") && err.contains("fast") && err.contains("bad.toml"),
        "{err}"
    );

    let ok = write(&dir, "ok.toml", "");
    std::env::set_var("MVLPT_TRAIN__EPOCHS", "many");
    let err = LoadedConfig::load(Some(&ok), &[]).unwrap_err().to_string();
    std::env::remove_var("MVLPT_TRAIN__EPOCHS");
    assert!(
        err.contains("train.epochs") && err.contains("many") && err.contains("MVLPT_TRAIN__EPOCHS"),
        "{err}"
    );

    let err = LoadedConfig::load(Some(&ok), &sets(&["data.shots=-3"]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("data.shots") && err.contains("-3") && err.contains("--set data.shots=-3"),
        "{err}"
    );
}

#[test]
fn unknown_keys_are_errors_naming_the_key_and_file() {
    let _guard = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempdir("unknown");
    let exp = write(&dir, "typo.toml", "[train]\nlearning_rate = 0.1\n");
    let err = LoadedConfig::load(Some(&exp), &[]).unwrap_err().to_string();
    assert!(
        err.contains("learning_rate") && err.contains("typo.toml"),
        "{err}"
    );
    let err = LoadedConfig::load(None, &sets(&["trian.lr=0.1"]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("trian") && err.contains("--set trian.lr=0.1"),
        "{err}"
    );
}

#[test]
fn set_values_parse_as_toml_then_fall_back_to_strings() {
    let _guard = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let loaded = LoadedConfig::load(
        None,
        &sets(&[
            "data.tasks=[\"a\", \"b\"]",
            "model.source=openai/clip-vit-base-patch16",
            "train.nesterov=true",
        ]),
    )
    .unwrap();
    assert_eq!(loaded.config.data.tasks, vec!["a", "b"]);
    assert_eq!(loaded.config.model.source, "openai/clip-vit-base-patch16");
    assert!(loaded.config.train.nesterov);
}

#[test]
fn extends_cycles_and_missing_files_are_reported() {
    let _guard = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempdir("cycle");
    write(&dir, "a.toml", "extends = \"b.toml\"\n");
    let b = write(&dir, "b.toml", "extends = \"a.toml\"\n");
    let err = LoadedConfig::load(Some(&b), &[]).unwrap_err().to_string();
    assert!(err.contains("cycle"), "{err}");
    let c = write(&dir, "c.toml", "extends = \"missing.toml\"\n");
    let err = LoadedConfig::load(Some(&c), &[]).unwrap_err().to_string();
    assert!(err.contains("missing.toml"), "{err}");
}

#[test]
fn plugin_sections_reject_unknown_keys_with_provenance() {
    let _guard = ENV.lock().unwrap_or_else(|e| e.into_inner());
    #[derive(serde::Deserialize, Debug, Default)]
    #[serde(deny_unknown_fields, default)]
    struct CoopOptions {
        n_ctx: usize,
    }
    let dir = tempdir("section");
    let exp = write(&dir, "m.toml", "[method.coop]\nn_ctx = 4\nctx_len = 2\n");
    let loaded = LoadedConfig::load(Some(&exp), &[]).unwrap();
    let err = loaded
        .section("method.coop")
        .extract::<CoopOptions>()
        .unwrap_err()
        .to_string();
    assert!(err.contains("ctx_len") && err.contains("m.toml"), "{err}");
    let absent = loaded
        .section("method.vpt")
        .extract::<CoopOptions>()
        .unwrap();
    assert_eq!(absent.n_ctx, 0);
}

#[test]
fn relative_paths_resolve_against_the_file_that_set_them() {
    let _guard = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempdir("paths");
    write(&dir, "shared/base.toml", "[data]\nroot = \"../data\"\n");
    let exp = write(
        &dir,
        "exps/deeper/exp.toml",
        "extends = \"../../shared/base.toml\"\n[method]\ninit_from = \"source.safetensors\"\n",
    );
    let loaded = LoadedConfig::load(Some(&exp), &[]).unwrap();
    let root = loaded.resolve_path_of("data.root", &loaded.config.data.root);
    assert_eq!(lexical(&root), dir.join("data"));
    let init = loaded.config.method.init_from.clone().unwrap();
    assert_eq!(
        lexical(&loaded.resolve_path_of("method.init_from", Path::new(&init))),
        dir.join("exps/deeper/source.safetensors")
    );
    // A --set value resolves against the experiment file's directory; absolute paths stay.
    let loaded = LoadedConfig::load(Some(&exp), &sets(&["data.root=\"elsewhere\""])).unwrap();
    assert_eq!(
        lexical(&loaded.resolve_path_of("data.root", &loaded.config.data.root)),
        dir.join("exps/deeper/elsewhere")
    );
    assert_eq!(
        loaded.resolve_path_of("data.root", Path::new("/abs/data")),
        PathBuf::from("/abs/data")
    );
}

/// `a/b/../c` → `a/c`, without touching the file system.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}
