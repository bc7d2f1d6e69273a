//! Optimisers over named prompt tensors, with PyTorch's exact update rules and serialisable
//! state (so a resumed run continues bit for bit).

use anyhow::{bail, Context, Result};
use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use std::collections::HashMap;

/// SGD hyper-parameters (PyTorch `torch.optim.SGD`).
#[derive(Clone, Debug, PartialEq)]
pub struct SgdConfig {
    /// Momentum factor (0 = plain SGD).
    pub momentum: f64,
    /// Dampening of the momentum update.
    pub dampening: f64,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
}

/// AdamW hyper-parameters (PyTorch `torch.optim.AdamW`).
#[derive(Clone, Debug, PartialEq)]
pub struct AdamWConfig {
    /// β₁, β₂.
    pub betas: [f64; 2],
    /// ε added to the denominator.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
}

/// The optimiser kind.
#[derive(Clone, Debug, PartialEq)]
pub enum OptimizerKind {
    /// Stochastic gradient descent with momentum (the reference).
    Sgd(SgdConfig),
    /// Adam with decoupled weight decay.
    AdamW(AdamWConfig),
}

/// An optimiser over named `Var`s. The learning rate is passed to every step (the schedule
/// lives outside).
pub struct Optimizer {
    kind: OptimizerKind,
    params: Vec<(String, Var)>,
    /// Per-parameter state tensors, keyed `"<param>.<slot>"` (`momentum_buffer`, `exp_avg`,
    /// `exp_avg_sq`).
    state: HashMap<String, Tensor>,
    /// Number of steps taken.
    steps: u64,
}

impl Optimizer {
    /// An optimiser over `params` (reference names).
    pub fn new(kind: OptimizerKind, params: Vec<(String, Var)>) -> Result<Self> {
        if let OptimizerKind::Sgd(c) = &kind {
            if c.nesterov && (c.momentum <= 0.0 || c.dampening != 0.0) {
                bail!("Nesterov momentum requires momentum > 0 and zero dampening (as in PyTorch)");
            }
        }
        Ok(Self {
            kind,
            params,
            state: HashMap::new(),
            steps: 0,
        })
    }

    /// The parameters being optimised.
    pub fn params(&self) -> &[(String, Var)] {
        &self.params
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Applies one update with learning rate `lr`. Parameters without a gradient are skipped
    /// (as PyTorch skips `p.grad is None`).
    pub fn step(&mut self, grads: &GradStore, lr: f64) -> Result<()> {
        self.steps += 1;
        for (name, var) in &self.params {
            let Some(grad) = grads.get(var.as_tensor()) else {
                continue;
            };
            let grad = grad.to_dtype(var.dtype())?;
            let update = match &self.kind {
                OptimizerKind::Sgd(c) => sgd_update(c, &mut self.state, name, var, grad, lr)?,
                OptimizerKind::AdamW(c) => {
                    adamw_update(c, &mut self.state, name, var, grad, lr, self.steps)?
                }
            };
            var.set(&update)?;
        }
        Ok(())
    }

    /// State tensors to checkpoint (names prefixed with `optim.`), plus the step count.
    pub fn state_tensors(&self) -> (HashMap<String, Tensor>, u64) {
        let tensors = self
            .state
            .iter()
            .map(|(k, v)| (format!("optim.{k}"), v.clone()))
            .collect();
        (tensors, self.steps)
    }

    /// Restores state saved by [`Optimizer::state_tensors`].
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>, steps: u64) -> Result<()> {
        self.state.clear();
        for (k, v) in tensors {
            if let Some(key) = k.strip_prefix("optim.") {
                let param = key
                    .rsplit_once('.')
                    .map(|(p, _)| p)
                    .context("malformed optimiser state name")?;
                let var = self
                    .params
                    .iter()
                    .find(|(n, _)| n == param)
                    .map(|(_, v)| v)
                    .with_context(|| format!("optimiser state `{k}` belongs to no parameter"))?;
                self.state.insert(
                    key.to_string(),
                    v.to_device(var.device())?.to_dtype(var.dtype())?,
                );
            }
        }
        self.steps = steps;
        Ok(())
    }
}

fn sgd_update(
    c: &SgdConfig,
    state: &mut HashMap<String, Tensor>,
    name: &str,
    var: &Var,
    grad: Tensor,
    lr: f64,
) -> Result<Tensor> {
    let p = var.as_tensor();
    let mut d_p = grad;
    if c.weight_decay != 0.0 {
        d_p = (d_p + (p * c.weight_decay)?)?;
    }
    if c.momentum != 0.0 {
        let key = format!("{name}.momentum_buffer");
        let buf = match state.get(&key) {
            None => d_p.copy()?,
            Some(buf) => ((buf * c.momentum)? + (&d_p * (1.0 - c.dampening))?)?,
        };
        d_p = if c.nesterov {
            (d_p + (&buf * c.momentum)?)?
        } else {
            buf.clone()
        };
        state.insert(key, buf);
    }
    Ok((p - (d_p * lr)?)?.detach())
}

fn adamw_update(
    c: &AdamWConfig,
    state: &mut HashMap<String, Tensor>,
    name: &str,
    var: &Var,
    grad: Tensor,
    lr: f64,
    step: u64,
) -> Result<Tensor> {
    let [beta1, beta2] = c.betas;
    let p = (var.as_tensor() * (1.0 - lr * c.weight_decay))?;
    let (k1, k2) = (format!("{name}.exp_avg"), format!("{name}.exp_avg_sq"));
    let zeros = || p.zeros_like();
    let m = state.get(&k1).cloned().map_or_else(zeros, Ok)?;
    let v = state.get(&k2).cloned().map_or_else(zeros, Ok)?;
    let m = ((m * beta1)? + (&grad * (1.0 - beta1))?)?;
    let v = ((v * beta2)? + (grad.sqr()? * (1.0 - beta2))?)?;
    let bias1 = 1.0 - beta1.powi(step as i32);
    let bias2_sqrt = (1.0 - beta2.powi(step as i32)).sqrt();
    let denom = ((v.sqrt()? / bias2_sqrt)? + c.eps)?;
    let updated = (p - ((&m / denom)? * (lr / bias1))?)?;
    state.insert(k1, m);
    state.insert(k2, v);
    Ok(updated.detach())
}
