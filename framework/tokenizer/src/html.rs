//! Python's `html.unescape`, reproduced rule for rule.
//!
//! A reference starts with '&' and is one of: `#` + decimal digits, `#x`/`#X` + hex digits, or
//! 1 to 32 characters that are not tab, newline, form feed, space, '<', '&', '#' or ';'; each
//! may end with ';'. Numeric references map through the HTML5 replacement table for invalid
//! references, give U+FFFD for surrogates and values above U+10FFFF, and nothing for the
//! other invalid code points. Named references are looked up in the HTML5 entity table; when
//! the whole name is unknown, the longest known prefix of at least two characters is replaced
//! (only the legacy names without ';' can match that way) and the rest is kept.

use std::borrow::Cow;

use super::tables::html::{HTML5_ENTITIES, INVALID_CHARREFS, INVALID_CODEPOINTS};
use super::tables::lookup_name;

/// The most characters a named reference may have before its optional ';'.
const MAX_NAME_CHARS: usize = 32;
/// Shortest entity-name prefix `html.unescape` tries when the full name is unknown.
const MIN_PREFIX_CHARS: usize = 2;

/// `html.unescape(text)`.
pub fn unescape(text: &str) -> Cow<'_, str> {
    if !text.contains('&') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        match replace_reference(after) {
            Some((consumed, replacement)) => {
                out.push_str(&replacement);
                rest = &after[consumed..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Matches a reference at the start of `text` (just after its '&'): the number of bytes it
/// spans and what replaces it (the '&' included).
fn replace_reference(text: &str) -> Option<(usize, String)> {
    if let Some(digits) = text.strip_prefix('#') {
        let decimal_len = ascii_run(digits, |b| b.is_ascii_digit());
        if decimal_len > 0 {
            let value = parse_saturating(&digits[..decimal_len], 10);
            return Some((
                1 + with_semicolon(digits, decimal_len),
                numeric_reference(value),
            ));
        }
        let hex = digits.strip_prefix(['x', 'X'])?;
        let hex_len = ascii_run(hex, |b| b.is_ascii_hexdigit());
        if hex_len == 0 {
            return None;
        }
        let value = parse_saturating(&hex[..hex_len], 16);
        return Some((2 + with_semicolon(hex, hex_len), numeric_reference(value)));
    }
    let name_len = text
        .char_indices()
        .take(MAX_NAME_CHARS)
        .find(|&(_, c)| matches!(c, '\t' | '\n' | '\x0c' | ' ' | '<' | '&' | '#' | ';'))
        .map_or_else(
            || text.chars().take(MAX_NAME_CHARS).map(char::len_utf8).sum(),
            |(index, _)| index,
        );
    if name_len == 0 {
        return None;
    }
    let matched = &text[..with_semicolon(text, name_len)];
    Some((matched.len(), named_reference(matched)))
}

/// Length of the leading run of ASCII bytes satisfying `accept`.
fn ascii_run(text: &str, accept: impl Fn(u8) -> bool) -> usize {
    text.bytes().take_while(|&b| accept(b)).count()
}

/// `len`, plus one if an optional ';' follows.
fn with_semicolon(text: &str, len: usize) -> usize {
    len + usize::from(text[len..].starts_with(';'))
}

/// Parses digits, saturating far above U+10FFFF (every such value unescapes the same way).
fn parse_saturating(digits: &str, radix: u32) -> u64 {
    digits.chars().fold(0u64, |value, digit| {
        let digit = u64::from(digit.to_digit(radix).unwrap_or(0));
        value
            .saturating_mul(u64::from(radix))
            .saturating_add(digit)
            .min(u64::from(u32::MAX))
    })
}

fn numeric_reference(value: u64) -> String {
    if let Ok(code) = u32::try_from(value) {
        if let Ok(index) = INVALID_CHARREFS.binary_search_by_key(&code, |&(key, _)| key) {
            return INVALID_CHARREFS[index].1.to_owned();
        }
        if let Some(c) = char::from_u32(code) {
            let invalid = INVALID_CODEPOINTS
                .iter()
                .any(|&(first, last)| (first..=last).contains(&code));
            return if invalid {
                String::new()
            } else {
                c.to_string()
            };
        }
    }
    '\u{fffd}'.to_string()
}

fn named_reference(name: &str) -> String {
    if let Some(value) = lookup_name(HTML5_ENTITIES, name) {
        return value.to_owned();
    }
    let prefix_ends: Vec<usize> = name.char_indices().map(|(index, _)| index).collect();
    for &end in prefix_ends.iter().skip(MIN_PREFIX_CHARS).rev() {
        if let Some(value) = lookup_name(HTML5_ENTITIES, &name[..end]) {
            return format!("{value}{}", &name[end..]);
        }
    }
    format!("&{name}")
}
