//! Resolving a model source string from config or the command line into a loaded model.

use super::weights::{load_clip, LoadOptions};
use super::{Clip, ClipConfig};
use crate::config::{parse_choice, ComputeDevice, Precision};
use anyhow::{bail, Result};
use candle_core::{DType, Device};
use std::path::PathBuf;

/// Parses `cpu`, `cuda` or `cuda:N`.
pub fn parse_device(name: &str) -> Result<Device> {
    open_device(name.parse().map_err(anyhow::Error::msg)?)
}

/// The candle device of a config's `model.device`.
pub fn open_device(device: ComputeDevice) -> Result<Device> {
    let Some(ordinal) = device.cuda_ordinal() else {
        return Ok(Device::Cpu);
    };
    if !candle_core::utils::cuda_is_available() {
        bail!("device {:?} requested but this binary was built without CUDA (build with --features cuda, see docs/cuda.md)", device.to_string());
    }
    Ok(Device::new_cuda(ordinal)?)
}

/// Parses `f32`, `bf16` or `f16`.
pub fn parse_dtype(name: &str) -> Result<DType> {
    Ok(dtype_of(parse_choice::<Precision>("dtype", name)?))
}

/// The candle dtype of a config's `model.dtype`.
pub fn dtype_of(precision: Precision) -> DType {
    match precision {
        Precision::F32 => DType::F32,
        Precision::Bf16 => DType::BF16,
        Precision::F16 => DType::F16,
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
