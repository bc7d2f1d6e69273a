//! What the config loader refuses up front: keys in the plugin sections that are neither the
//! section's own nor a table, values outside the closed sets, numbers out of range or not finite,
//! and experiment paths that are not files. Every error names the key, its source and, for a
//! typo, the closest valid name.

use mvlpt_framework::config::{LoadedConfig, OptimizerChoice, SelectChoice, TaskMaskingChoice};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Tests touching process environment variables run one at a time.
static ENV: Mutex<()> = Mutex::new(());

fn tempdir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mvlpt-checks-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The load error of `sets` over `file` (which must fail).
fn error_of(file: Option<&Path>, sets: &[&str]) -> String {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    match LoadedConfig::load(file, &sets) {
        Ok(loaded) => panic!("{sets:?} loaded: {:?}", loaded.config),
        Err(error) => format!("{error:#}"),
    }
}

fn assert_mentions(error: &str, parts: &[&str]) {
    for part in parts {
        assert!(error.contains(part), "{part:?} missing from: {error}");
    }
}

#[test]
fn section_keys_that_are_not_tables_are_typos_naming_the_closest_key() {
    let _guard = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempdir("keys");
    let file = write(
        &dir,
        "typos.toml",
        "[data]\nshot = 16\n[method]\ninit_form = \"source.safetensors\"\n",
    );
    let error = error_of(Some(&file), &[]);
    assert_mentions(
        &error,
        &[
            "`data.shot`",
            "typos.toml",
            "did you mean `data.shots`?",
            "`method.init_form`",
            "did you mean `method.init_from`?",
        ],
    );
    let error = error_of(None, &["data.batchsize=2"]);
    assert_mentions(
        &error,
        &[
            "`data.batchsize`",
            "--set data.batchsize=2",
            "did you mean `data.batch_size`?",
        ],
    );
    std::env::set_var("MVLPT_EVAL__KEYY", "1");
    let error = error_of(None, &[]);
    std::env::remove_var("MVLPT_EVAL__KEYY");
    assert_mentions(
        &error,
        &[
            "`eval.keyy`",
            "environment variable MVLPT_EVAL__KEYY",
            "did you mean `eval.key`?",
        ],
    );
    // Tables stay: they are plugin options, checked against the registry when runs are planned.
    LoadedConfig::load(None, &["method.coop.n_ctx=4".into()]).unwrap();
}

#[test]
fn unknown_keys_of_typed_sections_name_the_closest_key() {
    let _guard = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let error = error_of(None, &["train.lrr=0.1"]);
    assert_mentions(&error, &["`train.lrr`", "did you mean `train.lr`?"]);
    let error = error_of(None, &["trian.lr=0.1"]);
    assert_mentions(&error, &["`trian`", "did you mean `train`?"]);
}

#[test]
fn closed_sets_are_checked_at_load_with_the_closest_value() {
    let _guard = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let cases = [
        ("model.device", "\"gpu\"", "cpu, cuda or cuda:N"),
        ("model.dtype", "\"fp16\"", "\"f16\""),
        ("data.task_order", "\"sort\"", "\"sorted\""),
        ("data.on_bad_image", "\"skipp\"", "\"skip\""),
        ("data.task_masking", "\"neg_inf\"", "\"neg_infinity\""),
        ("train.optimizer", "\"adamm\"", "\"adamw\""),
        ("train.schedule", "\"cosin\"", "\"cosine\""),
        ("train.warmup_type", "\"linaer\"", "\"linear\""),
        ("train.select", "\"best\"", "\"best_val\""),
    ];
    for (key, value, hint) in cases {
        let set = format!("{key}={value}");
        let error = error_of(None, &[set.as_str()]);
        assert_mentions(
            &error,
            &[&format!("`{key}`"), &format!("--set {set}"), hint],
        );
    }
    let loaded = LoadedConfig::load(
        None,
        &[
            "train.optimizer=adamw".into(),
            "train.select=last".into(),
            "data.task_masking=neg_infinity".into(),
            "model.device=\"cuda:1\"".into(),
        ],
    )
    .unwrap();
    let config = &loaded.config;
    assert_eq!(config.train.optimizer, OptimizerChoice::Adamw);
    assert_eq!(config.train.select, SelectChoice::Last);
    assert_eq!(config.data.task_masking, TaskMaskingChoice::NegInfinity);
    // Written back as the same strings (run ids hash this serialisation).
    let json = serde_json::to_value(config).unwrap();
    assert_eq!(json["train"]["optimizer"], "adamw");
    assert_eq!(json["data"]["task_masking"], "neg_infinity");
    assert_eq!(json["model"]["device"], "cuda:1");
    assert_eq!(json["model"]["dtype"], "f32");
}

