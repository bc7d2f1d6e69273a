//! Dynamically loaded plugin libraries.
//!
//! A plugin library is a Rust `dylib` built against the same framework build as the host: both
//! link `libmvlpt_dylib.so`, so there is one copy of the framework and of candle in the process
//! (a second candle would keep its own tensor-id counter and silently corrupt gradients).
//!
//! Every plugin exports a `#[repr(C)]` [`PluginHeader`] (magic, ABI version, framework version,
//! rustc version, build fingerprint) through [`export_plugins!`](crate::export_plugins). The
//! loader reads that header **from the file, before loading it** (parsing the ELF symbol table),
//! and refuses a library that is not a plugin or was built against another framework build with
//! a message saying what differs. Only then is the library opened and its registration function
//! called. Loaded libraries are never unloaded.

use super::{Origin, Plugin, Registry};
use anyhow::{bail, Context, Result};
use object::{Object, ObjectSection, ObjectSymbol};
use std::path::{Path, PathBuf};

/// Bytes every plugin header starts with.
pub const MAGIC: [u8; 8] = *b"MVLPTPLG";
/// Version of the header layout and of the registration entry point.
pub const ABI_VERSION: u32 = 1;
/// Exported name of the header static.
pub const HEADER_SYMBOL: &str = "MVLPT_PLUGIN_HEADER";
/// Exported name of the registration function (`fn() -> Vec<Plugin>`).
pub const REGISTER_SYMBOL: &str = "mvlpt_plugin_register";
/// Environment variable with extra plugin files or directories, separated by `:`.
pub const PLUGIN_PATH_ENV: &str = "MVLPT_PLUGIN_PATH";

/// The compatibility header a plugin library exports. Only inline byte arrays (no pointers), so
/// it can be read from the file without relocation.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PluginHeader {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// [`ABI_VERSION`].
    pub abi_version: u32,
    /// Framework crate version, NUL-padded.
    pub framework_version: [u8; 32],
    /// `rustc -V` of the compiler, NUL-padded.
    pub rustc_version: [u8; 128],
    /// Build fingerprint (compiler, target, profile, features, framework sources), NUL-padded.
    pub fingerprint: [u8; 64],
    /// Enabled framework features, comma-separated, NUL-padded.
    pub features: [u8; 64],
}

