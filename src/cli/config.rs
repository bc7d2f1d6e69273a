//! `mvlpt config show`: the resolved config of an experiment, every value with its source
//! (built-in default, file, environment variable, `--set`).

use anyhow::{Context, Result};
use mvlpt_framework::config::{check_is_file, LoadedConfig};
use mvlpt_framework::run::resolved_provenance;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// An experiment file and `--set` overrides, shared by the commands that load a config.
#[derive(clap::Args, Debug, Clone)]
pub struct ExperimentArgs {
    /// Experiment file (or the name of `experiments/<name>.toml`).
    pub experiment: PathBuf,
    /// Override a config value (repeatable): `--set train.lr=0.01`. Values are TOML
    /// (`4`, `true`, `[1, 2]`, `"text"`); anything else is taken as a string.
    #[arg(long = "set", short = 's', value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

impl ExperimentArgs {
    /// Loads the experiment: defaults < file(s) < `MVLPT_*` environment < `--set`.
    pub fn load(&self) -> Result<LoadedConfig> {
        LoadedConfig::load(Some(&find_experiment(&self.experiment)?), &self.sets)
    }
}

/// `path` if it is a file, else `experiments/<path>.toml`. A path that exists but is no
/// regular file (a directory, `/dev/null`, a FIFO) is an error saying what it is.
pub fn find_experiment(path: &Path) -> Result<PathBuf> {
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    let named = Path::new("experiments").join(path).with_extension("toml");
    if path.extension().is_none() && named.is_file() {
        return Ok(named);
    }
    if std::fs::symlink_metadata(path).is_ok() {
        check_is_file(path)?;
    }
    Err(std::io::Error::from(std::io::ErrorKind::NotFound)).with_context(|| {
        format!(
            "experiment file {} not found (nor {})",
            path.display(),
            named.display()
        )
    })
}

/// Arguments of `mvlpt config`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: ConfigCommand,
}

#[derive(clap::Subcommand, Debug)]
enum ConfigCommand {
    /// Print the resolved config with the source of every value.
    Show {
        #[command(flatten)]
        experiment: ExperimentArgs,
        /// Print JSON (`{"key": {"value": ..., "source": ...}}`) instead of annotated TOML lines.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `mvlpt config`.
pub fn run(args: Args) -> Result<()> {
    let ConfigCommand::Show { experiment, json } = args.command;
    let loaded = experiment.load()?;
    super::plugins::checked_registry(&loaded)?;
    let entries = resolved_entries(&loaded)?;
    if json {
        let object: serde_json::Map<String, serde_json::Value> = entries
            .into_iter()
            .map(|(key, (value, source))| {
                (key, serde_json::json!({ "value": value, "source": source }))
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&object)?);
        return Ok(());
    }
    let lines: Vec<(String, String)> = entries
        .iter()
        .map(|(key, (value, source))| (format!("{key} = {}", render_toml(value)), source.clone()))
        .collect();
    let width = lines
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0);
    for (line, source) in lines {
        println!("{line:<width$}  # {source}");
    }
    Ok(())
}

/// Every leaf value of the resolved config (dotted key → value, source).
fn resolved_entries(
    loaded: &LoadedConfig,
) -> Result<BTreeMap<String, (serde_json::Value, String)>> {
    let value = serde_json::to_value(&loaded.config).context("serialising the config")?;
    let provenance = resolved_provenance(loaded);
    let mut leaves = BTreeMap::new();
    flatten(&value, "", &mut leaves);
    Ok(leaves
        .into_iter()
        .map(|(key, value)| {
            let source = provenance
                .get(&key)
                .cloned()
                .unwrap_or_else(|| "built-in defaults".into());
            (key, (value, source))
        })
        .collect())
}

fn flatten(value: &serde_json::Value, prefix: &str, out: &mut BTreeMap<String, serde_json::Value>) {
    match value {
        serde_json::Value::Object(map) if !map.is_empty() => {
            for (key, item) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(item, &path, out);
            }
        }
        serde_json::Value::Null => {}
        leaf => {
            out.insert(prefix.to_string(), leaf.clone());
        }
    }
}

/// A JSON leaf as a TOML value (`"coop"`, `0.002`, `[0.9, 0.999]`, `{}`).
fn render_toml(value: &serde_json::Value) -> String {
    toml::Value::try_from(value)
        .map(|v| v.to_string())
        .unwrap_or_else(|_| value.to_string())
}
