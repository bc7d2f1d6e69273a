//! A plugin's own config table, deserialised by the plugin with `deny_unknown_fields`.

use super::error::ConfigError;
use anyhow::Result;
use figment::Figment;
use serde::de::DeserializeOwned;

/// The options table of one plugin, e.g. `[method.coop]`, inside the merged config.
#[derive(Clone, Debug)]
pub struct Section<'a> {
    figment: &'a Figment,
    path: String,
}

impl<'a> Section<'a> {
    /// The table at dotted `path` of `figment`.
    pub fn new(figment: &'a Figment, path: impl Into<String>) -> Self {
        Self {
            figment,
            path: path.into(),
        }
    }

    /// Dotted path of the table (`method.coop`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether the table is present in any layer.
    pub fn is_present(&self) -> bool {
        self.figment.find_value(&self.path).is_ok()
    }

    /// Deserialises the table (an absent table reads as empty, so plugin structs should give
    /// every field a default). Errors name the key, the value and its layer.
    pub fn extract<T: DeserializeOwned>(&self) -> Result<T> {
        if !self.is_present() {
            let empty = figment::value::Value::from(figment::value::Dict::new());
            return Ok(empty
                .deserialize()
                .map_err(|e| ConfigError::from_figment(e.with_path(&self.path)))?);
        }
        Ok(self
            .figment
            .extract_inner(&self.path)
            .map_err(|error| ConfigError::from_errors(error.into_iter().map(|e| self.rooted(e))))?)
    }

    /// An error of this table with its key path from the config root: figment appends the
    /// table's path after the key inside it (`n_ctx.method.coop`), this puts it in front.
    fn rooted(&self, mut error: figment::Error) -> figment::Error {
        let table: Vec<String> = self.path.split('.').map(str::to_string).collect();
        if let Some(inner) = error.path.strip_suffix(table.as_slice()) {
            error.path = table.iter().chain(inner).cloned().collect();
        }
        error
    }
}
