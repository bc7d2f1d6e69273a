//! The optimisation recipe of an experiment (`[train]`, reference §4.1): optimiser, learning
//! rate schedule, validation and checkpoint cadence. Every number is range-checked when the
//! config is loaded.

use super::choices::{OptimizerChoice, ScheduleChoice, SelectChoice, WarmupChoice};
use super::ranges::{betas, count_in, non_negative, MAX_COUNT};
use serde::{Deserialize, Serialize};

/// The optimisation recipe (reference: §4.1).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Epochs (0 = evaluate only).
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    /// `sgd` or `adamw`.
    #[serde(default)]
    pub optimizer: OptimizerChoice,
    /// Base learning rate.
    #[serde(default = "default_lr", deserialize_with = "non_negative")]
    pub lr: f64,
    /// SGD momentum.
    #[serde(default = "default_momentum", deserialize_with = "non_negative")]
    pub momentum: f64,
    /// Weight decay (L2 for SGD, decoupled for AdamW).
    #[serde(default = "default_weight_decay", deserialize_with = "non_negative")]
    pub weight_decay: f64,
    /// SGD dampening.
    #[serde(default, deserialize_with = "non_negative")]
    pub dampening: f64,
    /// SGD Nesterov momentum.
    #[serde(default)]
    pub nesterov: bool,
    /// AdamW betas.
    #[serde(default = "default_betas", deserialize_with = "betas")]
    pub betas: [f64; 2],
    /// AdamW epsilon.
    #[serde(default = "default_adam_eps", deserialize_with = "non_negative")]
    pub adam_eps: f64,
    /// `cosine`, `constant` or `step`.
    #[serde(default)]
    pub schedule: ScheduleChoice,
    /// Warm-up epochs before the schedule (the reference uses 1).
    #[serde(default = "default_warmup_epochs")]
    pub warmup_epochs: usize,
    /// `constant` (fixed `warmup_lr`) or `linear` (from `warmup_lr` to `lr`).
    #[serde(default)]
    pub warmup_type: WarmupChoice,
    /// Learning rate during warm-up.
    #[serde(default = "default_warmup_lr", deserialize_with = "non_negative")]
    pub warmup_lr: f64,
    /// Step schedule: epochs at which the rate is multiplied by `gamma`.
    #[serde(default)]
    pub milestones: Vec<usize>,
    /// Step schedule factor.
    #[serde(default = "default_gamma", deserialize_with = "non_negative")]
    pub gamma: f64,
    /// Validate every N epochs (0 = never).
    #[serde(default = "default_one")]
    pub eval_every: usize,
    /// `best_val` (test with the best validated prompts) or `last`.
    #[serde(default)]
    pub select: SelectChoice,
    /// Write a resumable checkpoint every N epochs (the last epoch is always written).
    #[serde(
        default = "default_one",
        deserialize_with = "count_in::<1, MAX_COUNT, _>"
    )]
    pub checkpoint_every: usize,
    /// Classes per text-tower chunk: learned context over more classes than this is encoded
    /// chunk by chunk with an exact gradient and memory bounded by one chunk.
    #[serde(
        default = "default_text_chunk",
        deserialize_with = "count_in::<1, MAX_COUNT, _>"
    )]
    pub text_chunk: usize,
}

fn default_text_chunk() -> usize {
    128
}

fn default_epochs() -> usize {
    10
}
fn default_lr() -> f64 {
    0.002
}
fn default_momentum() -> f64 {
    0.9
}
fn default_weight_decay() -> f64 {
    5e-4
}
fn default_betas() -> [f64; 2] {
    [0.9, 0.999]
}
fn default_adam_eps() -> f64 {
    1e-8
}
fn default_warmup_epochs() -> usize {
    1
}
fn default_warmup_lr() -> f64 {
    1e-5
}
fn default_gamma() -> f64 {
    0.1
}
fn default_one() -> usize {
    1
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: default_epochs(),
            optimizer: OptimizerChoice::default(),
            lr: default_lr(),
            momentum: default_momentum(),
            weight_decay: default_weight_decay(),
            dampening: 0.0,
            nesterov: false,
            betas: default_betas(),
            adam_eps: default_adam_eps(),
            schedule: ScheduleChoice::default(),
            warmup_epochs: default_warmup_epochs(),
            warmup_type: WarmupChoice::default(),
            warmup_lr: default_warmup_lr(),
            milestones: Vec::new(),
            gamma: default_gamma(),
            eval_every: 1,
            select: SelectChoice::default(),
            checkpoint_every: 1,
            text_chunk: default_text_chunk(),
        }
    }
}
