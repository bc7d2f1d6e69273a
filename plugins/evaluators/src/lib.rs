//! Built-in evaluators (plugin kind `evaluator`, `eval.evaluator`).
//!
//! - `classification`: ELEVATER's way (what MVLPT reports on ELEVATER): every task scored with its
//!   own metric on its own columns, values as fractions in [0, 1], overall = the unweighted mean
//!   over tasks or the task named by `eval.key`.
//! - `dassl`: Dassl's `Classification` evaluator (what CoOp and MVLPT's source stage report):
//!   accuracy, error rate and macro-F1 in percent per task; overall = mean accuracy over tasks
//!   or the named task's accuracy.
//!
//! Both work for single-task runs (one task spanning every column) and for joint multitask label
//! spaces, and compute every number with the framework's metrics module.

mod classification;
mod dassl;

pub use classification::ClassificationEvaluator;
pub use dassl::DasslEvaluator;

/// Referenced from the `mvlpt` binary so that the linker keeps this crate and its plugin
/// registrations.
pub fn link() {}

#[cfg(test)]
mod tests {
    use mvlpt_framework::plugin::{PluginKind, Registry};

    #[test]
    fn every_evaluator_is_registered() {
        let registry = Registry::builtin().unwrap();
        for name in ["classification", "dassl"] {
            assert!(
                registry.contains(PluginKind::Evaluator, name),
                "evaluator {name} is not registered"
            );
        }
    }
}
