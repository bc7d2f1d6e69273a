//! The image tower (ViT) with visual-prompt hooks: shallow prompt tokens inserted into the input
//! sequence and per-layer deep replacements, at the position MVLPT/VPT uses (between the class
//! token and the patches, after `ln_pre`) or MaPLe/IVLP's (appended after the patches, before
//! `ln_pre`).

use super::config::VisionConfig;
use super::layers::{insert_rows, DeepPrompts, LayerNorm, Linear, PromptRows, Transformer};
use crate::ops::AttentionMask;
use candle_core::{Result, Tensor};

/// Where visual prompt tokens enter the image tower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VisualPromptPlacement {
    /// MVLPT / VPT (§2.4): after `ln_pre`, between the class token and the patches; no positional
    /// embedding or LayerNorm is applied to the prompts. Deep prompts replace rows `[1, 1 + n)`.
    AfterClassToken,
    /// MaPLe / IVLP: appended after the patch tokens before `ln_pre` (so LayerNorm applies to
    /// them). Deep prompts replace the last `n` rows.
    AppendedBeforeLnPre,
}

/// Prompt tokens for the image tower.
#[derive(Clone, Debug)]
pub struct VisualPrompts {
    /// Where the tokens go.
    pub placement: VisualPromptPlacement,
    /// Tokens inserted into the input sequence, `(n, width)` or `(batch, n, width)`.
    pub shallow: Option<Tensor>,
    /// Per-layer replacements (`deep[i]` before block `i`; entry 0 is normally `None`).
    pub deep: Vec<Option<Tensor>>,
}

/// CLIP's `VisionTransformer`: patchify → class token → positions → `ln_pre` → blocks →
/// `ln_post` on the class token → projection.
#[derive(Clone, Debug)]
pub struct ImageEncoder {
    /// Architecture.
    pub config: VisionConfig,
    /// The patchifying convolution as a linear map over flattened `(3, p, p)` patches,
    /// weight `(width, 3·p·p)`, no bias.
    pub patch_embedding: Linear,
    /// Class token `(width,)`.
    pub class_embedding: Tensor,
    /// Learned positions `(tokens, width)`.
    pub positional_embedding: Tensor,
    /// LayerNorm before the blocks.
    pub ln_pre: LayerNorm,
    /// The residual blocks.
    pub transformer: Transformer,
    /// LayerNorm on the class token output.
    pub ln_post: LayerNorm,
    /// Projection into the joint space, a linear weight `(embed_dim, width)`.
    pub projection: Linear,
}

impl ImageEncoder {
    /// Encodes normalised images `(batch, 3, size, size)` into `(batch, embed_dim)` features
    /// (not normalised), optionally with visual prompts.
    pub fn forward(&self, images: &Tensor, prompts: Option<&VisualPrompts>) -> Result<Tensor> {
        let x = self.embed_patches(images)?;
        let (batch, _, width) = x.dims3()?;
        let class = self
            .class_embedding
            .reshape((1, 1, width))?
            .broadcast_as((batch, 1, width))?;
        let x = Tensor::cat(&[&class.to_dtype(x.dtype())?, &x], 1)?;
        let x = x.broadcast_add(&self.positional_embedding.to_dtype(x.dtype())?)?;
        let no_deep = DeepPrompts::none();
        let (x, deep) = match prompts {
            None => (self.ln_pre.forward(&x)?, no_deep),
            Some(p) => match p.placement {
                VisualPromptPlacement::AfterClassToken => {
                    let x = self.ln_pre.forward(&x)?;
                    let x = match &p.shallow {
                        Some(s) => insert_rows(&x, 1, s)?,
                        None => x,
                    };
                    (
                        x,
                        DeepPrompts {
                            rows: PromptRows::From(1),
                            layers: p.deep.clone(),
                        },
                    )
                }
                VisualPromptPlacement::AppendedBeforeLnPre => {
                    let x = match &p.shallow {
                        Some(s) => insert_rows(&x, x.dim(1)?, s)?,
                        None => x,
                    };
                    (
                        self.ln_pre.forward(&x)?,
                        DeepPrompts {
                            rows: PromptRows::Last,
                            layers: p.deep.clone(),
                        },
                    )
                }
            },
        };
        let x = self.transformer.forward(&x, AttentionMask::None, &deep)?;
        let class_out = x.narrow(1, 0, 1)?.squeeze(1)?;
        self.projection.forward(&self.ln_post.forward(&class_out)?)
    }

    /// Cuts images into patches and embeds them: `(batch, 3, H, W)` → `(batch, patches, width)`.
    fn embed_patches(&self, images: &Tensor) -> Result<Tensor> {
        let (batch, channels, h, w) = images.dims4()?;
        let p = self.config.patch_size;
        if channels != 3 || h != self.config.image_size || w != self.config.image_size {
            candle_core::bail!(
                "image tower expects (batch, 3, {s}, {s}) images, got {:?}",
                images.dims(),
                s = self.config.image_size
            );
        }
        let (gh, gw) = (h / p, w / p);
        let dtype = self.patch_embedding.weight().dtype();
        let patches = images
            .to_dtype(dtype)?
            .reshape((batch, 3, gh, p, gw, p))?
            .permute((0, 2, 4, 1, 3, 5))?
            .contiguous()?
            .reshape((batch, gh * gw, 3 * p * p))?;
        self.patch_embedding.forward(&patches)
    }
}
