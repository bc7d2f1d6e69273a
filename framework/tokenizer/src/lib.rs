//! The CLIP byte-pair-encoding tokenizer, bit-identical to OpenAI's `clip.simple_tokenizer`
//! (open_clip's `SimpleTokenizer` with its default `clean="lower"` is the same algorithm,
//! apart from the spelling of its special tokens).
//!
//! Encoding a text takes the reference's steps, each reproduced with Python's semantics:
//!
//! 1. `ftfy.fix_text` (ftfy 6.3, default options, reimplemented in a private module): HTML
//!    entities, mojibake repair, ligatures, character width, quotes, line breaks, control
//!    characters, NFC.
//! 2. `html.unescape` twice (the full HTML5 entity table and Python's numeric rules).
//! 3. `str.strip()`, runs of whitespace to one space, `str.strip()`, `str.lower()`.
//! 4. The CLIP split pattern (special tokens, contractions, letter runs, single digits,
//!    symbol runs; `regex` module, IGNORECASE).
//! 5. Each piece's UTF-8 bytes through CLIP's byte-to-symbol map, then BPE merges by rank,
//!    with `</w>` marking the word end.
//!
//! Unicode properties (whitespace, letters, case mapping, NFC data, ...) come from tables
//! measured in the reference stack (CPython 3.11 with Unicode 14.0, `regex` 2026.11.19,
//! ftfy 6.3.1) by `tools/tokenizer_tables.py`, not from Rust's own Unicode version.
//!
//! Known limits of the parity (none is reachable from ordinary prompts):
//! - Rust strings cannot hold unpaired surrogates, so ftfy's surrogate repair never applies;
//!   Python strings with lone surrogates have no Rust counterpart.
//! - `html.unescape` raises `ValueError` in Python for numeric references with more than
//!   4300 digits; here they decode as an out-of-range reference (U+FFFD).
//! - ftfy's fixer loops are bounded here (64 rounds); Python would loop forever on a text
//!   that never settles (none is known).
//! - Python's `decode` raises `KeyError` for unknown ids; [`ClipTokenizer::decode`] skips them.
//!
//! A crate of its own (the framework re-exports it as `mvlpt_framework::model::tokenizer`): it
//! depends on nothing of mvlpt, and its Unicode tables are a fifth of the framework's size.

mod bpe;
mod clean;
mod ftfy;
mod html;
mod nfc;
mod pystr;
mod split;
mod tables;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use anyhow::{Context, Result};

use bpe::Vocabulary;

/// Id of `<|startoftext|>` in CLIP's vocabulary.
pub const SOT_TOKEN: u32 = 49406;
/// Id of `<|endoftext|>` in CLIP's vocabulary.
pub const EOT_TOKEN: u32 = 49407;
/// Id that pads token sequences up to the context length.
pub const PAD_TOKEN: u32 = 0;
/// The context length of every released CLIP text tower.
pub const DEFAULT_CONTEXT_LENGTH: usize = 77;
/// The longest context [`ClipTokenizer::tokenize`] pads to: far above any CLIP text tower
/// (77 positions), small enough that a mistyped length is an error rather than an allocation
/// of gigabytes per line.
pub const MAX_CONTEXT_LENGTH: usize = 1 << 16;

/// CLIP's BPE merges file (OpenAI, MIT license; see framework/assets/README.md).
static EMBEDDED_BPE: &[u8] = include_bytes!("../assets/bpe_simple_vocab_16e6.txt.gz");

/// The BPE cache is cleared when it grows past this many pieces, bounding its memory.
const MAX_CACHED_PIECES: usize = 1 << 16;
/// How many characters of an over-long text an error message quotes.
const QUOTED_TEXT_CHARS: usize = 60;

