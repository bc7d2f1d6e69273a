//! What the custom-data plugins (`image_folder`, `manifest`) share: default templates and
//! metric, template checks and class-name files.

use anyhow::{bail, Context, Result};
use mvlpt_framework::eval::metrics::Metric;
use std::path::Path;

/// The default zero-shot template of custom data.
pub fn default_templates() -> Vec<String> {
    vec!["a photo of a {}.".to_string()]
}

/// The default metric of custom data.
pub fn default_metric() -> Metric {
    Metric::Accuracy
}

/// Checks the templates: at least one, each with one `{}` for the class name.
pub fn check_templates(templates: &[String], key: &str) -> Result<()> {
    if templates.is_empty() {
        bail!("{key}.templates is empty: give at least one, e.g. \"a photo of a {{}}.\"");
    }
    if let Some(bad) = templates.iter().find(|t| t.matches("{}").count() != 1) {
        bail!("{key}.templates: {bad:?} must contain `{{}}` exactly once (the class name)");
    }
    Ok(())
}

/// Reads a class-names file: a JSON list of names, or text with one name per line
/// (blank lines skipped).
pub fn read_classnames_list(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read class names file {}", path.display()))?;
    if path.extension().is_some_and(|e| e == "json") {
        return serde_json::from_str(&text)
            .with_context(|| format!("{}: expected a JSON list of class names", path.display()));
    }
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}
