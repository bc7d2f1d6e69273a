//! Reading CLIP checkpoints: OpenAI / open_clip state dicts and Hugging Face `CLIPModel`
//! directories in safetensors, detected automatically, plus the Hugging Face hub with a local
//! cache. Everything is renamed to OpenAI's naming, the one [`Clip::from_tensors`] reads.
//!
//! [`Clip::from_tensors`]: super::clip::Clip::from_tensors

use super::clip::Clip;
use super::config::{Activation, ClipConfig, TextConfig, VisionConfig};
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A problem with a checkpoint's tensors, naming the tensor and where it came from.
#[derive(Debug, thiserror::Error)]
pub enum WeightError {
    /// A tensor the architecture needs is absent.
    #[error("{origin}: missing tensor `{name}` (expected shape {expected:?})")]
    Missing {
        /// Tensor name (OpenAI naming).
        name: String,
        /// Expected shape.
        expected: Vec<usize>,
        /// Checkpoint description.
        origin: String,
    },
    /// A tensor has the wrong shape.
    #[error("{origin}: tensor `{name}` has shape {found:?}, expected {expected:?}")]
    Shape {
        /// Tensor name (OpenAI naming).
        name: String,
        /// Expected shape.
        expected: Vec<usize>,
        /// Shape in the checkpoint.
        found: Vec<usize>,
        /// Checkpoint description.
        origin: String,
    },
}

/// Named tensors taken one by one with shape checks (what is left over can be reported).
#[derive(Debug)]
pub struct TensorMap {
    tensors: HashMap<String, Tensor>,
    origin: String,
}

impl TensorMap {
    /// Wraps named tensors; `origin` (e.g. the file path) appears in every error.
    pub fn new(tensors: HashMap<String, Tensor>, origin: impl Into<String>) -> Self {
        Self {
            tensors,
            origin: origin.into(),
        }
    }

    /// Removes and returns `name`, checking its shape.
    pub fn take(&mut self, name: &str, expected: &[usize]) -> Result<Tensor, WeightError> {
        let tensor = self
            .tensors
            .remove(name)
            .ok_or_else(|| WeightError::Missing {
                name: name.to_string(),
                expected: expected.to_vec(),
                origin: self.origin.clone(),
            })?;
        if tensor.dims() != expected {
            return Err(WeightError::Shape {
                name: name.to_string(),
                expected: expected.to_vec(),
                found: tensor.dims().to_vec(),
                origin: self.origin.clone(),
            });
        }
        Ok(tensor)
    }

    /// Names not taken yet, sorted.
    pub fn remaining(&self) -> Vec<String> {
        let mut names: Vec<String> = self.tensors.keys().cloned().collect();
        names.sort();
        names
    }
}

/// How a checkpoint names its tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckpointLayout {
    /// OpenAI / open_clip (`visual.transformer.resblocks.N.attn.in_proj_weight`, ...).
    OpenAi,
    /// Hugging Face transformers `CLIPModel` (`vision_model.encoder.layers.N.self_attn.q_proj.weight`, ...).
    HuggingFace,
}

impl CheckpointLayout {
    /// Detects the layout from tensor names.
    pub fn detect(names: &[String]) -> Option<Self> {
        if names
            .iter()
            .any(|n| n.starts_with("visual.") || n == "token_embedding.weight")
        {
            Some(Self::OpenAi)
        } else if names
            .iter()
            .any(|n| n.starts_with("vision_model.") || n.starts_with("text_model."))
        {
            Some(Self::HuggingFace)
        } else {
            None
        }
    }
}

/// Options for loading a model.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Device to place the weights on.
    pub device: Device,
    /// Compute dtype of the matrices (LayerNorm and embeddings stay f32).
    pub dtype: DType,
    /// Hub cache directory (default: `$HF_HOME/hub` or `~/.cache/huggingface/hub`).
    pub cache_dir: Option<PathBuf>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            device: Device::Cpu,
            dtype: DType::F32,
            cache_dir: None,
        }
    }
}

/// Metadata key under which mvlpt stores the architecture in its own safetensors files.
pub const CONFIG_METADATA_KEY: &str = "mvlpt.clip_config";

