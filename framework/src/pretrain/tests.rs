//! Pretraining tests: the loss against PyTorch/open_clip, gradients reaching every weight, the
//! loss decreasing over a few steps, exact resumption, recipe loading and its errors.

use super::*;
use crate::data::image::RgbImage8;
use crate::data::{DatasetInfo, Sample};
use crate::eval::metrics::Metric;
use crate::model::ClipConfig;
use crate::plugin::{Factory, Origin, Plugin};
use candle_core::{DType, Var};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/pretrain/contrastive_loss.json"
);

fn matrix(value: &serde_json::Value) -> Tensor {
    let rows: Vec<Vec<f32>> = serde_json::from_value(value.clone()).unwrap();
    let (n, d) = (rows.len(), rows[0].len());
    Tensor::from_vec(rows.concat(), (n, d), &Device::Cpu).unwrap()
}

fn assert_close(actual: &Tensor, expected: &Tensor, tolerance: f32, what: &str) {
    let diff = (actual - expected)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(diff <= tolerance, "{what}: max difference {diff}");
}

#[test]
fn contrastive_loss_and_gradients_match_open_clip_and_pytorch() {
    let fixture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(FIXTURE).unwrap()).unwrap();
    for case in fixture["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let captions: Vec<String> = serde_json::from_value(case["captions"].clone()).unwrap();
        let image = Var::from_tensor(&matrix(&case["image"])).unwrap();
        let text = Var::from_tensor(&matrix(&case["text"])).unwrap();
        let scale = Var::from_tensor(
            &Tensor::new(case["logit_scale"].as_f64().unwrap() as f32, &Device::Cpu).unwrap(),
        )
        .unwrap();
        let loss = contrastive_loss(&image, &text, &scale, &captions).unwrap();
        let expected = case["loss"].as_f64().unwrap();
        let value = f64::from(loss.to_scalar::<f32>().unwrap());
        assert!(
            (value - expected).abs() <= 1e-5 * expected.abs(),
            "{name}: {value} vs {expected}"
        );
        let grads = loss.backward().unwrap();
        assert_close(
            grads.get(&image).unwrap(),
            &matrix(&case["grad_image"]),
            1e-4,
            name,
        );
        assert_close(
            grads.get(&text).unwrap(),
            &matrix(&case["grad_text"]),
            1e-4,
            name,
        );
        let g = f64::from(grads.get(&scale).unwrap().to_scalar::<f32>().unwrap());
        let expected = case["grad_logit_scale"].as_f64().unwrap();
        assert!(
            (g - expected).abs() <= 1e-4 * expected.abs().max(1.0),
            "{name}: {g} vs {expected}"
        );
    }
}

#[test]
fn every_weight_of_the_trainable_clip_gets_a_gradient() {
    let config = ClipConfig::preset("tiny").unwrap();
    let model = TrainableClip::random(&config, 0, &Device::Cpu).unwrap();
    assert_eq!(model.parameter_count(), config.parameter_count());
    let clip = model.model().unwrap();
    let images = crate::rng::normal(
        (4, 3, 32, 32),
        0.0,
        1.0,
        &mut crate::rng::seeded(1),
        &Device::Cpu,
    )
    .unwrap();
    let captions: Vec<String> = [
        "a red star.",
        "a blue square.",
        "two circles.",
        "the digit 7.",
    ]
    .map(str::to_string)
    .to_vec();
    let ids = ClipTokenizer::new()
        .tokenize_batch(&captions, 77, false)
        .unwrap();
    let loss = contrastive_loss(
        &clip.encode_image(&images).unwrap(),
        &clip.encode_text(&ids).unwrap(),
        &clip.logit_scale,
        &captions,
    )
    .unwrap();
    let grads = loss.backward().unwrap();
    for (name, var) in model.vars() {
        let grad = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name} has no gradient"));
        let norm = grad
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(
            norm.is_finite() && norm > 0.0,
            "{name}: gradient norm² {norm}"
        );
    }
    let (decay, no_decay) = model.decay_groups();
    assert!(decay.iter().any(|(n, _)| n == "visual.proj"));
    assert!(decay.iter().any(|(n, _)| n == "visual.conv1.weight"));
    for name in [
        "token_embedding.weight",
        "positional_embedding",
        "logit_scale",
        "ln_final.bias",
    ] {
        assert!(
            no_decay.iter().any(|(n, _)| n == name),
            "{name} is not decayed"
        );
    }
}

// ---- a tiny captioned dataset and recipes ----

const COLOURS: [(&str, [u8; 3]); 4] = [
    ("red", [220, 30, 30]),
    ("green", [30, 200, 40]),
    ("blue", [40, 60, 230]),
    ("yellow", [230, 220, 40]),
];

/// Solid colour images (brightness varying by seed) captioned with their colour.
struct ColourSwatches {
    info: DatasetInfo,
}

impl Dataset for ColourSwatches {
    fn info(&self) -> &DatasetInfo {
        &self.info
    }