/// Why a text could not be tokenized into a fixed context length.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenizeError {
    /// The text needs more tokens than the context holds and truncation was not asked for.
    #[error(
        "text {text:?} needs {token_count} tokens (start and end of text included) but the \
         context length is {context_length}; shorten it or tokenize with truncation"
    )]
    TooLong {
        /// The text, shortened to its first 60 characters.
        text: String,
        /// Its token count including the start and end tokens.
        token_count: usize,
        /// The context length it had to fit.
        context_length: usize,
    },
    /// A context length of 0 cannot hold even the end-of-text token.
    #[error("the context length must be at least 1")]
    ZeroContextLength,
    /// A context length above [`MAX_CONTEXT_LENGTH`].
    #[error("the context length {0} is above the limit of {MAX_CONTEXT_LENGTH} tokens")]
    ContextTooLong(usize),
}

/// Checks a context length before any text is read: 1 to [`MAX_CONTEXT_LENGTH`].
pub fn check_context_length(context_length: usize) -> Result<(), TokenizeError> {
    match context_length {
        0 => Err(TokenizeError::ZeroContextLength),
        n if n > MAX_CONTEXT_LENGTH => Err(TokenizeError::ContextTooLong(n)),
        _ => Ok(()),
    }
}

/// A [`TokenizeError`] for one text of a batch, naming its index.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("text {index} of the batch: {error}")]
pub struct BatchTokenizeError {
    /// Index of the failing text in the batch.
    pub index: usize,
    /// What went wrong with it.
    pub error: TokenizeError,
}

/// CLIP's BPE tokenizer. Cheap to create after the first (the embedded vocabulary is
/// decoded once per process), `Send + Sync`, and caches the ids of every piece it encodes.
pub struct ClipTokenizer {
    vocab: Arc<Vocabulary>,
    cache: Mutex<HashMap<String, Vec<u32>>>,
}

impl ClipTokenizer {
    /// The tokenizer with CLIP's own vocabulary (embedded in the library).
    pub fn new() -> Self {
        static EMBEDDED: OnceLock<Arc<Vocabulary>> = OnceLock::new();
        let vocab = EMBEDDED.get_or_init(|| {
            let text = bpe::read_merges_text(EMBEDDED_BPE)
                .expect("the embedded CLIP vocabulary decompresses (checked by unit tests)");
            let vocab = Vocabulary::from_merges_text(&text)
                .expect("the embedded CLIP vocabulary is well formed (checked by unit tests)");
            Arc::new(vocab)
        });
        Self::with_vocabulary(Arc::clone(vocab))
    }

