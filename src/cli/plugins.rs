//! `mvlpt plugins list`: every plugin this binary knows, with its kind, origin and version.

use anyhow::{bail, Result};
use mvlpt_framework::config::LoadedConfig;
use mvlpt_framework::plugin::{check_options, Registry};
use mvlpt_framework::run::validate_plugins;
use serde::Serialize;
use std::path::PathBuf;

/// Arguments of `mvlpt plugins`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: PluginsCommand,
}

#[derive(clap::Subcommand, Debug)]
enum PluginsCommand {
    /// List plugins: name, kind, origin (built-in or library file), version, description.
    List {
        /// Print JSON (an array of objects) instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// The registry commands work with: every built-in plugin plus the plugin libraries named by
/// the experiment's `plugins.paths` (relative to its file) and by `MVLPT_PLUGIN_PATH`.
pub fn load_registry(config: Option<&LoadedConfig>) -> Result<Registry> {
    load_registry_for(config)
}

/// The registry of several configs (the experiment stages of a pipeline): every built-in
/// plugin plus the libraries any of them names, each once.
pub fn load_registry_for<'a>(
    configs: impl IntoIterator<Item = &'a LoadedConfig>,
) -> Result<Registry> {
    let mut paths: Vec<PathBuf> = Vec::new();
    for c in configs {
        for path in &c.config.plugins.paths {
            let path = c.resolve_path_of("plugins.paths", path);
            if !paths.contains(&path) {
                paths.push(path);
            }
        }
    }
    Registry::with_libraries(&paths)
}

/// [`load_registry`] with `config` checked against it: the plugins it names exist and every
/// plugin option table holds valid options; all problems are reported together. (`mvlpt run`
/// checks every run of the sweep instead, when it plans them.)
pub fn checked_registry(config: &LoadedConfig) -> Result<Registry> {
    let registry = load_registry(Some(config))?;
    let problems: Vec<String> = [
        validate_plugins(&config.config, &registry),
        check_options(config, &registry),
    ]
    .into_iter()
    .filter_map(|checked| checked.err().map(|e| format!("{e:#}")))
    .collect();
    if !problems.is_empty() {
        bail!("{}", problems.join("\n"));
    }
    Ok(registry)
}

/// One row of the listing.
#[derive(Serialize)]
struct Row {
    name: String,
    kind: String,
    origin: String,
    version: String,
    description: String,
}

/// Runs `mvlpt plugins`.
pub fn run(args: Args) -> Result<()> {
    let PluginsCommand::List { json } = args.command;
    let registry = load_registry(None)?;
    let rows: Vec<Row> = registry
        .entries()
        .map(|entry| Row {
            name: entry.plugin.name.to_string(),
            kind: entry.plugin.factory.kind().to_string(),
            origin: entry.origin.to_string(),
            version: entry.plugin.version.to_string(),
            description: entry.plugin.description.to_string(),
        })
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let table: Vec<[&str; 5]> = rows
        .iter()
        .map(|r| {
            [
                r.name.as_str(),
                r.kind.as_str(),
                r.origin.as_str(),
                r.version.as_str(),
                r.description.as_str(),
            ]
        })
        .collect();
    print!(
        "{}",
        super::aligned(
            &["name", "kind", "origin", "version", "description"],
            &table
        )
    );
    if rows.is_empty() {
        println!("(no plugins registered)");
    }
    Ok(())
}
