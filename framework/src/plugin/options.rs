//! The options of every plugin a config names, checked before anything is built.
//!
//! A plugin reads its options from the table named after it under the section that selects it
//! (`[method.coop]`, `[data.cifar-10]`, `[eval.dassl]`). Each registration carries an
//! [`OptionsCheck`], normally [`options_of::<T>`] for the serde struct `T` the plugin's factory
//! reads. [`check_options`] runs it on every table of the config and on every selected plugin,
//! so `method.coop.nctx = 4` or a table named after no plugin fails when the config is loaded or
//! a sweep is planned, naming the key, where it came from and the closest valid name, rather
//! than after the model and the data have loaded (or never, for a plugin a run does not select).

use super::{PluginKind, Registry};
use crate::config::{check_section_keys, plugin_sections, source_of, LoadedConfig, Section};
use crate::suggest::did_you_mean;
use anyhow::{bail, Result};
use figment::value::Value;
use serde::de::DeserializeOwned;
use std::collections::BTreeSet;

/// Checks a plugin's options table without building the plugin.
pub type OptionsCheck = fn(&Section<'_>) -> Result<()>;

/// The [`OptionsCheck`] of a plugin whose options are the serde struct `T`: the table must
/// deserialise into it (declare `T` with `#[serde(deny_unknown_fields)]` so that a misspelt key
/// is an error; range checks belong in its `deserialize_with` functions, see
/// [`crate::config::ranges`]).
pub fn options_of<T: DeserializeOwned>(section: &Section<'_>) -> Result<()> {
    section.extract::<T>().map(drop)
}

/// The options of a plugin that takes none: any key in its table is an error.
#[derive(Clone, Copy, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoOptions {}

/// Checks the plugin tables of `loaded` against `registry`:
/// - every value under `[data]`, `[method]` and `[eval]` is one of the section's own keys or a
///   table named after a plugin of that section's kinds;
/// - every such table, and the (possibly absent) table of every selected plugin, holds valid
///   options for each plugin of that name.
///
/// Unknown plugin names in the selecting keys (`method.name`, ...) are left to
/// `run::validate_plugins`. All problems are reported together.
pub fn check_options(loaded: &LoadedConfig, registry: &Registry) -> Result<()> {
    let config = &loaded.config;
    let mut problems = Vec::new();
    if let Err(error) = check_section_keys(config, &loaded.figment) {
        problems.push(error.to_string());
    }
    let mut checked: BTreeSet<(PluginKind, String)> = BTreeSet::new();
    for (section, _, tables) in plugin_sections(config) {
        let kinds = kinds_of(section);
        for (name, value) in tables {
            if !matches!(value, Value::Dict(..)) {
                continue; // reported by check_section_keys
            }
            let owners: Vec<PluginKind> = kinds
                .iter()
                .copied()
                .filter(|kind| registry.contains(*kind, name))
                .collect();
            if owners.is_empty() {
                problems.push(unknown_table(loaded, registry, section, name));
            }
            for kind in owners {
                checked.insert((kind, name.clone()));
                problems.extend(check_one(loaded, registry, kind, name));
            }
        }
    }
    for (kind, name) in selected(loaded) {
        if registry.contains(kind, &name) && checked.insert((kind, name.clone())) {
            problems.extend(check_one(loaded, registry, kind, &name));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        bail!("{}", problems.join("\n"))
    }
}

/// The plugin kinds whose tables live under `section`.
fn kinds_of(section: &str) -> Vec<PluginKind> {
    PluginKind::ALL
        .into_iter()
        .filter(|kind| kind.section() == section)
        .collect()
}

/// Runs the options check of plugin `name` of `kind` on its table.
fn check_one(
    loaded: &LoadedConfig,
    registry: &Registry,
    kind: PluginKind,
    name: &str,
) -> Option<String> {
    let entry = registry.get(kind, name).ok()?;
    let section = loaded.section(format!("{}.{name}", kind.section()));
    (entry.plugin.options)(&section)
        .err()
        .map(|error| format!("{error:#}"))
}

/// The plugins `loaded` selects: method, datasets, few-shot protocol, sampler, evaluator.
fn selected(loaded: &LoadedConfig) -> Vec<(PluginKind, String)> {
    let config = &loaded.config;
    let mut out = vec![(PluginKind::Method, config.method.name.clone())];
    if config.data.tasks.is_empty() {
        out.push((PluginKind::Dataset, config.data.dataset.clone()));
    } else {
        out.extend(
            config
                .data
                .tasks
                .iter()
                .map(|task| (PluginKind::Dataset, task.clone())),
        );
    }
    out.push((PluginKind::FewShot, config.data.fewshot.clone()));
    out.push((PluginKind::Sampler, config.data.sampler.clone()));
    out.push((PluginKind::Evaluator, config.eval.evaluator.clone()));
    out
}

/// The error for a table `[section.name]` that names no plugin of the section.
fn unknown_table(loaded: &LoadedConfig, registry: &Registry, section: &str, name: &str) -> String {
    let kinds = kinds_of(section);
    let names: Vec<&str> = kinds
        .iter()
        .flat_map(|kind| registry.names(*kind))
        .collect();
    let hint = did_you_mean(name, names.iter().copied());
    let kind_words: Vec<&str> = kinds
        .iter()
        .map(|kind| match kind {
            PluginKind::FewShot => "few-shot protocol",
            other => other.as_str(),
        })
        .collect();
    let kind_words = match kind_words.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => kind_words.join(""),
    };
    let elsewhere = PluginKind::ALL
        .into_iter()
        .find(|kind| kind.section() != section && registry.contains(*kind, name))
        .map(|kind| {
            format!(
                " (`{name}` is a {kind} plugin: its options go in [{}.{name}])",
                kind.section()
            )
        })
        .unwrap_or_default();
    let key = format!("{section}.{name}");
    format!(
        "config key `{key}` ({}): no {kind_words} plugin is named `{name}`{hint}{elsewhere}",
        table_source(loaded, &key),
    )
}

/// Where the keys of table `key` came from (every distinct source of its values).
fn table_source(loaded: &LoadedConfig, key: &str) -> String {
    let prefix = format!("{key}.");
    let sources: BTreeSet<String> = loaded
        .provenance()
        .into_iter()
        .filter(|(path, _)| path.starts_with(&prefix) || path == key)
        .map(|(_, source)| source)
        .collect();
    if sources.is_empty() {
        source_of(&loaded.figment, key)
    } else {
        sources.into_iter().collect::<Vec<_>>().join(", ")
    }
}
