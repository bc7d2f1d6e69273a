//! Classification losses and logit masking of the reference (§2.7, §3.4).

use anyhow::{bail, Result};
use candle_core::{DType, Tensor, D};

/// Training targets of a batch.
#[derive(Clone, Debug)]
pub enum BatchTargets {
    /// One class per sample.
    Labels(Vec<usize>),
    /// Multi-hot (or one-hot) rows `(batch, classes)`: soft-target cross-entropy against the
    /// row normalised to sum 1 (the reference's `label /= label.sum(-1, keepdim=True)`). A row
    /// without any positive (a negative image of an ELEVATER multi-label split) has no target
    /// distribution and takes no part in the loss; see [`cross_entropy`].
    Rows(Tensor),
}

impl BatchTargets {
    /// Number of samples.
    pub fn len(&self) -> usize {
        match self {
            Self::Labels(l) => l.len(),
            Self::Rows(t) => t.dim(0).unwrap_or(0),
        }
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Mean cross-entropy of `logits (batch, classes)` against `targets`, like
/// `F.cross_entropy` with integer or probability targets.
///
/// Target rows are normalised to sum 1, as the reference does before `F.cross_entropy`. The
/// reference divides a row without any positive by 0 and stops on the NaN loss; here such a
/// row has no target distribution and is left out, the way torch leaves out `ignore_index`
/// rows: the mean runs over the rows that have a target, each computed exactly as torch
/// computes it, and the left-out rows get no gradient. A batch without any target row has loss
/// 0. Target entries must be finite and non-negative.
pub fn cross_entropy(logits: &Tensor, targets: &BatchTargets) -> Result<Tensor> {
    let logits = logits.to_dtype(DType::F32)?;
    let (batch, classes) = logits.dims2()?;
    let log_probs = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
    match targets {
        BatchTargets::Labels(labels) => {
            if labels.len() != batch {
                bail!(
                    "cross-entropy: {batch} logit rows but {} labels",
                    labels.len()
                );
            }
            if let Some(bad) = labels.iter().find(|&&l| l >= classes) {
                bail!("cross-entropy: label {bad} outside the {classes}-class label space");
            }
            let idx: Vec<u32> = labels.iter().map(|&l| l as u32).collect();
            let idx = Tensor::from_vec(idx, (batch, 1), logits.device())?;
            Ok((log_probs.gather(&idx, 1)?.sum_all()? / -(batch as f64))?)
        }
        BatchTargets::Rows(rows) => {
            let rows = rows.to_dtype(DType::F32)?;
            if rows.dims() != [batch, classes] {
                bail!(
                    "cross-entropy: logits {:?} but target rows {:?}",
                    [batch, classes],
                    rows.dims()
                );
            }
            let with_target = rows_with_target(&rows)?;
            let sums = rows.sum_keepdim(1)?;
            // Rows without a positive are divided by 1 instead of 0: they stay all zero.
            let divisors = (&sums + sums.eq(0f64)?.to_dtype(DType::F32)?)?;
            let probs = rows.broadcast_div(&divisors)?;
            Ok(((probs * log_probs)?.sum_all()? / -(with_target.max(1) as f64))?)
        }
    }
}

/// How many target rows have a positive entry; a negative or non-finite entry is an error.
fn rows_with_target(rows: &Tensor) -> Result<usize> {
    let host: Vec<Vec<f32>> = rows.to_device(&candle_core::Device::Cpu)?.to_vec2()?;
    let mut with_target = 0;
    for (r, row) in host.iter().enumerate() {
        if let Some(bad) = row.iter().find(|v| !v.is_finite() || **v < 0.0) {
            bail!("cross-entropy: target row {r} holds {bad}; targets must be finite and non-negative");
        }
        if row.iter().any(|v| *v > 0.0) {
            with_target += 1;
        }
    }
    Ok(with_target)
}

/// How logits outside a sample's own task are treated in a multitask label space (§2.7, §9.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskMasking {
    /// One softmax over the whole joint label space (the reference default).
    None,
    /// The reference's `MULTITASK_LABEL_PERTASK`: other tasks' logits multiplied by 0 (they
    /// still enter the softmax, as zeros).
    Zero,
    /// The fix: other tasks' logits set to −∞ (a softmax over the sample's own task only).
    NegInfinity,
}

/// Applies `masking` given each sample's task column range.
pub fn mask_logits(
    logits: &Tensor,
    ranges: &[(usize, usize)],
    masking: TaskMasking,
) -> Result<Tensor> {
    if masking == TaskMasking::None {
        return Ok(logits.clone());
    }
    let (batch, classes) = logits.dims2()?;
    if ranges.len() != batch {
        bail!(
            "task masking: {batch} logit rows but {} task ranges",
            ranges.len()
        );
    }
    let mut inside = vec![0f32; batch * classes];
    for (b, &(start, end)) in ranges.iter().enumerate() {
        inside[b * classes + start..b * classes + end]
            .iter_mut()
            .for_each(|v| *v = 1.0);
    }
    let inside =
        Tensor::from_vec(inside, (batch, classes), logits.device())?.to_dtype(logits.dtype())?;
    Ok(match masking {
        TaskMasking::Zero => (logits * inside)?,
        TaskMasking::NegInfinity => {
            let outside = inside.affine(-1.0, 1.0)?;
            // logits·inside + (−∞ where outside); written as an add of a constant so the
            // gradient inside the task is untouched.
            let penalty = (outside * -1e30f64)?.to_dtype(logits.dtype())?;
            ((logits * inside)? + penalty)?
        }
        TaskMasking::None => logits.clone(),
    })
}
