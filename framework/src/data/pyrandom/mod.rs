//! An exact emulation of CPython 3.11's `random.Random`, so that anything the reference draws
//! from Python's `random` (few-shot subsets, split shuffles) can be reproduced bit for bit.
//!
//! The generator is MT19937 seeded the way CPython seeds it from an integer (`init_by_array`
//! over the 32-bit words of `abs(seed)`), and every method consumes the stream exactly as
//! `Lib/random.py` does: `random()` takes two words, `getrandbits(k)` takes `ceil(k/32)` words,
//! integer draws use `_randbelow` (rejection over `getrandbits(n.bit_length())`), `shuffle` is
//! the in-place Fisher–Yates from the top, `sample` picks CPython's pool or set branch with the
//! same size heuristic, and `choices` maps `floor(random() * n)` (or bisects cumulative weights).
//!
//! Python version: pinned to CPython 3.11 and checked against 3.11 fixtures
//! (`tools/fixtures/pyrandom.py`). MVLPT itself ran 3.8 (its repository ships cpython-38
//! bytecode); as far as we know `Lib/random.py` makes the same draws for these methods from 3.8
//! to 3.12 (only argument checks changed), but only 3.11 is verified here. Seeding from
//! `str`/`bytes`/`float`/`None` is not emulated: seeds are integers.

mod mt19937;
mod sequence;
mod state;
#[cfg(test)]
mod tests;

use mt19937::Mt19937;
pub use sequence::SampleBranch;
pub use state::PyRandomState;

/// Errors for arguments CPython would reject with `ValueError` / `IndexError`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PyRandomError {
    /// `randrange`/`randint` over an empty range, or a zero step.
    #[error("empty range for randrange({start}, {stop}, {step})")]
    EmptyRange {
        /// Inclusive start of the range.
        start: i64,
        /// Exclusive stop of the range.
        stop: i64,
        /// Step between candidates.
        step: i64,
    },
    /// `randint(low, high)` with `high < low`.
    #[error("empty range for randint({low}, {high})")]
    EmptyInterval {
        /// Inclusive lower end.
        low: i64,
        /// Inclusive upper end.
        high: i64,
    },
    /// A range with more than `u64::MAX` candidates (CPython has no such limit; this port does).
    #[error("range of {candidates} candidates is too wide for this port (limit: u64::MAX)")]
    RangeTooWide {
        /// Number of candidates in the requested range.
        candidates: i128,
    },
    /// `sample(population, k)` with `k` larger than the population.
    #[error("sample larger than population: k = {k}, population = {population}")]
    SampleLargerThanPopulation {
        /// Requested sample size.
        k: usize,
        /// Population size.
        population: usize,
    },
    /// `choice`/`choices` on an empty population.
    #[error("cannot choose from an empty population")]
    EmptyPopulation,
    /// `choices` with weights that do not match the population or do not sum to a positive,
    /// finite total.
    #[error("invalid weights for choices: {0}")]
    InvalidWeights(String),
    /// A saved state that CPython's `setstate` would refuse.
    #[error("invalid generator state: {0}")]
    InvalidState(String),
}

/// CPython's `random.Random`: a Mersenne Twister plus Python's sampling algorithms on top.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PyRandom {
    mt: Mt19937,
}

impl PyRandom {
    /// `random.Random(seed)` for a non-negative integer seed.
    pub fn new(seed: u64) -> Self {
        Self::from_u128(u128::from(seed))
    }

    /// `random.Random(seed)` for any `i64`; like CPython, only `abs(seed)` matters.
    pub fn from_i64(seed: i64) -> Self {
        Self::new(seed.unsigned_abs())
    }

    /// `random.Random(seed)` for seeds up to 128 bits (e.g. `2**70 + 3`).
    pub fn from_u128(seed: u128) -> Self {
        Self::from_le_bytes(&seed.to_le_bytes())
    }

    /// `random.Random(int.from_bytes(magnitude, "little"))`: a seed of any size given as the
    /// little-endian bytes of its absolute value. Leading (high) zero bytes are ignored, and an
    /// empty slice means 0.
    pub fn from_le_bytes(magnitude: &[u8]) -> Self {
        let mut key: Vec<u32> = magnitude
            .chunks(4)
            .map(|chunk| {
                let mut word = [0u8; 4];
                word[..chunk.len()].copy_from_slice(chunk);
                u32::from_le_bytes(word)
            })
            .collect();
        // CPython passes exactly max(1, ceil(bit_length / 32)) words to init_by_array.
        while key.len() > 1 && key.last() == Some(&0) {
            key.pop();
        }
        if key.is_empty() {
            key.push(0);
        }
        Self {
            mt: Mt19937::from_key(&key),
        }
    }

