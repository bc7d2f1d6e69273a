//! Python `str` semantics the reference cleaning relies on.
//!
//! Rust's `char::is_whitespace` and `str::to_lowercase` follow a newer Unicode version and a
//! slightly different whitespace definition than CPython 3.11 (for example U+001C..U+001F are
//! whitespace to Python, not to Rust), so these helpers answer from tables measured in Python.

use super::tables::unicode::{
    LOWER_MULTI, LOWER_SINGLE, PY_DIGIT, PY_SPACE, PY_WORD, REGEX_SPACE, SIGMA_CASED, SIGMA_SKIPPED,
};
use super::tables::{in_ranges, lookup};

const CAPITAL_SIGMA: char = '\u{3a3}';
const SMALL_SIGMA: char = '\u{3c3}';
const FINAL_SIGMA: char = '\u{3c2}';

/// `str.isspace()`: what `str.strip()` and `str.split()` treat as whitespace.
pub fn is_space(c: char) -> bool {
    if c.is_ascii() {
        matches!(c, '\t'..='\r' | '\x1c'..='\x1f' | ' ')
    } else {
        in_ranges(PY_SPACE, c)
    }
}

/// `\s` of the third-party `regex` module (used by CLIP's whitespace collapsing and split).
pub fn is_regex_space(c: char) -> bool {
    if c.is_ascii() {
        matches!(c, '\t'..='\r' | ' ')
    } else {
        in_ranges(REGEX_SPACE, c)
    }
}

/// `\w` of the stdlib `re` module: alphanumeric in Python's sense, or '_'.
pub fn is_word(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric() || c == '_'
    } else {
        in_ranges(PY_WORD, c)
    }
}

/// `\d` of the stdlib `re` module: any Unicode decimal digit.
pub fn is_digit(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_digit()
    } else {
        in_ranges(PY_DIGIT, c)
    }
}

/// `str.strip()` with no arguments.
pub fn strip(text: &str) -> &str {
    text.trim_matches(is_space)
}

/// `str.lower()`, including its context-dependent final sigma.
pub fn lower(text: &str) -> String {
    if text.is_ascii() {
        return text.to_ascii_lowercase();
    }
    let chars: Vec<char> = text.chars().collect();
    let mut lowered = String::with_capacity(text.len());
    for (index, &c) in chars.iter().enumerate() {
        if c == CAPITAL_SIGMA {
            let sigma = if is_final_sigma(&chars, index) {
                FINAL_SIGMA
            } else {
                SMALL_SIGMA
            };
            lowered.push(sigma);
        } else {
            push_lower(&mut lowered, c);
        }
    }
    lowered
}

fn push_lower(out: &mut String, c: char) {
    if c.is_ascii() {
        out.push(c.to_ascii_lowercase());
    } else if let Some(single) = lookup(LOWER_SINGLE, c).and_then(char::from_u32) {
        out.push(single);
    } else if let Some(several) = lookup(LOWER_MULTI, c) {
        out.push_str(several);
    } else {
        out.push(c);
    }
}

/// CPython's Final_Sigma test: a cased letter before (skipping case-ignorable characters)
/// and no cased letter after (skipping them again).
fn is_final_sigma(chars: &[char], index: usize) -> bool {
    let is_skipped = |c: &&char| in_ranges(SIGMA_SKIPPED, **c);
    let is_cased = |c: &char| in_ranges(SIGMA_CASED, *c);
    let before = chars[..index].iter().rev().find(|c| !is_skipped(c));
    if !before.is_some_and(is_cased) {
        return false;
    }
    let after = chars[index + 1..].iter().find(|c| !is_skipped(c));
    !after.is_some_and(is_cased)
}
