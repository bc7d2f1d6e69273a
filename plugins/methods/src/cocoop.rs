//! CoCoOp as MVLPT's baseline implements it (§2.6): a learned context shifted, per image, by a
//! small meta-network of the image's normalised features; prompts in the "end" layout, one text
//! pass over all classes per image.

use crate::common::TrainableLinear;
use crate::coop::{CoopOptions, TextContext};
use anyhow::{bail, Result};
use candle_core::{Tensor, Var};
use mvlpt_framework::config::ranges::prompt_tokens;
use mvlpt_framework::config::Section;
use mvlpt_framework::method::{
    ClassTokenPosition, ContextFn, Footprint, ModelEnv, PromptLearner, StepContext, StepPrompts,
    TextMode, TextPrompts,
};
use mvlpt_framework::rng::Rng;
use serde::Deserialize;
use std::sync::Arc;

mvlpt_framework::register_plugin!(
    Method,
    "cocoop",
    "CoCoOp: learned context conditioned on each image by a meta-network (MVLPT's COCOOP branch)",
    build,
    CocoopOptions
);

/// Options of `[method.cocoop]` (the reference's `TRAINER.MVLPT.COCOOP.*`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CocoopOptions {
    /// Context tokens (`N_CTX`; overridden by the word count of `ctx_init`).
    #[serde(deserialize_with = "prompt_tokens")]
    pub n_ctx: usize,
    /// Initialisation phrase (`CTX_INIT`); empty = Normal(0, 0.02).
    pub ctx_init: String,
    /// Cut the prompt length to the longest prompt (`CUT_CONTEXTLEN`).
    pub cut_context: bool,
}

impl Default for CocoopOptions {
    fn default() -> Self {
        Self {
            n_ctx: 16,
            ctx_init: String::new(),
            cut_context: true,
        }
    }
}

/// `meta_net`: Linear(embed → embed/16) → ReLU → Linear(embed/16 → text width).
#[derive(Clone)]
struct MetaNet {
    linear1: TrainableLinear,
    linear2: TrainableLinear,
}

impl MetaNet {
    fn forward(&self, features: &Tensor) -> candle_core::Result<Tensor> {
        let to_candle = |e: anyhow::Error| candle_core::Error::Msg(format!("{e:#}"));
        let hidden = self.linear1.forward(features).map_err(to_candle)?.relu()?;
        self.linear2.forward(&hidden).map_err(to_candle)
    }
}

/// CoCoOp: `cocoop_ctx` + `meta_net(image)` per image.
pub struct Cocoop {
    text: TextContext,
    meta_net: Option<MetaNet>,
}

impl Cocoop {
    /// An unbound CoCoOp learner.
    pub fn new(options: CocoopOptions) -> Result<Self> {
        let coop = CoopOptions {
            n_ctx: options.n_ctx,
            ctx_init: options.ctx_init,
            csc: false,
            class_token_position: ClassTokenPosition::End,
            cut_context: options.cut_context,
        };
        Ok(Self {
            text: TextContext::new(coop, "cocoop_ctx")?,
            meta_net: None,
        })
    }
}

fn build(section: &Section<'_>) -> Result<Box<dyn PromptLearner>> {
    Ok(Box::new(Cocoop::new(section.extract()?)?))
}

impl PromptLearner for Cocoop {
    fn bind(&mut self, env: &ModelEnv<'_>, classnames: &[String], rng: &mut Rng) -> Result<()> {
        self.text.bind(env, classnames, rng)?;
        if self.meta_net.is_none() {
            let embed = env.clip.config.embed_dim;
            let hidden = embed / 16;
            if hidden == 0 {
                bail!("cocoop: the meta-network needs an embedding of at least 16 dimensions, the model has {embed}");
            }
            let width = env.clip.text.ln_final.weight.dim(0)?;
            self.meta_net = Some(MetaNet {
                linear1: TrainableLinear::pytorch_default(embed, hidden, rng, env.device)?,
                linear2: TrainableLinear::pytorch_default(hidden, width, rng, env.device)?,
            });
        }
        Ok(())
    }

    fn parameters(&self) -> Vec<(String, Var)> {
        let mut out = self.text.parameters();
        if let Some(net) = &self.meta_net {
            out.extend(net.linear1.named("meta_net.linear1"));
            out.extend(net.linear2.named("meta_net.linear2"));
        }
        out
    }

    fn buffers(&self) -> Vec<(String, Tensor)> {
        self.text.buffers()
    }

    fn footprint(&self) -> Footprint {
        Footprint {
            text: TextMode::ImageConditioned,
            vision: false,
        }
    }

    fn prompts(&self, _env: &ModelEnv<'_>, _step: &mut StepContext<'_>) -> Result<StepPrompts> {
        let Some(net) = self.meta_net.clone() else {
            bail!("cocoop: the method is not bound to a label space");
        };
        let ctx = self.text.ctx()?;
        let context: ContextFn = Arc::new(move |features: &Tensor| {
            let shift = net.forward(features)?.unsqueeze(1)?;
            shift.broadcast_add(&ctx.unsqueeze(0)?)
        });
        Ok(StepPrompts {
            visual: None,
            text: TextPrompts::Conditional {
                template: self.text.template()?,
                context,
            },
        })
    }
}
