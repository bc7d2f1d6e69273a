//! VPT as MVLPT implements it (§2.4): learned tokens inserted into the image tower after the
//! class token (after `ln_pre`) and replaced before every later block ("deep"), with the fixed
//! text prompt "a photo of a {class}.". Also the visual-prompt machinery UPT shares
//! ([`VisualPromptSet`]).

use crate::common::{
    check_classes, check_probability, prompt_dropout, uniform_var, TrainableLinear,
};
use anyhow::{bail, Context, Result};
use candle_core::{Tensor, Var};
use mvlpt_framework::config::ranges::prompt_tokens;
use mvlpt_framework::config::Section;
use mvlpt_framework::method::{
    Footprint, ModelEnv, PromptLearner, StepContext, StepPrompts, TextMode, TextPrompts,
};
use mvlpt_framework::model::{VisualPromptPlacement, VisualPrompts};
use mvlpt_framework::rng::Rng;
use serde::Deserialize;
use std::sync::Arc;

mvlpt_framework::register_plugin!(
    Method,
    "vpt",
    "VPT: learned visual prompt tokens, shallow or deep, fixed text prompts (MVLPT's VPT branch)",
    build,
    VptOptions
);

/// Where the visual prompt tokens go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// The reference: after `ln_pre`, between the class token and the patches.
    AfterClass,
    /// MaPLe/IVLP: appended after the patches before `ln_pre`; deep prompts replace the last rows.
    Appended,
}

impl Placement {
    fn tower(self) -> VisualPromptPlacement {
        match self {
            Self::AfterClass => VisualPromptPlacement::AfterClassToken,
            Self::Appended => VisualPromptPlacement::AppendedBeforeLnPre,
        }
    }
}

/// Options of `[method.vpt]` (the reference's `TRAINER.MVLPT.VPT.*`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VptOptions {
    /// Prompt tokens per layer (`N_CTX`).
    #[serde(deserialize_with = "prompt_tokens")]
    pub n_ctx: usize,
    /// Replace the prompts before every block after the first (`DEEP`).
    pub deep: bool,
    /// Dropout on the (projected) prompts in training (`DROPOUT`).
    pub dropout: f64,
    /// Prompt dimension projected to the vision width by a linear layer; −1 = no projection
    /// (`PROJECT`).
    pub project: i64,
    /// Where the tokens go: `after_class` (reference) or `appended` (MaPLe/IVLP).
    pub placement: Placement,
}

impl Default for VptOptions {
    fn default() -> Self {
        Self {
            n_ctx: 16,
            deep: true,
            dropout: 0.0,
            project: -1,
            placement: Placement::AfterClass,
        }
    }
}

impl VptOptions {
    /// Checks the values the reference would reject or crash on.
    pub fn validate(&self, method: &str) -> Result<()> {
        if self.n_ctx == 0 {
            bail!("{method}: n_ctx must be at least 1");
        }
        if self.project == 0 || self.project < -1 {
            bail!(
                "{method}: project must be -1 (no projection) or a positive dimension, got {}",
                self.project
            );
        }
        check_probability(&format!("{method}: dropout"), self.dropout)
    }
}

/// The visual prompt parameters: `vpt_embeddings (1, n, dim)`, `vpt_embeddings_deep
/// (layers − 1, n, dim)` and the optional `vpt_proj` from `dim` to the vision width.
#[derive(Clone)]
pub struct VisualPromptSet {
    options: VptOptions,
    shallow: Var,
    deep: Option<Var>,
    proj: Option<TrainableLinear>,
}

impl VisualPromptSet {
    /// Draws the prompts as the reference initialises them: `vpt_proj` (Kaiming-normal, fan
    /// out) first, then Uniform(±v) with v = √(6 / (3·patch² + dim)) for the shallow and the
    /// deep prompts.
    pub fn new(env: &ModelEnv<'_>, options: VptOptions, rng: &mut Rng) -> Result<Self> {
        let vision = &env.clip.config.vision;
        let (width, patch, layers) = (vision.width, vision.patch_size, vision.layers);
        let (dim, proj) = match usize::try_from(options.project) {
            Ok(dim) => (
                dim,
                Some(TrainableLinear::kaiming_normal_fan_out(
                    dim, width, rng, env.device,
                )?),
            ),
            Err(_) => (width, None),
        };
        let bound = (6.0 / (3 * patch * patch + dim) as f64).sqrt();
        let shallow = uniform_var(&[1, options.n_ctx, dim], bound, rng, env.device)?;
        let deep = if options.deep && layers > 1 {
            Some(uniform_var(
                &[layers - 1, options.n_ctx, dim],
                bound,
                rng,
                env.device,
            )?)
        } else {
            None
        };
        Ok(Self {
            options,
            shallow,
            deep,
            proj,
        })
    }

