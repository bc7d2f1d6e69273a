//! The training loop end to end with small test plugins on the tiny fixture model: learning
//! happens, runs are bit-for-bit deterministic, an interrupted run resumes to the same result,
//! chunked text gradients equal unchunked ones, and cached image features equal the uncached
//! path.

use anyhow::Result;
use candle_core::Var;
use mvlpt_framework::config::{LoadedConfig, Section};
use mvlpt_framework::data::image::RgbImage8;
use mvlpt_framework::data::{
    BatchSampler, Dataset, DatasetContext, DatasetInfo, FewShotProtocol, FewShotSplit, ImageSource,
    Sample, SampleMeta, Split,
};
use mvlpt_framework::engine::{train, RunSink};
use mvlpt_framework::eval::metrics::{Metric, TaskResult};
use mvlpt_framework::eval::{EvalInput, EvalReport, Evaluator};
use mvlpt_framework::method::{
    ClassTokenPosition, ContextTemplate, Footprint, ModelEnv, PromptLearner, StepContext,
    StepPrompts, TextMode, TextPrompts,
};
use mvlpt_framework::plugin::{NoOptions, Registry};
use mvlpt_framework::register_plugin;
use mvlpt_framework::rng::{self, Rng};
use rand::seq::SliceRandom;
use rand::Rng as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

// ---- test plugins -------------------------------------------------------------------------

/// Which samples a [`Squares`] dataset has.
#[derive(Clone, Copy, PartialEq)]
enum Variant {
    /// Every sample shows one colour.
    Plain,
    /// Multi-label: every fourth sample shows no colour and has no label (a negative).
    WithNegatives,
    /// Only a test split.
    TestOnly,
}

/// Three colours; images are the colour plus seeded noise.
struct Squares(DatasetInfo, Variant);

impl Dataset for Squares {
    fn info(&self) -> &DatasetInfo {
        &self.0
    }
    fn samples(&self, split: Split) -> Result<Vec<Sample>> {
        let (base, per_class) = match split {
            Split::Train => (0, 6),
            Split::Val => (1000, 3),
            Split::Test => (2000, 4),
        };
        if self.1 == Variant::TestOnly && split != Split::Test {
            return Ok(Vec::new());
        }
        Ok((0..3 * per_class)
            .map(|i| Sample {
                image: ImageSource::Procedural(base + i as u64),
                labels: if self.1 == Variant::WithNegatives && i % 4 == 3 {
                    Vec::new()
                } else {
                    vec![i % 3]
                },
                caption: None,
            })
            .collect())
    }
    fn load_image(&self, sample: &Sample) -> Result<RgbImage8> {
        let ImageSource::Procedural(seed) = sample.image else {
            anyhow::bail!("not procedural")
        };
        let mut r = rng::seeded(seed);
        let label = sample.labels.first().copied().unwrap_or(3);
        let data = (0..32 * 32 * 3)
            .map(|i| if i % 3 == label { 200u8 } else { 40 } + r.random_range(0..40u8))
            .collect();
        Ok(RgbImage8::new(32, 32, data)?)
    }
}

fn squares(name: &str, variant: Variant) -> Result<Box<dyn Dataset>> {
    Ok(Box::new(Squares(
        DatasetInfo {
            name: name.into(),
            classnames: vec!["red".into(), "green".into(), "blue".into()],
            templates: vec!["a photo of {}.".into()],
            metric: if variant == Variant::WithNegatives {
                Metric::ElevenPointMap
            } else {
                Metric::Accuracy
            },
            multilabel: variant == Variant::WithNegatives,
        },
        variant,
    )))
}

fn build_squares(_: &DatasetContext<'_>) -> Result<Box<dyn Dataset>> {
    squares("test_squares", Variant::Plain)
}
fn build_tags(_: &DatasetContext<'_>) -> Result<Box<dyn Dataset>> {
    squares("test_tags", Variant::WithNegatives)
}
fn build_test_only(_: &DatasetContext<'_>) -> Result<Box<dyn Dataset>> {
    squares("test_only_squares", Variant::TestOnly)
}

