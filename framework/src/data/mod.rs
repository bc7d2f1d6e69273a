//! The data pipeline: images, transforms, Python-compatible randomness, few-shot protocols.

pub mod fewshot;
pub mod image;
pub mod pyrandom;
pub mod transforms;
