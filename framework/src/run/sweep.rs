//! Sweeps: the `[sweep]` table of an experiment as a list of runs.
//!
//! ```toml
//! [sweep.grid]                      # every combination (Cartesian product)
//! "method.name" = ["coop", "vpt"]
//! "data.shots" = [1, 4, 16]
//! [[sweep.zip]]                     # varied together, index by index, crossed with the grid
//! "data.dataset" = ["dtd", "eurosat"]
//! "train.epochs" = [50, 20]
//! [sweep]
//! seeds = [1, 2, 3]                 # every point runs once per seed
//! ```
//!
//! Each run is the experiment loaded through the usual layers plus one more layer, "sweep",
//! holding the run's values, so its config, its errors and its provenance read like any other.
//! Runs are ordered seed by seed (all points with the first seed, then the next), grid keys
//! in sorted order with the last varying fastest, zip groups after the grid.

use super::layer::with_values;
use crate::config::{LoadedConfig, SweepConfig};
use anyhow::{bail, ensure, Result};
use figment::value::Value;

/// One run of an experiment: the config values its sweep assigns to it.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSpec {
    /// Position in the sweep, from 0.
    pub index: usize,
    /// Dotted keys and their values for this run (grid keys, zip keys, then `seed`); empty
    /// for an experiment without a sweep.
    pub assignments: Vec<(String, Value)>,
}

