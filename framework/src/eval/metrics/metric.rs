//! The metric names that dataset configs use (ELEVATER's `class_map_metric` plus Dassl's
//! macro-F1) and their dispatch.

use super::data::{Scores, Targets};
use super::{dassl, elevater};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A classification metric by its reference name; every value is a fraction in [0, 1].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Metric {
    /// Top-1 accuracy ([`elevater::accuracy`]).
    #[serde(rename = "accuracy")]
    Accuracy,
    /// Balanced accuracy over the classes with targets ([`elevater::mean_per_class_accuracy`]).
    #[serde(rename = "mean-per-class")]
    MeanPerClass,
    /// VOC 11-point interpolated mean average precision ([`elevater::eleven_point_map`]).
    #[serde(rename = "11point_mAP")]
    ElevenPointMap,
    /// Area under the ROC curve ([`elevater::roc_auc`]).
    #[serde(rename = "roc_auc")]
    RocAuc,
    /// Dassl's macro-F1 over the classes present ([`dassl::macro_f1`]).
    #[serde(rename = "macro_f1")]
    MacroF1,
}

impl Metric {
    /// Every metric, in declaration order.
    pub const ALL: [Metric; 5] = [
        Metric::Accuracy,
        Metric::MeanPerClass,
        Metric::ElevenPointMap,
        Metric::RocAuc,
        Metric::MacroF1,
    ];

    /// The reference name, as written in configs and reports.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::MeanPerClass => "mean-per-class",
            Metric::ElevenPointMap => "11point_mAP",
            Metric::RocAuc => "roc_auc",
            Metric::MacroF1 => "macro_f1",
        }
    }

    /// Computes the metric for N samples; errors name the mismatching sizes or the bad value.
    pub fn compute(self, scores: &Scores, targets: &Targets) -> Result<f64> {
        match self {
            Metric::Accuracy => elevater::accuracy(scores, targets),
            Metric::MeanPerClass => elevater::mean_per_class_accuracy(scores, targets),
            Metric::ElevenPointMap => elevater::eleven_point_map(scores, targets),
            Metric::RocAuc => elevater::roc_auc(scores, targets),
            Metric::MacroF1 => dassl::macro_f1(scores, targets),
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Metric {
    type Err = anyhow::Error;

    fn from_str(name: &str) -> Result<Self> {
        match Metric::ALL.into_iter().find(|m| m.name() == name) {
            Some(metric) => Ok(metric),
            None => {
                let known: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
                bail!("unknown metric {name:?}; known: {}", known.join(", "))
            }
        }
    }
}
