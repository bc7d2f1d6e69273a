//! Resumable training checkpoints: prompt tensors, optimiser state, the best prompts so far and
//! a JSON record (epoch, best metric, generator state, SHA-256 of the tensor file). Each
//! checkpoint is two files written atomically, the JSON last and naming the tensor file, so a
//! crash at any point leaves the previous complete checkpoint in place.
//!
//! The checkpoint before the last one is kept too (`previous.json` and its tensor file). A last
//! checkpoint that cannot be read back (truncated, corrupt, its tensor file changed since it was
//! written) is skipped with a warning and the run resumes from the previous one, redoing one
//! epoch; with no good checkpoint left the error says to start the run over with `--force`.

use crate::io::{write_atomic, write_json_atomic};
use crate::rng::Rng;
use anyhow::{bail, Context, Result};
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
    /// SHA-256 of the tensor file, hex, checked when the checkpoint is loaded; [`save`] fills
    /// it in (absent in checkpoints written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// File name of the checkpoint record.
pub const RECORD: &str = "last.json";
/// File name of the record of the checkpoint before it, the fallback.
pub const PREVIOUS_RECORD: &str = "previous.json";

/// Lower-case hex SHA-256 of `bytes`.
fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes a checkpoint into `dir`: `params`, optimiser `state` and `best` prompts go into
/// `epoch-<n>.safetensors`, the current `last.json` becomes `previous.json`, then `last.json`
/// points to the new tensor file (with its SHA-256); tensor files of older checkpoints are
/// removed.
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
    let record = CheckpointRecord {
        sha256: Some(sha256_hex(&bytes)),
        ..record.clone()
    };
    let mut keep = vec![record.tensors.clone()];
    if let Some(last) = read_record(&dir.join(RECORD))
        .ok()
        .filter(|r| r.tensors != record.tensors)
    {
        write_json_atomic(&dir.join(PREVIOUS_RECORD), &last)?;
        keep.push(last.tensors);
    }
    write_json_atomic(&dir.join(RECORD), &record)?;
    for entry in std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("epoch-") && name.ends_with(".safetensors") && !keep.contains(&name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

fn read_record(path: &Path) -> Result<CheckpointRecord> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{}: malformed checkpoint record", path.display()))
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

/// Loads the checkpoint of `dir`, if any: the last one, or, when it cannot be read back, the
/// previous one (with a warning). Fails, suggesting `--force`, when checkpoints exist but none
/// can be read.
pub fn load(dir: &Path, device: &Device) -> Result<Option<Checkpoint>> {
    let mut failures = Vec::new();
    for name in [RECORD, PREVIOUS_RECORD] {
        let record_path = dir.join(name);
        if !record_path.exists() {
            continue;
        }
        match load_one(dir, &record_path, device) {
            Ok(checkpoint) => {
                if !failures.is_empty() {
                    tracing::warn!(
                        "{}; resuming from the checkpoint before it (after epoch {}), so epoch {} runs again",
                        failures.join("; "),
                        checkpoint.record.epochs_done,
                        checkpoint.record.epochs_done + 1
                    );
                }
                return Ok(Some(checkpoint));
            }
            Err(error) => failures.push(format!("unusable checkpoint: {error:#}")),
        }
    }
    if failures.is_empty() {
        return Ok(None);
    }
    bail!(
        "{}; no good checkpoint is left in {}: start the run over with `mvlpt run --force`",
        failures.join("; "),
        dir.display()
    )
}

/// Loads the checkpoint that the record at `record_path` describes, checking the tensor file
/// against its recorded SHA-256.
fn load_one(dir: &Path, record_path: &Path, device: &Device) -> Result<Checkpoint> {
    let record = read_record(record_path)?;
    let tensor_path = dir.join(&record.tensors);
    let bytes = std::fs::read(&tensor_path)
        .with_context(|| format!("reading checkpoint tensors {}", tensor_path.display()))?;
    if let Some(expected) = &record.sha256 {
        if sha256_hex(&bytes) != *expected {
            bail!(
                "{} is not the file its record {} describes (truncated or corrupt)",
                tensor_path.display(),
                record_path.display()
            );
        }
    }
    let all = candle_core::safetensors::load_buffer(&bytes, device)
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
    Ok(Checkpoint {
        record,
        params,
        best,
        optimizer,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn save_epoch(dir: &Path, epoch: usize) {
        let record = CheckpointRecord {
            epochs_done: epoch,
            optimizer_steps: 10 * epoch as u64,
            best: None,
            rng: crate::rng::seeded(0),
            tensors: format!("epoch-{epoch}.safetensors"),
            sha256: None,
        };
        let ctx = Tensor::full(epoch as f32, (2, 3), &Device::Cpu).unwrap();
        save(dir, &record, &[("ctx".into(), ctx)], &HashMap::new(), &[]).unwrap();
    }

    /// Epochs done and the `ctx` value of the checkpoint `load` picks.
    fn loaded(dir: &Path) -> Result<Option<(usize, f32)>> {
        Ok(load(dir, &Device::Cpu)?.map(|c| {
            let value = c.params["ctx"]
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()[0];
            (c.record.epochs_done, value)
        }))
    }

    #[test]
    fn an_unreadable_last_checkpoint_falls_back_to_the_previous_one() {
        let dir = std::env::temp_dir().join(format!("mvlpt-ckpt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        assert!(loaded(&dir).unwrap().is_none());
        for epoch in 1..=3 {
            save_epoch(&dir, epoch);
        }
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(
            files,
            [
                "epoch-2.safetensors",
                "epoch-3.safetensors",
                "last.json",
                "previous.json"
            ]
        );
        assert_eq!(loaded(&dir).unwrap(), Some((3, 3.0)));

        let last = dir.join("epoch-3.safetensors");
        let good = std::fs::read(&last).unwrap();
        // Truncated: falls back to epoch 2.
        std::fs::write(&last, &good[..good.len() / 2]).unwrap();
        assert_eq!(loaded(&dir).unwrap(), Some((2, 2.0)));
        // Same length, one value changed: the recorded SHA-256 catches it.
        let mut flipped = good.clone();
        let end = flipped.len() - 1;
        flipped[end] ^= 0x40;
        std::fs::write(&last, &flipped).unwrap();
        assert_eq!(loaded(&dir).unwrap(), Some((2, 2.0)));
        // A corrupt record: the same.
        std::fs::write(&last, &good).unwrap();
        std::fs::write(dir.join(RECORD), "{").unwrap();
        assert_eq!(loaded(&dir).unwrap(), Some((2, 2.0)));
        // Nothing good left: the error says how to start over.
        std::fs::write(dir.join("epoch-2.safetensors"), b"").unwrap();
        let error = format!("{:#}", loaded(&dir).unwrap_err());
        assert!(
            error.contains("--force") && error.contains("epoch-2.safetensors"),
            "{error}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