impl RunSpec {
    /// `method.name=coop data.shots=4 seed=1`, or `(no sweep)`.
    pub fn describe(&self) -> String {
        if self.assignments.is_empty() {
            return "(no sweep)".into();
        }
        self.assignments
            .iter()
            .map(|(key, value)| format!("{key}={}", render_value(value)))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The run's config: `base` (defaults < files < env < `--set`) plus this run's values as
    /// the layer "sweep". Errors name the run and the key.
    pub fn load(&self, base: &LoadedConfig) -> Result<LoadedConfig> {
        with_values(base, "sweep", &self.assignments, || {
            format!("sweep run {} ({})", self.index, self.describe())
        })
    }
}

/// A value as written on a command line: strings bare, everything else as JSON.
fn render_value(value: &Value) -> String {
    match value {
        Value::String(_, s) => s.clone(),
        other => serde_json::to_string(other).unwrap_or_else(|_| format!("{other:?}")),
    }
}

/// The runs of `base`'s `[sweep]` (one run with no assignments when there is none).
///
/// Errors: an empty value list, zip lists of different lengths, a key swept twice, `seed`
/// swept while `seeds` is set, sweeping `sweep.*` or `extends`, and a swept key that the
/// command line or the environment also sets (it would be silently overridden).
pub fn expand_sweep(base: &LoadedConfig) -> Result<Vec<RunSpec>> {
    let Some(sweep) = &base.config.sweep else {
        return Ok(vec![RunSpec {
            index: 0,
            assignments: Vec::new(),
        }]);
    };
    check_keys(sweep, base)?;
    check_size(sweep)?;
    let mut points: Vec<Vec<(String, Value)>> = vec![Vec::new()];
    for (key, values) in &sweep.grid {
        points = points
            .iter()
            .flat_map(|point| {
                values.iter().map(move |value| {
                    let mut next = point.clone();
                    next.push((key.clone(), value.clone()));
                    next
                })
            })
            .collect();
    }
    for group in &sweep.zip {
        let length = group.values().next().map_or(0, Vec::len);
        points = points
            .iter()
            .flat_map(|point| {
                (0..length).map(move |i| {
                    let mut next = point.clone();
                    next.extend(
                        group
                            .iter()
                            .map(|(key, values)| (key.clone(), values[i].clone())),
                    );
                    next
                })
            })
            .collect();
    }
    let seeds: Vec<Option<u64>> = if sweep.seeds.is_empty() {
        vec![None]
    } else {
        sweep.seeds.iter().copied().map(Some).collect()
    };
    let mut runs = Vec::with_capacity(seeds.len() * points.len());
    for seed in seeds {
        for point in &points {
            let mut assignments = point.clone();
            if let Some(seed) = seed {
                assignments.push(("seed".into(), Value::from(seed)));
            }
            runs.push(RunSpec {
                index: runs.len(),
                assignments,
            });
        }
    }
    Ok(runs)
}

/// The most runs one experiment's sweep may expand to. Planning resolves every run's config
/// (about 0.2 ms each) and keeps a few hundred bytes per run; beyond this, split the sweep into
/// several experiments or a pipeline.
pub const MAX_SWEEP_RUNS: usize = 100_000;

/// Counts the runs of `sweep` before expanding it, and refuses more than [`MAX_SWEEP_RUNS`].
fn check_size(sweep: &SweepConfig) -> Result<()> {
    let mut factors: Vec<(usize, String)> = Vec::new();
    if !sweep.seeds.is_empty() {
        factors.push((sweep.seeds.len(), "seeds".into()));
    }
    for (key, values) in &sweep.grid {
        factors.push((values.len(), format!("values of {key}")));
    }
    for (i, group) in sweep.zip.iter().enumerate() {
        let length = group.values().next().map_or(0, Vec::len);
        factors.push((length, format!("entries of zip group {}", i + 1)));
    }
    let total = factors
        .iter()
        .try_fold(1usize, |total, (n, _)| total.checked_mul(*n));
    if total.is_none_or(|total| total > MAX_SWEEP_RUNS) {
        let product = factors
            .iter()
            .map(|(n, what)| format!("{n} {what}"))
            .collect::<Vec<_>>()
            .join(" × ");
        let count = total.map_or_else(|| "more than 2^64".to_string(), |t| t.to_string());
        bail!(
            "the sweep expands to {count} runs ({product}), more than {MAX_SWEEP_RUNS}, the most \
             one experiment plans; split it into several experiments"
        );
    }
    Ok(())
}

/// Validates the swept keys and value lists before anything is expanded.
fn check_keys(sweep: &SweepConfig, base: &LoadedConfig) -> Result<()> {
    let mut keys: Vec<&str> = Vec::new();
    for (key, values) in &sweep.grid {
        ensure!(!values.is_empty(), "sweep.grid.\"{key}\" lists no values");
        keys.push(key);
    }
    for (i, group) in sweep.zip.iter().enumerate() {
        ensure!(!group.is_empty(), "sweep.zip group {} names no keys", i + 1);
        let lengths: Vec<String> = group
            .iter()
            .map(|(key, values)| format!("{key}: {}", values.len()))
            .collect();
        let first = group.values().next().map_or(0, Vec::len);
        ensure!(first > 0, "sweep.zip group {} lists no values", i + 1);
        ensure!(
            group.values().all(|values| values.len() == first),
            "sweep.zip group {}: the lists must have the same length ({})",
            i + 1,
            lengths.join(", ")
        );
        keys.extend(group.keys().map(String::as_str));
    }
    if !sweep.seeds.is_empty() {
        keys.push("seed");
    }
    let mut seen = std::collections::BTreeSet::new();
    for key in &keys {
        if !seen.insert(*key) {
            bail!(
                "sweep varies `{key}` more than once (grid, zip groups and seeds must not overlap)"
            );
        }
        if *key == "extends" || *key == "sweep" || key.starts_with("sweep.") {
            bail!("sweep cannot vary `{key}`");
        }
    }
    let provenance = base.provenance();
    for key in &keys {
        let prefix = format!("{key}.");
        let clash = provenance.iter().find(|(path, source)| {
            (path.as_str() == *key || path.starts_with(&prefix))
                && (source.starts_with("--set") || source.starts_with("environment"))
        });
        if let Some((path, source)) = clash {
            bail!(
                "`{path}` is set by {source} but also varied by the sweep; \
                 drop one of them (to narrow the sweep, override it, e.g. --set sweep.seeds=[1])"
            );
        }
    }
    Ok(())
}