    fn samples(&self, split: Split) -> Result<Vec<Sample>> {
        let (n, offset) = match split {
            Split::Train => (64, 0),
            Split::Val => (0, 0),
            Split::Test => (16, 1000),
        };
        Ok((0..n)
            .map(|i| Sample {
                image: ImageSource::Procedural(offset + i as u64),
                labels: vec![i % 4],
                caption: Some(format!("a {} picture.", COLOURS[i % 4].0)),
            })
            .collect())
    }

    fn load_image(&self, sample: &Sample) -> Result<RgbImage8> {
        let ImageSource::Procedural(seed) = sample.image else {
            bail!("procedural only")
        };
        let (_, rgb) = COLOURS[(seed % 4) as usize];
        let shade = 0.7 + 0.3 * ((seed / 4) % 5) as f32 / 4.0;
        let pixel = rgb.map(|c| (f32::from(c) * shade) as u8);
        Ok(RgbImage8::new(32, 32, pixel.repeat(32 * 32))?)
    }
}

fn build_swatches(_: &DatasetContext<'_>) -> Result<Box<dyn Dataset>> {
    Ok(Box::new(ColourSwatches {
        info: DatasetInfo {
            name: "swatches".into(),
            classnames: COLOURS.iter().map(|(n, _)| n.to_string()).collect(),
            templates: vec!["a {} picture.".into()],
            metric: Metric::Accuracy,
            multilabel: false,
        },
    }))
}

fn registry() -> Registry {
    let mut registry = Registry::empty();
    registry
        .add(
            Plugin {
                name: "swatches",
                description: "test colours",
                version: "0",
                factory: Factory::Dataset(build_swatches),
                options: crate::plugin::options_of::<crate::plugin::NoOptions>,
            },
            Origin::BuiltIn,
        )
        .unwrap();
    registry
}

