//! Assembles the figment layers and extracts the typed config, remembering where every value
//! came from.

use super::error::{describe_source, ConfigError};
use super::schema::ExperimentConfig;
use anyhow::{bail, Context, Result};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Environment variables with the `MVLPT_` prefix that are not config keys.
pub const RESERVED_ENV: &[&str] = &["PLUGIN_PATH", "OFFLINE", "LOG", "THREADS"];

/// What to merge: experiment files (each may `extends` others), environment, `--set` pairs.
#[derive(Clone, Debug, Default)]
pub struct ConfigLayers {
    /// Experiment file (optional: defaults alone are a valid config).
    pub file: Option<PathBuf>,
    /// Read `MVLPT_*` environment variables.
    pub use_env: bool,
    /// `key=value` overrides, in order.
    pub sets: Vec<String>,
}

/// Where each leaf value of the resolved config came from.
pub type Provenance = BTreeMap<String, String>;

/// A resolved config: the typed view, the figment it came from (plugin sections are read from
/// it with their provenance), and the experiment file's directory for relative paths.
#[derive(Clone, Debug)]
pub struct LoadedConfig {
    /// The typed config.
    pub config: ExperimentConfig,
    /// All layers merged.
    pub figment: Figment,
    /// Directory of the experiment file (or the current directory).
    pub base_dir: PathBuf,
}

impl ConfigLayers {
    /// Layers for an experiment file with env and `--set` overrides.
    pub fn new(file: Option<&Path>, sets: &[String]) -> Self {
        Self {
            file: file.map(Path::to_path_buf),
            use_env: true,
            sets: sets.to_vec(),
        }
    }

    /// Merges every layer and extracts the typed config.
    pub fn load(&self) -> Result<LoadedConfig> {
        let mut figment =
            Figment::from(Serialized::defaults(ExperimentConfig::default_for_layers()));
        let mut base_dir = std::env::current_dir().context("reading the current directory")?;
        if let Some(file) = &self.file {
            for path in extends_chain(file, &mut Vec::new())? {
                figment = figment.merge(Toml::file_exact(&path));
            }
            base_dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        }
        if self.use_env {
            figment = figment.merge(Env::prefixed("MVLPT_").ignore(RESERVED_ENV).split("__"));
        }
        for set in &self.sets {
            figment = figment.merge(SetArg::parse(set)?);
        }
        let mut config: ExperimentConfig = figment.extract().map_err(ConfigError::from_figment)?;
        super::check_section_keys(&config, &figment)?;
        if config.name.is_empty() {
            config.name = self
                .file
                .as_ref()
                .and_then(|f| f.file_stem())
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "experiment".into());
        }
        Ok(LoadedConfig {
            config,
            figment,
            base_dir,
        })
    }
}

impl ExperimentConfig {
    fn default_for_layers() -> Self {
        // serde defaults are the single source of truth for default values.
        serde_json::from_str("{}").expect("every ExperimentConfig field has a default")
    }
}

/// Files in merge order: the `extends` targets of `file` (recursively, relative to the file
/// that names them), then `file` itself. Cycles are errors.
fn extends_chain(file: &Path, visiting: &mut Vec<PathBuf>) -> Result<Vec<PathBuf>> {
    check_is_file(file)?;
    let canonical = file
        .canonicalize()
        .with_context(|| format!("experiment file {} not found", file.display()))?;
    if visiting.contains(&canonical) {
        bail!(
            "config file {} extends itself (cycle: {:?})",
            file.display(),
            visiting
        );
    }
    visiting.push(canonical);
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{}: invalid TOML", file.display()))?;
    let mut chain = Vec::new();
    if let Some(extends) = table.get("extends") {
        let list = match extends {
            toml::Value::String(s) => vec![s.clone()],
            toml::Value::Array(items) => items
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .with_context(|| {
                    format!(
                        "{}: `extends` must be a string or a list of strings",
                        file.display()
                    )
                })?,
            other => bail!(
                "{}: `extends` must be a string or a list of strings, got {other}",
                file.display()
            ),
        };
        let dir = file.parent().unwrap_or(Path::new("."));
        for parent in list {
            chain.extend(extends_chain(&dir.join(&parent), visiting)?);
        }
    }
    visiting.pop();
    chain.push(file.to_path_buf());
    Ok(chain)
}

