//! CoOp (§2.1–2.3): learned text context vectors spliced into every class prompt, the image
//! tower untouched. Also the learned-context machinery UPT and CoCoOp share ([`TextContext`]).

use crate::common::{check_classes, normal_var};
use anyhow::{bail, Context, Result};
use candle_core::{Tensor, Var};
use mvlpt_framework::config::ranges::prompt_tokens;
use mvlpt_framework::config::Section;
use mvlpt_framework::method::{
    ClassTokenPosition, ContextTemplate, Footprint, ModelEnv, PromptLearner, StepContext,
    StepPrompts, TextMode, TextPrompts,
};
use mvlpt_framework::model::DeepPrompts;
use mvlpt_framework::rng::Rng;
use serde::Deserialize;
use std::sync::Arc;

mvlpt_framework::register_plugin!(
    Method,
    "coop",
    "CoOp: learned text context around the class name (MVLPT's COOP branch)",
    build,
    CoopOptions
);

/// Options of `[method.coop]` (the reference's `TRAINER.MVLPT.COOP.*` and `CUT_CONTEXTLEN`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CoopOptions {
    /// Context tokens (`N_CTX`; overridden by the word count of `ctx_init`).
    #[serde(deserialize_with = "prompt_tokens")]
    pub n_ctx: usize,
    /// Initialisation phrase (`CTX_INIT`); empty = Normal(0, 0.02) with "X" placeholders.
    pub ctx_init: String,
    /// One context per class (`CSC`) instead of one shared context. Ignored with `ctx_init`,
    /// as in the reference.
    pub csc: bool,
    /// Where the class name sits: `end`, `middle` (MVLPT's scripts) or `front`.
    pub class_token_position: ClassTokenPosition,
    /// Cut the prompt length to the longest class prompt (`TRAINER.CUT_CONTEXTLEN`, which all
    /// MVLPT scripts set for CoOp; numerically identical, the text tower is causal).
    pub cut_context: bool,
}

impl Default for CoopOptions {
    fn default() -> Self {
        Self {
            n_ctx: 16,
            ctx_init: String::new(),
            csc: false,
            class_token_position: ClassTokenPosition::Middle,
            cut_context: true,
        }
    }
}

/// The learned text context of CoOp-style methods: the context parameter and the class-prompt
/// layout it is spliced into.
#[derive(Clone)]
pub struct TextContext {
    options: CoopOptions,
    /// State-dict name of the context (`ctx`, or `cocoop_ctx` for CoCoOp).
    name: &'static str,
    ctx: Option<Var>,
    /// Text before the class name in the tokenized prompts, fixed when `ctx` is created.
    prompt_prefix: String,
    /// Context tokens actually used (the phrase's word count with `ctx_init`).
    n_ctx: usize,
    template: Option<Arc<ContextTemplate>>,
}

impl TextContext {
    /// An unbound context named `name` with `options`.
    pub fn new(options: CoopOptions, name: &'static str) -> Result<Self> {
        if options.n_ctx == 0 && options.ctx_init.is_empty() {
            bail!("{name}: n_ctx must be at least 1 (fixed text prompts are the `vpt` and `zero_shot` methods)");
        }
        Ok(Self {
            options,
            name,
            ctx: None,
            prompt_prefix: String::new(),
            n_ctx: 0,
            template: None,
        })
    }

    /// Creates the context on the first call (from the phrase or drawn from `rng`) and builds
    /// the prompts of `classnames`.
    pub fn bind(&mut self, env: &ModelEnv<'_>, classnames: &[String], rng: &mut Rng) -> Result<()> {
        check_classes(self.name, classnames)?;
        if self.ctx.is_none() {
            self.create(env, classnames.len(), rng)?;
        }
        if let Some(ctx) = &self.ctx {
            if ctx.rank() == 3 && ctx.dim(0)? != classnames.len() {
                bail!(
                    "{}: the class-specific context has {} classes but the label space has {}",
                    self.name,
                    ctx.dim(0)?,
                    classnames.len()
                );
            }
        }
        let template = ContextTemplate::new(
            env,
            classnames,
            self.n_ctx,
            &self.prompt_prefix,
            self.options.class_token_position,
            self.options.cut_context,
        )?;
        self.template = Some(Arc::new(template));
        Ok(())
    }

