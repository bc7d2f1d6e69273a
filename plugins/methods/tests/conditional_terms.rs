//! An image-conditioned method (CoCoOp's context) with a loss term of its own: the engine hands
//! the term each image's class text features and adds it to the loss and the gradient.

mod common;

use anyhow::Result;
use candle_core::{Device, Tensor, Var};
use common::{build, pixels, sets, tiny_clip};
use mvlpt_framework::engine::forward::{train_step, ForwardOptions, ImageInput, TextFeatureCache};
use mvlpt_framework::engine::{BatchTargets, TaskMasking};
use mvlpt_framework::method::{
    Footprint, HeadOutputs, ModelEnv, PromptLearner, StepContext, StepPrompts, TextPrompts,
};
use mvlpt_framework::model::tokenizer::ClipTokenizer;
use mvlpt_framework::model::{l2_normalize, DeepPrompts};
use mvlpt_framework::rng::{self, Rng};
use serde_json::json;

/// CoCoOp plus `weight · mean(text_features²)`.
struct Regularised {
    inner: Box<dyn PromptLearner>,
    weight: f64,
}

impl PromptLearner for Regularised {
    fn bind(&mut self, env: &ModelEnv<'_>, classnames: &[String], rng: &mut Rng) -> Result<()> {
        self.inner.bind(env, classnames, rng)
    }
    fn parameters(&self) -> Vec<(String, Var)> {
        self.inner.parameters()
    }
    fn footprint(&self) -> Footprint {
        self.inner.footprint()
    }
    fn prompts(&self, env: &ModelEnv<'_>, step: &mut StepContext<'_>) -> Result<StepPrompts> {
        self.inner.prompts(env, step)
    }
    fn loss_terms(&self, head: &HeadOutputs<'_>) -> Result<Vec<(String, Tensor)>> {
        let energy = (head.text_features.sqr()?.mean_all()? * self.weight)?;
        Ok(vec![("text_energy".into(), energy)])
    }
}

fn scalar(t: &Tensor) -> f64 {
    f64::from(t.to_scalar::<f32>().unwrap())
}

#[test]
fn an_image_conditioned_methods_loss_terms_join_the_loss_and_the_gradient() {
    let clip = tiny_clip();
    let tokenizer = ClipTokenizer::new();
    let device = Device::Cpu;
    let env = ModelEnv {
        clip: &clip,
        tokenizer: &tokenizer,
        device: &device,
    };
    let classes: Vec<String> = ["cat", "dog", "car"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut inner = build(&sets("cocoop", &json!({"n_ctx": 2}))).unwrap();
    inner.bind(&env, &classes, &mut rng::seeded(5)).unwrap();
    let method = Regularised { inner, weight: 0.5 };
    let images = pixels();
    let targets = BatchTargets::Labels(vec![0, 1, 2, 0]);
    let ranges = vec![(0, 3); 4];
    let options = ForwardOptions {
        text_chunk: 128,
        masking: TaskMasking::None,
    };
    let step = |learner: &dyn PromptLearner| {
        let prompts = learner
            .prompts(&env, &mut StepContext::evaluation(&mut rng::seeded(0)))
            .unwrap();
        let result = train_step(
            &env,
            learner,
            &prompts,
            ImageInput::Pixels(&images),
            &targets,
            &ranges,
            &mut TextFeatureCache::default(),
            options,
        )
        .unwrap();
        (prompts, result)
    };
    let (_, plain) = step(method.inner.as_ref());
    let (prompts, with) = step(&method);
    assert!(plain.terms.is_empty());
    assert_eq!(with.terms.len(), 1, "the method's term was not called");
    let (name, value) = &with.terms[0];
    assert_eq!(name, "text_energy");

    // The term saw each image's own class text features, (batch, classes, embed_dim).
    let TextPrompts::Conditional { template, context } = &prompts.text else {
        panic!("cocoop has image-conditioned context");
    };
    let normalized = l2_normalize(&clip.encode_image(&images).unwrap()).unwrap();
    let ctx = context(&normalized).unwrap();
    let texts: Vec<Tensor> = (0..4)
        .map(|b| {
            let embeddings = template
                .embeddings(Some(&ctx.get(b).unwrap()), 0..3)
                .unwrap();
            clip.text
                .forward(&embeddings, template.eot(0..3), &DeepPrompts::none())
                .unwrap()
        })
        .collect();
    let expected = 0.5
        * scalar(
            &Tensor::stack(&texts, 0)
                .unwrap()
                .sqr()
                .unwrap()
                .mean_all()
                .unwrap(),
        );
    assert!(
        (value - expected).abs() <= 1e-5 * expected.abs(),
        "term {value} vs {expected} from each image's text features"
    );
    // It is part of the loss and of the gradient.
    assert!(
        (with.loss - plain.loss - value).abs() <= 1e-5 * with.loss.abs(),
        "loss {} = {} + {value}?",
        with.loss,
        plain.loss
    );
    let (ctx_name, ctx_var) = method
        .parameters()
        .into_iter()
        .find(|(n, _)| n == "cocoop_ctx")
        .unwrap();
    let g_plain = plain.grads.get(ctx_var.as_tensor()).unwrap();
    let g_with = with.grads.get(ctx_var.as_tensor()).unwrap();
    let change = scalar(
        &(g_with - g_plain)
            .unwrap()
            .abs()
            .unwrap()
            .sum_all()
            .unwrap(),
    );
    assert!(change > 0.0, "the term added no gradient to {ctx_name}");
}
