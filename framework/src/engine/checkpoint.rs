//! Resumable training checkpoints: prompt tensors, optimiser state, the best prompts so far and
//! a JSON record (epoch, best metric, generator state). Each checkpoint is two files written
//! atomically, the JSON last and naming the tensor file, so a crash at any point leaves the
//! previous complete checkpoint in place.

use crate::io::{write_atomic, write_json_atomic};
use crate::rng::Rng;
use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The JSON part of a checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckpointRecord {
    /// Epochs completed (training resumes at this epoch index).
    pub epochs_done: usize,
    /// Optimiser steps taken.
    pub optimizer_steps: u64,
    /// Best validation value so far and the epoch (0-based) it was reached at.
    pub best: Option<(f64, usize)>,
    /// State of the step generator (dropout and other per-step randomness).
    pub rng: Rng,
    /// The tensor file of this checkpoint (relative to the checkpoint directory).
    pub tensors: String,
}

/// File name of the checkpoint record.
pub const RECORD: &str = "last.json";

/// Writes a checkpoint into `dir`: `params`, optimiser `state` and `best` prompts go into
/// `epoch-<n>.safetensors`, then `last.json` points to it; older tensor files are removed.
pub fn save(
    dir: &Path,
    record: &CheckpointRecord,
    params: &[(String, Tensor)],
    optimizer_state: &HashMap<String, Tensor>,
    best: &[(String, Tensor)],
) -> Result<()> {
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    for (name, t) in params {
        tensors.insert(format!("param.{name}"), t.to_device(&Device::Cpu)?);
    }
    for (name, t) in best {
        tensors.insert(format!("best.{name}"), t.to_device(&Device::Cpu)?);
    }
    for (name, t) in optimizer_state {
        tensors.insert(name.clone(), t.to_device(&Device::Cpu)?);
    }
    let bytes = safetensors::serialize(&tensors, None).context("serialising checkpoint tensors")?;
    write_atomic(&dir.join(&record.tensors), &bytes)?;
    write_json_atomic(&dir.join(RECORD), record)?;
    for entry in std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("epoch-") && name.ends_with(".safetensors") && name != record.tensors {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

/// A loaded checkpoint.
pub struct Checkpoint {
    /// The record.
    pub record: CheckpointRecord,
    /// Prompt tensors by name.
    pub params: HashMap<String, Tensor>,
    /// Best prompts by name.
    pub best: HashMap<String, Tensor>,
    /// Optimiser state (names start with `optim.`).
    pub optimizer: HashMap<String, Tensor>,
}

/// Loads the checkpoint of `dir`, if any.
pub fn load(dir: &Path, device: &Device) -> Result<Option<Checkpoint>> {
    let record_path = dir.join(RECORD);
    if !record_path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&record_path)
        .with_context(|| format!("reading {}", record_path.display()))?;
    let record: CheckpointRecord = serde_json::from_str(&text)
        .with_context(|| format!("{}: malformed checkpoint record", record_path.display()))?;
    let tensor_path = dir.join(&record.tensors);
    let all = candle_core::safetensors::load(&tensor_path, device)
        .with_context(|| format!("reading checkpoint tensors {}", tensor_path.display()))?;
    let (mut params, mut best, mut optimizer) = (HashMap::new(), HashMap::new(), HashMap::new());
    for (name, t) in all {
        if let Some(n) = name.strip_prefix("param.") {
            params.insert(n.to_string(), t);
        } else if let Some(n) = name.strip_prefix("best.") {
            best.insert(n.to_string(), t);
        } else {
            optimizer.insert(name, t);
        }
    }
    Ok(Some(Checkpoint {
        record,
        params,
        best,
        optimizer,
    }))
}

/// What a failed run leaves to resume from in `dir`, in words for its error message: the epoch
/// of the last checkpoint, or that none was written yet.
pub fn kept(dir: &Path) -> Result<String> {
    let record_path = dir.join(RECORD);
    if !record_path.is_file() {
        return Ok(format!(
            "no checkpoint was written yet to {}: the run starts over when resumed",
            dir.display()
        ));
    }
    let text = std::fs::read_to_string(&record_path)
        .with_context(|| format!("reading {}", record_path.display()))?;
    let record: CheckpointRecord = serde_json::from_str(&text)
        .with_context(|| format!("{}: malformed checkpoint record", record_path.display()))?;
    Ok(format!(
        "the last good checkpoint, after epoch {}, is kept in {}",
        record.epochs_done,
        dir.display()
    ))
}

/// Writes prompt tensors alone (for transfer with `method.init_from` and `mvlpt ckpt`).
pub fn save_prompts(
    path: &Path,
    prompts: &[(String, Tensor)],
    metadata: HashMap<String, String>,
) -> Result<()> {
    let tensors: HashMap<String, Tensor> = prompts
        .iter()
        .map(|(n, t)| Ok((n.clone(), t.to_device(&Device::Cpu)?)))
        .collect::<Result<_>>()?;
    let bytes = safetensors::serialize(&tensors, Some(metadata)).context("serialising prompts")?;
    write_atomic(path, &bytes)
}

/// File of the best prompts inside a run directory.
pub fn prompts_path(run_dir: &Path) -> PathBuf {
    run_dir.join("prompts.safetensors")
}

/// Reads prompt tensors from a `.safetensors` file, a run directory (its `prompts.safetensors`)
/// or a reference PyTorch checkpoint (`model-best.pth.tar`, imported under the reference
/// tensor names; see [`crate::method::import`]).
pub fn load_prompts(source: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    let file = if source.is_dir() {
        prompts_path(source)
    } else {
        source.to_path_buf()
    };
    if !file.is_file() {
        anyhow::bail!(
            "prompt checkpoint {} not found (expected a prompts.safetensors file, a run \
             directory holding one, or a reference .pth.tar)",
            file.display()
        );
    }
    crate::method::import::read_prompt_tensors(&file)
        .with_context(|| format!("reading prompts from {}", file.display()))?
        .into_iter()
        .map(|(name, tensor)| Ok((name, tensor.to_device(device)?)))
        .collect()
}

/// Element-wise mean of prompt tensors from several sources (files or run directories), as the
/// reference's `avg_ckpt.py` averages the three seeds' source prompts (§3.2). Every source must
/// hold the same tensor names and shapes.
pub fn average_prompts(sources: &[PathBuf]) -> Result<HashMap<String, Tensor>> {
    let Some((first, rest)) = sources.split_first() else {
        anyhow::bail!("no checkpoints to average");
    };
    let mut sum = load_prompts(first, &Device::Cpu)?;
    let mut names: Vec<String> = sum.keys().cloned().collect();
    names.sort();
    for source in rest {
        let other = load_prompts(source, &Device::Cpu)?;
        let mut other_names: Vec<String> = other.keys().cloned().collect();
        other_names.sort();
        if other_names != names {
            anyhow::bail!(
                "{} holds tensors {other_names:?} but {} holds {names:?}",
                source.display(),
                first.display()
            );
        }
        for name in &names {
            let (a, b) = (&sum[name], &other[name]);
            if a.dims() != b.dims() {
                anyhow::bail!(
                    "tensor `{name}` has shape {:?} in {} but {:?} in {}",
                    b.dims(),
                    source.display(),
                    a.dims(),
                    first.display()
                );
            }
            let total =
                (a.to_dtype(candle_core::DType::F32)? + b.to_dtype(candle_core::DType::F32)?)?;
            sum.insert(name.clone(), total);
        }
    }
    let n = sources.len() as f64;
    sum.into_iter()
        .map(|(k, v)| Ok((k, (v.to_dtype(candle_core::DType::F32)? / n)?)))
        .collect()
}

/// Averages the prompts of `sources` ([`average_prompts`]) and writes them to `out`
/// atomically, tensors in name order, the sources listed in the file's `averaged_from`
/// metadata. Returns the number of tensors. What `mvlpt ckpt average` and a pipeline's
/// average stage write.
pub fn save_average(sources: &[PathBuf], out: &Path) -> Result<usize> {
    let mean = average_prompts(sources)?;
    let mut prompts: Vec<(String, Tensor)> = mean.into_iter().collect();
    prompts.sort_by(|a, b| a.0.cmp(&b.0));
    let metadata = HashMap::from([(
        "averaged_from".to_string(),
        sources
            .iter()
            .map(|s| s.display().to_string())
            .collect::<Vec<_>>()
            .join(","),
    )]);
    save_prompts(out, &prompts, metadata)?;
    Ok(prompts.len())
}
