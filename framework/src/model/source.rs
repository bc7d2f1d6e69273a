//! Resolving a model source string from config or the command line into a loaded model.

use super::weights::{load_clip, LoadOptions};
use super::{Clip, ClipConfig};
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device};
use std::path::PathBuf;

/// Parses `cpu`, `cuda` or `cuda:N`.
pub fn parse_device(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        cuda if cuda == "cuda" || cuda.starts_with("cuda:") => {
            let ordinal = match cuda.strip_prefix("cuda:") {
                Some(n) => n
                    .parse::<usize>()
                    .with_context(|| format!("device {name:?}: bad CUDA ordinal"))?,
                None => 0,
            };
            if !candle_core::utils::cuda_is_available() {
                bail!("device {name:?} requested but this binary was built without CUDA (build with --features cuda, see docs/cuda.md)");
            }
            Ok(Device::new_cuda(ordinal)?)
        }
        other => bail!("unknown device {other:?}: expected cpu, cuda or cuda:N"),
    }
}

/// Parses `f32`, `bf16` or `f16`.
pub fn parse_dtype(name: &str) -> Result<DType> {
    match name {
        "f32" => Ok(DType::F32),
        "bf16" => Ok(DType::BF16),
        "f16" => Ok(DType::F16),
        other => bail!("unknown dtype {other:?}: expected f32, bf16 or f16"),
    }
}

/// Where the embedded default model's file lives in the source tree.
pub fn builtin_model_path() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../models/mvlpt-tiny.safetensors"
    ))
}

/// Loads `source`: `builtin` (the tiny model shipped in `models/`), `random:<preset>` (random
/// weights, seeded by `seed`), a path, or a Hugging Face hub id.
pub fn load_model(source: &str, options: &LoadOptions, seed: u64) -> Result<Clip> {
    if let Some(preset) = source.strip_prefix("random:") {
        let config = ClipConfig::preset(preset)?;
        return Clip::random(&config, seed, &options.device, options.dtype);
    }
    if source == "builtin" {
        let path = builtin_model_path();
        if !path.is_file() {
            bail!(
                "the built-in model {} is missing from this checkout",
                path.display()
            );
        }
        return load_clip(&path.to_string_lossy(), options);
    }
    load_clip(source, options)
}
