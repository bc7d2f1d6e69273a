//! A CLIP whose every weight is a trainable `Var`: the state dict (OpenAI naming) held as
//! variables, from which a [`Clip`] is assembled for each step with the ordinary tower code.
//!
//! The towers see `Var` weights, so the kernels in [`crate::ops`] take their composite path,
//! which computes weight gradients.

use crate::model::clip::random_state_dict;
use crate::model::weights::TensorMap;
use crate::model::{Clip, ClipConfig};
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor, Var};
use std::collections::{BTreeMap, HashMap};

/// A CLIP with all weights trainable.
pub struct TrainableClip {
    config: ClipConfig,
    vars: BTreeMap<String, Var>,
}

/// Named parameters, as an [`crate::engine::Optimizer`] takes them.
pub type NamedVars = Vec<(String, Var)>;

/// Name of the learnable temperature.
pub const LOGIT_SCALE: &str = "logit_scale";

impl TrainableClip {
    /// Wraps a state dict (OpenAI naming, any float dtype) as f32 variables on `device`,
    /// checking that it builds a model of `config` with no tensor left over.
    pub fn from_state_dict(
        config: &ClipConfig,
        tensors: HashMap<String, Tensor>,
        device: &Device,
    ) -> Result<Self> {
        let vars = tensors
            .into_iter()
            .map(|(name, t)| {
                let t = t.to_device(device)?.to_dtype(DType::F32)?.contiguous()?;
                Ok((name, Var::from_tensor(&t)?))
            })
            .collect::<Result<BTreeMap<_, _>>>()?;
        let model = Self {
            config: config.clone(),
            vars,
        };
        let mut map = model.tensor_map(false);
        Clip::from_tensors(config, &mut map, DType::F32).context("building the trainable CLIP")?;
        let unused = map.remaining();
        if !unused.is_empty() {
            bail!(
                "state dict has tensors the architecture does not use: {:?}",
                &unused[..unused.len().min(5)]
            );
        }
        Ok(model)
    }

    /// CLIP's initialisation from `seed`.
    pub fn random(config: &ClipConfig, seed: u64, device: &Device) -> Result<Self> {
        Self::from_state_dict(config, random_state_dict(config, seed, device)?, device)
    }

    /// The architecture.
    pub fn config(&self) -> &ClipConfig {
        &self.config
    }

    /// The variables by OpenAI name.
    pub fn vars(&self) -> &BTreeMap<String, Var> {
        &self.vars
    }

    /// Number of trainable scalars.
    pub fn parameter_count(&self) -> usize {
        self.vars.values().map(|v| v.elem_count()).sum()
    }

    /// The model for a training step: its weights track gradients into the variables.
    pub fn model(&self) -> Result<Clip> {
        Clip::from_tensors(&self.config, &mut self.tensor_map(false), DType::F32)
    }

    /// The model without gradient tracking (evaluation; takes the fast kernels).
    pub fn frozen_model(&self) -> Result<Clip> {
        Clip::from_tensors(&self.config, &mut self.tensor_map(true), DType::F32)
    }

    /// The current values, detached (for saving).
    pub fn state_dict(&self) -> HashMap<String, Tensor> {
        self.vars
            .iter()
            .map(|(k, v)| (k.clone(), v.as_tensor().detach()))
            .collect()
    }

    /// Parameters split for AdamW: matrices that take weight decay, and the rest (embeddings,
    /// LayerNorm gains and biases, the logit scale), which by CLIP practice do not.
    pub fn decay_groups(&self) -> (NamedVars, NamedVars) {
        self.vars
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .partition(|(name, var)| var.rank() >= 2 && !name.contains("embedding"))
    }

    /// Keeps `exp(logit_scale)` within `[1, max]` (CLIP clamps the log at `ln 100`).
    pub fn clamp_logit_scale(&self, max: f64) -> Result<()> {
        let var = self
            .vars
            .get(LOGIT_SCALE)
            .context("the model has no logit_scale")?;
        let clamped = var.as_tensor().detach().clamp(0f32, max.ln() as f32)?;
        var.set(&clamped)?;
        Ok(())
    }

    fn tensor_map(&self, detached: bool) -> TensorMap {
        let tensors = self
            .vars
            .iter()
            .map(|(k, v)| {
                let t = if detached {
                    v.as_tensor().detach()
                } else {
                    v.as_tensor().clone()
                };
                (k.clone(), t)
            })
            .collect();
        TensorMap::new(tensors, "trainable CLIP")
    }
}