/// Copies `s` into a NUL-padded array at compile time.
const fn padded<const N: usize>(s: &str) -> [u8; N] {
    let bytes = s.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < bytes.len() && i < N {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

fn text(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

impl PluginHeader {
    /// The header of the framework build this code is compiled into. A plugin evaluates it at
    /// its own compile time (so it records the framework build it was compiled against); the
    /// host evaluates it in its framework build.
    pub const fn current() -> Self {
        Self {
            magic: MAGIC,
            abi_version: ABI_VERSION,
            framework_version: padded(env!("CARGO_PKG_VERSION")),
            rustc_version: padded(env!("BUILD_RUSTC_OF_MVLPT")),
            fingerprint: padded(env!("BUILD_FINGERPRINT_OF_MVLPT")),
            features: padded(env!("BUILD_FEATURES_OF_MVLPT")),
        }
    }

    /// Size of the header in bytes.
    pub const SIZE: usize = std::mem::size_of::<Self>();

    /// Parses a header from its raw bytes (as stored in the library file).
    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < Self::SIZE {
            return None;
        }
        let take = |offset: usize, len: usize| &bytes[offset..offset + len];
        let mut header = Self::current();
        header.magic.copy_from_slice(take(0, 8));
        header.abi_version = u32::from_ne_bytes(take(8, 4).try_into().ok()?);
        header.framework_version.copy_from_slice(take(12, 32));
        header.rustc_version.copy_from_slice(take(44, 128));
        header.fingerprint.copy_from_slice(take(172, 64));
        header.features.copy_from_slice(take(236, 64));
        Some(header)
    }

    /// Differences between a plugin's header and the host's, as readable lines.
    fn mismatches(&self, host: &Self) -> Vec<String> {
        let mut out = Vec::new();
        let mut check = |what: &str, plugin: String, host: String| {
            if plugin != host {
                out.push(format!("{what}: plugin {plugin:?}, host {host:?}"));
            }
        };
        check(
            "ABI version",
            self.abi_version.to_string(),
            host.abi_version.to_string(),
        );
        check(
            "framework version",
            text(&self.framework_version),
            text(&host.framework_version),
        );
        check(
            "compiler",
            text(&self.rustc_version),
            text(&host.rustc_version),
        );
        check(
            "framework features",
            text(&self.features),
            text(&host.features),
        );
        check(
            "framework build fingerprint",
            text(&self.fingerprint),
            text(&host.fingerprint),
        );
        out
    }
}

/// Exports plugins from a dynamic library crate (`crate-type = ["dylib"]`):
/// `mvlpt_framework::export_plugins![plugin_a(), plugin_b()];` where each expression is a
/// [`Plugin`]. Generates the header static and the registration function.
#[macro_export]
macro_rules! export_plugins {
    ($($plugin:expr),* $(,)?) => {
        /// Compatibility header read by the mvlpt plugin loader before loading this library.
        #[no_mangle]
        #[used]
        pub static MVLPT_PLUGIN_HEADER: $crate::plugin::dynamic::PluginHeader =
            $crate::plugin::dynamic::PluginHeader::current();

        /// Registration entry point called by the mvlpt plugin loader.
        #[no_mangle]
        pub fn mvlpt_plugin_register() -> ::std::vec::Vec<$crate::plugin::Plugin> {
            vec![$($plugin),*]
        }
    };
}

/// What a library file holds, read without loading it.
enum Scanned {
    /// A plugin header (not yet compared with the host's).
    Plugin(Box<PluginHeader>),
    /// No plugin: why (not a shared library mvlpt can read, or no header symbol).
    NotAPlugin(String),
}

/// Reads the plugin header out of a library file without loading it.
pub fn read_header(path: &Path) -> Result<PluginHeader> {
    match scan(path)? {
        Scanned::Plugin(header) => Ok(*header),
        Scanned::NotAPlugin(why) => bail!("{why}"),
    }
}

/// Looks for the plugin header in a library file. Errors are for files that claim to be
/// plugins (they export the header symbol) but whose header cannot be read.
fn scan(path: &Path) -> Result<Scanned> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("reading plugin library {}", path.display()))?;
    let file = match object::File::parse(&*bytes) {
        Ok(file) => file,
        Err(e) => {
            return Ok(Scanned::NotAPlugin(format!(
                "{} is not a shared library mvlpt can read ({e})",
                path.display()
            )))
        }
    };
    let Some(symbol) = file
        .dynamic_symbols()
        .chain(file.symbols())
        .find(|s| s.name() == Ok(HEADER_SYMBOL))
    else {
        return Ok(Scanned::NotAPlugin(format!(
            "{} is not an mvlpt plugin: it exports no `{HEADER_SYMBOL}`",
            path.display()
        )));
    };
    let section = symbol
        .section_index()
        .and_then(|i| file.section_by_index(i).ok())
        .with_context(|| format!("{}: `{HEADER_SYMBOL}` is not in a section", path.display()))?;
    let data = section
        .data_range(symbol.address(), PluginHeader::SIZE as u64)
        .ok()
        .flatten()
        .with_context(|| format!("{}: `{HEADER_SYMBOL}` has no readable data", path.display()))?;
    let header = PluginHeader::from_bytes(data)
        .with_context(|| format!("{}: truncated plugin header", path.display()))?;
    if header.magic != MAGIC {
        bail!(
            "{} is not an mvlpt plugin: its `{HEADER_SYMBOL}` has the wrong magic bytes",
            path.display()
        );
    }
    Ok(Scanned::Plugin(Box::new(header)))
}

