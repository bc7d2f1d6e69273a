//! Keys of the `data`, `method` and `eval` sections that are neither the section's own nor a
//! table. Those sections keep plugin options in tables named after the plugin (`[method.coop]`),
//! so serde cannot refuse unknown keys there by itself: `method.init_form = "..."` would land
//! among the plugin tables and be ignored. Checked when the config is loaded; whether each table
//! names a plugin and holds that plugin's options is checked against the registry
//! (`plugin::check_options`).

use super::error::source_of;
use super::schema::{ExperimentConfig, PluginTables};
use super::ConfigError;
use crate::suggest::closest;
use figment::value::Value;
use figment::Figment;

/// The own keys of `[data]` (everything else there is a plugin table).
pub const DATA_KEYS: &[&str] = &[
    "dataset",
    "tasks",
    "task_order",
    "root",
    "shots",
    "fewshot",
    "sampler",
    "batch_size",
    "eval_batch_size",
    "train_transform",
    "test_transform",
    "on_bad_image",
    "workers",
    "prefetch",
    "task_masking",
    "subsample_classes",
];
/// The own keys of `[method]`.
pub const METHOD_KEYS: &[&str] = &["name", "init_from"];
/// The own keys of `[eval]`.
pub const EVAL_KEYS: &[&str] = &["evaluator", "key"];

/// The sections with plugin tables: name, own keys, tables.
pub fn plugin_sections(
    config: &ExperimentConfig,
) -> [(&'static str, &'static [&'static str], &PluginTables); 3] {
    [
        ("data", DATA_KEYS, &config.data.plugins),
        ("method", METHOD_KEYS, &config.method.plugins),
        ("eval", EVAL_KEYS, &config.eval.plugins),
    ]
}

/// Fails, naming every such key with its source and the closest own key, if any section holds
/// a value that is not a table under a name that is not its own key.
pub fn check_section_keys(config: &ExperimentConfig, figment: &Figment) -> Result<(), ConfigError> {
    let mut problems = Vec::new();
    for (section, own, tables) in plugin_sections(config) {
        for (name, value) in tables {
            if matches!(value, Value::Dict(..)) {
                continue;
            }
            let key = format!("{section}.{name}");
            let hint = closest(name, own.iter().copied())
                .map(|c| format!("did you mean `{section}.{c}`?"))
                .unwrap_or_else(|| format!("valid keys: {}", own.join(", ")));
            problems.push(format!(
                "config key `{key}` ({}): unknown key; {hint} (tables under [{section}] hold \
                 plugin options)",
                source_of(figment, &key)
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigError(problems.join("\n")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key lists above must be exactly the serialised fields of each section.
    #[test]
    fn own_key_lists_match_the_schema() {
        let mut config: ExperimentConfig = serde_json::from_str("{}").unwrap();
        config.method.init_from = Some("x".into());
        config.data.subsample_classes = crate::config::SubsampleClasses::Base;
        let value = serde_json::to_value(&config).unwrap();
        for (section, own) in [
            ("data", DATA_KEYS),
            ("method", METHOD_KEYS),
            ("eval", EVAL_KEYS),
        ] {
            let mut fields: Vec<&str> = value[section]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            let mut listed = own.to_vec();
            fields.sort();
            listed.sort();
            assert_eq!(fields, listed, "[{section}]");
        }
    }
}