/// Loads a CLIP model from `spec`: a directory (Hugging Face `config.json` + `model.safetensors`,
/// or open_clip `open_clip_config.json` + `open_clip_model.safetensors`), a `.safetensors` file
/// (OpenAI/open_clip or Hugging Face naming, detected), or a Hugging Face hub id such as
/// `openai/clip-vit-base-patch16` (downloaded once into the cache).
pub fn load_clip(spec: &str, options: &LoadOptions) -> Result<Clip> {
    let path = Path::new(spec);
    if path.is_dir() {
        load_dir(path, options)
    } else if path.is_file() {
        load_file(path, None, options)
    } else if looks_like_hub_id(spec) {
        let dir = super::hub::fetch_clip(spec, options.cache_dir.as_deref())?;
        load_dir(&dir, options)
    } else {
        bail!(
            "model `{spec}` is neither a file, a directory nor a Hugging Face hub id (owner/name); \
             give a .safetensors file, a directory with config.json + model.safetensors, or e.g. openai/clip-vit-base-patch16"
        )
    }
}

fn looks_like_hub_id(spec: &str) -> bool {
    let parts: Vec<&str> = spec.split('/').collect();
    parts.len() == 2 && parts.iter().all(|p| !p.is_empty() && !p.starts_with('.'))
}

fn load_dir(dir: &Path, options: &LoadOptions) -> Result<Clip> {
    for (config, weights) in [
        ("config.json", "model.safetensors"),
        ("open_clip_config.json", "open_clip_model.safetensors"),
    ] {
        let weights_path = dir.join(weights);
        if weights_path.is_file() {
            let config_path = dir.join(config);
            let config_path = config_path.is_file().then_some(config_path);
            return load_file(&weights_path, config_path.as_deref(), options);
        }
    }
    if dir.join("pytorch_model.bin").is_file() || dir.join("open_clip_pytorch_model.bin").is_file()
    {
        bail!(
            "{}: only PyTorch .bin weights found; convert them to safetensors with tools/convert_clip_checkpoint.py",
            dir.display()
        );
    }
    bail!(
        "{}: no model.safetensors (Hugging Face) or open_clip_model.safetensors (open_clip) found",
        dir.display()
    )
}

