//! Unicode NFC normalization with CPython 3.11's data (`unicodedata.normalize("NFC", text)`).
//!
//! The algorithm is the standard one (full canonical decomposition, canonical ordering of
//! combining marks, canonical composition); the character data comes from
//! `tables::unicode`, measured from Python so that characters assigned after Unicode 14.0
//! behave exactly as they do in the reference (untouched).

use std::collections::HashMap;
use std::sync::OnceLock;

use super::tables::unicode::{CANONICAL_DECOMPOSITION, COMBINING_CLASS};

/// Below this code point every character is a starter that neither decomposes in NFC nor
/// combines with what precedes it, so text made only of such characters is already NFC.
/// (Checked against the tables by a unit test.)
const FIRST_NORMALIZATION_SENSITIVE: u32 = 0x300;

const HANGUL_S_BASE: u32 = 0xAC00;
const HANGUL_L_BASE: u32 = 0x1100;
const HANGUL_V_BASE: u32 = 0x1161;
const HANGUL_T_BASE: u32 = 0x11A7;
const HANGUL_L_COUNT: u32 = 19;
const HANGUL_V_COUNT: u32 = 21;
const HANGUL_T_COUNT: u32 = 28;
const HANGUL_S_COUNT: u32 = HANGUL_L_COUNT * HANGUL_V_COUNT * HANGUL_T_COUNT;

/// NFC-normalizes `text`.
pub fn nfc(text: &str) -> String {
    if text
        .chars()
        .all(|c| (c as u32) < FIRST_NORMALIZATION_SENSITIVE)
    {
        return text.to_owned();
    }
    let mut chars = Vec::with_capacity(text.len());
    for c in text.chars() {
        decompose_into(c, &mut chars);
    }
    order_combining_marks(&mut chars);
    compose(&chars).into_iter().collect()
}

/// The canonical combining class of `c` (0 for starters).
pub fn combining_class(c: char) -> u8 {
    let cp = c as u32;
    if cp < FIRST_NORMALIZATION_SENSITIVE {
        return 0;
    }
    let index = COMBINING_CLASS.partition_point(|&(_, last, _)| last < cp);
    match COMBINING_CLASS.get(index) {
        Some(&(first, _, class)) if first <= cp => class,
        _ => 0,
    }
}

fn decomposition(c: char) -> Option<(u32, u32)> {
    let cp = c as u32;
    CANONICAL_DECOMPOSITION
        .binary_search_by_key(&cp, |&(key, ..)| key)
        .ok()
        .map(|index| {
            let (_, first, second, _) = CANONICAL_DECOMPOSITION[index];
            (first, second)
        })
}

fn decompose_into(c: char, out: &mut Vec<char>) {
    let cp = c as u32;
    if (HANGUL_S_BASE..HANGUL_S_BASE + HANGUL_S_COUNT).contains(&cp) {
        let index = cp - HANGUL_S_BASE;
        let jamo = [
            HANGUL_L_BASE + index / (HANGUL_V_COUNT * HANGUL_T_COUNT),
            HANGUL_V_BASE + (index % (HANGUL_V_COUNT * HANGUL_T_COUNT)) / HANGUL_T_COUNT,
            HANGUL_T_BASE + index % HANGUL_T_COUNT,
        ];
        let count = if jamo[2] == HANGUL_T_BASE { 2 } else { 3 };
        out.extend(jamo[..count].iter().filter_map(|&j| char::from_u32(j)));
        return;
    }
    match decomposition(c) {
        Some((first, second)) => {
            for part in [first, second] {
                if let Some(part) = char::from_u32(part).filter(|_| part != 0) {
                    decompose_into(part, out);
                }
            }
        }
        None => out.push(c),
    }
}

/// Stable-sorts every run of non-starters by combining class (canonical ordering).
fn order_combining_marks(chars: &mut [char]) {
    let mut start = 0;
    while start < chars.len() {
        if combining_class(chars[start]) == 0 {
            start += 1;
            continue;
        }
        let end = chars[start..]
            .iter()
            .position(|&c| combining_class(c) == 0)
            .map_or(chars.len(), |offset| start + offset);
        chars[start..end].sort_by_key(|&c| combining_class(c));
        start = end;
    }
}

fn composition_pairs() -> &'static HashMap<(u32, u32), u32> {
    static PAIRS: OnceLock<HashMap<(u32, u32), u32>> = OnceLock::new();
    PAIRS.get_or_init(|| {
        CANONICAL_DECOMPOSITION
            .iter()
            .filter(|&&(.., composes)| composes)
            .map(|&(composite, first, second, _)| ((first, second), composite))
            .collect()
    })
}

fn compose_pair(first: char, second: char) -> Option<char> {
    let (a, b) = (first as u32, second as u32);
    let l_range = HANGUL_L_BASE..HANGUL_L_BASE + HANGUL_L_COUNT;
    let v_range = HANGUL_V_BASE..HANGUL_V_BASE + HANGUL_V_COUNT;
    let t_range = HANGUL_T_BASE + 1..HANGUL_T_BASE + HANGUL_T_COUNT;
    let s_range = HANGUL_S_BASE..HANGUL_S_BASE + HANGUL_S_COUNT;
    if l_range.contains(&a) && v_range.contains(&b) {
        let syllable = HANGUL_S_BASE
            + ((a - HANGUL_L_BASE) * HANGUL_V_COUNT + (b - HANGUL_V_BASE)) * HANGUL_T_COUNT;
        return char::from_u32(syllable);
    }
    if s_range.contains(&a) && t_range.contains(&b) {
        // Only LV syllables (no trailing consonant yet) take a trailing consonant.
        let trailing_index = (a - HANGUL_S_BASE) % HANGUL_T_COUNT;
        return (trailing_index == 0)
            .then(|| char::from_u32(a + (b - HANGUL_T_BASE)))
            .flatten();
    }
    composition_pairs()
        .get(&(a, b))
        .and_then(|&c| char::from_u32(c))
}

/// Canonical composition of decomposed, canonically ordered text.
fn compose(chars: &[char]) -> Vec<char> {
    let mut out: Vec<char> = Vec::with_capacity(chars.len());
    let mut starter: Option<usize> = None;
    // Combining class of the last character kept after the current starter, if any.
    let mut last_class: Option<u8> = None;
    for &c in chars {
        let class = combining_class(c);
        if let Some(position) = starter {
            let blocked = last_class.is_some_and(|last| last >= class);
            if !blocked {
                if let Some(composite) = compose_pair(out[position], c) {
                    out[position] = composite;
                    continue;
                }
            }
        }
        if class == 0 {
            starter = Some(out.len());
            last_class = None;
        } else {
            last_class = Some(class);
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast path is sound: nothing below the threshold has a combining class, can be
    /// the second half of a composition, or is replaced by NFC.
    #[test]
    fn characters_below_the_fast_path_threshold_are_inert() {
        for &(cp, first, second, composes) in CANONICAL_DECOMPOSITION {
            if cp < FIRST_NORMALIZATION_SENSITIVE {
                assert!(composes, "U+{cp:04X} is replaced by NFC");
            }
            if composes {
                assert!(
                    second >= FIRST_NORMALIZATION_SENSITIVE,
                    "U+{first:04X} U+{second:04X}"
                );
            }
        }
        assert!(COMBINING_CLASS
            .iter()
            .all(|&(first, ..)| first >= FIRST_NORMALIZATION_SENSITIVE));
    }
}
