//! Range and finiteness checks of numeric config values, used as `deserialize_with` on the
//! fields they guard. They run while the config is extracted, so a bad value fails when the
//! config is loaded (or a sweep is planned), and the error names the key, the value and where it
//! came from (file, environment variable or `--set`). Plugin option structs may use them too.
//!
//! The upper bounds on counts are far above any practical setting; they turn a mistyped
//! `9223372036854775807` into a clear error instead of an allocation the machine cannot make.

use serde::de::{Error, Unexpected};
use serde::{Deserialize, Deserializer};

/// Upper bound of batch sizes (training and evaluation): a batch of this many 224×224 images
/// already takes 38 GB.
pub const MAX_BATCH: usize = 1 << 16;
/// Upper bound of `data.prefetch`: every prefetched batch is held in memory.
pub const MAX_PREFETCH: usize = 64;
/// Upper bound of thread counts (`data.workers`, `MVLPT_THREADS`).
pub const MAX_THREADS: usize = 4096;
/// Upper bound of `data.shots` and of other per-class or per-chunk counts.
pub const MAX_COUNT: usize = 1 << 24;
/// Upper bound of learned prompt tokens per layer (`n_ctx` of the prompt methods).
pub const MAX_PROMPT_TOKENS: usize = 1024;

/// A finite number, at least 0 (learning rates, momentum, weight decay, ...).
pub fn non_negative<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    let value = f64::deserialize(deserializer)?;
    if !value.is_finite() || value < 0.0 {
        return Err(D::Error::invalid_value(
            Unexpected::Float(value),
            &"a finite number >= 0",
        ));
    }
    Ok(value)
}

/// A finite number strictly above 0.
pub fn positive<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    let value = f64::deserialize(deserializer)?;
    if !value.is_finite() || value <= 0.0 {
        return Err(D::Error::invalid_value(
            Unexpected::Float(value),
            &"a finite number > 0",
        ));
    }
    Ok(value)
}

/// A probability-like number in `[0, 1]`.
pub fn unit_interval<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    let value = f64::deserialize(deserializer)?;
    if !(0.0..=1.0).contains(&value) {
        return Err(D::Error::invalid_value(
            Unexpected::Float(value),
            &"a number between 0 and 1",
        ));
    }
    Ok(value)
}

/// AdamW's two betas, each in `[0, 1)` as torch requires.
pub fn betas<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[f64; 2], D::Error> {
    let values = <[f64; 2]>::deserialize(deserializer)?;
    for value in values {
        if !(0.0..1.0).contains(&value) {
            return Err(D::Error::invalid_value(
                Unexpected::Float(value),
                &"two numbers, each at least 0 and below 1",
            ));
        }
    }
    Ok(values)
}

/// A whole number in `MIN..=MAX`.
pub fn count_in<'de, const MIN: usize, const MAX: usize, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<usize, D::Error> {
    let value = u64::deserialize(deserializer)?;
    match usize::try_from(value) {
        Ok(count) if (MIN..=MAX).contains(&count) => Ok(count),
        _ => Err(D::Error::invalid_value(
            Unexpected::Unsigned(value),
            &format!("a whole number from {MIN} to {MAX}").as_str(),
        )),
    }
}

/// A number of learned prompt tokens per layer: 0 to [`MAX_PROMPT_TOKENS`].
pub fn prompt_tokens<'de, D: Deserializer<'de>>(deserializer: D) -> Result<usize, D::Error> {
    count_in::<0, MAX_PROMPT_TOKENS, D>(deserializer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Guarded {
        #[serde(default, deserialize_with = "non_negative")]
        lr: f64,
        #[serde(default, deserialize_with = "count_in::<1, 8, _>")]
        batch: usize,
        #[serde(default, deserialize_with = "betas")]
        betas: [f64; 2],
    }

    fn read(json: &str) -> Result<Guarded, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn values_outside_their_range_are_refused_with_the_value() {
        let ok = read(r#"{"lr": 0.5, "batch": 8}"#).unwrap();
        assert_eq!((ok.lr, ok.batch), (0.5, 8));
        assert!(read(r#"{"lr": -0.1}"#).unwrap_err().contains("-0.1"));
        assert!(read(r#"{"lr": 1e999}"#).is_err(), "inf");
        let error = read(r#"{"batch": 0}"#).unwrap_err();
        assert!(error.contains("from 1 to 8"), "{error}");
        assert!(read(r#"{"batch": 18446744073709551615}"#).is_err());
        assert!(read(r#"{"betas": [0.9, 1.0]}"#).is_err());
        assert_eq!(
            read(r#"{"betas": [0.9, 0.999]}"#).unwrap().betas,
            [0.9, 0.999]
        );
    }
}