/// Loads one safetensors file; `config_json` is a Hugging Face or open_clip config when present.
pub fn load_file(path: &Path, config_json: Option<&Path>, options: &LoadOptions) -> Result<Clip> {
    let origin = path.display().to_string();
    if path
        .extension()
        .is_some_and(|e| e == "pt" || e == "pth" || e == "bin")
    {
        bail!("{origin}: PyTorch pickles are not read directly; convert with tools/convert_clip_checkpoint.py to safetensors");
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {origin}"))?;
    let metadata = safetensors::SafeTensors::read_metadata(&bytes)
        .with_context(|| format!("{origin}: not a safetensors file"))?
        .1;
    let stored_config = metadata
        .metadata()
        .as_ref()
        .and_then(|m| m.get(CONFIG_METADATA_KEY))
        .map(|json| serde_json::from_str::<ClipConfig>(json))
        .transpose()
        .with_context(|| format!("{origin}: invalid `{CONFIG_METADATA_KEY}` metadata"))?;
    super::finite::check_finite_weights(&bytes, &origin)?;
    let raw = candle_core::safetensors::load_buffer(&bytes, &options.device)
        .with_context(|| format!("{origin}: reading tensors"))?;
    // Strip wrappers some training code adds (DataParallel's `module.`).
    let raw: HashMap<String, Tensor> = raw
        .into_iter()
        .map(|(k, v)| {
            (
                k.strip_prefix("module.").map(str::to_string).unwrap_or(k),
                v,
            )
        })
        .collect();
    let names: Vec<String> = raw.keys().cloned().collect();
    let layout = CheckpointLayout::detect(&names)
        .with_context(|| format!("{origin}: tensor names match neither the OpenAI/open_clip nor the Hugging Face CLIP layout"))?;
    let (config, tensors) = match layout {
        CheckpointLayout::OpenAi => {
            let config = match stored_config {
                Some(c) => c,
                None => openai_config(&raw, &names, config_json)?,
            };
            (config, raw)
        }
        CheckpointLayout::HuggingFace => {
            let config = match (stored_config, config_json) {
                (Some(c), _) => c,
                (None, Some(json)) => hf_config(json)?,
                (None, None) => {
                    bail!("{origin}: a Hugging Face checkpoint needs its config.json next to it")
                }
            };
            let renamed = hf_to_openai(raw, &config)?;
            (config, renamed)
        }
    };
    let mut map = TensorMap::new(tensors, origin.clone());
    let clip = Clip::from_tensors(&config, &mut map, options.dtype)?;
    let unused: Vec<String> = map
        .remaining()
        .into_iter()
        .filter(|n| !is_known_extra(n))
        .collect();
    if !unused.is_empty() {
        tracing::warn!(file = %origin, "ignored {} unexpected tensors, e.g. {:?}", unused.len(), &unused[..unused.len().min(3)]);
    }
    Ok(clip)
}

/// Buffers that checkpoints carry but the model does not need.
fn is_known_extra(name: &str) -> bool {
    name.ends_with("position_ids")
        || name == "input_resolution"
        || name == "context_length"
        || name == "vocab_size"
        || name.ends_with("attn_mask")
}

fn openai_config(
    raw: &HashMap<String, Tensor>,
    names: &[String],
    config_json: Option<&Path>,
) -> Result<ClipConfig> {
    let shape_of = |n: &str| raw.get(n).map(|t| t.dims().to_vec());
    let Some(path) = config_json else {
        return ClipConfig::infer_openai(&shape_of, names, 64);
    };
    // open_clip_config.json: {"model_cfg": {"vision_cfg": {"head_width"}, "text_cfg": {"heads"}, "quick_gelu"}}
    let json: serde_json::Value = read_json(path)?;
    let model = &json["model_cfg"];
    let head_width = model["vision_cfg"]["head_width"].as_u64().unwrap_or(64) as usize;
    let mut config = ClipConfig::infer_openai(&shape_of, names, head_width)?;
    config.text.heads = match model["text_cfg"]["heads"].as_u64() {
        Some(h) => h as usize,
        None => config.text.width / 64,
    };
    if model["quick_gelu"].as_bool() != Some(true) {
        // open_clip's default activation is nn.GELU; only OpenAI-pretrained configs set quick_gelu.
        config.activation = Activation::Gelu;
    }
    config
        .validate()
        .with_context(|| format!("{}: inconsistent architecture", path.display()))?;
    Ok(config)
}

fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: invalid JSON", path.display()))
}

/// Reads a Hugging Face `CLIPConfig` (`config.json`).
pub fn hf_config(path: &Path) -> Result<ClipConfig> {
    let json = read_json(path)?;
    let origin = path.display();
    let field = |section: &str, key: &str| -> Result<usize> {
        json[section][key]
            .as_u64()
            .map(|v| v as usize)
            .with_context(|| format!("{origin}: missing integer `{section}.{key}`"))
    };
    let act = |section: &str| {
        json[section]["hidden_act"]
            .as_str()
            .unwrap_or("quick_gelu")
            .to_string()
    };
    let activation = match act("text_config").as_str() {
        "quick_gelu" => Activation::QuickGelu,
        "gelu" => Activation::Gelu,
        other => {
            bail!("{origin}: unsupported text_config.hidden_act {other:?} (quick_gelu or gelu)")
        }
    };
    if act("vision_config") != act("text_config") {
        bail!("{origin}: the two towers use different activations; not supported");
    }
    let config = ClipConfig {
        embed_dim: json["projection_dim"]
            .as_u64()
            .map(|v| v as usize)
            .with_context(|| format!("{origin}: missing `projection_dim`"))?,
        vision: VisionConfig {
            image_size: field("vision_config", "image_size")?,
            patch_size: field("vision_config", "patch_size")?,
            width: field("vision_config", "hidden_size")?,
            layers: field("vision_config", "num_hidden_layers")?,
            heads: field("vision_config", "num_attention_heads")?,
        },
        text: TextConfig {
            context_length: field("text_config", "max_position_embeddings")?,
            vocab_size: field("text_config", "vocab_size")?,
            width: field("text_config", "hidden_size")?,
            layers: field("text_config", "num_hidden_layers")?,
            heads: field("text_config", "num_attention_heads")?,
        },
        activation,
    };
    config.validate()?;
    Ok(config)
}

