//! The codecs ftfy uses to undo mojibake: the single-byte encodings it tries (with its
//! "sloppy" variants of the windows-125x code pages) and its lenient UTF-8 decoder.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::super::tables::ftfy::{CHARMAPS, WINDOWS_1252_UNDEFINED};

/// The byte ftfy's sloppy codecs use for U+FFFD (ASCII SUBSTITUTE).
pub const SUBSTITUTE_BYTE: u8 = 0x1A;
const REPLACEMENT_CHARACTER: char = '\u{fffd}';

/// One single-byte encoding from `tables::ftfy::CHARMAPS`.
#[derive(Clone, Copy)]
pub struct Charmap {
    index: usize,
}

impl Charmap {
    /// The encodings ftfy tries, in its order.
    pub fn all() -> impl Iterator<Item = Charmap> {
        (0..CHARMAPS.len()).map(|index| Charmap { index })
    }

    /// The encoding that `name` names.
    fn named(name: &str) -> Option<Charmap> {
        Charmap::all().find(|charmap| charmap.name() == name)
    }

    /// ftfy's sloppy windows-1252 (bytes windows-1252 leaves undefined map to U+0080..U+009F).
    pub fn sloppy_windows_1252() -> Charmap {
        Charmap::named("sloppy-windows-1252")
            .expect("tools/tokenizer_tables.py always generates sloppy-windows-1252")
    }

    /// The Python codec name.
    pub fn name(self) -> &'static str {
        CHARMAPS[self.index].0
    }

    /// Whether this is one of ftfy's `sloppy-` codecs (which also map U+FFFD to byte 0x1A).
    pub fn is_sloppy(self) -> bool {
        self.name().starts_with("sloppy-")
    }

    /// The character byte `byte` decodes to.
    pub fn decode_byte(self, byte: u8) -> char {
        if byte >= 0x80 {
            let code = CHARMAPS[self.index].1[usize::from(byte - 0x80)];
            char::from_u32(u32::from(code)).unwrap_or(REPLACEMENT_CHARACTER)
        } else if byte == SUBSTITUTE_BYTE && self.is_sloppy() {
            REPLACEMENT_CHARACTER
        } else {
            char::from(byte)
        }
    }

    /// `text.encode(codec)`, or `None` when some character has no byte in this encoding.
    pub fn encode(self, text: &str) -> Option<Vec<u8>> {
        let high_bytes = &encoding_tables()[self.index];
        text.chars()
            .map(|c| match u8::try_from(c) {
                Ok(byte) if byte < 0x80 => {
                    (byte != SUBSTITUTE_BYTE || !self.is_sloppy()).then_some(byte)
                }
                _ => high_bytes.get(&c).copied(),
            })
            .collect()
    }
}

/// Per charmap: the characters of bytes 0x80..=0xFF (and U+FFFD for the sloppy codecs) and
/// the byte each comes from.
fn encoding_tables() -> &'static [HashMap<char, u8>] {
    static TABLES: OnceLock<Vec<HashMap<char, u8>>> = OnceLock::new();
    TABLES.get_or_init(|| {
        Charmap::all()
            .map(|charmap| {
                let mut table: HashMap<char, u8> = (0x80..=0xFF)
                    .map(|byte| (charmap.decode_byte(byte), byte))
                    .collect();
                if charmap.is_sloppy() {
                    table.insert(REPLACEMENT_CHARACTER, SUBSTITUTE_BYTE);
                }
                table
            })
            .collect()
    })
}

/// Strict windows-1252 decoding of `text`'s Latin-1 bytes (`None` if a character is beyond
/// Latin-1 or a byte is undefined in windows-1252).
pub fn latin1_as_windows_1252(text: &str) -> Option<String> {
    let windows_1252 = Charmap::sloppy_windows_1252();
    text.chars()
        .map(|c| {
            let byte = u8::try_from(c).ok()?;
            if byte < 0x80 {
                Some(c)
            } else if WINDOWS_1252_UNDEFINED.contains(&byte) {
                None
            } else {
                Some(windows_1252.decode_byte(byte))
            }
        })
        .collect()
}

/// ftfy's `utf-8-variants` decoder: strict UTF-8 that also accepts CESU-8 surrogate pairs
/// (six bytes for one supplementary character) and Java's two-byte null `C0 80`.
///
/// Like the reference, `C0` followed by a final newline also reads as a null (its pattern
/// uses `$`, which matches before a trailing newline), and so does the sixth byte of a
/// CESU-8 pair when it is a final newline.
pub fn decode_utf8_variants(bytes: &[u8]) -> Option<String> {
    let mut decoded = String::with_capacity(bytes.len());
    let mut chunk_start = 0;
    let mut position = 0;
    while position < bytes.len() {
        let special = match bytes[position] {
            0xC0 if is_java_null(bytes, position) => Some(('\0', 2)),
            0xED => cesu8_pair(bytes, position).map(|c| (c, 6)),
            _ => None,
        };
        match special {
            Some((c, len)) => {
                decoded.push_str(std::str::from_utf8(&bytes[chunk_start..position]).ok()?);
                decoded.push(c);
                position += len;
                chunk_start = position;
            }
            None => position += 1,
        }
    }
    decoded.push_str(std::str::from_utf8(&bytes[chunk_start..]).ok()?);
    Some(decoded)
}

fn is_java_null(bytes: &[u8], position: usize) -> bool {
    match bytes.get(position + 1) {
        Some(0x80) => true,
        Some(b'\n') => position + 2 == bytes.len(),
        _ => false,
    }
}

fn cesu8_pair(bytes: &[u8], position: usize) -> Option<char> {
    let pair = bytes.get(position..position + 6)?;
    let last_ok =
        matches!(pair[5], 0x80..=0xBF) || (pair[5] == b'\n' && position + 6 == bytes.len());
    let shape_ok = matches!(pair[1], 0xA0..=0xAF)
        && matches!(pair[2], 0x80..=0xBF)
        && pair[3] == 0xED
        && matches!(pair[4], 0xB0..=0xBF);
    if !(shape_ok && last_ok) {
        return None;
    }
    let code = ((u32::from(pair[1]) & 0x0F) << 16)
        + ((u32::from(pair[2]) & 0x3F) << 10)
        + ((u32::from(pair[4]) & 0x0F) << 6)
        + (u32::from(pair[5]) & 0x3F)
        + 0x10000;
    char::from_u32(code)
}