/// Checks a library's header against the host's framework build.
pub fn check_compatible(path: &Path) -> Result<()> {
    let header = read_header(path)?;
    let differences = header.mismatches(&PluginHeader::current());
    if !differences.is_empty() {
        bail!(
            "refusing plugin {}: it was built against another mvlpt framework build ({}). Rebuild it in this workspace \
             with the same toolchain, profile and features as the host.",
            path.display(),
            differences.join("; ")
        );
    }
    Ok(())
}

/// Whether a file name looks like a shared library.
fn is_library(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e == "so" || e == "dylib" || e == "dll")
}

/// Library files named by `paths`: files as given (loading refuses one that is not a plugin,
/// saying why), and the plugin libraries of directories in name order. A directory's shared
/// libraries without a plugin header are skipped with a debug message: cargo's output folder,
/// for instance, holds the framework's own `libmvlpt_dylib.so` next to the plugins.
pub fn library_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading plugin directory {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| is_library(p) && p.is_file())
                .collect();
            found.sort();
            for file in found {
                match scan(&file)? {
                    Scanned::Plugin(_) => files.push(file),
                    Scanned::NotAPlugin(why) => tracing::debug!("skipped {why}"),
                }
            }
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            bail!("plugin path {} does not exist", path.display());
        }
    }
    Ok(files)
}

/// Paths from `MVLPT_PLUGIN_PATH`.
pub fn env_paths() -> Vec<PathBuf> {
    std::env::var_os(PLUGIN_PATH_ENV)
        .map(|v| {
            std::env::split_paths(&v)
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        })
        .unwrap_or_default()
}

impl Registry {
    /// Loads one plugin library: checks its header from the file, opens it, registers its
    /// plugins with their origin. Returns the names registered.
    pub fn load_library(&mut self, path: &Path) -> Result<Vec<String>> {
        check_compatible(path)?;
        let path = path
            .canonicalize()
            .with_context(|| format!("resolving {}", path.display()))?;
        // SAFETY: the header check guarantees the library was compiled by the same compiler
        // against this exact framework build, so its Rust ABI and the shared framework symbols
        // match ours. The library is never unloaded (forgotten below), so the `'static` data its
        // plugins hold stays valid.
        let plugins = unsafe {
            let library = libloading::Library::new(&path).map_err(|e| {
                let hint = if e.to_string().contains("undefined symbol") {
                    ": it was compiled against a different build of the framework's dependencies \
                     (cargo resolves features per invocation); build the host and its plugins in one \
                     invocation, e.g. `cargo build --release -p mvlpt -p <plugin crate>`"
                } else {
                    ""
                };
                anyhow::anyhow!("loading plugin library {}{hint} ({e})", path.display())
            })?;
            let register: libloading::Symbol<'_, fn() -> Vec<Plugin>> = library
                .get(REGISTER_SYMBOL.as_bytes())
                .with_context(|| format!("{}: no `{REGISTER_SYMBOL}` function", path.display()))?;
            let plugins = register();
            std::mem::forget(library);
            plugins
        };
        let mut names = Vec::new();
        for plugin in plugins {
            names.push(format!("{} {}", plugin.factory.kind(), plugin.name));
            self.add(plugin, Origin::Library(path.clone()))?;
        }
        Ok(names)
    }

    /// The built-in plugins plus every library found in `paths` and `MVLPT_PLUGIN_PATH`.
    pub fn with_libraries(paths: &[PathBuf]) -> Result<Self> {
        let mut registry = Self::builtin()?;
        let mut all = paths.to_vec();
        all.extend(env_paths());
        for file in library_files(&all)? {
            let names = registry.load_library(&file)?;
            tracing::info!(
                "loaded plugin library {}: {}",
                file.display(),
                names.join(", ")
            );
        }
        Ok(registry)
    }
}
