//! CLIP's pre-tokenization: `regex.findall` of the pattern
//! `<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`
//! with IGNORECASE, in the third-party `regex` module's semantics.
//!
//! At each position the alternatives are tried in that order; characters no alternative
//! matches (whitespace, and U+0345, which IGNORECASE keeps out of every class) are skipped.
//! IGNORECASE lets the literal parts match case variants, such as U+017F (long s) for 's'.

use super::pystr;
use super::tables::unicode::{REGEX_CASELESS_ASCII, REGEX_LETTER, REGEX_NUMBER, REGEX_UNMATCHED};
use super::tables::{in_ranges, lookup};

/// The special-token texts the pattern matches first.
const SPECIAL_TOKENS: [&str; 2] = ["<|startoftext|>", "<|endoftext|>"];
/// The contraction suffixes after an apostrophe, in pattern order.
const CONTRACTIONS: [&str; 7] = ["s", "t", "re", "ve", "m", "ll", "d"];

/// Which alternative of the pattern a character can belong to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CharClass {
    Letter,
    Number,
    /// `[^\s\p{L}\p{N}]`.
    Other,
    /// Matched by nothing: whitespace and the few characters IGNORECASE excludes.
    Skipped,
}

fn classify(c: char) -> CharClass {
    if c.is_ascii() {
        return if c.is_ascii_alphabetic() {
            CharClass::Letter
        } else if c.is_ascii_digit() {
            CharClass::Number
        } else if pystr::is_regex_space(c) {
            CharClass::Skipped
        } else {
            CharClass::Other
        };
    }
    if in_ranges(REGEX_LETTER, c) {
        CharClass::Letter
    } else if in_ranges(REGEX_NUMBER, c) {
        CharClass::Number
    } else if pystr::is_regex_space(c) || in_ranges(REGEX_UNMATCHED, c) {
        CharClass::Skipped
    } else {
        CharClass::Other
    }
}

/// Whether `c` equals the ASCII character `literal` under the `regex` module's IGNORECASE.
fn matches_caseless(c: char, literal: u8) -> bool {
    if c.is_ascii() {
        return c.eq_ignore_ascii_case(&char::from(literal));
    }
    lookup(REGEX_CASELESS_ASCII, c) == Some(literal.to_ascii_lowercase())
}

/// Byte length of `literal` matched case-insensitively at the start of `text`.
fn caseless_prefix_len(text: &str, literal: &str) -> Option<usize> {
    let mut len = 0;
    let mut chars = text.chars();
    for expected in literal.bytes() {
        let c = chars.next()?;
        if !matches_caseless(c, expected) {
            return None;
        }
        len += c.len_utf8();
    }
    Some(len)
}

/// Byte length of the leading run of characters of class `class`.
fn run_len(text: &str, class: CharClass) -> usize {
    text.char_indices()
        .find(|&(_, c)| classify(c) != class)
        .map_or(text.len(), |(index, _)| index)
}

/// Byte length of the piece the pattern matches at the start of `text`, if any.
fn piece_len(text: &str) -> Option<usize> {
    if let Some(len) = SPECIAL_TOKENS
        .iter()
        .find_map(|special| caseless_prefix_len(text, special))
    {
        return Some(len);
    }
    if let Some(after_apostrophe) = text.strip_prefix('\'') {
        if let Some(len) = CONTRACTIONS
            .iter()
            .find_map(|suffix| caseless_prefix_len(after_apostrophe, suffix))
        {
            return Some(1 + len);
        }
    }
    let first = text.chars().next()?;
    match classify(first) {
        CharClass::Letter | CharClass::Other => Some(run_len(text, classify(first))),
        CharClass::Number => Some(first.len_utf8()),
        CharClass::Skipped => None,
    }
}

/// The pieces `regex.findall(pattern, text)` returns, in order.
pub fn split(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(first) = rest.chars().next() {
        match piece_len(rest) {
            Some(len) => {
                pieces.push(&rest[..len]);
                rest = &rest[len..];
            }
            None => rest = &rest[first.len_utf8()..],
        }
    }
    pieces
}
