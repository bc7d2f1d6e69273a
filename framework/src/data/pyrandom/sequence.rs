//! The sequence methods of `random.Random` (`shuffle`, `sample`, `choice`, `choices`), which
//! work on positions: they return or permute indices so callers can apply them to any list.

use std::collections::HashSet;

use super::{PyRandom, PyRandomError};

/// Which of CPython's two `sample` algorithms a call uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleBranch {
    /// Partial Fisher–Yates on a copy of the population (`pool` list); one draw per pick.
    Pool,
    /// Rejection against a set of already chosen indices; redraws on repeats.
    Set,
}

impl SampleBranch {
    /// The branch `Random.sample(population, k)` takes for a population of `n`: the pool when an
    /// `n`-element list is no larger than a `k`-element set (`setsize = 21`, plus
    /// `4 ** ceil(log(3k, 4))` when `k > 5`, computed in floating point as CPython does).
    pub fn for_sizes(n: usize, k: usize) -> Self {
        let mut setsize: u128 = 21;
        if k > 5 {
            let exponent = ((k as f64 * 3.0).ln() / 4f64.ln()).ceil();
            setsize = setsize.saturating_add(4u128.saturating_pow(exponent as u32));
        }
        if n as u128 <= setsize {
            Self::Pool
        } else {
            Self::Set
        }
    }
}

impl PyRandom {
    /// `shuffle(items)`: in place, swapping each position `i` from the top down with
    /// `randbelow(i + 1)`.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.randbelow(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }

    /// `sample(range(population), k)`: `k` distinct indices in selection order, using the same
    /// branch (see [`SampleBranch::for_sizes`]) and the same draws as CPython.
    pub fn sample(&mut self, population: usize, k: usize) -> Result<Vec<usize>, PyRandomError> {
        if k > population {
            return Err(PyRandomError::SampleLargerThanPopulation { k, population });
        }
        let mut chosen = Vec::with_capacity(k);
        match SampleBranch::for_sizes(population, k) {
            SampleBranch::Pool => {
                let mut pool: Vec<usize> = (0..population).collect();
                for i in 0..k {
                    let j = self.randbelow((population - i) as u64) as usize;
                    chosen.push(pool[j]);
                    pool[j] = pool[population - i - 1];
                }
            }
            SampleBranch::Set => {
                let mut selected = HashSet::with_capacity(k);
                for _ in 0..k {
                    let mut j = self.randbelow(population as u64) as usize;
                    while !selected.insert(j) {
                        j = self.randbelow(population as u64) as usize;
                    }
                    chosen.push(j);
                }
            }
        }
        Ok(chosen)
    }

    /// `choice(range(population))`: one index, `randbelow(population)`.
    pub fn choice(&mut self, population: usize) -> Result<usize, PyRandomError> {
        if population == 0 {
            return Err(PyRandomError::EmptyPopulation);
        }
        Ok(self.randbelow(population as u64) as usize)
    }

    /// `choices(range(population), k=k)` without weights: `k` indices drawn with replacement as
    /// `floor(random() * population)` (always below `population` for populations under 2^53).
    pub fn choices(&mut self, population: usize, k: usize) -> Result<Vec<usize>, PyRandomError> {
        if population == 0 && k > 0 {
            return Err(PyRandomError::EmptyPopulation);
        }
        let n = population as f64;
        Ok((0..k)
            .map(|_| (self.random() * n).floor() as usize)
            .collect())
    }

    /// `choices(range(len(weights)), weights=weights, k=k)`: cumulative weights summed left to
    /// right in `f64`, then `bisect_right(cum, random() * total, 0, n - 1)` per draw.
    pub fn choices_weighted(
        &mut self,
        weights: &[f64],
        k: usize,
    ) -> Result<Vec<usize>, PyRandomError> {
        // itertools.accumulate: the first running sum is weights[0] itself.
        let mut cumulative: Vec<f64> = Vec::with_capacity(weights.len());
        for &w in weights {
            let sum = cumulative.last().map_or(w, |&previous| previous + w);
            cumulative.push(sum);
        }
        let Some(&total) = cumulative.last() else {
            return Err(PyRandomError::EmptyPopulation);
        };
        if total <= 0.0 || !total.is_finite() {
            return Err(PyRandomError::InvalidWeights(format!(
                "total weight {total} must be positive and finite"
            )));
        }
        let last = cumulative.len() - 1;
        Ok((0..k)
            .map(|_| bisect_right(&cumulative, self.random() * total, last))
            .collect())
    }
}

/// Python's `bisect.bisect_right(values, x, 0, hi)`, step for step (so unsorted inputs give the
/// same answer CPython would).
fn bisect_right(values: &[f64], x: f64, hi: usize) -> usize {
    let (mut lo, mut hi) = (0usize, hi);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if x < values[mid] {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}
