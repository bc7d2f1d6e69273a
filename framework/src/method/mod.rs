//! Prompt methods: the [`PromptLearner`] trait that method plugins implement, and the prompt
//! building blocks they share ([`ContextTemplate`] for learned text context).
//!
//! A method owns its trainable tensors and tells the engine, once per step, what to splice into
//! the frozen towers ([`StepPrompts`]): visual prompt tokens, learned text context (optionally
//! with deep text prompts), or context conditioned on each image. The engine runs the towers,
//! caches what the method leaves frozen ([`Footprint`]), computes logits and the loss, and asks
//! the method for extra loss terms ([`PromptLearner::loss_terms`]).

mod context;
pub mod import;
mod learner;

pub use context::{ClassTokenPosition, ContextTemplate};
pub use learner::{
    load_named, ContextFn, Footprint, HeadOutputs, LoadReport, ModelEnv, PromptLearner,
    StepContext, StepPrompts, TextMode, TextPrompts,
};
