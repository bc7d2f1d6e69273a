//! UPT as MVLPT implements it (§2.5): CoOp context and VPT prompts, both passed every step
//! through a shared projector — linears into a `project_dim` space, a one-layer one-head CLIP
//! transformer block, linears back — before they are spliced into the towers.
//!
//! The released code feeds the block a `(1, tokens, dim)` tensor while CLIP's blocks are
//! sequence-first, so attention runs over sequences of length one: each token only gets
//! `out_proj(W_v · ln_1(u) + b_v)` and the MLP, without any mixing between tokens. That is the
//! default (`attention = "reference"`); `attention = "tokens"` attends across all prompt tokens,
//! as the UPT paper intends.

use crate::common::{check_classes, TrainableLinear};
use crate::coop::{CoopOptions, TextContext};
use crate::vpt::{Placement, VisualPromptSet, VptOptions};
use anyhow::{bail, Result};
use candle_core::{DType, Device, Tensor, Var};
use mvlpt_framework::config::ranges::prompt_tokens;
use mvlpt_framework::config::Section;
use mvlpt_framework::method::{
    ClassTokenPosition, Footprint, ModelEnv, PromptLearner, StepContext, StepPrompts, TextMode,
};
use mvlpt_framework::model::layers::{LayerNorm, Linear, ResidualAttentionBlock};
use mvlpt_framework::model::Activation;
use mvlpt_framework::ops::AttentionMask;
use mvlpt_framework::rng::{self, Rng};
use serde::Deserialize;

mvlpt_framework::register_plugin!(
    Method,
    "upt",
    "UPT: CoOp context and VPT prompts coupled by a shared projector (MVLPT's UPT branch)",
    build,
    UptOptions
);

/// How the text and visual prompts are coupled (`TRAINER.MVLPT.PROJECT_METHOD`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProjectMethod {
    /// Pre/post linears around a one-layer transformer block.
    Transformer,
    /// No projector: CoOp and VPT trained side by side, uncoupled.
    Identity,
}

/// What the projector's attention attends over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttentionMode {
    /// The released code: every token alone (sequences of length one), no mixing.
    Reference,
    /// All prompt tokens attend to each other (the UPT paper's intent).
    Tokens,
}

/// Options of `[method.upt]`: the CoOp side, the VPT side and the projector.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UptOptions {
    /// Text context tokens (`COOP.N_CTX`).
    #[serde(deserialize_with = "prompt_tokens")]
    pub n_ctx: usize,
    /// Text context initialisation phrase (`COOP.CTX_INIT`).
    pub ctx_init: String,
    /// Class-specific text context (`COOP.CSC`).
    pub csc: bool,
    /// Class-name position (`COOP.CLASS_TOKEN_POSITION`).
    pub class_token_position: ClassTokenPosition,
    /// Cut the prompt length to the longest prompt (`CUT_CONTEXTLEN`).
    pub cut_context: bool,
    /// Visual prompt tokens per layer (`VPT.N_CTX`).
    #[serde(deserialize_with = "prompt_tokens")]
    pub vpt_n_ctx: usize,
    /// Deep visual prompts (`VPT.DEEP`).
    pub deep: bool,
    /// Dropout on the visual prompts in training (`VPT.DROPOUT`).
    pub dropout: f64,
    /// Visual prompt dimension with a projection to the vision width; −1 = none (`VPT.PROJECT`).
    pub project: i64,
    /// Visual prompt placement: `after_class` (reference) or `appended`.
    pub placement: Placement,
    /// `transformer` (reference default) or `identity` (`PROJECT_METHOD`).
    pub project_method: ProjectMethod,
    /// Width of the projector (`PROJECT_DIM`).
    pub project_dim: usize,
    /// `reference` (per-token, as released) or `tokens` (attention across prompt tokens).
    pub attention: AttentionMode,
}

