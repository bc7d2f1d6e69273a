//! The CLIP model: tokenizer, towers, weights.

pub mod tokenizer;