    /// The next raw 32-bit output of the twister (`genrand_uint32`).
    pub fn next_u32(&mut self) -> u32 {
        self.mt.next_u32()
    }

    /// `random()`: a float in [0, 1) with 53 random bits, built from two 32-bit outputs.
    pub fn random(&mut self) -> f64 {
        let high = f64::from(self.next_u32() >> 5);
        let low = f64::from(self.next_u32() >> 6);
        (high * 67_108_864.0 + low) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// `uniform(a, b)`: `a + (b - a) * random()`.
    pub fn uniform(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.random()
    }

    /// `getrandbits(k)` for `k <= 64` (`k = 0` gives 0 and draws nothing).
    ///
    /// # Panics
    /// If `k > 64`; use [`PyRandom::getrandbits_words`] for wider draws.
    pub fn getrandbits(&mut self, k: u32) -> u64 {
        assert!(
            k <= 64,
            "getrandbits({k}) does not fit u64; use getrandbits_words"
        );
        match k {
            0 => 0,
            1..=32 => u64::from(self.next_u32() >> (32 - k)),
            _ => {
                let low = u64::from(self.next_u32());
                let high = u64::from(self.next_u32() >> (64 - k));
                low | (high << 32)
            }
        }
    }

    /// `getrandbits(k)` for any `k`, as 32-bit words, least significant first (the value is
    /// `sum(words[i] << 32*i)`). CPython fills the words in this order, dropping the low bits
    /// of the last word when `k` is not a multiple of 32.
    pub fn getrandbits_words(&mut self, k: usize) -> Vec<u32> {
        let n_words = k.div_ceil(32);
        let mut remaining = k;
        let mut words = Vec::with_capacity(n_words);
        for _ in 0..n_words {
            let word = self.next_u32();
            words.push(if remaining < 32 {
                word >> (32 - remaining)
            } else {
                word
            });
            remaining = remaining.saturating_sub(32);
        }
        words
    }

    /// `_randbelow(n)`: uniform in `[0, n)` by drawing `getrandbits(n.bit_length())` until the
    /// value is below `n` (note: `n.bit_length()`, not `(n-1).bit_length()`, so a power of two
    /// wastes one bit exactly as CPython does).
    ///
    /// # Panics
    /// If `n == 0` (CPython would loop forever; every public caller checks first).
    pub fn randbelow(&mut self, n: u64) -> u64 {
        assert!(n > 0, "randbelow(0) has no valid result");
        let bits = u64::BITS - n.leading_zeros();
        loop {
            let r = self.getrandbits(bits);
            if r < n {
                return r;
            }
        }
    }

    /// `randrange(start, stop)`: uniform in `[start, stop)`.
    pub fn randrange(&mut self, start: i64, stop: i64) -> Result<i64, PyRandomError> {
        self.randrange_step(start, stop, 1)
    }

    /// `randrange(start, stop, step)` for any non-zero `step`, including negative steps.
    pub fn randrange_step(
        &mut self,
        start: i64,
        stop: i64,
        step: i64,
    ) -> Result<i64, PyRandomError> {
        let (width, step_wide) = (i128::from(stop) - i128::from(start), i128::from(step));
        // The number of candidates start, start+step, ... before stop (Python floor division).
        let count = match step {
            0 => 0,
            s if s > 0 => floor_div(width + step_wide - 1, step_wide),
            _ => floor_div(width + step_wide + 1, step_wide),
        };
        if count <= 0 {
            return Err(PyRandomError::EmptyRange { start, stop, step });
        }
        let count =
            u64::try_from(count).map_err(|_| PyRandomError::RangeTooWide { candidates: count })?;
        let value = i128::from(start) + i128::from(self.randbelow(count)) * step_wide;
        // Every candidate lies between start and stop, so it fits i64.
        Ok(i64::try_from(value).unwrap_or(start))
    }

    /// `randint(low, high)`: uniform in `[low, high]`, i.e. `randrange(low, high + 1)`.
    pub fn randint(&mut self, low: i64, high: i64) -> Result<i64, PyRandomError> {
        if high < low {
            return Err(PyRandomError::EmptyInterval { low, high });
        }
        let candidates = i128::from(high) - i128::from(low) + 1;
        let width =
            u64::try_from(candidates).map_err(|_| PyRandomError::RangeTooWide { candidates })?;
        let value = i128::from(low) + i128::from(self.randbelow(width));
        // The value lies in [low, high], so it fits i64.
        Ok(i64::try_from(value).unwrap_or(low))
    }
}

/// Python's `//` on integers: the quotient rounded towards negative infinity.
fn floor_div(numerator: i128, denominator: i128) -> i128 {
    let quotient = numerator / denominator;
    if numerator % denominator != 0 && ((numerator < 0) != (denominator < 0)) {
        quotient - 1
    } else {
        quotient
    }
}
