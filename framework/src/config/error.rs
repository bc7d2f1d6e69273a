//! Config errors that say which key, which value and which layer (file, environment variable or
//! `--set`) is at fault, with the closest valid name for a misspelt key or value.

use crate::suggest::closest;
use figment::error::Kind;
use figment::Source;

/// A configuration problem, already rendered with its provenance.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl ConfigError {
    /// Renders a figment error: `config key `train.lr` (from file exp.toml): invalid type: ...`.
    pub fn from_figment(error: figment::Error) -> Self {
        Self::from_errors(error)
    }

    /// Renders each of `errors` on its own line.
    pub fn from_errors(errors: impl IntoIterator<Item = figment::Error>) -> Self {
        let lines: Vec<String> = errors.into_iter().map(|e| render_one(&e)).collect();
        Self(lines.join("\n"))
    }
}

fn render_one(e: &figment::Error) -> String {
    let key = e.path.join(".");
    let source = e
        .metadata
        .as_ref()
        .map(|m| describe_source(m, &e.path))
        .unwrap_or_else(|| "built-in defaults".into());
    let what = describe_kind(&e.kind, &e.path);
    if key.is_empty() {
        format!("config ({source}): {what}")
    } else {
        format!("config key `{key}` ({source}): {what}")
    }
}

/// The problem in words; unknown keys and values name the closest valid one.
fn describe_kind(kind: &Kind, path: &[String]) -> String {
    match kind {
        Kind::UnknownField(field, expected) => {
            let parent = path
                .strip_suffix(std::slice::from_ref(field))
                .unwrap_or(path)
                .join(".");
            let full = |name: &str| {
                if parent.is_empty() {
                    name.to_string()
                } else {
                    format!("{parent}.{name}")
                }
            };
            match closest(field, expected.iter().copied()) {
                Some(name) => format!("unknown key; did you mean `{}`?", full(name)),
                None if expected.is_empty() => "unknown key (this table takes no keys)".into(),
                None => format!("unknown key (valid keys: {})", expected.join(", ")),
            }
        }
        Kind::UnknownVariant(value, expected) => {
            let hint = closest(value, expected.iter().copied())
                .map(|name| format!("; did you mean {name:?}?"))
                .unwrap_or_default();
            let list: Vec<String> = expected.iter().map(|v| format!("{v:?}")).collect();
            format!(
                "unknown value {value:?}, expected one of {}{hint}",
                list.join(", ")
            )
        }
        other => other.to_string(),
    }
}

/// Names the layer a value came from: the file, the exact environment variable, or the `--set`.
pub(crate) fn describe_source(metadata: &figment::Metadata, path: &[String]) -> String {
    if metadata.name.contains("environment") {
        let var = format!(
            "MVLPT_{}",
            path.iter()
                .map(|p| p.to_ascii_uppercase())
                .collect::<Vec<_>>()
                .join("__")
        );
        return format!("environment variable {var}");
    }
    match &metadata.source {
        Some(Source::File(path)) => format!("file {}", path.display()),
        Some(Source::Custom(s)) => s.clone(),
        Some(Source::Code(_)) => "built-in defaults".into(),
        _ => metadata.name.to_string(),
    }
}

/// Where the value at dotted `key` of `figment` came from, or `built-in defaults`.
pub(crate) fn source_of(figment: &figment::Figment, key: &str) -> String {
    let path: Vec<String> = key.split('.').map(str::to_string).collect();
    figment
        .find_metadata(key)
        .map(|m| describe_source(m, &path))
        .unwrap_or_else(|| "built-in defaults".into())
}