struct AllSamples;
impl FewShotProtocol for AllSamples {
    fn split(&self, dataset: &dyn Dataset, _shots: usize, _seed: u64) -> Result<FewShotSplit> {
        Ok(FewShotSplit {
            train: dataset.samples(Split::Train)?,
            val: dataset.samples(Split::Val)?,
            notes: vec![],
        })
    }
}
fn build_all(_: &Section<'_>) -> Result<Box<dyn FewShotProtocol>> {
    Ok(Box::new(AllSamples))
}

struct Shuffle;
impl BatchSampler for Shuffle {
    fn batches(
        &self,
        items: &[SampleMeta],
        batch: usize,
        seed: u64,
        epoch: usize,
    ) -> Result<Vec<Vec<usize>>> {
        let mut order: Vec<usize> = (0..items.len()).collect();
        order.shuffle(&mut rng::seeded(seed * 1000 + epoch as u64));
        Ok(order.chunks(batch).map(<[usize]>::to_vec).collect())
    }
}
fn build_shuffle(_: &Section<'_>) -> Result<Box<dyn BatchSampler>> {
    Ok(Box::new(Shuffle))
}

/// The single task's own metric.
struct Accuracy;
impl Evaluator for Accuracy {
    fn evaluate(&self, input: &EvalInput<'_>) -> Result<EvalReport> {
        let task = &input.tasks[0];
        let value = task.metric.compute(input.scores, input.targets)?;
        Ok(EvalReport {
            overall: value,
            tasks: vec![TaskResult {
                name: task.name.clone(),
                metric: task.metric,
                samples: input.task_ids.len(),
                value,
            }],
            extra: Default::default(),
        })
    }
}
fn build_accuracy(_: &Section<'_>) -> Result<Box<dyn Evaluator>> {
    Ok(Box::new(Accuracy))
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct MiniCoopOptions {
    /// Report an image-side footprint (disables the image-feature cache) without prompting it.
    pretend_vision: bool,
}

/// CoOp in a few lines: 4 shared context vectors, class token at the end.
struct MiniCoop {
    options: MiniCoopOptions,
    ctx: Option<Var>,
    template: Option<Arc<ContextTemplate>>,
}

impl PromptLearner for MiniCoop {
    fn bind(&mut self, env: &ModelEnv<'_>, classnames: &[String], rng: &mut Rng) -> Result<()> {
        let width = env.clip.config.text.width;
        self.template = Some(Arc::new(ContextTemplate::new(
            env,
            classnames,
            4,
            "X X X X",
            ClassTokenPosition::End,
            true,
        )?));
        if self.ctx.is_none() {
            self.ctx = Some(Var::from_tensor(&rng::normal(
                (4, width),
                0.0,
                0.02,
                rng,
                env.device,
            )?)?);
        }
        Ok(())
    }
    fn parameters(&self) -> Vec<(String, Var)> {
        self.ctx
            .iter()
            .map(|v| ("ctx".to_string(), v.clone()))
            .collect()
    }
    fn footprint(&self) -> Footprint {
        Footprint {
            text: TextMode::Learned,
            vision: self.options.pretend_vision,
        }
    }
    fn prompts(&self, _env: &ModelEnv<'_>, _step: &mut StepContext<'_>) -> Result<StepPrompts> {
        Ok(StepPrompts {
            visual: None,
            text: TextPrompts::Context {
                template: self.template.clone().expect("bound"),
                ctx: self.ctx.as_ref().expect("bound").as_tensor().clone(),
                deep: mvlpt_framework::model::DeepPrompts::none(),
            },
        })
    }
}
fn build_mini_coop(section: &Section<'_>) -> Result<Box<dyn PromptLearner>> {
    Ok(Box::new(MiniCoop {
        options: section.extract()?,
        ctx: None,
        template: None,
    }))
}

register_plugin!(
    Dataset,
    "test_squares",
    "three noisy colours",
    build_squares,
    NoOptions
);
register_plugin!(FewShot, "test_all", "every sample", build_all, NoOptions);
register_plugin!(
    Sampler,
    "test_shuffle",
    "seeded shuffle",
    build_shuffle,
    NoOptions
);
register_plugin!(
    Evaluator,
    "test_accuracy",
    "top-1 accuracy",
    build_accuracy,
    NoOptions
);
register_plugin!(
    Method,
    "test_coop",
    "mini CoOp",
    build_mini_coop,
    MiniCoopOptions
);
register_plugin!(
    Dataset,
    "test_tags",
    "three noisy colours, multi-label, with negatives",
    build_tags,
    NoOptions
);
register_plugin!(
    Dataset,
    "test_only_squares",
    "three noisy colours, a test split only",
    build_test_only,
    NoOptions
);

/// Zero-shot in a few lines: the fixed prompt "a photo of {class}." and nothing to train.
struct FixedPrompts(Option<Arc<Vec<Vec<u32>>>>);

impl PromptLearner for FixedPrompts {
    fn bind(&mut self, env: &ModelEnv<'_>, classnames: &[String], _rng: &mut Rng) -> Result<()> {
        let length = env.clip.config.text.context_length;
        let ids = classnames
            .iter()
            .map(|c| {
                env.tokenizer
                    .tokenize(&format!("a photo of {c}."), length, false)
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.0 = Some(Arc::new(ids));
        Ok(())
    }
    fn parameters(&self) -> Vec<(String, Var)> {
        Vec::new()
    }
    fn footprint(&self) -> Footprint {
        Footprint {
            text: TextMode::Frozen,
            vision: false,
        }
    }
    fn prompts(&self, _env: &ModelEnv<'_>, _step: &mut StepContext<'_>) -> Result<StepPrompts> {
        Ok(StepPrompts {
            visual: None,
            text: TextPrompts::Fixed(self.0.clone().expect("bound")),
        })
    }
}
fn build_fixed(_: &Section<'_>) -> Result<Box<dyn PromptLearner>> {
    Ok(Box::new(FixedPrompts(None)))
}
register_plugin!(
    Method,
    "test_fixed",
    "fixed prompts",
    build_fixed,
    NoOptions
);

// ---- harness --------------------------------------------------------------------------------

struct Sink {
    dir: PathBuf,
    records: Vec<serde_json::Value>,
    /// Fail after this many epoch records, simulating a crash.
    crash_after: Option<usize>,
}

impl RunSink for Sink {
    fn dir(&self) -> &Path {
        &self.dir
    }
    fn log_metrics(&mut self, record: &serde_json::Value) -> Result<()> {
        self.records.push(record.clone());
        if self.crash_after == Some(self.records.len()) {
            anyhow::bail!("simulated crash");
        }
        Ok(())
    }
}

fn run_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mvlpt-engine-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn config(dir: &Path, extra: &[&str]) -> LoadedConfig {
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/clip/openai");
    let text = format!(
        "seed = 3\n[model]\nsource = \"{model}\"\n[data]\ndataset = \"test_squares\"\nfewshot = \"test_all\"\nsampler = \"test_shuffle\"\n\
         batch_size = 6\neval_batch_size = 5\n[method]\nname = \"test_coop\"\n[train]\nepochs = 4\nlr = 2.0\nwarmup_epochs = 0\n\
         [eval]\nevaluator = \"test_accuracy\"\n"
    );
    let file = dir.join("exp.toml");
    std::fs::write(&file, text).unwrap();
    let sets: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    LoadedConfig::load(Some(&file), &sets).unwrap()
}

/// The numbers of a run's records, without timings.
fn numbers(records: &[serde_json::Value]) -> Vec<(String, String)> {
    records
        .iter()
        .flat_map(|r| {
            r.as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.to_string()))
                .collect::<Vec<_>>()
        })
        .filter(|(k, _)| !k.contains("seconds"))
        .collect()
}

fn run(
    tag: &str,
    extra: &[&str],
) -> (
    mvlpt_framework::engine::TrainOutcome,
    Vec<serde_json::Value>,
) {
    let dir = run_dir(tag);
    let loaded = config(&dir, extra);
    let registry = Registry::builtin().unwrap();
    let mut sink = Sink {
        dir: dir.clone(),
        records: vec![],
        crash_after: None,
    };
    let outcome = train(&loaded, &registry, &mut sink).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    (outcome, sink.records)
}

#[test]
fn prompts_learn_and_runs_are_bit_for_bit_deterministic() {
    let (a, records_a) = run("det-a", &[]);
    let (b, records_b) = run("det-b", &[]);
    assert_eq!(numbers(&records_a), numbers(&records_b));
    assert_eq!(a.test.overall.to_bits(), b.test.overall.to_bits());
    let loss = |r: &serde_json::Value| r["loss"].as_f64().unwrap();
    assert!(
        loss(&records_a[3]) < loss(&records_a[0]),
        "training loss did not decrease: {records_a:?}"
    );
    assert_eq!(a.trainable_parameters, 4 * 32);
    assert_eq!(a.samples, [18, 9, 12]);
}

#[test]
fn an_interrupted_run_resumes_to_the_same_result() {
    let (whole, whole_records) = run("whole", &[]);
    let dir = run_dir("resume");
    let loaded = config(&dir, &[]);
    let registry = Registry::builtin().unwrap();
    let mut crashed = Sink {
        dir: dir.clone(),
        records: vec![],
        crash_after: Some(2),
    };
    assert!(train(&loaded, &registry, &mut crashed).is_err());
    let mut resumed = Sink {
        dir: dir.clone(),
        records: vec![],
        crash_after: None,
    };
    let outcome = train(&loaded, &registry, &mut resumed).unwrap();
    // The crash hit while epoch 2 was being logged, before its checkpoint: the run resumes
    // after epoch 1 and redoes epoch 2, logging it again with the same numbers.
    assert_eq!(
        resumed.records[0]["epoch"], 2,
        "resumed after the last checkpointed epoch"
    );
    assert_eq!(
        numbers(&crashed.records[1..2]),
        numbers(&resumed.records[0..1]),
        "the redone epoch repeats the crashed one exactly"
    );
    let mut stitched = crashed.records[..1].to_vec();
    stitched.extend(resumed.records);
    assert_eq!(numbers(&stitched), numbers(&whole_records));
    assert_eq!(outcome.test.overall.to_bits(), whole.test.overall.to_bits());
    assert!(dir.join("prompts.safetensors").is_file());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn chunked_text_gradients_equal_the_unchunked_path() {
    let (a, records_a) = run("chunk-all", &["train.text_chunk=256"]);
    let (b, records_b) = run("chunk-one", &["train.text_chunk=1"]);
    for (x, y) in records_a.iter().zip(&records_b) {
        if let (Some(lx), Some(ly)) = (x["loss"].as_f64(), y["loss"].as_f64()) {
            assert!((lx - ly).abs() < 1e-5 * lx.abs().max(1.0), "{lx} vs {ly}");
        }
    }
    assert!((a.test.overall - b.test.overall).abs() < 1e-9);
}

#[test]
fn cached_image_features_equal_the_uncached_path() {
    let (cached, records_cached) = run("cache-on", &[]);
    let (uncached, records_uncached) = run("cache-off", &["method.test_coop.pretend_vision=true"]);
    for (x, y) in records_cached.iter().zip(&records_uncached) {
        if let (Some(lx), Some(ly)) = (x["loss"].as_f64(), y["loss"].as_f64()) {
            assert!((lx - ly).abs() < 1e-5 * lx.abs().max(1.0), "{lx} vs {ly}");
        }
    }
    assert_eq!(cached.test.overall, uncached.test.overall);
}

#[test]
fn gradients_reach_every_prompt_tensor() {
    // One train step through the engine's forward: the context gets a finite non-zero gradient.
    let dir = run_dir("grad");
    let loaded = config(&dir, &[]);
    let registry = Registry::builtin().unwrap();
    let clip = mvlpt_framework::engine::trainer::build_model(&loaded).unwrap();
    let tokenizer = mvlpt_framework::model::tokenizer::ClipTokenizer::new();
    let device = candle_core::Device::Cpu;
    let env = ModelEnv {
        clip: &clip,
        tokenizer: &tokenizer,
        device: &device,
    };
    let mut method = mvlpt_framework::engine::trainer::build_method(&loaded, &registry).unwrap();
    method
        .bind(
            &env,
            &["red".into(), "green".into(), "blue".into()],
            &mut rng::seeded(1),
        )
        .unwrap();
    let prompts = method
        .prompts(&env, &mut StepContext::training(2, &mut rng::seeded(2)))
        .unwrap();
    let features = rng::normal(
        (2, clip.config.embed_dim),
        0.0,
        1.0,
        &mut rng::seeded(3),
        &device,
    )
    .unwrap();
    let result = mvlpt_framework::engine::forward::train_step(
        &env,
        method.as_ref(),
        &prompts,
        mvlpt_framework::engine::ImageInput::Features(features),
        &mvlpt_framework::engine::BatchTargets::Labels(vec![0, 2]),
        &[(0, 3), (0, 3)],
        &mut Default::default(),
        mvlpt_framework::engine::ForwardOptions {
            text_chunk: 256,
            masking: mvlpt_framework::engine::TaskMasking::None,
        },
    )
    .unwrap();
    let norms =
        mvlpt_framework::engine::forward::grad_norms(&result.grads, &method.parameters()).unwrap();
    assert!(norms["ctx"].is_finite() && norms["ctx"] > 0.0, "{norms:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_multilabel_split_with_negatives_trains_with_finite_losses() {
    // A quarter of every split has no label, as ELEVATER's multi-label few-shot subsets keep
    // negatives; the reference's loss is NaN on the first batch holding one.
    let (outcome, records) = run("negatives", &["data.dataset=\"test_tags\""]);
    let epochs: Vec<&serde_json::Value> = records.iter().filter(|r| r["epoch"].is_u64()).collect();
    assert_eq!(epochs.len(), 4);
    for record in &epochs {
        let loss = record["loss"].as_f64().unwrap();
        let accuracy = record["train_accuracy"].as_f64().unwrap();
        assert!(loss.is_finite() && loss > 0.0, "{record}");
        assert!((0.0..=1.0).contains(&accuracy), "{record}");
    }
    assert!(
        outcome
            .notes
            .iter()
            .any(|n| n.contains("4 of 18 training samples have no label")),
        "{:?}",
        outcome.notes
    );
    assert!((0.0..=1.0).contains(&outcome.test.overall));
}

/// The records of a run that logged no epoch: its evaluations only.
fn assert_no_epochs(records: &[serde_json::Value]) {
    assert!(
        records.iter().all(|r| r.get("epoch").is_none()),
        "{records:?}"
    );
}

#[test]
fn zero_epochs_evaluate_the_initial_prompts_without_training() {
    let (outcome, records) = run("zero-epochs", &["train.epochs=0"]);
    assert_no_epochs(&records);
    // One validation (best_val is the default) and the test.
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(records[0]["val"].is_f64() && records[1]["test"].is_f64());
    assert_eq!(outcome.epochs, 0);
    assert_eq!(outcome.selected_epoch, None);
    assert_eq!(outcome.val, records[0]["val"].as_f64());
    assert!(
        outcome
            .notes
            .iter()
            .any(|n| n.contains("nothing trains (train.epochs = 0)")),
        "{:?}",
        outcome.notes
    );
}

#[test]
fn a_method_without_parameters_runs_no_epochs() {
    let (outcome, records) = run("fixed", &["method.name=\"test_fixed\""]);
    assert_no_epochs(&records);
    assert_eq!(outcome.epochs, 0);
    assert_eq!(outcome.trainable_parameters, 0);
    assert!(
        outcome
            .notes
            .iter()
            .any(|n| n.contains("`test_fixed` has no trainable parameters")),
        "{:?}",
        outcome.notes
    );
    // The same prompts evaluated by a run of zero epochs give the same test value.
    let (zero, _) = run(
        "fixed-zero",
        &["method.name=\"test_fixed\"", "train.epochs=0"],
    );
    assert_eq!(outcome.test.overall.to_bits(), zero.test.overall.to_bits());
}

#[test]
fn a_test_only_dataset_is_evaluated_when_nothing_trains() {
    let (outcome, records) = run(
        "test-only",
        &[
            "data.dataset=\"test_only_squares\"",
            "method.name=\"test_fixed\"",
        ],
    );
    assert_no_epochs(&records);
    assert_eq!(outcome.samples, [0, 0, 12]);
    assert_eq!(outcome.test.tasks[0].samples, 12);
    assert_eq!(outcome.val, None, "no val split, no validation");
    assert!(
        outcome
            .notes
            .iter()
            .any(|n| n.contains("test_only_squares has no training split")),
        "{:?}",
        outcome.notes
    );
}

#[test]
fn a_test_only_dataset_cannot_train() {
    let dir = run_dir("test-only-train");
    let loaded = config(&dir, &["data.dataset=\"test_only_squares\""]);
    let mut sink = Sink {
        dir: dir.clone(),
        records: vec![],
        crash_after: None,
    };
    let err = train(&loaded, &Registry::builtin().unwrap(), &mut sink).unwrap_err();
    assert!(
        format!("{err:#}").contains("no training samples"),
        "{err:#}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