    /// The parameters under their reference names.
    pub fn parameters(&self) -> Vec<(String, Var)> {
        let mut out = Vec::new();
        if let Some(proj) = &self.proj {
            out.extend(proj.named("vpt_proj"));
        }
        out.push(("vpt_embeddings".into(), self.shallow.clone()));
        if let Some(deep) = &self.deep {
            out.push(("vpt_embeddings_deep".into(), deep.clone()));
        }
        out
    }

    /// The raw prompt tensors: shallow `(1, n, dim)` and deep `(layers − 1, n, dim)`.
    pub fn raw(&self) -> (Tensor, Option<Tensor>) {
        (
            self.shallow.as_tensor().clone(),
            self.deep.as_ref().map(|d| d.as_tensor().clone()),
        )
    }

    /// Tower prompts from `shallow (1, n, dim)` and `deep (rows, n, dim)` (the parameters, or
    /// UPT's projection of them): each goes through `vpt_proj` and dropout; deep row `i` replaces
    /// the prompts before block `i + 1`.
    pub fn tower_prompts(
        &self,
        shallow: &Tensor,
        deep: Option<&Tensor>,
        step: &mut StepContext<'_>,
    ) -> Result<VisualPrompts> {
        let shallow = self.prepare(&shallow.squeeze(0)?, step)?;
        let mut layers = vec![None];
        if let Some(deep) = deep {
            for row in 0..deep.dim(0)? {
                layers.push(Some(self.prepare(&deep.get(row)?, step)?));
            }
        }
        Ok(VisualPrompts {
            placement: self.options.placement.tower(),
            shallow: Some(shallow),
            deep: layers,
        })
    }

    /// `dropout(vpt_proj(tokens))` for one layer's `(n, dim)` tokens.
    fn prepare(&self, tokens: &Tensor, step: &mut StepContext<'_>) -> Result<Tensor> {
        let tokens = match &self.proj {
            Some(proj) => proj.forward(tokens)?,
            None => tokens.clone(),
        };
        prompt_dropout(&tokens, self.options.dropout, step)
    }
}

/// VPT: visual prompts, text fixed to "a photo of a {class}." at the full context length.
pub struct Vpt {
    options: VptOptions,
    prompts: Option<VisualPromptSet>,
    text: Option<Arc<Vec<Vec<u32>>>>,
}

impl Vpt {
    /// An unbound VPT learner.
    pub fn new(options: VptOptions) -> Result<Self> {
        options.validate("vpt")?;
        Ok(Self {
            options,
            prompts: None,
            text: None,
        })
    }
}

fn build(section: &Section<'_>) -> Result<Box<dyn PromptLearner>> {
    Ok(Box::new(Vpt::new(section.extract()?)?))
}

/// The reference's VPT-only text: `"a photo of a " + " " + name + "."` tokenized at the model's
/// full context length (whitespace runs collapse in the tokenizer).
pub fn photo_prompts(env: &ModelEnv<'_>, classnames: &[String]) -> Result<Vec<Vec<u32>>> {
    let length = env.clip.config.text.context_length;
    classnames
        .iter()
        .map(|name| {
            let text = format!("a photo of a  {}.", name.replace('_', " "));
            env.tokenizer
                .tokenize(&text, length, false)
                .with_context(|| format!("class {name:?}: the prompt does not fit the context"))
        })
        .collect()
}

impl PromptLearner for Vpt {
    fn bind(&mut self, env: &ModelEnv<'_>, classnames: &[String], rng: &mut Rng) -> Result<()> {
        check_classes("vpt", classnames)?;
        if self.prompts.is_none() {
            self.prompts = Some(VisualPromptSet::new(env, self.options.clone(), rng)?);
        }
        self.text = Some(Arc::new(photo_prompts(env, classnames)?));
        Ok(())
    }

    fn parameters(&self) -> Vec<(String, Var)> {
        self.prompts
            .as_ref()
            .map(VisualPromptSet::parameters)
            .unwrap_or_default()
    }

    fn footprint(&self) -> Footprint {
        Footprint {
            text: TextMode::Frozen,
            vision: true,
        }
    }

    fn prompts(&self, _env: &ModelEnv<'_>, step: &mut StepContext<'_>) -> Result<StepPrompts> {
        let (Some(prompts), Some(text)) = (&self.prompts, &self.text) else {
            bail!("vpt: the method is not bound to a label space");
        };
        let (shallow, deep) = prompts.raw();
        Ok(StepPrompts {
            visual: Some(prompts.tower_prompts(&shallow, deep.as_ref(), step)?),
            text: TextPrompts::Fixed(text.clone()),
        })
    }
}