/// A scratch directory unique to this test.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mvlpt-pretrain-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes a recipe for the tiny preset on the swatches into `dir`.
fn recipe(dir: &Path, steps: usize, lr: f64) -> PathBuf {
    let mut model = toml::Table::new();
    let tiny = toml::Value::try_from(ClipConfig::preset("tiny").unwrap()).unwrap();
    model.insert("model".into(), tiny);
    let model = toml::to_string(&model).unwrap();
    let text = format!(
        r#"name = "tiny-test"
seed = 5

[data]
dataset = "swatches"
batch_size = 8

[train]
steps = {steps}
warmup_steps = 2
lr = {lr}
checkpoint_every = 3
log_every = 1000

[eval]
tasks = ["swatches"]

[output]
runs_dir = "{runs}"
model = "exported.safetensors"

{model}"#,
        runs = dir.join("runs").display()
    );
    let path = dir.join("recipe.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_few_steps_decrease_the_contrastive_loss() {
    let dir = scratch("decrease");
    let loaded = LoadedPretrain::load(&recipe(&dir, 24, 2e-3), &[]).unwrap();
    let summary = pretrain(&loaded, &registry(), &PretrainOptions::default()).unwrap();
    let losses: Vec<f32> = summary.losses.iter().map(|(_, l)| *l).collect();
    assert_eq!(losses.len(), 24);
    let first: f32 = losses[..4].iter().sum::<f32>() / 4.0;
    let last: f32 = losses[20..].iter().sum::<f32>() / 4.0;
    assert!(
        last < 0.7 * first,
        "loss went from {first} to {last}: {losses:?}"
    );
    let export = summary.export.unwrap();
    assert_eq!(export.model_path, dir.join("exported.safetensors"));
    assert_eq!(export.zero_shot.len(), 1);
    assert!(export.zero_shot[0].value > 0.25, "{:?}", export.zero_shot);
    let run = dir.join("runs/tiny-test");
    assert!(run.join("result.json").is_file() && run.join("checkpoint.safetensors").is_file());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_interrupted_run_resumes_exactly() {
    let straight_dir = scratch("straight");
    let straight = LoadedPretrain::load(&recipe(&straight_dir, 7, 1e-3), &[]).unwrap();
    let full = pretrain(&straight, &registry(), &PretrainOptions::default()).unwrap();

    let resumed_dir = scratch("resumed");
    let resumed = LoadedPretrain::load(&recipe(&resumed_dir, 7, 1e-3), &[]).unwrap();
    let stop = PretrainOptions {
        fresh: false,
        stop_after: Some(4),
    };
    let first = pretrain(&resumed, &registry(), &stop).unwrap();
    assert_eq!((first.steps, first.export.is_none()), (4, true));
    // As if the process had died after logging a step it never checkpointed.
    let metrics_path = resumed_dir.join("runs/tiny-test/metrics.jsonl");
    let mut metrics = std::fs::read_to_string(&metrics_path).unwrap();
    metrics.push_str("{\"step\": 5, \"loss\": 0.0}\n");
    std::fs::write(&metrics_path, metrics).unwrap();
    let second = pretrain(&resumed, &registry(), &PretrainOptions::default()).unwrap();
    assert_eq!(second.started_at, 4, "resumes where the first call stopped");
    assert_eq!(second.steps, 7);

    let mut losses = first.losses.clone();
    losses.extend(second.losses.iter().copied());
    assert_eq!(losses, full.losses, "same loss at every step");
    let load = |dir: &Path| {
        load_checkpoint(
            &dir.join("runs/tiny-test/checkpoint.safetensors"),
            &GROUPS,
            &Device::Cpu,
        )
        .unwrap()
    };
    let (a, b) = (load(&straight_dir), load(&resumed_dir));
    assert_eq!(a.state.step, 7);
    assert_eq!(a.state.optimizer_steps, b.state.optimizer_steps);
    for (name, tensor) in &a.model {
        let diff = (tensor - &b.model[name])
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap();
        assert_eq!(
            diff.to_scalar::<f32>().unwrap(),
            0.0,
            "{name} differs after resuming"
        );
    }
    for group in GROUPS {
        assert_eq!(a.optimizers[group].len(), b.optimizers[group].len());
        for (name, tensor) in &a.optimizers[group] {
            let diff = (tensor - &b.optimizers[group][name])
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap();
            assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0, "{group}.{name}");
        }
    }
    let exported = |s: &PretrainSummary| s.export.as_ref().unwrap().sha256.clone();
    assert_eq!(
        exported(&full),
        exported(&second),
        "identical exported models"
    );
    let metrics = std::fs::read_to_string(&metrics_path).unwrap();
    let steps: Vec<u64> = metrics
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(
        steps,
        (1..=7).collect::<Vec<_>>(),
        "one metrics line per step"
    );

    // A changed recipe refuses to resume, naming the key; --fresh starts over.
    let changed =
        LoadedPretrain::load(&recipe(&resumed_dir, 7, 1e-3), &["train.lr=0.01".into()]).unwrap();
    let err = pretrain(&changed, &registry(), &PretrainOptions::default())
        .err()
        .unwrap();
    assert!(format!("{err:#}").contains("train.lr"), "{err:#}");
    let fresh = PretrainOptions {
        fresh: true,
        stop_after: Some(1),
    };
    assert_eq!(
        pretrain(&changed, &registry(), &fresh).unwrap().started_at,
        0
    );
    std::fs::remove_dir_all(&straight_dir).unwrap();
    std::fs::remove_dir_all(&resumed_dir).unwrap();
}

#[test]
fn recipes_apply_sets_and_reject_unknown_keys() {
    let dir = scratch("recipe");
    let path = recipe(&dir, 10, 1e-3);
    let loaded = LoadedPretrain::load(
        &path,
        &[
            "train.steps=20".into(),
            "data.swatches.colour=\"red\"".into(),
        ],
    )
    .unwrap();
    assert_eq!(loaded.config.train.steps, 20);
    assert_eq!(loaded.config.model, ClipConfig::preset("tiny").unwrap());
    assert_eq!(loaded.model_path(), dir.join("exported.safetensors"));
    assert_eq!(loaded.run_dir(), dir.join("runs/tiny-test"));
    assert!(loaded.config.data.plugins.contains_key("swatches"));

    let err = LoadedPretrain::load(&path, &["train.stepz=3".into()])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("stepz") && err.contains("--set train.stepz=3"),
        "{err}"
    );
    let err = LoadedPretrain::load(&path, &["data.batchsize=3".into()])
        .unwrap_err()
        .to_string();
    assert!(err.contains("data.batchsize"), "{err}");
    let err = LoadedPretrain::load(&path, &["train.warmup_steps=10".into()])
        .unwrap_err()
        .to_string();
    assert!(err.contains("warmup"), "{err}");
    let err = LoadedPretrain::load(&dir.join("missing.toml"), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.toml"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn epochs_visit_every_pair_once_in_a_seeded_order() {
    let mut order = EpochOrder::new(3, 10);
    let first: Vec<usize> = (0..5).flat_map(|s| order.batch(s, 2)).collect();
    let mut sorted = first.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..10).collect::<Vec<_>>());
    let second: Vec<usize> = (5..10).flat_map(|s| order.batch(s, 2)).collect();
    assert_ne!(first, second, "a new permutation per epoch");
    // Batches depend on the step alone, also across an epoch boundary.
    assert_eq!(EpochOrder::new(3, 10).batch(4, 3), order.batch(4, 3));
    assert_ne!(
        EpochOrder::new(4, 10).batch(0, 10),
        EpochOrder::new(3, 10).batch(0, 10)
    );
}

#[test]
fn logit_scale_is_clamped_at_the_maximum() {
    let config = ClipConfig::preset("tiny").unwrap();
    let model = TrainableClip::random(&config, 0, &Device::Cpu).unwrap();
    model.vars()[LOGIT_SCALE]
        .set(&Tensor::new(9.0f32, &Device::Cpu).unwrap())
        .unwrap();
    model.clamp_logit_scale(100.0).unwrap();
    let value = model.vars()[LOGIT_SCALE].to_scalar::<f32>().unwrap();
    assert!((f64::from(value) - 100f64.ln()).abs() < 1e-6, "{value}");
    assert_eq!(model.vars()[LOGIT_SCALE].dtype(), DType::F32);
}
