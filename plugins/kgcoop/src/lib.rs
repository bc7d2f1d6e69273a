//! KgCoOp as a dynamically loaded plugin: an example of adding a prompt method without touching
//! the framework or the binary.
//!
//! KgCoOp (Yao, Zhang and Xu, "Visual-Language Prompt Tuning with Knowledge-guided Context
//! Optimization", CVPR 2023) is CoOp plus a regulariser that keeps the learned class text
//! features close to those of a hand-written prompt:
//! `L = CE + λ · mean_c ‖ŵ_c − ŵ_c^clip‖²`, with `ŵ` the L2-normalised text feature of class
//! `c` under the learned context and `ŵ^clip` under the template (the paper uses λ = 8).
//!
//! Build with `cargo build -p mvlpt-kgcoop` (same profile as the host), then point
//! `plugins.paths` or `MVLPT_PLUGIN_PATH` at `target/<profile>/libmvlpt_kgcoop.so` and set
//! `method.name = "kgcoop"`.

// Link the framework through the shared library so host and plugin share one copy.
#[allow(unused_imports)]
use mvlpt_dylib as _;

use anyhow::Result;
use candle_core::{Tensor, Var};
use mvlpt_framework::config::ranges::prompt_tokens;
use mvlpt_framework::config::Section;
use mvlpt_framework::method::{
    ClassTokenPosition, ContextTemplate, Footprint, HeadOutputs, ModelEnv, PromptLearner,
    StepContext, StepPrompts, TextMode, TextPrompts,
};
use mvlpt_framework::model::{l2_normalize, DeepPrompts};
use mvlpt_framework::plugin::{options_of, Factory, Plugin};
use mvlpt_framework::rng::{self, Rng};
use serde::Deserialize;
use std::sync::Arc;

/// Options of `[method.kgcoop]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KgCoopOptions {
    /// Context tokens (ignored when `ctx_init` is set: its word count is used).
    #[serde(deserialize_with = "prompt_tokens")]
    pub n_ctx: usize,
    /// Initialisation phrase for the context (KgCoOp uses "a photo of a"); empty = random.
    pub ctx_init: String,
    /// Weight λ of the regulariser.
    pub lambda: f64,
    /// Hand-written template for the reference text features, `{}` = class name.
    pub template: String,
    /// Class-token position.
    pub class_token_position: ClassTokenPosition,
}

impl Default for KgCoopOptions {
    fn default() -> Self {
        Self {
            n_ctx: 4,
            ctx_init: "a photo of a".into(),
            lambda: 8.0,
            template: "a photo of a {}.".into(),
            class_token_position: ClassTokenPosition::End,
        }
    }
}

/// The KgCoOp prompt learner.
pub struct KgCoop {
    options: KgCoopOptions,
    ctx: Option<Var>,
    template: Option<Arc<ContextTemplate>>,
    /// Normalised text features of the hand-written prompts, `(classes, embed_dim)`.
    clip_features: Option<Tensor>,
}

impl KgCoop {
    /// A learner with the given options (parameters are created at bind time).
    pub fn new(options: KgCoopOptions) -> Self {
        Self {
            options,
            ctx: None,
            template: None,
            clip_features: None,
        }
    }
}

impl PromptLearner for KgCoop {
    fn bind(&mut self, env: &ModelEnv<'_>, classnames: &[String], rng: &mut Rng) -> Result<()> {
        let phrase = self.options.ctx_init.trim().to_string();
        let n_ctx = if phrase.is_empty() {
            self.options.n_ctx
        } else {
            phrase.split_whitespace().count()
        };
        let prefix = if phrase.is_empty() {
            vec!["X"; n_ctx].join(" ")
        } else {
            phrase.clone()
        };
        let template = ContextTemplate::new(
            env,
            classnames,
            n_ctx,
            &prefix,
            self.options.class_token_position,
            true,
        )?;
        if self.ctx.is_none() {
            let width = env.clip.config.text.width;
            let init = if phrase.is_empty() {
                rng::normal((n_ctx, width), 0.0, 0.02, rng, env.device)?
            } else {
                // Token embeddings of the phrase (after the start token), as CoOp initialises.
                let ids =
                    env.tokenizer
                        .tokenize(&phrase, env.clip.config.text.context_length, false)?;
                let ids =
                    Tensor::from_vec(ids, (1, env.clip.config.text.context_length), env.device)?;
                env.clip
                    .text
                    .embed(&ids)?
                    .narrow(1, 1, n_ctx)?
                    .squeeze(0)?
                    .to_dtype(candle_core::DType::F32)?
            };
            self.ctx = Some(Var::from_tensor(&init)?);
        }
        let texts: Vec<String> = classnames
            .iter()
            .map(|c| self.options.template.replace("{}", &c.replace('_', " ")))
            .collect();
        let ids =
            env.tokenizer
                .tokenize_batch(&texts, env.clip.config.text.context_length, false)?;
        self.clip_features = Some(l2_normalize(&env.clip.encode_text(&ids)?.detach())?);
        self.template = Some(Arc::new(template));
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
            vision: false,
        }
    }

    fn prompts(&self, _env: &ModelEnv<'_>, _step: &mut StepContext<'_>) -> Result<StepPrompts> {
        let (Some(template), Some(ctx)) = (&self.template, &self.ctx) else {
            anyhow::bail!("kgcoop: prompts requested before bind");
        };
        Ok(StepPrompts {
            visual: None,
            text: TextPrompts::Context {
                template: template.clone(),
                ctx: ctx.as_tensor().clone(),
                deep: DeepPrompts::none(),
            },
        })
    }

    fn loss_terms(&self, head: &HeadOutputs<'_>) -> Result<Vec<(String, Tensor)>> {
        let Some(reference) = &self.clip_features else {
            anyhow::bail!("kgcoop: loss requested before bind");
        };
        let learned = l2_normalize(&head.text_features.to_dtype(candle_core::DType::F32)?)?;
        let distance = (learned - reference.to_dtype(candle_core::DType::F32)?)?
            .sqr()?
            .sum(1)?
            .mean_all()?;
        Ok(vec![(
            "kg_regulariser".to_string(),
            (distance * self.options.lambda)?,
        )])
    }
}

fn build(section: &Section<'_>) -> Result<Box<dyn PromptLearner>> {
    Ok(Box::new(KgCoop::new(section.extract()?)))
}

mvlpt_framework::export_plugins![Plugin {
    name: "kgcoop",
    description: "KgCoOp: CoOp + λ·‖w − w_clip‖² keeping learned class text features near a hand-written prompt's (dynamic plugin)",
    version: env!("CARGO_PKG_VERSION"),
    factory: Factory::Method(build),
    options: options_of::<KgCoopOptions>,
}];
