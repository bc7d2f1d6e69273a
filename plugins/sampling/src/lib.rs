//! Built-in few-shot protocols (plugin kind `fewshot`) and batch samplers (plugin kind
//! `sampler`).
//!
//! - [`protocols`]: which training and validation samples a run uses, reproducing the reference
//!   pipelines index for index: `elevater` (MVLPT's single-task ELEVATER loader),
//!   `elevater_multitask` (its joint multitask sampling and split), `dassl` (CoOp's datasets) and
//!   `all` (no subsampling).
//! - [`samplers`]: the order of training samples in each epoch, deterministic in
//!   `(seed, epoch)`: `random`, `sequential`, `class_balanced`, and for multitask runs
//!   `task_proportional`, `task_uniform`, `task_temperature`.
//!
//! Every plugin reads its options from its own table (`[data.<name>]`), rejecting unknown keys.
//! `docs/sampling.md` gives the exact definitions.

pub mod protocols;
pub mod samplers;

/// Referenced from the `mvlpt` binary so that the linker keeps this crate and its plugin
/// registrations.
pub fn link() {}

#[cfg(test)]
mod tests {
    use mvlpt_framework::plugin::{PluginKind, Registry};

    #[test]
    fn every_protocol_and_sampler_is_registered() {
        let registry = Registry::builtin().unwrap();
        for name in ["elevater", "elevater_multitask", "dassl", "all"] {
            assert!(
                registry.contains(PluginKind::FewShot, name),
                "few-shot protocol {name} is not registered"
            );
        }
        for name in [
            "random",
            "sequential",
            "class_balanced",
            "task_proportional",
            "task_uniform",
            "task_temperature",
        ] {
            assert!(
                registry.contains(PluginKind::Sampler, name),
                "sampler {name} is not registered"
            );
        }
    }
}
