//! Saving and restoring the generator, so a run can checkpoint its Python-compatible RNG and
//! continue the identical stream. The layout is CPython's: `Random.getstate()[1]` is these 624
//! words followed by the index.

use serde::{Deserialize, Serialize};

use super::mt19937::{Mt19937, STATE_WORDS};
use super::{PyRandom, PyRandomError};

/// A serialisable snapshot of a [`PyRandom`]: the 624 state words and the index of the next
/// word to output (624 = the next draw regenerates the block), as in `getstate()[1]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PyRandomState {
    /// The Mersenne Twister words, `mt[0..624]`.
    pub words: Vec<u32>,
    /// Position of the next word to temper, `0..=624`.
    pub index: usize,
}

impl PyRandom {
    /// Snapshot of the generator (what `getstate()[1]` holds in CPython).
    pub fn state(&self) -> PyRandomState {
        PyRandomState {
            words: self.mt.words.to_vec(),
            index: self.mt.index,
        }
    }

    /// Restores a snapshot taken by [`PyRandom::state`] (or from CPython's `getstate()[1]`),
    /// refusing what `setstate` refuses: a word count other than 624 or an index above 624.
    pub fn from_state(state: &PyRandomState) -> Result<Self, PyRandomError> {
        let words: [u32; STATE_WORDS] = state.words.as_slice().try_into().map_err(|_| {
            PyRandomError::InvalidState(format!(
                "expected {STATE_WORDS} state words, got {}",
                state.words.len()
            ))
        })?;
        if state.index > STATE_WORDS {
            return Err(PyRandomError::InvalidState(format!(
                "index {} is above {STATE_WORDS}",
                state.index
            )));
        }
        Ok(Self {
            mt: Mt19937 {
                words,
                index: state.index,
            },
        })
    }
}
