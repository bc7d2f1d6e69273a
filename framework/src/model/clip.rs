//! The whole CLIP model: both towers and the logit scale, built from a state dict in OpenAI's
//! tensor naming (the canonical naming inside mvlpt; Hugging Face checkpoints are renamed to it
//! on load, see [`super::weights`]).

use super::config::ClipConfig;
use super::layers::{LayerNorm, Linear, ResidualAttentionBlock, Transformer};
use super::text::TextEncoder;
use super::vision::ImageEncoder;
use super::weights::TensorMap;
use crate::rng;
use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;

/// A frozen CLIP model.
#[derive(Clone, Debug)]
pub struct Clip {
    /// Architecture.
    pub config: ClipConfig,
    /// Text tower.
    pub text: TextEncoder,
    /// Image tower.
    pub vision: ImageEncoder,
    /// `log` of the logit temperature (a scalar); logits use `exp(logit_scale)`.
    pub logit_scale: Tensor,
}

impl Clip {
    /// CLIP's logit head, shared by every prompt kind: `scale · image · (text / ‖text‖)ᵀ` for
    /// L2-normalised image features `(batch, embed_dim)` and text features `(classes,
    /// embed_dim)` (normalised here), giving `(batch, classes)`. `scale` is
    /// [`Clip::logit_scale_exp`], read once by the caller.
    pub fn head_logits(
        normalized_image: &Tensor,
        text_features: &Tensor,
        scale: f64,
    ) -> candle_core::Result<Tensor> {
        normalized_image.matmul(&l2_normalize(text_features)?.t()?)? * scale
    }

    /// Builds the model from OpenAI-named tensors, checking every name and shape. Tensors are
    /// converted to `dtype`; LayerNorm is still computed in f32 for half dtypes, as CLIP does.
    pub fn from_tensors(
        config: &ClipConfig,
        tensors: &mut TensorMap,
        dtype: DType,
    ) -> Result<Self> {
        config.validate()?;
        let (v, t, e) = (&config.vision, &config.text, config.embed_dim);
        let p = v.patch_size;
        let conv = tensors.take("visual.conv1.weight", &[v.width, 3, p, p])?;
        let vision = ImageEncoder {
            config: v.clone(),
            patch_embedding: Linear::new(
                conv.reshape((v.width, 3 * p * p))?.to_dtype(dtype)?,
                None,
            )?,
            class_embedding: tensors
                .take("visual.class_embedding", &[v.width])?
                .to_dtype(dtype)?,
            positional_embedding: tensors
                .take("visual.positional_embedding", &[v.tokens(), v.width])?
                .to_dtype(dtype)?,
            ln_pre: layer_norm(tensors, "visual.ln_pre", v.width, dtype)?,
            transformer: transformer(
                tensors,
                "visual.transformer",
                v.width,
                v.layers,
                v.heads,
                config,
                dtype,
            )?,
            ln_post: layer_norm(tensors, "visual.ln_post", v.width, dtype)?,
            projection: transposed_projection(tensors, "visual.proj", v.width, e, dtype)?,
        };
        let text = TextEncoder {
            config: t.clone(),
            token_embedding: tensors
                .take("token_embedding.weight", &[t.vocab_size, t.width])?
                .to_dtype(dtype)?,
            positional_embedding: tensors
                .take("positional_embedding", &[t.context_length, t.width])?
                .to_dtype(dtype)?,
            transformer: transformer(
                tensors,
                "transformer",
                t.width,
                t.layers,
                t.heads,
                config,
                dtype,
            )?,
            ln_final: layer_norm(tensors, "ln_final", t.width, dtype)?,
            projection: transposed_projection(tensors, "text_projection", t.width, e, dtype)?,
            cut_after_eot: true,
        };
        let logit_scale = tensors.take("logit_scale", &[])?.to_dtype(DType::F32)?;
        Ok(Self {
            config: config.clone(),
            text,
            vision,
            logit_scale,
        })
    }

