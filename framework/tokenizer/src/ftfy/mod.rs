//! A reimplementation of `ftfy.fix_text` (ftfy 6.3.1, default options), the first step of
//! CLIP's text cleaning.
//!
//! The text is fixed line by line (segments end after each '\n', and are at most a million
//! characters). Each segment goes through ftfy's fixers in its order until nothing changes:
//! HTML entities (only while no segment so far contained '<'), mojibake repair, C1 controls,
//! Latin ligatures, character width, curly quotes, line breaks, terminal escapes, control
//! characters and NFC. ftfy's surrogate fixer has nothing to do on Rust strings, which cannot
//! hold unpaired surrogates.
//!
//! Mojibake repair follows ftfy step by step: when the text contains a suspicious character
//! sequence (`badness::is_bad`), re-encode it in each single-byte encoding ftfy knows (in its
//! order) and decode the bytes as UTF-8, after restoring 0xA0 bytes that became spaces and
//! marking sequences that lost bytes; failing that, fix UTF-8-looking runs one at a time,
//! then fall back to reading Latin-1 as windows-1252 and C1 controls as windows-1252. This
//! repeats while it changes the text, which undoes several layers of mojibake.
//!
//! The heuristics and character data are ftfy's (ftfy is by Robyn Speer, Apache-2.0); the
//! data tables are generated from the installed package by `tools/tokenizer_tables.py`.

pub mod badness;
mod bytefix;
mod codecs;
mod fixes;

use std::borrow::Cow;

use super::nfc::nfc;
use super::tables::ftfy::UTF8_CLUES;
use super::tables::lookup;
use codecs::Charmap;

/// ftfy's `max_decode_length`: the longest segment fixed in one piece, in characters.
const MAX_SEGMENT_CHARS: usize = 1_000_000;
/// Guards against a fixer cycle that never settles (ftfy would loop forever there).
const MAX_ROUNDS: usize = 64;

// Bits of `tables::ftfy::UTF8_CLUES`, in the generator's order.
const FIRST_OF_2: u16 = 1 << 0;
const FIRST_OF_3: u16 = 1 << 1;
const FIRST_OF_4: u16 = 1 << 2;
const CONTINUATION: u16 = 1 << 3;
const STRICT_CONTINUATION: u16 = 1 << 4;

/// `ftfy.fix_text(text)` with ftfy's default configuration.
pub fn fix_text(text: &str) -> Cow<'_, str> {
    if is_plain(text) {
        return Cow::Borrowed(text);
    }
    let mut fixed = String::with_capacity(text.len());
    let mut unescape_html = true;
    for segment in segments(text) {
        // ftfy turns entity decoding off for good once a segment looks like HTML.
        if segment.contains('<') {
            unescape_html = false;
        }
        fixed.push_str(&fix_segment(segment, unescape_html));
    }
    Cow::Owned(fixed)
}

/// Text that no fixer changes: printable ASCII, tabs and newlines, without '&'.
fn is_plain(text: &str) -> bool {
    text.bytes()
        .all(|b| matches!(b, b' '..=b'~' | b'\t' | b'\n') && b != b'&')
}

/// Splits after every '\n', and after `MAX_SEGMENT_CHARS` characters of a longer line.
fn segments(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let line_end = rest.find('\n').map_or(rest.len(), |index| index + 1);
        let limit = rest
            .char_indices()
            .nth(MAX_SEGMENT_CHARS)
            .map_or(rest.len(), |(index, _)| index);
        let (segment, tail) = rest.split_at(line_end.min(limit));
        rest = tail;
        Some(segment)
    })
}

/// ftfy's `fix_and_explain` on one segment: every fixer, repeated until the text is stable.
fn fix_segment(segment: &str, unescape_html: bool) -> String {
    let mut text = segment.to_owned();
    for _ in 0..MAX_ROUNDS {
        let before = text.clone();
        if unescape_html {
            text = fixes::unescape_html(&text);
        }
        text = fix_encoding(&text);
        text = fixes::fix_c1_controls(&text);
        text = fixes::fix_latin_ligatures(&text);
        text = fixes::fix_character_width(&text);
        text = fixes::uncurl_quotes(&text);
        text = fixes::fix_line_breaks(&text);
        text = fixes::remove_terminal_escapes(&text);
        text = fixes::remove_control_chars(&text);
        text = nfc(&text);
        if text == before {
            break;
        }
    }
    text
}

