//! A pipeline as a flat list of entries, numbered from 0 across its stages: every run of an
//! experiment stage is one entry, a whole average stage is one. `mvlpt run --index i` runs
//! entry `i`; executors hand out entries stage by stage.

use super::{AverageOutcome, AverageStage, Pipeline, StageKind};
use crate::plugin::Registry;
use crate::run::planning::PlannedRun;
use crate::run::runner::{execute_run, Engine, RunReport};
use anyhow::{bail, Result};
use std::ops::Range;
use std::path::Path;

/// One entry of a pipeline.
#[derive(Clone, Copy, Debug)]
pub struct Entry<'a> {
    /// Position in the pipeline's plan, from 0.
    pub index: usize,
    /// Position of its stage.
    pub stage: usize,
    /// Name of its stage.
    pub stage_name: &'a str,
    /// What it runs.
    pub work: Work<'a>,
}

/// What an entry runs.
#[derive(Clone, Copy, Debug)]
pub enum Work<'a> {
    /// One run of an experiment stage.
    Run(&'a PlannedRun),
    /// A whole average stage.
    Average(&'a AverageStage),
}

/// What running an entry did.
#[derive(Clone, Debug)]
pub enum EntryOutcome {
    /// A run's report.
    Run(RunReport),
    /// An average stage's outcome.
    Average(AverageOutcome),
}

impl Entry<'_> {
    /// Its directory: the run directory, or the average stage's.
    pub fn dir(&self) -> &Path {
        match self.work {
            Work::Run(run) => run.dir.path(),
            Work::Average(average) => &average.dir,
        }
    }

    /// Whether it is complete (`COMPLETE`, or the average stage's index and checkpoints).
    pub fn is_complete(&self) -> bool {
        match self.work {
            Work::Run(run) => run.dir.is_complete(),
            Work::Average(average) => average.is_complete(),
        }
    }

    /// `method.name=coop seed=1`, or `average of `source` by [..]: 2 group(s)`.
    pub fn describe(&self) -> String {
        match self.work {
            Work::Run(run) => run.spec.describe(),
            Work::Average(average) => format!(
                "average of `{}` by {:?}: {} group(s)",
                average.of,
                average.by,
                average.groups.len()
            ),
        }
    }
}

impl Pipeline {
    /// Every entry, in order.
    pub fn entries(&self) -> impl Iterator<Item = Entry<'_>> {
        self.stages
            .iter()
            .enumerate()
            .flat_map(|(stage, s)| {
                let works: Vec<Work<'_>> = match &s.kind {
                    StageKind::Experiment(e) => e.runs.iter().map(Work::Run).collect(),
                    StageKind::Average(a) => vec![Work::Average(a)],
                };
                works
                    .into_iter()
                    .map(move |work| (stage, s.name.as_str(), work))
            })
            .enumerate()
            .map(|(index, (stage, stage_name, work))| Entry {
                index,
                stage,
                stage_name,
                work,
            })
    }

    /// The indices of stage `stage`'s entries.
    pub fn stage_entries(&self, stage: usize) -> Range<usize> {
        let size = |s: &super::Stage| match &s.kind {
            StageKind::Experiment(e) => e.runs.len(),
            StageKind::Average(_) => 1,
        };
        let start: usize = self.stages[..stage].iter().map(size).sum();
        start..start + size(&self.stages[stage])
    }

    /// Entry `index`; the error gives the range there is.
    pub fn entry(&self, index: usize) -> Result<Entry<'_>> {
        let count = self.entry_count();
        match self.entries().nth(index) {
            Some(entry) => Ok(entry),
            None => bail!(
                "--index {index} is out of range: the plan of {} has {count} entries (0 to {})",
                self.name,
                count.saturating_sub(1)
            ),
        }
    }

    /// Fails, naming what is missing, unless every entry of the stages before `stage` is
    /// complete.
    pub fn check_earlier_stages(&self, stage: usize) -> Result<()> {
        let missing: Vec<Entry<'_>> = self
            .entries()
            .filter(|e| e.stage < stage && !e.is_complete())
            .collect();
        if let Some(first) = missing.first() {
            bail!(
                "stage `{}` cannot start: {} entr{} of earlier stages {} not complete, the first \
                 is index {} (stage `{}`, {}, {})",
                self.stages[stage].name,
                missing.len(),
                if missing.len() == 1 { "y" } else { "ies" },
                if missing.len() == 1 { "is" } else { "are" },
                first.index,
                first.stage_name,
                first.describe(),
                first.dir().display()
            );
        }
        Ok(())
    }

    /// Runs entry `index` alone, once the stages before it are complete: a run (waiting for
    /// its lock if another process holds it; a complete run is skipped, an incomplete one
    /// resumed) or an average stage.
    pub fn execute_entry(
        &self,
        index: usize,
        registry: &Registry,
        engine: Engine<'_>,
        force: bool,
    ) -> Result<EntryOutcome> {
        let entry = self.entry(index)?;
        self.check_earlier_stages(entry.stage)?;
        Ok(match entry.work {
            Work::Run(run) => {
                let total = self.stage_entries(entry.stage).len();
                EntryOutcome::Run(execute_run(run, total, registry, engine, force))
            }
            Work::Average(average) => EntryOutcome::Average(average.run(force)?),
        })
    }
}