impl Default for UptOptions {
    fn default() -> Self {
        Self {
            n_ctx: 4,
            ctx_init: String::new(),
            csc: false,
            class_token_position: ClassTokenPosition::Middle,
            cut_context: true,
            vpt_n_ctx: 4,
            deep: true,
            dropout: 0.0,
            project: -1,
            placement: Placement::AfterClass,
            project_method: ProjectMethod::Transformer,
            project_dim: 128,
            attention: AttentionMode::Reference,
        }
    }
}

impl UptOptions {
    fn coop(&self) -> CoopOptions {
        CoopOptions {
            n_ctx: self.n_ctx,
            ctx_init: self.ctx_init.clone(),
            csc: self.csc,
            class_token_position: self.class_token_position,
            cut_context: self.cut_context,
        }
    }

    fn vpt(&self) -> VptOptions {
        VptOptions {
            n_ctx: self.vpt_n_ctx,
            deep: self.deep,
            dropout: self.dropout,
            project: self.project,
            placement: self.placement,
        }
    }
}

/// CLIP's residual attention block as trainable variables, named like
/// `clip.model.Transformer(width, layers=1, heads=1)`.
#[derive(Clone)]
struct BlockVars {
    ln_1: (Var, Var),
    attn_in: (Var, Var),
    attn_out: TrainableLinear,
    ln_2: (Var, Var),
    mlp_fc: TrainableLinear,
    mlp_proj: TrainableLinear,
}

impl BlockVars {
    /// PyTorch's defaults: LayerNorms γ = 1, β = 0; `in_proj_weight` Xavier-uniform
    /// (±√(6 / (d + 3d))), `in_proj_bias` 0; `out_proj` a default `Linear` with its bias zeroed;
    /// `c_fc` and `c_proj` default `Linear`s. Drawn in PyTorch's construction order.
    fn new(width: usize, rng: &mut Rng, device: &Device) -> Result<Self> {
        let zeros = |n: usize| -> Result<Var> { Ok(Var::zeros(n, DType::F32, device)?) };
        let ones = |n: usize| -> Result<Var> { Ok(Var::ones(n, DType::F32, device)?) };
        let out_weight = TrainableLinear::pytorch_default(width, width, rng, device)?.weight;
        let in_bound = (6.0 / (4 * width) as f64).sqrt() as f32;
        let in_weight = rng::uniform(&[3 * width, width], -in_bound, in_bound, rng, device)?;
        let attn_out = TrainableLinear {
            weight: out_weight,
            bias: zeros(width)?,
        };
        let ln_1 = (ones(width)?, zeros(width)?);
        let mlp_fc = TrainableLinear::pytorch_default(width, 4 * width, rng, device)?;
        let mlp_proj = TrainableLinear::pytorch_default(4 * width, width, rng, device)?;
        let ln_2 = (ones(width)?, zeros(width)?);
        Ok(Self {
            ln_1,
            attn_in: (Var::from_tensor(&in_weight)?, zeros(3 * width)?),
            attn_out,
            ln_2,
            mlp_fc,
            mlp_proj,
        })
    }

    fn named(&self) -> Vec<(String, Var)> {
        let p = "mvlpt_proj.resblocks.0";
        let mut out = vec![
            (format!("{p}.attn.in_proj_weight"), self.attn_in.0.clone()),
            (format!("{p}.attn.in_proj_bias"), self.attn_in.1.clone()),
        ];
        out.extend(self.attn_out.named(&format!("{p}.attn.out_proj")));
        out.push((format!("{p}.ln_1.weight"), self.ln_1.0.clone()));
        out.push((format!("{p}.ln_1.bias"), self.ln_1.1.clone()));
        out.extend(self.mlp_fc.named(&format!("{p}.mlp.c_fc")));
        out.extend(self.mlp_proj.named(&format!("{p}.mlp.c_proj")));
        out.push((format!("{p}.ln_2.weight"), self.ln_2.0.clone()));
        out.push((format!("{p}.ln_2.bias"), self.ln_2.1.clone()));
        out
    }