/// Renames a Hugging Face `CLIPModel` state dict to OpenAI naming, fusing q/k/v projections
/// into `in_proj_weight` and transposing the projections.
pub fn hf_to_openai(
    mut hf: HashMap<String, Tensor>,
    config: &ClipConfig,
) -> Result<HashMap<String, Tensor>> {
    let mut out = HashMap::new();
    let mut take = |name: &str| {
        hf.remove(name)
            .with_context(|| format!("missing Hugging Face tensor `{name}`"))
    };
    let mut tower = |out: &mut HashMap<String, Tensor>,
                     hf_prefix: &str,
                     prefix: &str,
                     layers: usize|
     -> Result<()> {
        for i in 0..layers {
            let h = format!("{hf_prefix}.encoder.layers.{i}");
            let o = format!("{prefix}.resblocks.{i}");
            for kind in ["weight", "bias"] {
                let qkv = ["q_proj", "k_proj", "v_proj"]
                    .iter()
                    .map(|p| take(&format!("{h}.self_attn.{p}.{kind}")))
                    .collect::<Result<Vec<_>>>()?;
                out.insert(format!("{o}.attn.in_proj_{kind}"), Tensor::cat(&qkv, 0)?);
                for (from, to) in [
                    ("self_attn.out_proj", "attn.out_proj"),
                    ("layer_norm1", "ln_1"),
                    ("layer_norm2", "ln_2"),
                    ("mlp.fc1", "mlp.c_fc"),
                    ("mlp.fc2", "mlp.c_proj"),
                ] {
                    out.insert(
                        format!("{o}.{to}.{kind}"),
                        take(&format!("{h}.{from}.{kind}"))?,
                    );
                }
            }
        }
        Ok(())
    };
    tower(
        &mut out,
        "vision_model",
        "visual.transformer",
        config.vision.layers,
    )?;
    tower(&mut out, "text_model", "transformer", config.text.layers)?;
    let renames = [
        (
            "vision_model.embeddings.class_embedding",
            "visual.class_embedding",
        ),
        (
            "vision_model.embeddings.patch_embedding.weight",
            "visual.conv1.weight",
        ),
        (
            "vision_model.embeddings.position_embedding.weight",
            "visual.positional_embedding",
        ),
        ("vision_model.pre_layrnorm.weight", "visual.ln_pre.weight"),
        ("vision_model.pre_layrnorm.bias", "visual.ln_pre.bias"),
        (
            "vision_model.post_layernorm.weight",
            "visual.ln_post.weight",
        ),
        ("vision_model.post_layernorm.bias", "visual.ln_post.bias"),
        (
            "text_model.embeddings.token_embedding.weight",
            "token_embedding.weight",
        ),
        (
            "text_model.embeddings.position_embedding.weight",
            "positional_embedding",
        ),
        ("text_model.final_layer_norm.weight", "ln_final.weight"),
        ("text_model.final_layer_norm.bias", "ln_final.bias"),
        ("logit_scale", "logit_scale"),
    ];
    for (from, to) in renames {
        out.insert(to.to_string(), take(from)?);
    }
    out.insert(
        "visual.proj".into(),
        take("visual_projection.weight")?.t()?.contiguous()?,
    );
    out.insert(
        "text_projection".into(),
        take("text_projection.weight")?.t()?.contiguous()?,
    );
    Ok(out)
}

/// Writes a model as an OpenAI-named safetensors file with its architecture in the metadata
/// (atomically: a temporary file renamed into place).
pub fn save_clip(clip: &Clip, path: &Path, dtype: DType) -> Result<()> {
    let tensors = clip
        .state_dict()?
        .into_iter()
        .map(|(k, v)| Ok((k, v.to_dtype(dtype)?)))
        .collect::<Result<HashMap<_, _>>>()?;
    let metadata = HashMap::from([(
        CONFIG_METADATA_KEY.to_string(),
        serde_json::to_string(&clip.config)?,
    )]);
    let bytes = safetensors::serialize(&tensors, Some(metadata))
        .with_context(|| format!("serialising {}", path.display()))?;
    crate::io::write_atomic(path, &bytes)
}
