//! CLIP architecture descriptions: the released presets, tiny test sizes, and inference of an
//! architecture from a checkpoint's tensor shapes.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// The MLP activation of the transformer blocks (defined with its kernels in `ops`).
pub use crate::ops::Activation;

/// The image tower (a ViT).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisionConfig {
    /// Input resolution (square), e.g. 224.
    pub image_size: usize,
    /// Patch size of the patchifying convolution, e.g. 16.
    pub patch_size: usize,
    /// Hidden width, e.g. 768.
    pub width: usize,
    /// Number of residual attention blocks.
    pub layers: usize,
    /// Attention heads.
    pub heads: usize,
}

impl VisionConfig {
    /// Patches per side.
    pub fn grid(&self) -> usize {
        self.image_size / self.patch_size
    }
    /// Tokens per image without prompts: patches plus the class token.
    pub fn tokens(&self) -> usize {
        self.grid() * self.grid() + 1
    }
}

/// The text tower (a causal transformer over BPE tokens).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextConfig {
    /// Maximum sequence length (77 for released models).
    pub context_length: usize,
    /// Vocabulary size (49408 for the CLIP BPE).
    pub vocab_size: usize,
    /// Hidden width, e.g. 512.
    pub width: usize,
    /// Number of residual attention blocks.
    pub layers: usize,
    /// Attention heads.
    pub heads: usize,
}

/// A whole CLIP model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClipConfig {
    /// Dimension of the joint embedding space (the projections' output).
    pub embed_dim: usize,
    /// Image tower.
    pub vision: VisionConfig,
    /// Text tower.
    pub text: TextConfig,
    /// MLP activation of both towers.
    #[serde(default)]
    pub activation: Activation,
}

/// Names accepted by [`ClipConfig::preset`].
pub const PRESETS: &[&str] = &["ViT-B/32", "ViT-B/16", "ViT-L/14", "ViT-L/14@336px", "tiny"];

impl ClipConfig {
    /// A released OpenAI architecture (`ViT-B/32`, `ViT-B/16`, `ViT-L/14`, `ViT-L/14@336px`) or
    /// `tiny`, a small model for tests (two layers per tower, width 64).
    pub fn preset(name: &str) -> Result<Self> {
        let text_b = TextConfig {
            context_length: 77,
            vocab_size: 49408,
            width: 512,
            layers: 12,
            heads: 8,
        };
        let text_l = TextConfig {
            width: 768,
            heads: 12,
            ..text_b.clone()
        };
        let vit = |image_size, patch_size, width, layers| VisionConfig {
            image_size,
            patch_size,
            width,
            layers,
            heads: width / 64,
        };
        let (embed_dim, vision, text) = match name {
            "ViT-B/32" => (512, vit(224, 32, 768, 12), text_b),
            "ViT-B/16" => (512, vit(224, 16, 768, 12), text_b),
            "ViT-L/14" => (768, vit(224, 14, 1024, 24), text_l),
            "ViT-L/14@336px" => (768, vit(336, 14, 1024, 24), text_l),
            "tiny" => (
                32,
                VisionConfig {
                    image_size: 32,
                    patch_size: 8,
                    width: 64,
                    layers: 2,
                    heads: 2,
                },
                TextConfig {
                    context_length: 77,
                    vocab_size: 49408,
                    width: 64,
                    layers: 2,
                    heads: 2,
                },
            ),
            other => bail!(
                "unknown CLIP preset {other:?}; known presets: {}",
                PRESETS.join(", ")
            ),
        };
        Ok(Self {
            embed_dim,
            vision,
            text,
            activation: Activation::QuickGelu,
        })
    }

