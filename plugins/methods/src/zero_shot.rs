//! Zero-shot CLIP: fixed hand-written prompts, nothing trained. One template gives one token
//! sequence per class; several templates are ensembled as CLIP does (per class, the normalised
//! mean of the normalised text features of every template), computed once at bind time.

use crate::common::check_classes;
use anyhow::{bail, Context, Result};
use candle_core::{Tensor, Var};
use mvlpt_framework::config::Section;
use mvlpt_framework::method::{
    Footprint, ModelEnv, PromptLearner, StepContext, StepPrompts, TextMode, TextPrompts,
};
use mvlpt_framework::model::l2_normalize;
use serde::Deserialize;
use std::sync::Arc;

mvlpt_framework::register_plugin!(
    Method,
    "zero_shot",
    "Zero-shot CLIP: hand-written prompt templates, one or an ensemble; nothing trained",
    build,
    ZeroShotOptions
);

/// Which templates to use.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Templates {
    /// These templates (`{}` stands for the class name).
    List(Vec<String>),
    /// `"dataset"`: the templates of each class's dataset; any other string is one template.
    One(String),
}

/// Options of `[method.zero_shot]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ZeroShotOptions {
    /// A template, a list of templates (ensembled), or `"dataset"`.
    pub templates: Templates,
}

impl Default for ZeroShotOptions {
    fn default() -> Self {
        Self {
            templates: Templates::List(vec!["a photo of a {}.".into()]),
        }
    }
}

/// The keyword that selects the dataset's own templates.
pub const DATASET_TEMPLATES: &str = "dataset";

/// Zero-shot classification with fixed prompts.
pub struct ZeroShot {
    options: ZeroShotOptions,
    class_templates: Option<Vec<Vec<String>>>,
    text: Option<TextPrompts>,
}

impl ZeroShot {
    /// An unbound zero-shot method.
    pub fn new(options: ZeroShotOptions) -> Result<Self> {
        if let Templates::List(list) = &options.templates {
            if list.is_empty() {
                bail!("zero_shot: templates is an empty list");
            }
            list.iter().try_for_each(|t| check_template(t))?;
        }
        if let Templates::One(t) = &options.templates {
            if t != DATASET_TEMPLATES {
                check_template(t)?;
            }
        }
        Ok(Self {
            options,
            class_templates: None,
            text: None,
        })
    }

    /// The templates of every class.
    fn templates_per_class(&self, classes: usize) -> Result<Vec<Vec<String>>> {
        match &self.options.templates {
            Templates::One(t) if t == DATASET_TEMPLATES => {
                let per_class = self.class_templates.clone().context(
                    "zero_shot: templates = \"dataset\" but no dataset templates were given",
                )?;
                if per_class.len() != classes {
                    bail!(
                        "zero_shot: dataset templates for {} classes, label space of {classes}",
                        per_class.len()
                    );
                }
                if let Some(c) = per_class.iter().position(Vec::is_empty) {
                    bail!("zero_shot: the dataset gives class {c} no templates");
                }
                per_class
                    .iter()
                    .flatten()
                    .try_for_each(|t| check_template(t))?;
                Ok(per_class)
            }
            Templates::One(t) => Ok(vec![vec![t.clone()]; classes]),
            Templates::List(list) => Ok(vec![list.clone(); classes]),
        }
    }
}

fn check_template(template: &str) -> Result<()> {
    if !template.contains("{}") {
        bail!("zero_shot: template {template:?} has no {{}} for the class name");
    }
    Ok(())
}

fn build(section: &Section<'_>) -> Result<Box<dyn PromptLearner>> {
    Ok(Box::new(ZeroShot::new(section.extract()?)?))
}

/// Token ids of `templates` filled with `name` (underscores as spaces) at `length`.
fn tokenize_filled(
    env: &ModelEnv<'_>,
    templates: &[String],
    name: &str,
    length: usize,
) -> Result<Vec<Vec<u32>>> {
    let name = name.replace('_', " ");
    templates
        .iter()
        .map(|t| {
            let text = t.replace("{}", &name);
            env.tokenizer
                .tokenize(&text, length, false)
                .with_context(|| format!("zero_shot: prompt {text:?} does not fit the context"))
        })
        .collect()
}

impl PromptLearner for ZeroShot {
    fn set_class_templates(&mut self, templates: &[Vec<String>]) {
        self.class_templates = Some(templates.to_vec());
    }

    fn bind(
        &mut self,
        env: &ModelEnv<'_>,
        classnames: &[String],
        _rng: &mut mvlpt_framework::rng::Rng,
    ) -> Result<()> {
        check_classes("zero_shot", classnames)?;
        let per_class = self.templates_per_class(classnames.len())?;
        let length = env.clip.config.text.context_length;
        if per_class.iter().all(|t| t.len() == 1) {
            let ids = classnames
                .iter()
                .zip(&per_class)
                .map(|(name, t)| Ok(tokenize_filled(env, t, name, length)?.remove(0)))
                .collect::<Result<Vec<_>>>()?;
            self.text = Some(TextPrompts::Fixed(Arc::new(ids)));
            return Ok(());
        }
        let rows = classnames
            .iter()
            .zip(&per_class)
            .map(|(name, t)| {
                let ids = tokenize_filled(env, t, name, length)?;
                let features = l2_normalize(&env.clip.encode_text(&ids)?.detach())?;
                Ok(l2_normalize(&features.mean_keepdim(0)?)?)
            })
            .collect::<Result<Vec<_>>>()?;
        self.text = Some(TextPrompts::Features(Tensor::cat(&rows, 0)?));
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
        let text = self
            .text
            .clone()
            .context("zero_shot: the method is not bound to a label space")?;
        Ok(StepPrompts { visual: None, text })
    }
}