    fn create(&mut self, env: &ModelEnv<'_>, classes: usize, rng: &mut Rng) -> Result<()> {
        let width = env.clip.text.ln_final.weight.dim(0)?;
        let ctx = if self.options.ctx_init.is_empty() {
            let n = self.options.n_ctx;
            self.prompt_prefix = vec!["X"; n].join(" ");
            self.n_ctx = n;
            let shape = if self.options.csc {
                vec![classes, n, width]
            } else {
                vec![n, width]
            };
            normal_var(&shape, 0.02, rng, env.device)?
        } else {
            let (phrase, n, ctx) = phrase_context(env, &self.options.ctx_init)
                .with_context(|| format!("{}: ctx_init {:?}", self.name, self.options.ctx_init))?;
            self.prompt_prefix = phrase;
            self.n_ctx = n;
            Var::from_tensor(&ctx)?
        };
        self.ctx = Some(ctx);
        Ok(())
    }

    /// The context parameter under its name (empty before the first bind).
    pub fn parameters(&self) -> Vec<(String, Var)> {
        self.ctx
            .iter()
            .map(|v| (self.name.to_string(), v.clone()))
            .collect()
    }

    /// The reference's class-dependent buffers (empty before the first bind).
    pub fn buffers(&self) -> Vec<(String, Tensor)> {
        self.template
            .iter()
            .flat_map(|t| {
                [
                    ("token_prefix".to_string(), t.token_prefix.clone()),
                    ("token_suffix".to_string(), t.token_suffix.clone()),
                ]
            })
            .collect()
    }

    /// The context tensor (`(n_ctx, width)` or `(classes, n_ctx, width)`).
    pub fn ctx(&self) -> Result<Tensor> {
        self.ctx
            .as_ref()
            .map(|v| v.as_tensor().clone())
            .with_context(|| format!("{}: the method is not bound to a label space", self.name))
    }

    /// Context tokens in use.
    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    /// The bound prompt layout.
    pub fn template(&self) -> Result<Arc<ContextTemplate>> {
        self.template
            .clone()
            .with_context(|| format!("{}: the method is not bound to a label space", self.name))
    }

    /// Text prompts with `ctx` (the parameter itself, or UPT's projection of it) spliced in.
    pub fn prompts_with(&self, ctx: Tensor) -> Result<TextPrompts> {
        Ok(TextPrompts::Context {
            template: self.template()?,
            ctx,
            deep: DeepPrompts::none(),
        })
    }
}

/// A context initialised from `phrase` as the reference does: underscores become spaces, the
/// context length is the number of words (split on single spaces), and the vectors are the
/// token embeddings right after the start token. Returns the phrase, the length and the
/// `(n, width)` vectors (f32).
pub fn phrase_context(env: &ModelEnv<'_>, phrase: &str) -> Result<(String, usize, Tensor)> {
    let phrase = phrase.replace('_', " ");
    let n = phrase.split(' ').count();
    let context_length = env.clip.config.text.context_length;
    let ids = env.tokenizer.tokenize(&phrase, context_length, false)?;
    if 1 + n > ids.len() {
        bail!("the phrase has {n} words, more than the {context_length}-token context holds");
    }
    let rows = Tensor::from_vec(
        ids[1..1 + n].to_vec(),
        n,
        env.clip.text.token_embedding.device(),
    )?;
    let ctx = env
        .clip
        .text
        .token_embedding
        .index_select(&rows, 0)?
        .to_dtype(candle_core::DType::F32)?
        .to_device(env.device)?;
    Ok((phrase, n, ctx))
}

/// CoOp: one learned context, no visual prompts.
pub struct Coop {
    text: TextContext,
}

impl Coop {
    /// An unbound CoOp learner.
    pub fn new(options: CoopOptions) -> Result<Self> {
        Ok(Self {
            text: TextContext::new(options, "ctx")?,
        })
    }
}

fn build(section: &Section<'_>) -> Result<Box<dyn PromptLearner>> {
    Ok(Box::new(Coop::new(section.extract()?)?))
}

impl PromptLearner for Coop {
    fn bind(&mut self, env: &ModelEnv<'_>, classnames: &[String], rng: &mut Rng) -> Result<()> {
        self.text.bind(env, classnames, rng)
    }

    fn parameters(&self) -> Vec<(String, Var)> {
        self.text.parameters()
    }

    fn buffers(&self) -> Vec<(String, Tensor)> {
        self.text.buffers()
    }

    fn footprint(&self) -> Footprint {
        Footprint {
            text: TextMode::Learned,
            vision: false,
        }
    }

    fn prompts(&self, _env: &ModelEnv<'_>, _step: &mut StepContext<'_>) -> Result<StepPrompts> {
        Ok(StepPrompts {
            visual: None,
            text: self.text.prompts_with(self.text.ctx()?)?,
        })
    }
}
