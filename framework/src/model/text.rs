//! The text tower. It takes token *embeddings* rather than ids so that prompt methods can
//! splice learned context vectors between the start token and the class name (CoOp), and it
//! pools each sequence at its end-of-text position.

use super::config::TextConfig;
use super::layers::{DeepPrompts, LayerNorm, Linear, Transformer};
use crate::ops::AttentionMask;
use candle_core::{Result, Tensor};

/// CLIP's text encoder: token + positional embeddings → causal transformer → `ln_final` at the
/// end-of-text token → `text_projection`.
#[derive(Clone, Debug)]
pub struct TextEncoder {
    /// Architecture.
    pub config: TextConfig,
    /// Token embedding table `(vocab, width)`.
    pub token_embedding: Tensor,
    /// Learned positions `(context_length, width)`.
    pub positional_embedding: Tensor,
    /// The residual blocks.
    pub transformer: Transformer,
    /// Final LayerNorm.
    pub ln_final: LayerNorm,
    /// Projection into the joint space, stored as a linear weight `(embed_dim, width)`.
    pub projection: Linear,
    /// Cut each batch after its last end-of-text position before the blocks (default `true`).
    /// The result is the same either way (attention is causal); `false` runs the full sequence,
    /// as PyTorch's CLIP does, for like-for-like benchmarks.
    pub cut_after_eot: bool,
}

impl TextEncoder {
    /// Embeds token ids `(n, len)` (u32) into `(n, len, width)` in the model's dtype.
    pub fn embed(&self, ids: &Tensor) -> Result<Tensor> {
        let (n, len) = ids.dims2()?;
        let flat = self.token_embedding.index_select(&ids.flatten_all()?, 0)?;
        flat.reshape((n, len, self.config.width))
    }

    /// Encodes token embeddings `(n, len, width)` with end-of-text positions `eot[i]`, returning
    /// projected features `(n, embed_dim)` (not normalised).
    ///
    /// Because attention is causal, no position after the last end-of-text token can influence
    /// a pooled feature, so the sequence is cut there first: an exact saving (prompts of a few
    /// words use a fraction of the 77 positions); [`TextEncoder::cut_after_eot`] turns it off. `deep` replaces rows `[1, 1 + n)` before the
    /// given layers (MaPLe-style deep text prompts).
    pub fn forward(
        &self,
        embeddings: &Tensor,
        eot: &[usize],
        deep: &DeepPrompts,
    ) -> Result<Tensor> {
        let (n, len, width) = embeddings.dims3()?;
        if eot.len() != n {
            candle_core::bail!(
                "text encoder: {n} sequences but {} end-of-text positions",
                eot.len()
            );
        }
        if len > self.config.context_length {
            candle_core::bail!(
                "text encoder: sequence length {len} exceeds the context length {}",
                self.config.context_length
            );
        }
        let last_eot = eot.iter().copied().max().unwrap_or(0);
        if last_eot >= len {
            candle_core::bail!(
                "text encoder: end-of-text position {last_eot} is outside sequences of length {len}"
            );
        }
        let used = if self.cut_after_eot {
            last_eot + 1
        } else {
            len
        };
        let x = embeddings.narrow(1, 0, used)?;
        let positions = self
            .positional_embedding
            .narrow(0, 0, used)?
            .to_dtype(x.dtype())?;
        let x = x.broadcast_add(&positions)?;
        let x = self.transformer.forward(&x, AttentionMask::Causal, deep)?;
        // Gather the end-of-text rows first: LayerNorm and projection act per row.
        let rows: Vec<u32> = eot
            .iter()
            .enumerate()
            .map(|(i, &p)| (i * used + p) as u32)
            .collect();
        let rows = Tensor::from_vec(rows, n, x.device())?;
        let pooled = x.reshape((n * used, width))?.index_select(&rows, 0)?;
        self.projection.forward(&self.ln_final.forward(&pooled)?)
    }

    /// Encodes tokenized texts (rows of ids padded with 0, as [`ClipTokenizer::tokenize`]
    /// returns them), pooling at each row's end-of-text token.
    ///
    /// [`ClipTokenizer::tokenize`]: super::tokenizer::ClipTokenizer::tokenize
    pub fn encode_ids(&self, ids: &[Vec<u32>]) -> Result<Tensor> {
        let eot = eot_positions(ids)?;
        let len = ids.first().map_or(0, Vec::len);
        let flat: Vec<u32> = ids.iter().flatten().copied().collect();
        let ids = Tensor::from_vec(flat, (eot.len(), len), self.token_embedding.device())?;
        self.forward(&self.embed(&ids)?, &eot, &DeepPrompts::none())
    }
}

/// End-of-text position of each row: the argmax of the ids, as CLIP pools (the end-of-text
/// token has the largest id of the vocabulary).
pub fn eot_positions(ids: &[Vec<u32>]) -> Result<Vec<usize>> {
    ids.iter()
        .enumerate()
        .map(|(i, row)| {
            // `rev` + `max_by_key` (last maximum) = the first maximum, like torch.argmax.
            row.iter()
                .enumerate()
                .rev()
                .max_by_key(|(_, &v)| v)
                .map(|(pos, _)| pos)
                .ok_or_else(|| candle_core::Error::Msg(format!("token row {i} is empty")))
        })
        .collect()
}
