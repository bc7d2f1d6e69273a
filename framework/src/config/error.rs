//! Config errors that say which key, which value and which layer (file, environment variable or
//! `--set`) is at fault.

use figment::Source;

/// A configuration problem, already rendered with its provenance.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl ConfigError {
    /// Renders a figment error: `config key `train.lr` (from file exp.toml): invalid type: ...`.
    pub fn from_figment(error: figment::Error) -> Self {
        let lines: Vec<String> = error.into_iter().map(|e| render_one(&e)).collect();
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
    let what = e.kind.to_string();
    if key.is_empty() {
        format!("config ({source}): {what}")
    } else {
        format!("config key `{key}` ({source}): {what}")
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
