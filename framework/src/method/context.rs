//! Learned text context spliced into class prompts (§2.1–2.2 of the reference): the per-class
//! token layout CoOp-style methods share.

use super::learner::ModelEnv;
use crate::model::text::eot_positions;
use anyhow::{bail, Context, Result};
use candle_core::{Tensor, D};
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// Where the class-name tokens sit relative to the learned context.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassTokenPosition {
    /// `[SOS, ctx, class, ., EOT]` (CoOp's default).
    End,
    /// `[SOS, ctx[:n/2], class, ctx[n/2:], ., EOT]` (MVLPT's scripts).
    Middle,
    /// `[SOS, class, ctx, ., EOT]`.
    Front,
}

/// Tokenized class prompts `"<prefix> <class name>."` with the rows that learned context
/// replaces. The prefix is `"X X … X"` (one `X` per context token) or an initialisation
/// phrase; with `n_ctx = 0` it is a hand-written prompt and the text is fixed.
#[derive(Clone, Debug)]
pub struct ContextTemplate {
    /// Number of context tokens spliced after the start token.
    pub n_ctx: usize,
    /// Class-token position.
    pub position: ClassTokenPosition,
    /// Token ids per class, `(classes, len)` rows padded with 0.
    pub ids: Vec<Vec<u32>>,
    /// End-of-text position per class.
    pub eot: Vec<usize>,
    /// BPE tokens of each class name (no start/end tokens, no period): `name_lens` of the reference.
    pub name_lens: Vec<usize>,
    /// The reference's `token_prefix` buffer: start-token embeddings `(classes, 1, width)`.
    pub token_prefix: Tensor,
    /// The reference's `token_suffix` buffer: embeddings after the context,
    /// `(classes, len − 1 − n_ctx, width)`.
    pub token_suffix: Tensor,
}

impl ContextTemplate {
    /// Builds the prompts for `classnames` (underscores become spaces). `prefix` is the text
    /// before the class name; `cut_context` shortens the token length to the longest prompt
    /// (`TRAINER.CUT_CONTEXTLEN`: saves memory, numerically identical since the tower is causal).
    pub fn new(
        env: &ModelEnv<'_>,
        classnames: &[String],
        n_ctx: usize,
        prefix: &str,
        position: ClassTokenPosition,
        cut_context: bool,
    ) -> Result<Self> {
        if classnames.is_empty() {
            bail!("cannot build prompts for an empty label space");
        }
        let names: Vec<String> = classnames.iter().map(|n| n.replace('_', " ")).collect();
        let name_lens: Vec<usize> = names
            .iter()
            .map(|n| env.tokenizer.encode(n).len())
            .collect();
        let prompts: Vec<String> = names.iter().map(|n| format!("{prefix} {n}.")).collect();
        let context_length = env.clip.config.text.context_length;
        let len = if cut_context {
            let longest = prompts
                .iter()
                .map(|p| env.tokenizer.encode(p).len() + 2)
                .max()
                .unwrap_or(2);
            longest.min(context_length)
        } else {
            context_length
        };
        let ids = prompts
            .iter()
            .map(|p| env.tokenizer.tokenize(p, len, false))
            .collect::<Result<Vec<_>, _>>()
            .context("class prompt does not fit the text context")?;
        for (i, nl) in name_lens.iter().enumerate() {
            if 1 + n_ctx + nl >= len {
                bail!("class `{}`: {n_ctx} context tokens + {nl} name tokens exceed the {len}-token prompt", classnames[i]);
            }
        }
        let eot = eot_positions(&ids)?;
        let flat: Vec<u32> = ids.iter().flatten().copied().collect();
        let id_tensor = Tensor::from_vec(
            flat,
            (ids.len(), len),
            env.clip.text.token_embedding.device(),
        )?;
        let embedding = env.clip.text.embed(&id_tensor)?;
        let token_prefix = embedding.narrow(1, 0, 1)?;
        let token_suffix = embedding.narrow(1, 1 + n_ctx, len - 1 - n_ctx)?;
        Ok(Self {
            n_ctx,
            position,
            ids,
            eot,
            name_lens,
            token_prefix,
            token_suffix,
        })
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.ids.len()
    }

    /// Token length of every prompt.
    pub fn len(&self) -> usize {
        self.ids.first().map_or(0, Vec::len)
    }

    /// Whether the template holds no classes.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// End-of-text positions of `classes`.
    pub fn eot(&self, classes: Range<usize>) -> &[usize] {
        &self.eot[classes]
    }

    /// Prompt embeddings `(classes, len, width)` with `ctx` spliced in: `ctx` is `(n_ctx, width)`
    /// (shared), `(all classes, n_ctx, width)` (class-specific) or, for image-conditioned
    /// context, `(n_ctx, width)` per call. Gradients flow to `ctx` only.
    pub fn embeddings(&self, ctx: Option<&Tensor>, classes: Range<usize>) -> Result<Tensor> {
        let n = classes.len();
        let prefix = self.token_prefix.narrow(0, classes.start, n)?;
        let suffix = self.token_suffix.narrow(0, classes.start, n)?;
        let Some(ctx) = ctx.filter(|_| self.n_ctx > 0) else {
            return Ok(Tensor::cat(&[&prefix, &suffix], 1)?);
        };
        let width = suffix.dim(D::Minus1)?;
        let ctx = match ctx.rank() {
            2 => ctx.unsqueeze(0)?.broadcast_as((n, self.n_ctx, width))?,
            3 => ctx.narrow(0, classes.start, n)?,
            r => bail!("context must be (n_ctx, width) or (classes, n_ctx, width), got rank {r}"),
        };
        let ctx = ctx.to_dtype(suffix.dtype())?;
        let end_layout = Tensor::cat(&[&prefix, &ctx, &suffix], 1)?;
        if self.position == ClassTokenPosition::End {
            return Ok(end_layout);
        }
        let len = self.len();
        let rows: Vec<u32> = classes
            .clone()
            .enumerate()
            .flat_map(|(local, class)| {
                self.row_order(self.name_lens[class])
                    .into_iter()
                    .map(move |r| (local * len + r) as u32)
            })
            .collect();
        let rows = Tensor::from_vec(rows, n * len, end_layout.device())?;
        Ok(end_layout
            .reshape((n * len, width))?
            .index_select(&rows, 0)?
            .reshape((n, len, width))?)
    }

    /// For one class with `name_len` name tokens: which row of the end layout
    /// `[SOS, ctx, name, rest]` goes to each output position.
    fn row_order(&self, name_len: usize) -> Vec<usize> {
        let (n_ctx, len) = (self.n_ctx, self.len());
        let ctx = |r: Range<usize>| r.map(|i| 1 + i);
        let name = (1 + n_ctx)..(1 + n_ctx + name_len);
        let rest = (1 + n_ctx + name_len)..len;
        let mut order = vec![0];
        match self.position {
            ClassTokenPosition::End => order.extend(1..len),
            ClassTokenPosition::Middle => {
                let half = n_ctx / 2;
                order.extend(ctx(0..half));
                order.extend(name);
                order.extend(ctx(half..n_ctx));
                order.extend(rest);
            }
            ClassTokenPosition::Front => {
                order.extend(name);
                order.extend(ctx(0..n_ctx));
                order.extend(rest);
            }
        }
        order
    }
}