#[test]
fn numbers_are_range_checked_at_load_naming_the_key_and_source() {
    let _guard = ENV.lock().unwrap_or_else(|e| e.into_inner());
    for set in [
        "train.lr=-0.1",
        "train.lr=nan",
        "train.lr=inf",
        "train.momentum=-0.9",
        "train.weight_decay=-5e-4",
        "train.warmup_lr=-1e-5",
        "train.adam_eps=-1e-8",
        "train.betas=[0.9, 1.5]",
        "data.batch_size=0",
        "data.eval_batch_size=0",
        "data.prefetch=9223372036854775807",
        "data.shots=18446744073709551615",
        "train.text_chunk=0",
    ] {
        let key = set.split('=').next().unwrap();
        let error = error_of(None, &[set]);
        assert_mentions(&error, &[&format!("`{key}`"), &format!("--set {set}")]);
    }
    let dir = tempdir("numbers");
    let file = write(&dir, "lr.toml", "[train]\nlr = nan\n");
    assert_mentions(
        &error_of(Some(&file), &[]),
        &["`train.lr`", "lr.toml", "NaN"],
    );
    // The limits themselves are accepted.
    LoadedConfig::load(
        None,
        &[
            "train.lr=0".into(),
            "data.prefetch=64".into(),
            "data.batch_size=1".into(),
        ],
    )
    .unwrap();
}

#[test]
fn experiment_paths_that_are_not_files_say_what_they_are() {
    let _guard = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempdir("kinds");
    let error = error_of(Some(&dir), &[]);
    assert_mentions(&error, &["is a directory", "not a TOML file"]);
    let error = error_of(Some(Path::new("/dev/null")), &[]);
    assert_mentions(&error, &["/dev/null", "is a device file"]);
    let fifo = dir.join("pipe.toml");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only creates the node.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) }, 0);
    // Reading a FIFO would block forever: the check comes before any read.
    let error = error_of(Some(&fifo), &[]);
    assert_mentions(&error, &["pipe.toml", "is a FIFO"]);
    let error = error_of(Some(&dir.join("missing.toml")), &[]);
    assert_mentions(&error, &["missing.toml", "not found"]);
    // An `extends` target is checked the same way.
    let file = write(&dir, "child.toml", "extends = \"pipe.toml\"\n");
    assert_mentions(&error_of(Some(&file), &[]), &["is a FIFO"]);
}

#[test]
fn pretraining_recipes_are_range_checked_too() {
    use mvlpt_framework::pretrain::LoadedPretrain;
    let recipe = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../experiments/pretrain-tiny.toml"
    );
    LoadedPretrain::load(Path::new(recipe), &[]).unwrap();
    for set in [
        "train.weight_decay=-0.1",
        "train.adam_eps=nan",
        "train.betas=[0.9, 1.0]",
        "data.batch_size=100000000",
    ] {
        let key = set.split('=').next().unwrap();
        let error = match LoadedPretrain::load(Path::new(recipe), &[set.to_string()]) {
            Ok(_) => panic!("{set} loaded"),
            Err(error) => format!("{error:#}"),
        };
        assert_mentions(&error, &[&format!("`{key}`"), &format!("--set {set}")]);
    }
}
