//! The CLIP vocabulary (built from the BPE merges file exactly as `SimpleTokenizer.__init__`
//! does) and the byte-pair merge loop.

use std::collections::HashMap;
use std::io::Read;

use anyhow::{ensure, Context, Result};
use flate2::read::GzDecoder;

use super::pystr;

/// Index of the first merge line (line 0 is a version header).
const FIRST_MERGE_LINE: usize = 1;
/// One past the last merge line CLIP reads: 49152 - 256 - 2 + 1.
const MERGE_LINES_END: usize = 49_152 - 256 - 2 + 1;
/// The marker appended to the last symbol of every word.
const END_OF_WORD: &str = "</w>";
/// The special tokens appended after the merges, in order.
pub const START_OF_TEXT: &str = "<|startoftext|>";
/// The end-of-text special token text.
pub const END_OF_TEXT: &str = "<|endoftext|>";

/// The token strings, their ids, and the merge ranks of a CLIP BPE vocabulary.
pub struct Vocabulary {
    /// Token string → id (for duplicate strings the last id wins, as in Python's dict).
    encoder: HashMap<String, u32>,
    /// Id → token string, for the ids `encoder` keeps.
    decoder: Vec<Option<String>>,
    /// (left id, right id) → (rank, id of the merged symbol).
    merges: HashMap<(u32, u32), (u32, u32)>,
    /// Id of each byte's symbol, and of the same symbol ending a word.
    byte_ids: [u32; 256],
    byte_end_ids: [u32; 256],
    /// Ids of the start- and end-of-text tokens.
    start_of_text: u32,
    end_of_text: u32,
}

/// CLIP's reversible byte → character map (`bytes_to_unicode`): printable Latin-1 bytes map
/// to themselves, the others to U+0100 onwards, in byte order. Returned in vocabulary order.
pub fn byte_symbols() -> Vec<(u8, char)> {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut symbols: Vec<(u8, char)> = (0..=255u8)
        .filter(|&b| printable(b))
        .map(|b| (b, char::from(b)))
        .collect();
    let shifted = (0..=255u8).filter(|&b| !printable(b)).zip(0x100u32..);
    symbols.extend(shifted.filter_map(|(b, code)| char::from_u32(code).map(|c| (b, c))));
    symbols
}

/// Reads the merges file, gzip-compressed (like CLIP's) or plain text.
pub fn read_merges_text(raw: &[u8]) -> Result<String> {
    let text = if raw.starts_with(&[0x1F, 0x8B]) {
        let mut text = String::new();
        GzDecoder::new(raw)
            .read_to_string(&mut text)
            .context("decompressing the gzip BPE merges file")?;
        text
    } else {
        String::from_utf8(raw.to_vec()).context("the BPE merges file is not UTF-8")?
    };
    Ok(text)
}

