//! Extra config layers that `mvlpt run` adds on top of the user's (defaults < files < env <
//! `--set`): a sweep run's values, a pipeline stage's name and resolved references. Each is a
//! figment provider that names itself, so provenance and errors say where a value came from.

use crate::config::{ConfigError, LoadedConfig};
use anyhow::{Context, Result};
use figment::value::{Dict, Map, Value};
use figment::{Metadata, Profile, Provider, Source};

/// One dotted key and its value as a figment layer whose source reads `source` (`sweep`,
/// `pipeline study.toml, stage source`).
pub(crate) struct ValueLayer<'a> {
    /// How provenance names this layer.
    pub source: &'a str,
    /// Dotted config key (`method.init_from`).
    pub key: &'a str,
    /// Its value.
    pub value: &'a Value,
}

impl Provider for ValueLayer<'_> {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.source.to_string()).source(Source::Custom(self.source.to_string()))
    }

    fn data(&self) -> figment::Result<Map<Profile, Dict>> {
        // A fresh copy: a value read from a file still carries that file's tag, and figment
        // keeps existing tags, which would credit the file instead of this layer.
        let mut value = Value::serialize(self.value)?;
        for part in self.key.rsplit('.') {
            let mut dict = Dict::new();
            dict.insert(part.to_string(), value);
            value = Value::from(dict);
        }
        Ok(Profile::Default.collect(value.into_dict().unwrap_or_default()))
    }
}

/// `loaded` with `value` at `key` joined below every layer it already has (used only where
/// none of them sets a key), under the source name `source`; the typed config extracted again.
pub(crate) fn with_fallback(
    loaded: &LoadedConfig,
    source: &str,
    key: &str,
    value: &Value,
    what: impl FnOnce() -> String,
) -> Result<LoadedConfig> {
    let figment = loaded
        .figment
        .clone()
        .join(ValueLayer { source, key, value });
    extract(loaded, figment, what)
}

/// `loaded` with `values` layered on top under the source name `source`, the typed config
/// extracted again. A config that names no experiment keeps `loaded`'s name (the file stem).
pub(crate) fn with_values(
    loaded: &LoadedConfig,
    source: &str,
    values: &[(String, Value)],
    what: impl FnOnce() -> String,
) -> Result<LoadedConfig> {
    let mut figment = loaded.figment.clone();
    for (key, value) in values {
        figment = figment.merge(ValueLayer { source, key, value });
    }
    extract(loaded, figment, what)
}

/// The typed config of `figment`, named like `loaded` when it names nothing itself.
fn extract(
    loaded: &LoadedConfig,
    figment: figment::Figment,
    what: impl FnOnce() -> String,
) -> Result<LoadedConfig> {
    let mut config: crate::config::ExperimentConfig = figment
        .extract()
        .map_err(ConfigError::from_figment)
        .with_context(what)?;
    if config.name.is_empty() {
        config.name = loaded.config.name.clone();
    }
    Ok(LoadedConfig {
        config,
        figment,
        base_dir: loaded.base_dir.clone(),
    })
}