    /// A randomly initialised model (CLIP's own init scheme, from our seeded generator), for
    /// benchmarks, tests and pretraining from scratch.
    pub fn random(config: &ClipConfig, seed: u64, device: &Device, dtype: DType) -> Result<Self> {
        let mut tensors = TensorMap::new(random_state_dict(config, seed, device)?, "random init");
        Self::from_tensors(config, &mut tensors, dtype)
    }

    /// `exp(logit_scale)` as an f64.
    pub fn logit_scale_exp(&self) -> Result<f64> {
        Ok(f64::from(self.logit_scale.to_scalar::<f32>()?).exp())
    }

    /// Image features `(batch, embed_dim)` of normalised images, without prompts.
    pub fn encode_image(&self, images: &Tensor) -> Result<Tensor> {
        Ok(self.vision.forward(images, None)?)
    }

    /// Text features `(n, embed_dim)` of tokenized texts.
    pub fn encode_text(&self, ids: &[Vec<u32>]) -> Result<Tensor> {
        Ok(self.text.encode_ids(ids)?)
    }

    /// `exp(logit_scale) · norm(image) · norm(text)ᵀ`: `(batch, n)` logits.
    pub fn logits(&self, image_features: &Tensor, text_features: &Tensor) -> Result<Tensor> {
        let img = l2_normalize(image_features)?;
        let txt = l2_normalize(text_features)?;
        Ok((img.matmul(&txt.t()?)? * self.logit_scale_exp()?)?)
    }

    /// The state dict in OpenAI naming (the inverse of [`Clip::from_tensors`]), for saving.
    pub fn state_dict(&self) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        let v = &self.vision;
        let p = v.config.patch_size;
        out.insert(
            "visual.conv1.weight".into(),
            v.patch_embedding
                .weight()
                .reshape((v.config.width, 3, p, p))?,
        );
        out.insert("visual.class_embedding".into(), v.class_embedding.clone());
        out.insert(
            "visual.positional_embedding".into(),
            v.positional_embedding.clone(),
        );
        put_layer_norm(&mut out, "visual.ln_pre", &v.ln_pre);
        put_transformer(&mut out, "visual.transformer", &v.transformer)?;
        put_layer_norm(&mut out, "visual.ln_post", &v.ln_post);
        out.insert(
            "visual.proj".into(),
            v.projection.weight().t()?.contiguous()?,
        );
        let t = &self.text;
        out.insert("token_embedding.weight".into(), t.token_embedding.clone());
        out.insert(
            "positional_embedding".into(),
            t.positional_embedding.clone(),
        );
        put_transformer(&mut out, "transformer", &t.transformer)?;
        put_layer_norm(&mut out, "ln_final", &t.ln_final);
        out.insert(
            "text_projection".into(),
            t.projection.weight().t()?.contiguous()?,
        );
        out.insert("logit_scale".into(), self.logit_scale.clone());
        Ok(out)
    }
}

/// Divides each row by its L2 norm.
pub fn l2_normalize(x: &Tensor) -> candle_core::Result<Tensor> {
    x.broadcast_div(&x.sqr()?.sum_keepdim(candle_core::D::Minus1)?.sqrt()?)
}

fn layer_norm(
    tensors: &mut TensorMap,
    prefix: &str,
    width: usize,
    dtype: DType,
) -> Result<LayerNorm> {
    Ok(LayerNorm {
        weight: tensors
            .take(&format!("{prefix}.weight"), &[width])?
            .to_dtype(dtype)?,
        bias: tensors
            .take(&format!("{prefix}.bias"), &[width])?
            .to_dtype(dtype)?,
    })
}

fn linear(
    tensors: &mut TensorMap,
    prefix: &str,
    out: usize,
    inp: usize,
    dtype: DType,
) -> Result<Linear> {
    Ok(Linear::new(
        tensors
            .take(&format!("{prefix}.weight"), &[out, inp])?
            .to_dtype(dtype)?,
        Some(
            tensors
                .take(&format!("{prefix}.bias"), &[out])?
                .to_dtype(dtype)?,
        ),
    )?)
}