    /// The framework block over these variables (one head, QuickGELU as in CLIP).
    fn block(&self) -> Result<ResidualAttentionBlock> {
        let norm = |(w, b): &(Var, Var)| LayerNorm {
            weight: w.as_tensor().clone(),
            bias: b.as_tensor().clone(),
        };
        Ok(ResidualAttentionBlock {
            ln_1: norm(&self.ln_1),
            attn_in: Linear::new(
                self.attn_in.0.as_tensor().clone(),
                Some(self.attn_in.1.as_tensor().clone()),
            )?,
            attn_out: self.attn_out.layer()?,
            ln_2: norm(&self.ln_2),
            mlp_fc: self.mlp_fc.layer()?,
            mlp_proj: self.mlp_proj.layer()?,
            heads: 1,
            activation: Activation::QuickGelu,
        })
    }
}

/// The projector: `mvlpt_proj_ctx_{coop,vpt}_{pre,post}` (absent where a side's width equals
/// `project_dim`) around the block `mvlpt_proj`.
#[derive(Clone)]
struct Projector {
    coop: Option<(TrainableLinear, TrainableLinear)>,
    vpt: Option<(TrainableLinear, TrainableLinear)>,
    block: BlockVars,
    attention: AttentionMode,
}

impl Projector {
    fn new(
        text_width: usize,
        vpt_width: usize,
        options: &UptOptions,
        rng: &mut Rng,
        device: &Device,
    ) -> Result<Self> {
        let dim = options.project_dim;
        if dim == 0 {
            bail!("upt: project_dim must be at least 1");
        }
        let mut pair = |width: usize| -> Result<Option<(TrainableLinear, TrainableLinear)>> {
            if width == dim {
                return Ok(None);
            }
            let pre = TrainableLinear::pytorch_default(width, dim, rng, device)?;
            let post = TrainableLinear::pytorch_default(dim, width, rng, device)?;
            Ok(Some((pre, post)))
        };
        let coop = pair(text_width)?;
        let vpt = pair(vpt_width)?;
        Ok(Self {
            coop,
            vpt,
            block: BlockVars::new(dim, rng, device)?,
            attention: options.attention,
        })
    }

    fn named(&self) -> Vec<(String, Var)> {
        let mut out = Vec::new();
        for (side, pair) in [("coop", &self.coop), ("vpt", &self.vpt)] {
            if let Some((pre, post)) = pair {
                out.extend(pre.named(&format!("mvlpt_proj_ctx_{side}_pre")));
                out.extend(post.named(&format!("mvlpt_proj_ctx_{side}_post")));
            }
        }
        out.extend(self.block.named());
        out
    }

    /// `forward_mvlpt_proj`: text context `(n, w)` or `(classes, n, w)` and the stacked visual
    /// prompts `(rows, m, v)` in; the same shapes out.
    fn project(&self, ctx: &Tensor, visual: &Tensor) -> Result<(Tensor, Tensor)> {
        let text_width = ctx.dim(candle_core::D::Minus1)?;
        let (rows, m, vpt_width) = visual.dims3()?;
        let text = ctx.reshape(((), text_width))?;
        let visual_flat = visual.reshape((rows * m, vpt_width))?;
        let apply = |x: &Tensor, layer: Option<&TrainableLinear>| -> Result<Tensor> {
            match layer {
                Some(l) => l.forward(x),
                None => Ok(x.clone()),
            }
        };
        let n_text = text.dim(0)?;
        let joint = Tensor::cat(
            &[
                &apply(&text, self.coop.as_ref().map(|p| &p.0))?,
                &apply(&visual_flat, self.vpt.as_ref().map(|p| &p.0))?,
            ],
            0,
        )?;
        let (tokens, dim) = joint.dims2()?;
        // Reference: `tokens` sequences of length 1; tokens: one sequence of `tokens`.
        let shaped = match self.attention {
            AttentionMode::Reference => joint.reshape((tokens, 1, dim))?,
            AttentionMode::Tokens => joint.reshape((1, tokens, dim))?,
        };
        let joint = self
            .block
            .block()?
            .forward(&shaped, AttentionMask::None)?
            .reshape((tokens, dim))?;
        let text = apply(
            &joint.narrow(0, 0, n_text)?,
            self.coop.as_ref().map(|p| &p.1),
        )?
        .reshape(ctx.dims())?;
        let visual = apply(
            &joint.narrow(0, n_text, tokens - n_text)?,
            self.vpt.as_ref().map(|p| &p.1),
        )?
        .reshape((rows, m, vpt_width))?;
        Ok((text, visual))
    }
}

