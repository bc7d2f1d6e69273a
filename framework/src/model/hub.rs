//! Hugging Face hub downloads with a local cache, failing fast (with instructions) offline.

use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// Files a CLIP model directory needs, in the order they are fetched.
const FILES: [&str; 2] = ["config.json", "model.safetensors"];

/// The cache directory: `cache_dir`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`.
pub fn cache_dir(cache_dir: Option<&Path>) -> PathBuf {
    if let Some(dir) = cache_dir {
        return dir.to_path_buf();
    }
    if let Some(home) = std::env::var_os("HF_HOME") {
        return PathBuf::from(home).join("hub");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("huggingface").join("hub")
}

/// True when the environment forbids network access (`HF_HUB_OFFLINE=1` or `MVLPT_OFFLINE=1`).
pub fn offline() -> bool {
    ["HF_HUB_OFFLINE", "MVLPT_OFFLINE"]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|s| s == "1" || s.eq_ignore_ascii_case("true")))
}

/// Returns a local directory holding `config.json` and `model.safetensors` of hub model
/// `repo_id`, downloading missing files into the cache unless offline.
pub fn fetch_clip(repo_id: &str, cache: Option<&Path>) -> Result<PathBuf> {
    let dir = cache_dir(cache);
    let cache = hf_hub::Cache::new(dir.clone());
    let repo = cache.model(repo_id.to_string());
    let cached: Vec<Option<PathBuf>> = FILES.iter().map(|f| repo.get(f)).collect();
    if let [Some(config), Some(_)] = cached.as_slice() {
        return Ok(config.parent().map(Path::to_path_buf).unwrap_or_default());
    }
    let instructions = format!(
        "download {files} from https://huggingface.co/{repo_id}/tree/main into a directory and pass that directory as the model \
         (or make them reachable in the hub cache {cache})",
        files = FILES.join(" and "),
        cache = dir.display()
    );
    if offline() {
        bail!("model {repo_id} is not in the hub cache and downloads are disabled (offline); {instructions}");
    }
    let api = hf_hub::api::sync::ApiBuilder::from_cache(cache)
        .with_progress(false)
        .with_retries(0)
        .build()?;
    let remote = api.model(repo_id.to_string());
    let mut last = None;
    for file in FILES {
        match remote.get(file) {
            Ok(path) => last = Some(path),
            Err(e) => bail!("could not download {file} of {repo_id} from the Hugging Face hub ({e}); {instructions}"),
        }
    }
    match last.and_then(|p| p.parent().map(Path::to_path_buf)) {
        Some(dir) => Ok(dir),
        None => bail!("hub download of {repo_id} returned no path"),
    }
}