/// OpenAI stores projections as `(width, embed)` matrices used as `x @ proj`; we keep them as
/// linear weights `(embed, width)`.
fn transposed_projection(
    tensors: &mut TensorMap,
    name: &str,
    width: usize,
    embed: usize,
    dtype: DType,
) -> Result<Linear> {
    let proj = tensors.take(name, &[width, embed])?;
    Ok(Linear::new(proj.t()?.to_dtype(dtype)?, None)?)
}

fn transformer(
    tensors: &mut TensorMap,
    prefix: &str,
    width: usize,
    layers: usize,
    heads: usize,
    config: &ClipConfig,
    dtype: DType,
) -> Result<Transformer> {
    let blocks = (0..layers)
        .map(|i| {
            let b = format!("{prefix}.resblocks.{i}");
            Ok(ResidualAttentionBlock {
                ln_1: layer_norm(tensors, &format!("{b}.ln_1"), width, dtype)?,
                attn_in: Linear::new(
                    tensors
                        .take(&format!("{b}.attn.in_proj_weight"), &[3 * width, width])?
                        .to_dtype(dtype)?,
                    Some(
                        tensors
                            .take(&format!("{b}.attn.in_proj_bias"), &[3 * width])?
                            .to_dtype(dtype)?,
                    ),
                )?,
                attn_out: linear(tensors, &format!("{b}.attn.out_proj"), width, width, dtype)?,
                ln_2: layer_norm(tensors, &format!("{b}.ln_2"), width, dtype)?,
                mlp_fc: linear(tensors, &format!("{b}.mlp.c_fc"), 4 * width, width, dtype)?,
                mlp_proj: linear(tensors, &format!("{b}.mlp.c_proj"), width, 4 * width, dtype)?,
                heads,
                activation: config.activation,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Transformer { blocks })
}

fn put_layer_norm(out: &mut HashMap<String, Tensor>, prefix: &str, ln: &LayerNorm) {
    out.insert(format!("{prefix}.weight"), ln.weight.clone());
    out.insert(format!("{prefix}.bias"), ln.bias.clone());
}

fn put_linear(
    out: &mut HashMap<String, Tensor>,
    weight: String,
    bias: String,
    l: &Linear,
) -> Result<()> {
    out.insert(weight, l.weight().contiguous()?);
    if let Some(b) = l.bias() {
        out.insert(bias, b.clone());
    }
    Ok(())
}

fn put_transformer(out: &mut HashMap<String, Tensor>, prefix: &str, t: &Transformer) -> Result<()> {
    for (i, block) in t.blocks.iter().enumerate() {
        let b = format!("{prefix}.resblocks.{i}");
        put_layer_norm(out, &format!("{b}.ln_1"), &block.ln_1);
        put_linear(
            out,
            format!("{b}.attn.in_proj_weight"),
            format!("{b}.attn.in_proj_bias"),
            &block.attn_in,
        )?;
        put_linear(
            out,
            format!("{b}.attn.out_proj.weight"),
            format!("{b}.attn.out_proj.bias"),
            &block.attn_out,
        )?;
        put_layer_norm(out, &format!("{b}.ln_2"), &block.ln_2);
        put_linear(
            out,
            format!("{b}.mlp.c_fc.weight"),
            format!("{b}.mlp.c_fc.bias"),
            &block.mlp_fc,
        )?;
        put_linear(
            out,
            format!("{b}.mlp.c_proj.weight"),
            format!("{b}.mlp.c_proj.bias"),
            &block.mlp_proj,
        )?;
    }
    Ok(())
}

/// CLIP's initialisation (OpenAI `initialize_parameters`): normal embeddings (std 0.02 tokens,
/// 0.01 positions), attention/MLP weights scaled by width and depth, zero biases, LayerNorm
/// γ = 1, β = 0, logit scale ln(1/0.07).
pub fn random_state_dict(
    config: &ClipConfig,
    seed: u64,
    device: &Device,
) -> Result<HashMap<String, Tensor>> {
    let mut r = rng::seeded(seed);
    let mut out = HashMap::new();
    let (v, t, e) = (&config.vision, &config.text, config.embed_dim);
    let mut normal =
        |shape: &[usize], std: f64| rng::normal(shape, 0.0, std as f32, &mut r, device);
    let mut blocks = |out: &mut HashMap<String, Tensor>,
                      prefix: &str,
                      width: usize,
                      layers: usize|
     -> Result<()> {
        let w = width as f64;
        let proj_std = w.powf(-0.5) * (2.0 * layers as f64).powf(-0.5);
        let attn_std = w.powf(-0.5);
        let fc_std = (2.0 * w).powf(-0.5);
        for i in 0..layers {
            let b = format!("{prefix}.resblocks.{i}");
            out.insert(
                format!("{b}.attn.in_proj_weight"),
                normal(&[3 * width, width], attn_std)?,
            );
            out.insert(
                format!("{b}.attn.in_proj_bias"),
                Tensor::zeros(3 * width, DType::F32, device)?,
            );
            out.insert(
                format!("{b}.attn.out_proj.weight"),
                normal(&[width, width], proj_std)?,
            );
            out.insert(
                format!("{b}.attn.out_proj.bias"),
                Tensor::zeros(width, DType::F32, device)?,
            );
            out.insert(
                format!("{b}.mlp.c_fc.weight"),
                normal(&[4 * width, width], fc_std)?,
            );
            out.insert(
                format!("{b}.mlp.c_fc.bias"),
                Tensor::zeros(4 * width, DType::F32, device)?,
            );
            out.insert(
                format!("{b}.mlp.c_proj.weight"),
                normal(&[width, 4 * width], proj_std)?,
            );
            out.insert(
                format!("{b}.mlp.c_proj.bias"),
                Tensor::zeros(width, DType::F32, device)?,
            );
            for ln in ["ln_1", "ln_2"] {
                out.insert(
                    format!("{b}.{ln}.weight"),
                    Tensor::ones(width, DType::F32, device)?,
                );
                out.insert(
                    format!("{b}.{ln}.bias"),
                    Tensor::zeros(width, DType::F32, device)?,
                );
            }
        }
        Ok(())
    };
    blocks(&mut out, "visual.transformer", v.width, v.layers)?;
    blocks(&mut out, "transformer", t.width, t.layers)?;
    let mut normal =
        |shape: &[usize], std: f64| rng::normal(shape, 0.0, std as f32, &mut r, device);
    let vs = (v.width as f64).powf(-0.5);
    let p = v.patch_size;
    out.insert(
        "visual.conv1.weight".into(),
        normal(&[v.width, 3, p, p], (3.0 * (p * p) as f64).powf(-0.5))?,
    );
    out.insert("visual.class_embedding".into(), normal(&[v.width], vs)?);
    out.insert(
        "visual.positional_embedding".into(),
        normal(&[v.tokens(), v.width], vs)?,
    );
    out.insert("visual.proj".into(), normal(&[v.width, e], vs)?);
    out.insert(
        "token_embedding.weight".into(),
        normal(&[t.vocab_size, t.width], 0.02)?,
    );
    out.insert(
        "positional_embedding".into(),
        normal(&[t.context_length, t.width], 0.01)?,
    );
    out.insert(
        "text_projection".into(),
        normal(&[t.width, e], (t.width as f64).powf(-0.5))?,
    );
    for (name, width) in [
        ("visual.ln_pre", v.width),
        ("visual.ln_post", v.width),
        ("ln_final", t.width),
    ] {
        out.insert(
            format!("{name}.weight"),
            Tensor::ones(width, DType::F32, device)?,
        );
        out.insert(
            format!("{name}.bias"),
            Tensor::zeros(width, DType::F32, device)?,
        );
    }
    out.insert(
        "logit_scale".into(),
        Tensor::new((1.0f32 / 0.07).ln(), device)?,
    );
    Ok(out)
}
