//! Property tests of the config loader with the real plugins: random TOML trees (over the
//! schema's own keys, plugin tables and random names, with values of every type including
//! huge, negative and non-finite numbers) and random `--set` strings. Loading, checking the
//! plugin options and planning the sweep never panic, and a config that loads is written and
//! read back (as every run's `config.toml` is) to the same run id. Random bytes on the stdin
//! of `mvlpt tokenize` are an error or a result, never a crash.
//!
//! `PROPTEST_CASES` scales the run (256 cases by default; docs/testing.md shows a long run).

// Link the framework through its shared library, like the mvlpt binary.
#[allow(unused_imports)]
use mvlpt_dylib as _;

use mvlpt_framework::config::LoadedConfig;
use mvlpt_framework::plugin::{check_options, Registry};
use mvlpt_framework::run::{plan_runs, run_id};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;

/// Every built-in plugin, as the binary has them.
fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        mvlpt_methods::link();
        mvlpt_sampling::link();
        mvlpt_evaluators::link();
        mvlpt_datasets::link();
        mvlpt_synthetic::link();
        Registry::builtin().unwrap()
    })
}

/// Dotted keys worth hitting: the schema's, plugin tables and options, sweep tables.
const KEYS: &[&str] = &[
    "name",
    "description",
    "seed",
    "model.source",
    "model.device",
    "model.dtype",
    "data.dataset",
    "data.tasks",
    "data.task_order",
    "data.shots",
    "data.fewshot",
    "data.sampler",
    "data.batch_size",
    "data.eval_batch_size",
    "data.prefetch",
    "data.workers",
    "data.on_bad_image",
    "data.task_masking",
    "data.train_transform",
    "data.synthetic_count.train_size",
    "data.synthetic_count.task",
    "data.dassl.seed",
    "data.random.drop_last",
    "method.name",
    "method.init_from",
    "method.coop.n_ctx",
    "method.coop.ctx_init",
    "method.coop.class_token_position",
    "method.vpt.n_ctx",
    "method.vpt.dropout",
    "method.upt.vpt_n_ctx",
    "train.epochs",
    "train.lr",
    "train.momentum",
    "train.betas",
    "train.optimizer",
    "train.schedule",
    "train.warmup_type",
    "train.milestones",
    "train.select",
    "train.text_chunk",
    "eval.evaluator",
    "eval.key",
    "eval.dassl.x",
    "sweep.seeds",
    "sweep.grid.\"train.lr\"",
    "sweep.grid.\"method.name\"",
    "output.runs_dir",
];

fn leaf() -> impl Strategy<Value = toml::Value> {
    prop_oneof![
        any::<i64>().prop_map(toml::Value::Integer),
        prop::sample::select(vec![0i64, 1, 2, 77, 1024, 1025, 65536, -1])
            .prop_map(toml::Value::Integer),
        any::<f64>().prop_map(toml::Value::Float),
        prop::sample::select(vec![f64::NAN, f64::INFINITY, -0.0, 1e-300, 1e300, 0.5])
            .prop_map(toml::Value::Float),
        any::<bool>().prop_map(toml::Value::Boolean),
        ".{0,12}".prop_map(toml::Value::String),
        prop::sample::select(vec![
            "coop",
            "vpt",
            "sgd",
            "adamw",
            "cosine",
            "best_val",
            "skip",
            "cpu",
            "cuda:1",
            "f16",
            "synthetic_count",
            "dassl",
            "random",
            "classification",
            "sorted",
            "neg_infinity",
        ])
        .prop_map(|s| toml::Value::String(s.into())),
    ]
}

fn value() -> impl Strategy<Value = toml::Value> {
    leaf().prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(toml::Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|map| toml::Value::Table(map.into_iter().collect())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(KEYS).prop_map(str::to_string),
        1 => "[a-z_]{1,6}(\\.[a-z_]{1,6}){0,2}",
    ]
}