    /// A tokenizer with the vocabulary of a CLIP-format BPE merges file (gzip-compressed,
    /// like `bpe_simple_vocab_16e6.txt.gz`, or plain text), read as CLIP reads it.
    pub fn from_bpe_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let raw = std::fs::read(path)
            .with_context(|| format!("reading the BPE merges file {}", path.display()))?;
        let text = bpe::read_merges_text(&raw)
            .with_context(|| format!("reading the BPE merges file {}", path.display()))?;
        let vocab = Vocabulary::from_merges_text(&text)
            .with_context(|| format!("building a vocabulary from {}", path.display()))?;
        Ok(Self::with_vocabulary(Arc::new(vocab)))
    }

    fn with_vocabulary(vocab: Arc<Vocabulary>) -> Self {
        Self {
            vocab,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Number of token ids (49408 for CLIP's vocabulary).
    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    /// Id of `<|startoftext|>` in this vocabulary ([`SOT_TOKEN`] for CLIP's).
    pub fn sot_token(&self) -> u32 {
        self.vocab.start_of_text()
    }

    /// Id of `<|endoftext|>` in this vocabulary ([`EOT_TOKEN`] for CLIP's).
    pub fn eot_token(&self) -> u32 {
        self.vocab.end_of_text()
    }

    /// The BPE ids of `text` after CLIP's cleaning, without start/end tokens
    /// (`SimpleTokenizer.encode`).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let cleaned = clean::clean(text);
        let mut ids = Vec::new();
        for piece in split::split(&cleaned) {
            if let Some(id) = self.vocab.special_piece(piece) {
                ids.push(id);
            } else {
                self.extend_with_piece(&mut ids, piece);
            }
        }
        ids
    }

    fn extend_with_piece(&self, ids: &mut Vec<u32>, piece: &str) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(cached) = cache.get(piece) {
            ids.extend_from_slice(cached);
            return;
        }
        let piece_ids = self.vocab.encode_piece(piece);
        ids.extend_from_slice(&piece_ids);
        if cache.len() >= MAX_CACHED_PIECES {
            cache.clear();
        }
        cache.insert(piece.to_owned(), piece_ids);
    }

    /// The text of token ids (`SimpleTokenizer.decode`): bytes decoded as UTF-8 with U+FFFD
    /// for invalid sequences, each `</w>` turned into a space. Unknown ids are skipped.
    pub fn decode(&self, ids: &[u32]) -> String {
        static SYMBOL_BYTES: OnceLock<HashMap<char, u8>> = OnceLock::new();
        let symbol_bytes = SYMBOL_BYTES.get_or_init(|| {
            bpe::byte_symbols()
                .into_iter()
                .map(|(b, c)| (c, b))
                .collect()
        });
        let bytes: Vec<u8> = ids
            .iter()
            .filter_map(|&id| self.vocab.token(id))
            .flat_map(str::chars)
            .filter_map(|c| symbol_bytes.get(&c).copied())
            .collect();
        String::from_utf8_lossy(&bytes).replace("</w>", " ")
    }

    /// `[SOT, ids.., EOT]` padded with [`PAD_TOKEN`] to `context_length`, like OpenAI's
    /// `clip.tokenize`. A text that does not fit is an error, unless `truncate` is set: then
    /// the first `context_length` tokens are kept and the last one becomes EOT. The context
    /// length must be 1 to [`MAX_CONTEXT_LENGTH`].
    pub fn tokenize(
        &self,
        text: &str,
        context_length: usize,
        truncate: bool,
    ) -> Result<Vec<u32>, TokenizeError> {
        check_context_length(context_length)?;
        let mut tokens = Vec::with_capacity(context_length.max(2));
        tokens.push(self.sot_token());
        tokens.extend(self.encode(text));
        tokens.push(self.eot_token());
        if tokens.len() > context_length {
            if !truncate {
                return Err(TokenizeError::TooLong {
                    text: quote_start(text),
                    token_count: tokens.len(),
                    context_length,
                });
            }
            tokens.truncate(context_length);
            if let Some(last) = tokens.last_mut() {
                *last = self.eot_token();
            }
        }
        tokens.resize(context_length, PAD_TOKEN);
        Ok(tokens)
    }

    /// [`tokenize`](Self::tokenize) for each text; the error names the first failing index.
    pub fn tokenize_batch<S: AsRef<str>>(
        &self,
        texts: &[S],
        context_length: usize,
        truncate: bool,
    ) -> Result<Vec<Vec<u32>>, BatchTokenizeError> {
        texts
            .iter()
            .enumerate()
            .map(|(index, text)| {
                self.tokenize(text.as_ref(), context_length, truncate)
                    .map_err(|error| BatchTokenizeError { index, error })
            })
            .collect()
    }
}

/// The first characters of `text`, with an ellipsis when it is longer.
fn quote_start(text: &str) -> String {
    match text.char_indices().nth(QUOTED_TEXT_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

impl Default for ClipTokenizer {
    fn default() -> Self {
        Self::new()
    }
}

/// A clone shares the vocabulary and starts with an empty cache.
impl Clone for ClipTokenizer {
    fn clone(&self) -> Self {
        Self::with_vocabulary(Arc::clone(&self.vocab))
    }
}

impl fmt::Debug for ClipTokenizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClipTokenizer")
            .field("vocab_size", &self.vocab_size())
            .finish_non_exhaustive()
    }
}