impl Vocabulary {
    /// Builds the vocabulary from the merges file's text: 256 byte symbols, the same with
    /// `</w>`, one token per merge line (lines 1..48895), then the two special tokens.
    pub fn from_merges_text(text: &str) -> Result<Self> {
        let lines: Vec<&str> = text.split('\n').collect();
        let merge_lines = lines
            .get(FIRST_MERGE_LINE..MERGE_LINES_END.min(lines.len()))
            .unwrap_or_default();
        let merge_parts: Vec<Vec<&str>> = merge_lines
            .iter()
            .map(|line| {
                line.split(pystr::is_space)
                    .filter(|part| !part.is_empty())
                    .collect()
            })
            .collect();

        let symbols = byte_symbols();
        let mut vocab: Vec<String> = symbols.iter().map(|&(_, c)| c.to_string()).collect();
        vocab.extend(symbols.iter().map(|&(_, c)| format!("{c}{END_OF_WORD}")));
        vocab.extend(merge_parts.iter().map(|parts| parts.concat()));
        vocab.extend([START_OF_TEXT.to_owned(), END_OF_TEXT.to_owned()]);
        ensure!(
            u32::try_from(vocab.len()).is_ok(),
            "the BPE vocabulary has {} entries, too many for u32 ids",
            vocab.len()
        );

        let encoder: HashMap<String, u32> = vocab.iter().cloned().zip(0u32..).collect();
        let mut decoder = vec![None; vocab.len()];
        for (token, &id) in &encoder {
            decoder[id as usize] = Some(token.clone());
        }
        let id_of = |token: &str| encoder.get(token).copied();

        let mut merges = HashMap::with_capacity(merge_parts.len());
        for (rank, parts) in (0u32..).zip(&merge_parts) {
            // Python keys ranks by the whole tuple; only two-part lines can ever match a pair.
            let [left, right] = parts.as_slice() else {
                continue;
            };
            let line = rank as usize + FIRST_MERGE_LINE + 1;
            let left_id = id_of(left).with_context(|| {
                format!("BPE merge on line {line} uses {left:?}, which is not in the vocabulary")
            })?;
            let right_id = id_of(right).with_context(|| {
                format!("BPE merge on line {line} uses {right:?}, which is not in the vocabulary")
            })?;
            let merged_id = id_of(&format!("{left}{right}"))
                .with_context(|| format!("BPE merge on line {line} has no vocabulary entry"))?;
            merges.insert((left_id, right_id), (rank, merged_id));
        }

        let mut byte_ids = [0u32; 256];
        let mut byte_end_ids = [0u32; 256];
        for &(byte, c) in &symbols {
            byte_ids[usize::from(byte)] =
                id_of(&c.to_string()).context("a byte symbol is missing from the vocabulary")?;
            byte_end_ids[usize::from(byte)] = id_of(&format!("{c}{END_OF_WORD}"))
                .context("a word-final byte symbol is missing from the vocabulary")?;
        }
        let special_id = |token: &str| {
            id_of(token).with_context(|| format!("special token {token} is not in the vocabulary"))
        };
        Ok(Self {
            start_of_text: special_id(START_OF_TEXT)?,
            end_of_text: special_id(END_OF_TEXT)?,
            encoder,
            decoder,
            merges,
            byte_ids,
            byte_end_ids,
        })
    }

    /// Number of distinct token ids (49408 for CLIP's vocabulary).
    pub fn len(&self) -> usize {
        self.encoder.len()
    }

    /// Id of `<|startoftext|>`.
    pub fn start_of_text(&self) -> u32 {
        self.start_of_text
    }

    /// Id of `<|endoftext|>`.
    pub fn end_of_text(&self) -> u32 {
        self.end_of_text
    }

    /// The token string of `id`, if the vocabulary has it.
    pub fn token(&self, id: u32) -> Option<&str> {
        self.decoder.get(id as usize)?.as_deref()
    }

    /// The ids of one pre-tokenized piece: its UTF-8 bytes as symbols, the last one marked
    /// as word end, merged pair by pair, lowest rank first, until no known pair remains.
    pub fn encode_piece(&self, piece: &str) -> Vec<u32> {
        let bytes = piece.as_bytes();
        let Some((&last, init)) = bytes.split_last() else {
            return Vec::new();
        };
        let mut word: Vec<u32> = init
            .iter()
            .map(|&b| self.byte_ids[usize::from(b)])
            .collect();
        word.push(self.byte_end_ids[usize::from(last)]);
        while word.len() > 1 {
            let best = word
                .windows(2)
                .filter_map(|pair| {
                    let (left, right) = (pair[0], pair[1]);
                    let &(rank, merged) = self.merges.get(&(left, right))?;
                    Some((rank, left, right, merged))
                })
                .min_by_key(|&(rank, ..)| rank);
            let Some((_, left, right, merged)) = best else {
                break;
            };
            word = merge_pair(&word, (left, right), merged);
        }
        word
    }

    /// The id of a piece that is exactly a special token's text (CLIP's BPE cache holds the
    /// special tokens, so they are never split).
    pub fn special_piece(&self, piece: &str) -> Option<u32> {
        match piece {
            START_OF_TEXT => Some(self.start_of_text),
            END_OF_TEXT => Some(self.end_of_text),
            _ => None,
        }
    }
}

/// Replaces every left-to-right, non-overlapping occurrence of `pair` in `word` by `merged`.
fn merge_pair(word: &[u32], pair: (u32, u32), merged: u32) -> Vec<u32> {
    let mut out = Vec::with_capacity(word.len());
    let mut index = 0;
    while index < word.len() {
        if index + 1 < word.len() && (word[index], word[index + 1]) == pair {
            out.push(merged);
            index += 2;
        } else {
            out.push(word[index]);
            index += 1;
        }
    }
    out
}