/// A TOML document from `(dotted key, value)` pairs; a pair whose path runs through a value
/// already there is dropped. `None` for a tree TOML cannot write.
fn document(pairs: Vec<(String, toml::Value)>) -> Option<String> {
    let mut root = toml::Table::new();
    for (key, value) in pairs {
        insert(&mut root, &split_key(&key), value);
    }
    toml::to_string(&root).ok()
}

fn insert(table: &mut toml::Table, path: &[String], value: toml::Value) {
    match path {
        [] => {}
        [last] => {
            table.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(inner) = entry {
                insert(inner, rest, value);
            }
        }
    }
}

/// `a.b."c.d"` → `["a", "b", "c.d"]`.
fn split_key(key: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in key.chars() {
        match c {
            '"' => quoted = !quoted,
            '.' if !quoted => parts.push(std::mem::take(&mut current)),
            other => current.push(other),
        }
    }
    parts.push(current);
    parts
}

/// Everything the loader does with a config, none of which may panic; a config that loads
/// must survive being written as a run's config.toml and read back.
fn exercise(loaded: LoadedConfig, scratch: &Path) -> Result<(), TestCaseError> {
    let _ = check_options(&loaded, registry());
    if let Ok(plans) = plan_runs(&loaded, registry()) {
        prop_assert!(!plans.is_empty());
    }
    let mut config = loaded.config.clone();
    config.sweep = None;
    config.extends.clear();
    let text = toml::to_string(&config)
        .map_err(|e| TestCaseError::fail(format!("config that loaded cannot be written: {e}")))?;
    let file = scratch.join("config.toml");
    std::fs::write(&file, &text).unwrap();
    let reloaded = LoadedConfig::load(Some(&file), &[]).map_err(|e| {
        TestCaseError::fail(format!("written config does not load again: {e:#}\n{text}"))
    })?;
    prop_assert_eq!(
        run_id(&reloaded.config).unwrap(),
        run_id(&config).unwrap(),
        "{}",
        text
    );
    Ok(())
}

fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// The run's settings: the configured number of cases divided by `divisor` (at least 4),
/// failures reported, not stored in the source tree.
fn settings(divisor: u32) -> ProptestConfig {
    let base = ProptestConfig::default();
    ProptestConfig {
        cases: (base.cases / divisor).max(4),
        failure_persistence: None,
        ..base
    }
}

proptest! {
    #![proptest_config(settings(1))]

    #[test]
    fn random_toml_trees_load_or_fail_cleanly(
        pairs in prop::collection::vec((key(), value()), 0..12),
    ) {
        let dir = scratch();
        let file = dir.path().join("exp.toml");
        let Some(text) = document(pairs) else {
            return Ok(()); // not the loader's concern
        };
        std::fs::write(&file, text).unwrap();
        if let Ok(loaded) = LoadedConfig::load(Some(&file), &[]) {
            exercise(loaded, dir.path())?;
        }
    }

    #[test]
    fn random_set_strings_load_or_fail_cleanly(
        sets in prop::collection::vec(
            prop_oneof![
                any::<String>(),
                (key(), ".{0,16}").prop_map(|(k, v)| format!("{k}={v}")),
                (key(), value()).prop_map(|(k, v)| format!("{k}={v}")),
            ],
            0..4,
        ),
    ) {
        let dir = scratch();
        if let Ok(loaded) = LoadedConfig::load(None, &sets) {
            exercise(loaded, dir.path())?;
        }
    }
}

proptest! {
    #![proptest_config(settings(128))]

    /// One process per case: a 128th of the configured cases.
    #[test]
    fn random_bytes_on_stdin_never_crash_mvlpt_tokenize(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mvlpt"))
            .arg("tokenize")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&bytes).unwrap();
        let output = child.wait_with_output().unwrap();
        let code = output.status.code();
        prop_assert!(
            code == Some(0) || code == Some(1),
            "exit {:?}: {}",
            code,
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