/// UPT: CoOp + VPT + projector.
pub struct Upt {
    options: UptOptions,
    text: TextContext,
    visual: Option<VisualPromptSet>,
    projector: Option<Projector>,
}

impl Upt {
    /// An unbound UPT learner.
    pub fn new(options: UptOptions) -> Result<Self> {
        options.vpt().validate("upt")?;
        Ok(Self {
            text: TextContext::new(options.coop(), "ctx")?,
            options,
            visual: None,
            projector: None,
        })
    }
}

fn build(section: &Section<'_>) -> Result<Box<dyn PromptLearner>> {
    Ok(Box::new(Upt::new(section.extract()?)?))
}

impl PromptLearner for Upt {
    fn bind(&mut self, env: &ModelEnv<'_>, classnames: &[String], rng: &mut Rng) -> Result<()> {
        check_classes("upt", classnames)?;
        // The reference's construction order: visual prompts, text context, projector.
        if self.visual.is_none() {
            self.visual = Some(VisualPromptSet::new(env, self.options.vpt(), rng)?);
        }
        self.text.bind(env, classnames, rng)?;
        if self.projector.is_none() && self.options.project_method == ProjectMethod::Transformer {
            let text_width = env.clip.text.ln_final.weight.dim(0)?;
            let vpt_width = match usize::try_from(self.options.project) {
                Ok(dim) => dim,
                Err(_) => env.clip.config.vision.width,
            };
            self.projector = Some(Projector::new(
                text_width,
                vpt_width,
                &self.options,
                rng,
                env.device,
            )?);
        }
        Ok(())
    }

    fn parameters(&self) -> Vec<(String, Var)> {
        let mut out = self
            .visual
            .as_ref()
            .map(VisualPromptSet::parameters)
            .unwrap_or_default();
        out.extend(self.text.parameters());
        if let Some(projector) = &self.projector {
            out.extend(projector.named());
        }
        out
    }

    fn buffers(&self) -> Vec<(String, Tensor)> {
        self.text.buffers()
    }

    fn footprint(&self) -> Footprint {
        Footprint {
            text: TextMode::Learned,
            vision: true,
        }
    }

    fn prompts(&self, _env: &ModelEnv<'_>, step: &mut StepContext<'_>) -> Result<StepPrompts> {
        let Some(visual) = &self.visual else {
            bail!("upt: the method is not bound to a label space");
        };
        let ctx = self.text.ctx()?;
        let (shallow, deep) = visual.raw();
        let (ctx, shallow, deep) = match &self.projector {
            None => (ctx, shallow, deep),
            Some(projector) => {
                let stacked = match &deep {
                    Some(d) => Tensor::cat(&[&shallow, d], 0)?,
                    None => shallow.clone(),
                };
                let (ctx, stacked) = projector.project(&ctx, &stacked)?;
                let rows = stacked.dim(0)?;
                let deep = (rows > 1)
                    .then(|| stacked.narrow(0, 1, rows - 1))
                    .transpose()?;
                (ctx, stacked.narrow(0, 0, 1)?, deep)
            }
        };
        Ok(StepPrompts {
            visual: Some(visual.tower_prompts(&shallow, deep.as_ref(), step)?),
            text: self.text.prompts_with(ctx)?,
        })
    }
}
