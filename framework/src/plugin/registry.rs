//! The registry of plugins by kind and name.

use super::{
    DatasetFactory, EvaluatorFactory, Factory, FewShotFactory, MethodFactory, Plugin, PluginKind,
    SamplerFactory,
};
use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where a plugin comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Compiled into the binary.
    BuiltIn,
    /// Loaded from this library file.
    Library(PathBuf),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BuiltIn => f.write_str("built-in"),
            Self::Library(path) => write!(f, "{}", path.display()),
        }
    }
}

/// A registered plugin and its origin.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The plugin.
    pub plugin: Plugin,
    /// Where it was registered from.
    pub origin: Origin,
}

/// All plugins known to this process, by kind and name.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    entries: BTreeMap<(PluginKind, &'static str), Entry>,
}

impl Registry {
    /// An empty registry.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Every plugin compiled into the binary (submitted with `register_plugin!`). Two built-ins
    /// with one name and kind are an error.
    pub fn builtin() -> Result<Self> {
        let mut registry = Self::empty();
        for plugin in inventory::iter::<Plugin> {
            registry.add(*plugin, Origin::BuiltIn)?;
        }
        Ok(registry)
    }

    /// Adds a plugin; a name already taken within its kind is an error naming both origins.
    pub fn add(&mut self, plugin: Plugin, origin: Origin) -> Result<()> {
        let key = (plugin.factory.kind(), plugin.name);
        if let Some(existing) = self.entries.get(&key) {
            bail!(
                "duplicate {} plugin `{}`: registered by {} and again by {}",
                key.0,
                plugin.name,
                existing.origin,
                origin
            );
        }
        self.entries.insert(key, Entry { plugin, origin });
        Ok(())
    }

    /// The plugin `name` of `kind`, or an error listing the available names and the closest one.
    pub fn get(&self, kind: PluginKind, name: &str) -> Result<&Entry> {
        if let Some(entry) = self
            .entries
            .iter()
            .find(|((k, n), _)| *k == kind && *n == name)
            .map(|(_, e)| e)
        {
            return Ok(entry);
        }
        let names = self.names(kind);
        let closest = crate::suggest::did_you_mean(name, names.iter().copied());
        bail!(
            "unknown {kind} plugin `{name}`{closest} (available: {})",
            names.join(", ")
        )
    }

    /// Names of all plugins of `kind`, sorted.
    pub fn names(&self, kind: PluginKind) -> Vec<&'static str> {
        self.entries
            .keys()
            .filter(|(k, _)| *k == kind)
            .map(|(_, n)| *n)
            .collect()
    }

    /// Whether `name` is registered for `kind`.
    pub fn contains(&self, kind: PluginKind, name: &str) -> bool {
        self.entries.keys().any(|(k, n)| *k == kind && *n == name)
    }

    /// All entries, sorted by kind then name.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// The factory of plugin `name` of `kind`.
    pub fn factory(&self, kind: PluginKind, name: &str) -> Result<Factory> {
        Ok(self.get(kind, name)?.plugin.factory)
    }

    /// The dataset plugin `name`; an unknown name lists the datasets and suggests the closest.
    pub fn dataset(&self, name: &str) -> Result<DatasetFactory> {
        match self.factory(PluginKind::Dataset, name)? {
            Factory::Dataset(factory) => Ok(factory),
            other => bail!("plugin `{name}` is a {:?}, not a dataset", other.kind()),
        }
    }

    /// The prompt method plugin `name`.
    pub fn method(&self, name: &str) -> Result<MethodFactory> {
        match self.factory(PluginKind::Method, name)? {
            Factory::Method(factory) => Ok(factory),
            other => bail!("plugin `{name}` is a {:?}, not a method", other.kind()),
        }
    }

    /// The few-shot protocol plugin `name`.
    pub fn fewshot(&self, name: &str) -> Result<FewShotFactory> {
        match self.factory(PluginKind::FewShot, name)? {
            Factory::FewShot(factory) => Ok(factory),
            other => bail!(
                "plugin `{name}` is a {:?}, not a few-shot protocol",
                other.kind()
            ),
        }
    }

    /// The batch sampler plugin `name`.
    pub fn sampler(&self, name: &str) -> Result<SamplerFactory> {
        match self.factory(PluginKind::Sampler, name)? {
            Factory::Sampler(factory) => Ok(factory),
            other => bail!(
                "plugin `{name}` is a {:?}, not a batch sampler",
                other.kind()
            ),
        }
    }

    /// The evaluator plugin `name`.
    pub fn evaluator(&self, name: &str) -> Result<EvaluatorFactory> {
        match self.factory(PluginKind::Evaluator, name)? {
            Factory::Evaluator(factory) => Ok(factory),
            other => bail!("plugin `{name}` is a {:?}, not an evaluator", other.kind()),
        }
    }
}
