//! `MVLPT_THREADS`: how many CPU threads the process computes with (the rayon pool and candle's
//! matrix products). Unset means every core.

use super::ranges::MAX_THREADS;
use anyhow::{bail, Result};

/// The environment variable.
pub const THREADS_ENV: &str = "MVLPT_THREADS";

/// The thread count `MVLPT_THREADS` asks for, `None` when unset; an error naming the variable
/// when it is not a whole number from 1 to [`MAX_THREADS`].
pub fn threads_from_env() -> Result<Option<usize>> {
    let Some(raw) = std::env::var_os(THREADS_ENV) else {
        return Ok(None);
    };
    let text = raw.to_string_lossy();
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_THREADS).contains(&n) => Ok(Some(n)),
        _ => bail!(
            "{THREADS_ENV}={text:?}: expected a whole number of threads from 1 to {MAX_THREADS}"
        ),
    }
}