    /// Infers the architecture of an OpenAI/open_clip state dict from its tensor shapes, the way
    /// OpenAI's `build_model` does (heads = width / 64 unless `head_width` says otherwise).
    pub fn infer_openai(
        shape_of: &dyn Fn(&str) -> Option<Vec<usize>>,
        names: &[String],
        head_width: usize,
    ) -> Result<Self> {
        let dims = |name: &str| {
            shape_of(name).with_context(|| format!("checkpoint has no tensor `{name}`"))
        };
        let count_layers = |prefix: &str| {
            names
                .iter()
                .filter(|n| n.starts_with(prefix) && n.ends_with(".attn.in_proj_weight"))
                .count()
        };
        let conv = dims("visual.conv1.weight")?;
        let (width, patch_size) = (conv[0], conv[conv.len() - 1]);
        let positions = dims("visual.positional_embedding")?[0];
        let grid = ((positions - 1) as f64).sqrt().round() as usize;
        if grid * grid + 1 != positions {
            bail!("visual.positional_embedding has {positions} rows, not a square grid plus a class token");
        }
        let text_width = dims("ln_final.weight")?[0];
        let vision = VisionConfig {
            image_size: grid * patch_size,
            patch_size,
            width,
            layers: count_layers("visual.transformer.resblocks."),
            heads: (width / head_width).max(1),
        };
        let text = TextConfig {
            context_length: dims("positional_embedding")?[0],
            vocab_size: dims("token_embedding.weight")?[0],
            width: text_width,
            layers: count_layers("transformer.resblocks."),
            heads: (text_width / head_width).max(1),
        };
        let config = Self {
            embed_dim: dims("text_projection")?[1],
            vision,
            text,
            activation: Activation::QuickGelu,
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks the invariants the towers rely on (divisibility of widths by heads, sizes > 0).
    pub fn validate(&self) -> Result<()> {
        let v = &self.vision;
        let t = &self.text;
        if v.layers == 0 || t.layers == 0 {
            bail!(
                "CLIP config has a tower without layers: vision {}, text {}",
                v.layers,
                t.layers
            );
        }
        if v.heads == 0 || !v.width.is_multiple_of(v.heads) {
            bail!(
                "vision width {} is not divisible by {} heads",
                v.width,
                v.heads
            );
        }
        if t.heads == 0 || !t.width.is_multiple_of(t.heads) {
            bail!(
                "text width {} is not divisible by {} heads",
                t.width,
                t.heads
            );
        }
        if v.patch_size == 0 || !v.image_size.is_multiple_of(v.patch_size) {
            bail!(
                "image size {} is not a multiple of patch size {}",
                v.image_size,
                v.patch_size
            );
        }
        Ok(())
    }

    /// Number of parameters of the whole model.
    pub fn parameter_count(&self) -> usize {
        let block = |w: usize| {
            2 * 2 * w + (3 * w * w + 3 * w) + (w * w + w) + (4 * w * w + 4 * w) + (4 * w * w + w)
        };
        let v = &self.vision;
        let t = &self.text;
        let vision = v.width * 3 * v.patch_size * v.patch_size
            + v.width
            + v.tokens() * v.width
            + 4 * v.width
            + v.layers * block(v.width)
            + v.width * self.embed_dim;
        let text = t.vocab_size * t.width
            + t.context_length * t.width
            + t.layers * block(t.width)
            + 2 * t.width
            + t.width * self.embed_dim;
        vision + text + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vit_b16_matches_the_reference_facts() {
        // §1: 197 tokens, width 768, 12 layers, 12 heads, output 512; text 512/8/12/77/49408.
        let c = ClipConfig::preset("ViT-B/16").unwrap();
        assert_eq!(c.vision.tokens(), 197);
        assert_eq!(
            (c.vision.width, c.vision.layers, c.vision.heads, c.embed_dim),
            (768, 12, 12, 512)
        );
        assert_eq!(
            (
                c.text.width,
                c.text.heads,
                c.text.layers,
                c.text.context_length
            ),
            (512, 8, 12, 77)
        );
        assert_eq!(ClipConfig::preset("ViT-B/32").unwrap().vision.tokens(), 50);
        let l = ClipConfig::preset("ViT-L/14").unwrap();
        assert_eq!(
            (
                l.vision.width,
                l.vision.layers,
                l.vision.heads,
                l.embed_dim,
                l.text.width
            ),
            (1024, 24, 16, 768, 768)
        );
        // Parameter counts of open_clip's `create_model("ViT-B-16" / "ViT-B-32")` state dicts
        // (open_clip_torch 3.3.0, summed over every tensor, logit_scale included).
        assert_eq!(c.parameter_count(), 149_620_737);
        assert_eq!(
            ClipConfig::preset("ViT-B/32").unwrap().parameter_count(),
            151_277_313
        );
    }

    #[test]
    fn unknown_preset_lists_the_known_ones() {
        let err = ClipConfig::preset("ViT-H/14").unwrap_err().to_string();
        assert!(
            err.contains("ViT-B/16") && err.contains("ViT-H/14"),
            "{err}"
        );
    }
}