/// ftfy's `fix_encoding`: one mojibake repair step at a time until nothing changes.
fn fix_encoding(text: &str) -> String {
    let mut text = text.to_owned();
    for _ in 0..MAX_ROUNDS {
        match fix_encoding_step(&text) {
            Some(fixed) if fixed != text => text = fixed,
            _ => break,
        }
    }
    text
}

/// One step of ftfy's mojibake repair; `None` when it leaves the text as it is.
fn fix_encoding_step(text: &str) -> Option<String> {
    if text.is_ascii() || !badness::is_bad(text) {
        return None;
    }
    let mut latin1_possible = false;
    for charmap in Charmap::all() {
        let Some(encoded) = charmap.encode(text) else {
            continue;
        };
        latin1_possible |= charmap.name() == "latin-1";
        if let Some(decoded) = redecode_as_utf8(charmap, encoded) {
            return Some(decoded);
        }
    }
    if has_utf8_clue_run(text) {
        let fixed = decode_inconsistent_utf8(text);
        if fixed != text {
            return Some(fixed);
        }
    }
    // ftfy means to keep text that is valid in both Latin-1 and windows-1252, but its check
    // compares against the name "windows-1252" while it records "sloppy-windows-1252", so
    // Latin-1 text is always re-read as strict windows-1252.
    if latin1_possible {
        if let Some(fixed) = codecs::latin1_as_windows_1252(text).filter(|fixed| fixed != text) {
            return Some(fixed);
        }
    }
    text.chars()
        .any(fixes::is_c1_control)
        .then(|| fixes::fix_c1_controls(text))
}

/// Decodes re-encoded mojibake as UTF-8, after ftfy's byte repairs; `None` if invalid.
fn redecode_as_utf8(charmap: Charmap, mut bytes: Vec<u8>) -> Option<String> {
    if charmap.name() != "macroman" && bytefix::has_altered_utf8(&bytes) {
        bytes = bytefix::restore_byte_a0(&bytes);
    }
    if charmap.is_sloppy() {
        bytes = bytefix::replace_lossy_sequences(&bytes);
    }
    if bytes.contains(&0xED) || bytes.contains(&0xC0) {
        codecs::decode_utf8_variants(&bytes)
    } else {
        String::from_utf8(bytes).ok()
    }
}

fn clues(c: char) -> u16 {
    lookup(UTF8_CLUES, c).unwrap_or(0)
}

/// Length in characters of a run of UTF-8-looking character groups starting at `start`
/// (ftfy's `UTF8_DETECTOR_RE` without its lookbehind), 0 if there is none.
fn utf8_clue_run(chars: &[char], start: usize) -> usize {
    let continues = |from: usize, count: usize| {
        chars
            .get(from..from + count)
            .is_some_and(|run| run.iter().all(|&c| clues(c) & CONTINUATION != 0))
    };
    let mut position = start;
    while let Some(&lead) = chars.get(position) {
        let lead_clues = clues(lead);
        let group = [(FIRST_OF_2, 1), (FIRST_OF_3, 2), (FIRST_OF_4, 3)]
            .into_iter()
            .find(|&(bit, count)| lead_clues & bit != 0 && continues(position + 1, count));
        match group {
            Some((_, count)) => position += 1 + count,
            None => break,
        }
    }
    position - start
}

/// Whether a UTF-8-looking run may start at `start`: not right after a character that is
/// almost only ever a UTF-8 continuation in mojibake.
fn run_may_start(chars: &[char], start: usize) -> bool {
    start == 0 || clues(chars[start - 1]) & STRICT_CONTINUATION == 0
}

fn has_utf8_clue_run(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    (0..chars.len()).any(|start| run_may_start(&chars, start) && utf8_clue_run(&chars, start) > 0)
}

/// ftfy's `decode_inconsistent_utf8`: fixes each UTF-8-looking run that is shorter than the
/// whole text and looks like mojibake on its own.
fn decode_inconsistent_utf8(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut fixed = String::with_capacity(text.len());
    let mut position = 0;
    while position < chars.len() {
        let run = if run_may_start(&chars, position) {
            utf8_clue_run(&chars, position)
        } else {
            0
        };
        if run == 0 {
            fixed.push(chars[position]);
            position += 1;
            continue;
        }
        let piece: String = chars[position..position + run].iter().collect();
        if run < chars.len() && badness::is_bad(&piece) {
            fixed.push_str(&fix_encoding(&piece));
        } else {
            fixed.push_str(&piece);
        }
        position += run;
    }
    fixed
}
