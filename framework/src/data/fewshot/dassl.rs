//! Dassl's `DatasetBase.generate_fewshot_dataset` (used by CoOp's datasets and MVLPT's source
//! stage): per label, in order of first appearance, `random.sample(items, k)` when the label has
//! at least `k` items, otherwise all of them, or `random.choices(items, k=k)` with `repeat`.

use std::collections::HashMap;

use super::FewShotError;
use crate::data::pyrandom::PyRandom;

/// Items grouped by label, groups in order of the label's first appearance, items in list order
/// (what iterating Dassl's `defaultdict(list)` gives).
fn group_by_first_appearance(labels: &[usize]) -> Vec<Vec<usize>> {
    let mut group_of: HashMap<usize, usize> = HashMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (item, &label) in labels.iter().enumerate() {
        let group = *group_of.entry(label).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[group].push(item);
    }
    groups
}

/// The positions Dassl's `generate_fewshot_dataset(items, num_shots=num_shots, repeat=repeat)`
/// keeps, in its output order. `rng` plays Python's global `random` (seeded by
/// `random.seed(cfg.SEED)`) and is advanced exactly as far as Dassl advances it, so successive
/// calls (train with k shots, then val with `min(k, 4)`) continue one stream as in CoOp.
/// `num_shots == 0` keeps every item and draws nothing (Dassl's `num_shots < 1`).
pub fn dassl_fewshot(
    labels: &[usize],
    num_shots: usize,
    repeat: bool,
    rng: &mut PyRandom,
) -> Result<Vec<usize>, FewShotError> {
    if num_shots == 0 {
        return Ok((0..labels.len()).collect());
    }
    let mut kept = Vec::new();
    for items in group_by_first_appearance(labels) {
        if items.len() >= num_shots {
            let picks = rng.sample(items.len(), num_shots)?;
            kept.extend(picks.into_iter().map(|pick| items[pick]));
        } else if repeat {
            let picks = rng.choices(items.len(), num_shots)?;
            kept.extend(picks.into_iter().map(|pick| items[pick]));
        } else {
            kept.extend(items);
        }
    }
    Ok(kept)
}
