//! A check that a checkpoint's floating-point tensors hold only finite values, run once on the
//! file's bytes before they become tensors: a model with NaN or infinite weights otherwise
//! produces all-NaN features without any error.

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use safetensors::{Dtype, SafeTensors};

/// Fails, naming the tensors and how many of their values are NaN or infinite, if any
/// floating-point tensor of the safetensors buffer `bytes` holds one. `origin` names the file.
/// One pass over the bytes by bit pattern (all exponent bits set), tensors in parallel.
pub fn check_finite_weights(bytes: &[u8], origin: &str) -> Result<()> {
    let tensors = SafeTensors::deserialize(bytes)
        .with_context(|| format!("{origin}: not a safetensors file"))?;
    let views = tensors.tensors();
    let mut bad: Vec<(String, usize, usize)> = views
        .par_iter()
        .filter_map(|(name, view)| {
            let data = view.data();
            let (count, total) = match view.dtype() {
                Dtype::F32 => {
                    count_words::<4>(data, |w| u32::from_le_bytes(w) & 0x7f80_0000 == 0x7f80_0000)
                }
                Dtype::F16 => count_words::<2>(data, |w| u16::from_le_bytes(w) & 0x7c00 == 0x7c00),
                Dtype::BF16 => count_words::<2>(data, |w| u16::from_le_bytes(w) & 0x7f80 == 0x7f80),
                Dtype::F64 => count_words::<8>(data, |w| {
                    u64::from_le_bytes(w) & 0x7ff0_0000_0000_0000 == 0x7ff0_0000_0000_0000
                }),
                _ => (0, 0),
            };
            (count > 0).then(|| (name.clone(), count, total))
        })
        .collect();
    if bad.is_empty() {
        return Ok(());
    }
    bad.sort();
    let listed: Vec<String> = bad
        .iter()
        .take(3)
        .map(|(name, count, total)| format!("`{name}` ({count} of {total} values)"))
        .collect();
    let more = if bad.len() > 3 {
        format!(" and {} more tensors", bad.len() - 3)
    } else {
        String::new()
    };
    bail!(
        "{origin}: the weights hold NaN or infinite values: {}{more}; the checkpoint is corrupt",
        listed.join(", ")
    )
}

/// How many little-endian `N`-byte words of `data` satisfy `is_bad`, and how many there are.
fn count_words<const N: usize>(data: &[u8], is_bad: impl Fn([u8; N]) -> bool) -> (usize, usize) {
    let words = data.chunks_exact(N);
    let total = words.len();
    let bad = words
        .filter(|w| is_bad(<[u8; N]>::try_from(*w).unwrap_or([0; N])))
        .count();
    (bad, total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Tensor};
    use std::collections::HashMap;

    fn file(values: &[f32], dtype: DType) -> Vec<u8> {
        let tensors = HashMap::from([
            (
                "ok".to_string(),
                Tensor::new(&[1f32, 2.0], &Device::Cpu).unwrap(),
            ),
            (
                "w".to_string(),
                Tensor::new(values, &Device::Cpu)
                    .unwrap()
                    .to_dtype(dtype)
                    .unwrap(),
            ),
        ]);
        safetensors::serialize(&tensors, None).unwrap()
    }

    #[test]
    fn non_finite_weights_are_found_in_every_float_type() {
        for dtype in [DType::F32, DType::F16, DType::BF16, DType::F64] {
            check_finite_weights(&file(&[0.0, -1.5, 65504.0, f32::MIN_POSITIVE], dtype), "m")
                .unwrap_or_else(|e| panic!("{dtype:?}: {e}"));
            for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                let error = check_finite_weights(&file(&[0.5, bad, bad], dtype), "m.safetensors")
                    .unwrap_err()
                    .to_string();
                assert!(
                    error.contains("m.safetensors") && error.contains("`w` (2 of 3 values)"),
                    "{dtype:?} {bad}: {error}"
                );
            }
        }
    }
}
