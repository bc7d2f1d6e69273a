//! Base-to-novel class subsampling (`data.subsample_classes`), as CoOp's
//! `OxfordPets.subsample_classes` that every CoOp dataset applies after its few-shot split:
//! the labels of the training split, sorted, are cut at m = ceil(n/2); `base` keeps the first
//! m, `new` the rest. Every split keeps, in order, the samples of the kept labels, relabelled
//! by their position among them; a label that only val or test have is in neither half. The
//! model sees the half's class names only.

use super::fewshot::TaskSamples;
use crate::config::SubsampleClasses;
use crate::data::{Dataset, Sample, Split};
use crate::eval::metrics::TaskSpan;
use anyhow::{bail, Result};
use std::collections::BTreeSet;

/// The classes one task keeps: its original labels, sorted; the new label of each is its
/// position here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassSubset {
    /// Kept original labels, ascending.
    kept: Vec<usize>,
    /// Every label of the training split the halves were cut from, ascending.
    source: Vec<usize>,
}

impl ClassSubset {
    /// The half `mode` of the labels `train_labels` (the training split's, with repeats, in
    /// any order); `None` for `all`. A half without classes is an error naming `task` (Dassl
    /// refuses an empty training split too).
    pub fn choose(
        train_labels: impl IntoIterator<Item = usize>,
        mode: SubsampleClasses,
        task: &str,
    ) -> Result<Option<Self>> {
        let source: Vec<usize> = train_labels
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let m = source.len().div_ceil(2);
        let kept = match mode {
            SubsampleClasses::All => return Ok(None),
            SubsampleClasses::Base => source[..m].to_vec(),
            SubsampleClasses::New => source[m..].to_vec(),
        };
        if kept.is_empty() {
            bail!(
                "data.subsample_classes = \"{mode}\" leaves no class of `{task}`: its training \
                 split has {} class(es), and the {mode} half of them is empty",
                source.len()
            );
        }
        Ok(Some(Self { kept, source }))
    }

    /// The half `mode` of `dataset`'s classes, cut from the labels of its training split.
    pub fn of_dataset(
        dataset: &dyn Dataset,
        mode: SubsampleClasses,
        task: &str,
    ) -> Result<Option<Self>> {
        if mode == SubsampleClasses::All {
            return Ok(None);
        }
        if dataset.info().multilabel {
            bail!(
                "data.subsample_classes = \"{mode}\": `{task}` is multi-label; base-to-novel \
                 subsampling is defined for single-label datasets"
            );
        }
        let train = dataset.samples(Split::Train)?;
        Self::choose(train.iter().filter_map(Sample::label), mode, task)
    }

    /// The kept original labels, ascending (new label = position).
    pub fn kept(&self) -> &[usize] {
        &self.kept
    }

    /// The labels the halves were cut from, ascending.
    pub fn source(&self) -> &[usize] {
        &self.source
    }

    /// The new label of original label `label`, if it is kept.
    pub fn relabel(&self, label: usize) -> Option<usize> {
        self.kept.binary_search(&label).ok()
    }

    /// The class names of the kept labels, in new-label order, from the dataset's names.
    pub fn classnames(&self, names: &[String]) -> Result<Vec<String>> {
        self.kept
            .iter()
            .map(|&l| match names.get(l) {
                Some(name) => Ok(name.clone()),
                None => bail!(
                    "label {l} of the training split has no class name ({} names)",
                    names.len()
                ),
            })
            .collect()
    }

    /// The samples of kept labels, in order, relabelled; each sample's label is read after
    /// subtracting `offset` and written back with `new_offset` added.
    pub fn apply(&self, samples: Vec<Sample>, offset: usize, new_offset: usize) -> Vec<Sample> {
        samples
            .into_iter()
            .filter_map(|mut s| {
                let label = s.label()?.checked_sub(offset)?;
                let new = self.relabel(label)?;
                s.labels = vec![new + new_offset];
                Some(s)
            })
            .collect()
    }
}

/// The samples of a run (tagged with their task, labels in the joint space of `origin`)
/// restricted to every task's subset and moved into the joint space of `tasks`; a task
/// without a subset keeps its samples.
pub(super) fn restrict(
    items: TaskSamples,
    subsets: &[Option<ClassSubset>],
    origin: &[TaskSpan],
    tasks: &[TaskSpan],
) -> TaskSamples {
    items
        .into_iter()
        .filter_map(|(task, mut sample)| match &subsets[task] {
            None => {
                let shift = |l: &mut usize| *l = *l - origin[task].start + tasks[task].start;
                sample.labels.iter_mut().for_each(shift);
                Some((task, sample))
            }
            Some(subset) => {
                let mut kept = subset.apply(vec![sample], origin[task].start, tasks[task].start);
                kept.pop().map(|s| (task, s))
            }
        })
        .collect()
}

/// Checks that the few-shot training split of every subsampled task has exactly the classes
/// its halves were cut from (the training split's). The reference cuts them from the
/// few-shot split; the two agree for every protocol that samples each class, and a protocol
/// that drops classes is refused rather than giving different halves.
pub(super) fn check_train_classes(
    train: &TaskSamples,
    subsets: &[Option<ClassSubset>],
    origin: &[TaskSpan],
) -> Result<()> {
    for (task, subset) in subsets.iter().enumerate() {
        let Some(subset) = subset else { continue };
        let chosen: BTreeSet<usize> = train
            .iter()
            .filter(|(t, _)| *t == task)
            .filter_map(|(_, s)| s.label().map(|l| l - origin[task].start))
            .collect();
        if !chosen.iter().eq(subset.source()) {
            bail!(
                "data.subsample_classes: the few-shot training split of `{}` has {} of the {} \
                 classes of its training split; the base and new halves are cut from the \
                 training split's classes, so the few-shot protocol must sample every class",
                origin[task].name,
                chosen.len(),
                subset.source().len()
            );
        }
    }
    Ok(())
}
