//! The built-in prompt methods of mvlpt, as the MVLPT reference implements them (§2 of the
//! method notes, docs/methods.md): `coop`, `vpt`, `upt`, `cocoop` and `zero_shot`, each a
//! [`PromptLearner`](mvlpt_framework::method::PromptLearner) registered as a `method` plugin.
//!
//! Each method's options are its `[method.<name>]` table; its trainable tensors carry the
//! reference's state-dict names, so reference checkpoints load into them
//! (`mvlpt_framework::method::import`).

pub mod cocoop;
pub mod common;
pub mod coop;
pub mod upt;
pub mod vpt;
pub mod zero_shot;

pub use cocoop::{Cocoop, CocoopOptions};
pub use coop::{Coop, CoopOptions, TextContext};
pub use upt::{AttentionMode, ProjectMethod, Upt, UptOptions};
pub use vpt::{Placement, VisualPromptSet, Vpt, VptOptions};
pub use zero_shot::{Templates, ZeroShot, ZeroShotOptions};

/// Referenced from the `mvlpt` binary so that the linker keeps this crate and its plugin
/// registrations.
pub fn link() {}