/// Fails unless `path` is a regular file (or a link to one), saying what it is instead: a
/// missing path, a directory, a device such as `/dev/null`, a FIFO or a socket. Checked before
/// opening it, so that a FIFO never blocks the read.
pub fn check_is_file(path: &Path) -> Result<()> {
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            if std::fs::symlink_metadata(path).is_ok() {
                bail!(
                    "experiment file {} is a symbolic link to a missing file",
                    path.display()
                );
            }
            bail!("experiment file {} not found", path.display());
        }
        Err(error) => {
            return Err(error)
                .with_context(|| format!("reading experiment file {}", path.display()))
        }
    };
    let file_type = metadata.file_type();
    if file_type.is_file() {
        return Ok(());
    }
    let what = if file_type.is_dir() {
        "a directory"
    } else {
        special_file_kind(&file_type)
    };
    bail!("experiment {} is {what}, not a TOML file", path.display())
}

#[cfg(unix)]
fn special_file_kind(file_type: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_fifo() {
        "a FIFO (named pipe)"
    } else if file_type.is_char_device() || file_type.is_block_device() {
        "a device file"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

#[cfg(not(unix))]
fn special_file_kind(_: &std::fs::FileType) -> &'static str {
    "a special file"
}

/// One `--set key=value` override as a figment provider that names itself in errors.
struct SetArg {
    raw: String,
    key: String,
    value: Value,
}

impl SetArg {
    fn parse(raw: &str) -> Result<Self> {
        let Some((key, value)) = raw.split_once('=') else {
            bail!("--set {raw}: expected key=value");
        };
        let key = key.trim();
        if key.is_empty() || key.split('.').any(str::is_empty) {
            bail!("--set {raw}: invalid key {key:?}");
        }
        Ok(Self {
            raw: raw.to_string(),
            key: key.to_string(),
            value: parse_value(value.trim()),
        })
    }
}

/// Parses a command-line value as TOML (`0.1`, `true`, `[1, 2]`, `"s"`), else takes it as a string.
pub fn parse_value(text: &str) -> Value {
    match toml::from_str::<toml::Table>(&format!("v = {text}")) {
        Ok(mut table) => match table.remove("v") {
            Some(v) => Value::serialize(v).unwrap_or_else(|_| Value::from(text.to_string())),
            None => Value::from(text.to_string()),
        },
        Err(_) => Value::from(text.to_string()),
    }
}

impl Provider for SetArg {
    fn metadata(&self) -> Metadata {
        Metadata::named("command line").source(Source::Custom(format!("--set {}", self.raw)))
    }

    fn data(&self) -> figment::Result<Map<Profile, Dict>> {
        let mut value = self.value.clone();
        for part in self.key.rsplit('.') {
            let mut dict = Dict::new();
            dict.insert(part.to_string(), value);
            value = Value::from(dict);
        }
        let dict = value.into_dict().unwrap_or_default();
        Ok(Profile::Default.collect(dict))
    }
}

impl LoadedConfig {
    /// Loads defaults < file < env < sets.
    pub fn load(file: Option<&Path>, sets: &[String]) -> Result<Self> {
        ConfigLayers::new(file, sets).load()
    }

    /// The source of every leaf value (`train.lr` → `file exp.toml`).
    pub fn provenance(&self) -> Provenance {
        let mut out = Provenance::new();
        if let Ok(value) = self.figment.find_value("") {
            self.collect(&value, &mut Vec::new(), &mut out);
        } else if let Ok(dict) = self
            .figment
            .data()
            .map(|d| d.into_values().next().unwrap_or_default())
        {
            self.collect(&Value::from(dict), &mut Vec::new(), &mut out);
        }
        out
    }

    fn collect(&self, value: &Value, path: &mut Vec<String>, out: &mut Provenance) {
        match value {
            Value::Dict(_, dict) if !dict.is_empty() => {
                for (k, v) in dict {
                    path.push(k.clone());
                    self.collect(v, path, out);
                    path.pop();
                }
            }
            _ => {
                let source = self
                    .figment
                    .get_metadata(value.tag())
                    .map(|m| describe_source(m, path))
                    .unwrap_or_else(|| "built-in defaults".into());
                out.insert(path.join("."), source);
            }
        }
    }

    /// A plugin's options section (`method.coop`), read with provenance-aware errors.
    pub fn section(&self, path: impl Into<String>) -> super::Section<'_> {
        super::Section::new(&self.figment, path)
    }

    /// Resolves the path value `path` of config key `key` relative to the directory of the file
    /// that set it (so a base file shared through `extends` can name `data.root = "../data"`
    /// whatever folder the experiments extending it sit in); values from the environment,
    /// `--set`, a sweep or the defaults resolve against the experiment file's directory.
    pub fn resolve_path_of(&self, key: &str, path: &Path) -> PathBuf {
        if path.is_absolute() {
            return path.to_path_buf();
        }
        let provenance = self.provenance();
        let file = provenance
            .get(key)
            .and_then(|source| source.strip_prefix("file "))
            .map(Path::new)
            .and_then(Path::parent);
        match file {
            Some(dir) => dir.join(path),
            None => self.base_dir.join(path),
        }
    }
}
