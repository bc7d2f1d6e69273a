//! Resumable pretraining checkpoints: one safetensors file holding the model variables, both
//! optimiser states and, in its metadata, the step, the elapsed training time and the recipe's
//! trajectory, written atomically so an interruption never leaves a torn checkpoint.

use crate::engine::Optimizer;
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// Metadata key of the checkpoint state.
const STATE_KEY: &str = "mvlpt.pretrain_state";
/// Prefix of model tensors in a checkpoint.
const MODEL_PREFIX: &str = "model.";

/// Where training stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// Steps completed.
    pub step: usize,
    /// Training wall time so far, in seconds, summed over every session.
    pub elapsed_seconds: f64,
    /// Steps taken by each optimiser group, by group name.
    pub optimizer_steps: HashMap<String, u64>,
    /// The recipe's trajectory ([`super::PretrainConfig::trajectory`]).
    pub trajectory: serde_json::Value,
    /// Framework version that wrote it.
    pub framework_version: String,
}

/// A checkpoint read back.
pub struct Checkpoint {
    /// The state.
    pub state: CheckpointState,
    /// Model tensors by OpenAI name.
    pub model: HashMap<String, Tensor>,
    /// Optimiser state tensors by group, named as [`Optimizer::load_state`] expects.
    pub optimizers: HashMap<String, HashMap<String, Tensor>>,
}

/// Writes `model` tensors and the named optimisers' states to `path`.
pub fn save_checkpoint(
    path: &Path,
    model: &HashMap<String, Tensor>,
    optimizers: &[(&str, &Optimizer)],
    state: &CheckpointState,
) -> Result<()> {
    let mut tensors: HashMap<String, Tensor> = model
        .iter()
        .map(|(k, v)| (format!("{MODEL_PREFIX}{k}"), v.clone()))
        .collect();
    for (group, optimizer) in optimizers {
        let (optimizer_tensors, _) = optimizer.state_tensors();
        for (k, v) in optimizer_tensors {
            tensors.insert(format!("{group}.{k}"), v.contiguous()?);
        }
    }
    let metadata = HashMap::from([(STATE_KEY.to_string(), serde_json::to_string(state)?)]);
    let bytes = safetensors::serialize(&tensors, Some(metadata))
        .with_context(|| format!("serialising checkpoint {}", path.display()))?;
    crate::io::write_atomic(path, &bytes)
}

/// Reads a checkpoint written by [`save_checkpoint`]; `groups` are the optimiser group names.
pub fn load_checkpoint(path: &Path, groups: &[&str], device: &Device) -> Result<Checkpoint> {
    let origin = path.display();
    let bytes = std::fs::read(path).with_context(|| format!("reading checkpoint {origin}"))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
        .with_context(|| format!("{origin}: not a safetensors file"))?;
    let state_json = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(STATE_KEY))
        .with_context(|| {
            format!("{origin}: no `{STATE_KEY}` metadata; not a pretraining checkpoint")
        })?;
    let state: CheckpointState = serde_json::from_str(state_json)
        .with_context(|| format!("{origin}: invalid `{STATE_KEY}` metadata"))?;
    let tensors = candle_core::safetensors::load_buffer(&bytes, device)
        .with_context(|| format!("{origin}: reading tensors"))?;
    let mut model = HashMap::new();
    let mut optimizers: HashMap<String, HashMap<String, Tensor>> = groups
        .iter()
        .map(|g| (g.to_string(), HashMap::new()))
        .collect();
    for (name, tensor) in tensors {
        if let Some(param) = name.strip_prefix(MODEL_PREFIX) {
            model.insert(param.to_string(), tensor);
            continue;
        }
        let Some((group, rest)) = name.split_once('.') else {
            bail!("{origin}: unexpected tensor `{name}`");
        };
        match optimizers.get_mut(group) {
            Some(map) => {
                map.insert(rest.to_string(), tensor);
            }
            None => bail!("{origin}: tensor `{name}` belongs to no optimiser group ({groups:?})"),
        }
    }
    Ok(Checkpoint {
        state,
        model,
        optimizers,
    })
}
