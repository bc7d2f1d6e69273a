//! The training engine: forward/backward through the frozen towers with the method's prompts,
//! losses, optimisers, learning-rate schedules.

mod build;
pub mod checkpoint;
pub mod data;
pub mod forward;
pub mod loss;
pub mod optim;
pub mod progress;
mod run_state;
pub mod schedule;
pub mod trainer;

pub use forward::{ForwardOptions, ImageInput, StepResult, TextFeatureCache};
pub use loss::{cross_entropy, mask_logits, BatchTargets, TaskMasking};
pub use optim::{AdamWConfig, Optimizer, OptimizerKind, SgdConfig};
pub use progress::{format_duration, Progress, ProgressMode};
pub use schedule::{Decay, LrSchedule, Warmup};
pub use trainer::{train, RunSink, TrainOutcome};
