//! `method.init_from = "@<stage>"`: a run of a later stage starts from the averaged prompts of
//! an earlier average stage, the group whose `by` values equal this run's values of those
//! keys. Resolved when the pipeline is planned, to a path that does not depend on whether the
//! average exists yet, so plans and run ids are known before anything has run.

use super::average::AverageStage;
use crate::config::LoadedConfig;
use crate::run::planning::ResolvedValues;
use anyhow::{bail, Result};
use figment::value::Value;

/// The resolved `method.init_from` of a run whose config names `@<stage>`, or `None` when it
/// names a file or nothing. `averages` are the average stages planned before this stage.
pub(super) fn resolve_init_from(
    loaded: &LoadedConfig,
    averages: &[(&str, &AverageStage)],
    is_pipeline: bool,
) -> Result<Option<ResolvedValues>> {
    let Some(reference) = loaded.config.method.init_from.as_deref() else {
        return Ok(None);
    };
    let Some(stage) = reference.strip_prefix('@') else {
        return Ok(None);
    };
    if !is_pipeline {
        bail!(
            "method.init_from = {reference:?} names a pipeline stage, but this experiment is \
             not run as a stage of a pipeline file"
        );
    }
    let Some((_, average)) = averages.iter().find(|(name, _)| *name == stage) else {
        let names: Vec<&str> = averages.iter().map(|(name, _)| *name).collect();
        bail!(
            "method.init_from = {reference:?}: no average stage `{stage}` runs before this stage \
             ({})",
            if names.is_empty() {
                "there is none".to_string()
            } else {
                format!("average stages before it: {}", names.join(", "))
            }
        );
    };
    let group = average
        .group_for(&loaded.config)
        .map_err(|error| anyhow::anyhow!("method.init_from = {reference:?}: {error:#}"))?;
    Ok(Some(ResolvedValues {
        source: format!("pipeline reference {reference}"),
        values: vec![(
            "method.init_from".into(),
            Value::from(group.file.display().to_string()),
        )],
    }))
}
