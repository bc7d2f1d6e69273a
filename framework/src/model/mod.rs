//! The CLIP model: architecture configs, the two towers with prompt hooks, the tokenizer and
//! checkpoint loading.

pub mod clip;
pub mod config;
mod finite;
pub mod hub;
pub mod layers;
pub mod source;
pub mod text;
pub mod vision;
pub mod weights;

pub use clip::{l2_normalize, Clip};
pub use config::{Activation, ClipConfig, TextConfig, VisionConfig};
pub use layers::DeepPrompts;
pub use source::{dtype_of, load_model, open_device, parse_device, parse_dtype};
pub use text::TextEncoder;
pub use vision::{ImageEncoder, VisualPromptPlacement, VisualPrompts};
pub use weights::{load_clip, LoadOptions};

/// The CLIP tokenizer (the `mvlpt-tokenizer` crate).
pub use mvlpt_tokenizer as tokenizer;
