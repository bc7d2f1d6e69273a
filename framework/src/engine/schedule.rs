//! Learning-rate schedules stepped once per epoch, reproducing Dassl's schedulers (§4.1):
//! a cosine / constant / step successor wrapped by a constant or linear warm-up.

use crate::config::{ScheduleChoice, TrainConfig, WarmupChoice};
use anyhow::Result;

/// The successor schedule after warm-up.
#[derive(Clone, Debug, PartialEq)]
pub enum Decay {
    /// `CosineAnnealingLR(T_max = epochs, eta_min = 0)`.
    Cosine,
    /// The base rate throughout.
    Constant,
    /// `MultiStepLR(milestones, gamma)`.
    Step {
        /// Epochs (counted after warm-up) at which the rate is multiplied by `gamma`.
        milestones: Vec<usize>,
        /// The factor.
        gamma: f64,
    },
}

/// Warm-up before the successor.
#[derive(Clone, Debug, PartialEq)]
pub enum Warmup {
    /// No warm-up.
    None,
    /// Dassl's `ConstantWarmupScheduler`: `lr` for the first `epochs` epochs.
    Constant {
        /// Warm-up length.
        epochs: usize,
        /// Rate during warm-up.
        lr: f64,
    },
    /// Dassl's `LinearWarmupScheduler`: from `min_lr` rising linearly towards the base rate.
    Linear {
        /// Warm-up length.
        epochs: usize,
        /// Starting rate.
        min_lr: f64,
    },
}

/// A per-epoch learning-rate schedule.
#[derive(Clone, Debug, PartialEq)]
pub struct LrSchedule {
    /// Base rate.
    pub base_lr: f64,
    /// Total epochs (the cosine period, as `T_max = MAX_EPOCH` in the reference).
    pub epochs: usize,
    /// The successor.
    pub decay: Decay,
    /// The warm-up.
    pub warmup: Warmup,
}

impl LrSchedule {
    /// Builds the schedule of `train` (`schedule`: `cosine` | `constant` | `step`;
    /// `warmup_type`: `constant` | `linear`; `warmup_epochs = 0` for none).
    pub fn from_config(train: &TrainConfig) -> Result<Self> {
        let decay = match train.schedule {
            ScheduleChoice::Cosine => Decay::Cosine,
            ScheduleChoice::Constant => Decay::Constant,
            ScheduleChoice::Step => Decay::Step {
                milestones: train.milestones.clone(),
                gamma: train.gamma,
            },
        };
        let warmup = match (train.warmup_epochs, train.warmup_type) {
            (0, _) => Warmup::None,
            (epochs, WarmupChoice::Constant) => Warmup::Constant {
                epochs,
                lr: train.warmup_lr,
            },
            (epochs, WarmupChoice::Linear) => Warmup::Linear {
                epochs,
                min_lr: train.warmup_lr,
            },
        };
        Ok(Self {
            base_lr: train.lr,
            epochs: train.epochs,
            decay,
            warmup,
        })
    }

    /// The rate used throughout epoch `epoch` (0-based).
    ///
    /// Dassl steps its scheduler after each epoch; its warm-up wrapper returns the warm-up rate
    /// while `last_epoch < warmup_epochs` and otherwise steps the successor with the epoch
    /// count restarted at zero (`WARMUP_RECOUNT = True`). Epoch `warmup_epochs` therefore runs
    /// at the successor's epoch-0 rate, the full base rate.
    pub fn lr(&self, epoch: usize) -> f64 {
        match self.warmup {
            Warmup::Constant { epochs, lr } if epoch < epochs => return lr,
            Warmup::Linear { epochs, min_lr } if epoch < epochs => {
                // Dassl: lr = last_epoch / warmup_epoch * base (for last_epoch > 0), min_lr at 0.
                return if epoch == 0 {
                    min_lr
                } else {
                    self.base_lr * epoch as f64 / epochs as f64
                };
            }
            _ => {}
        }
        let warmup_epochs = match self.warmup {
            Warmup::None => 0,
            Warmup::Constant { epochs, .. } | Warmup::Linear { epochs, .. } => epochs,
        };
        self.successor(epoch - warmup_epochs)
    }

    /// The successor's rate after `t` of its own epochs.
    fn successor(&self, t: usize) -> f64 {
        match &self.decay {
            Decay::Constant => self.base_lr,
            Decay::Cosine => {
                let period = self.epochs.max(1) as f64;
                0.5 * self.base_lr * (1.0 + (std::f64::consts::PI * t as f64 / period).cos())
            }
            Decay::Step { milestones, gamma } => {
                let passed = milestones.iter().filter(|&&m| m <= t).count();
                self.base_lr * gamma.powi(passed as i32)
            }
        }
    }
}
