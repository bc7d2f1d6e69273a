//! ftfy's character-level fixers, each a pure `&str -> String` step of `fix_text`.

use super::super::html;
use super::super::pystr;
use super::super::tables::ftfy::{LATIN_LIGATURES, WIDTH_MAP};
use super::super::tables::html::{FTFY_UPPERCASE_ENTITIES, HTML5_ENTITIES};
use super::super::tables::{lookup, lookup_name};
use super::codecs::Charmap;

const ESCAPE: char = '\u{1b}';
/// Longest run of letters and digits ftfy accepts as an entity name.
const MAX_ENTITY_NAME_CHARS: usize = 24;

/// ftfy's `unescape_html`: decodes `&name;` (any HTML5 name ending in ';', plus all-caps
/// spellings of the lowercase ones) and `&#...;` references. Unlike `html.unescape`, the ';'
/// is required and references that only partly decode are left alone.
pub fn unescape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let candidate = &rest[amp..];
        match entity_len(candidate) {
            Some(len) => {
                out.push_str(&decode_entity(&candidate[..len]));
                rest = &candidate[len..];
            }
            None => {
                out.push('&');
                rest = &candidate[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Length of a match of `&#?[0-9A-Za-z]{1,24};` at the start of `text`.
fn entity_len(text: &str) -> Option<usize> {
    let after_amp = &text[1..];
    let hash = usize::from(after_amp.starts_with('#'));
    let name = &after_amp[hash..];
    let name_len = name.bytes().take_while(u8::is_ascii_alphanumeric).count();
    let fits = (1..=MAX_ENTITY_NAME_CHARS).contains(&name_len);
    (fits && name[name_len..].starts_with(';')).then_some(1 + hash + name_len + 1)
}

fn decode_entity(entity: &str) -> String {
    let name = &entity[1..];
    if let Some(value) =
        lookup_name(HTML5_ENTITIES, name).or_else(|| lookup_name(FTFY_UPPERCASE_ENTITIES, name))
    {
        return value.to_owned();
    }
    if name.starts_with('#') {
        let unescaped = html::unescape(entity);
        if !unescaped.contains(';') {
            return unescaped.into_owned();
        }
    }
    entity.to_owned()
}

/// Removes ANSI terminal escapes: ESC '[' then digits and ';' then a letter.
pub fn remove_terminal_escapes(text: &str) -> String {
    if !text.contains(ESCAPE) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(escape) = rest.find(ESCAPE) {
        out.push_str(&rest[..escape]);
        let candidate = &rest[escape..];
        match terminal_escape_len(candidate) {
            Some(len) => rest = &candidate[len..],
            None => {
                out.push(ESCAPE);
                rest = &candidate[ESCAPE.len_utf8()..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn terminal_escape_len(text: &str) -> Option<usize> {
    let body = text.strip_prefix(ESCAPE)?.strip_prefix('[')?;
    let params_len: usize = body
        .chars()
        .take_while(|&c| c == ';' || pystr::is_digit(c))
        .map(char::len_utf8)
        .sum();
    let letter = body[params_len..].chars().next()?;
    letter
        .is_ascii_alphabetic()
        .then_some(ESCAPE.len_utf8() + 1 + params_len + 1)
}

/// Replaces curly quotes (and U+02BC) with straight ones.
pub fn uncurl_quotes(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{2bc}' | '\u{2018}'..='\u{201b}' => '\'',
            '\u{201c}'..='\u{201f}' => '"',
            other => other,
        })
        .collect()
}

/// Applies a character translation table (`str.translate`).
fn translate(text: &str, table: &[(u32, &str)]) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match lookup(table, c) {
            Some(replacement) => out.push_str(replacement),
            None => out.push(c),
        }
    }
    out
}

/// Splits Latin ligatures such as 'ﬁ' into their letters.
pub fn fix_latin_ligatures(text: &str) -> String {
    translate(text, LATIN_LIGATURES)
}

/// Replaces fullwidth and halfwidth forms (and the ideographic space) by standard ones.
pub fn fix_character_width(text: &str) -> String {
    translate(text, WIDTH_MAP)
}

/// Turns CRLF, CR, U+2028, U+2029 and U+0085 into '\n'.
pub fn fix_line_breaks(text: &str) -> String {
    text.replace("\r\n", "\n")
        .chars()
        .map(|c| match c {
            '\r' | '\u{2028}' | '\u{2029}' | '\u{85}' => '\n',
            other => other,
        })
        .collect()
}

/// Removes control characters without a visible or whitespace effect.
pub fn remove_control_chars(text: &str) -> String {
    text.chars()
        .filter(|&c| {
            !matches!(
                c,
                '\0'..='\x08'
                    | '\x0b'
                    | '\x0e'..='\x1f'
                    | '\x7f'
                    | '\u{206a}'..='\u{206f}'
                    | '\u{feff}'
                    | '\u{fff9}'..='\u{fffc}'
            )
        })
        .collect()
}

/// Whether `c` is a C1 control character (U+0080..U+009F).
pub fn is_c1_control(c: char) -> bool {
    matches!(c, '\u{80}'..='\u{9f}')
}

/// Reads C1 control characters as the windows-1252 characters of the same bytes.
pub fn fix_c1_controls(text: &str) -> String {
    let windows_1252 = Charmap::sloppy_windows_1252();
    text.chars()
        .map(|c| match u8::try_from(c) {
            Ok(byte) if is_c1_control(c) => windows_1252.decode_byte(byte),
            _ => c,
        })
        .collect()
}
