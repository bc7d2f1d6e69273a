//! Few-shot protocols (plugin kind `fewshot`): which training and validation samples a run
//! uses for a given number of shots and seed.

use super::dataset::{Dataset, Sample};
use anyhow::Result;

/// Training and validation samples chosen by a protocol.
#[derive(Clone, Debug, Default)]
pub struct FewShotSplit {
    /// Samples to train on.
    pub train: Vec<Sample>,
    /// Samples for model selection.
    pub val: Vec<Sample>,
    /// Remarks for the run log (e.g. "1-shot: validating on the training set").
    pub notes: Vec<String>,
}

/// A few-shot protocol plugin.
pub trait FewShotProtocol: Send + Sync {
    /// Chooses `shots` per class (0 = all) with `seed`.
    fn split(&self, dataset: &dyn Dataset, shots: usize, seed: u64) -> Result<FewShotSplit>;

    /// Whether a multitask run applies this protocol once to all tasks merged into one joint
    /// dataset (labels are global class ids, as ELEVATER's multitask manifest) rather than to
    /// each task separately (as the CoOp-datasets source stage).
    fn joint(&self) -> bool {
        false
    }
}
