//! ftfy's byte-level repairs, applied to re-encoded mojibake before it is decoded as UTF-8:
//! putting back 0xA0 bytes that became spaces, and marking UTF-8 sequences that lost bytes.

/// Inclusive byte ranges one position of a byte pattern accepts.
type ByteClass = &'static [(u8, u8)];

const SPACE: ByteClass = &[(b' ', b' ')];
const CONTINUATION: ByteClass = &[(0x80, 0xBF)];
/// Continuation bytes except 0x85 and 0xA0 (ftfy's "likely" second bytes).
const LIKELY_CONTINUATION: ByteClass = &[(0x80, 0x84), (0x86, 0x9F), (0xA1, 0xBF)];
const SUBSTITUTE: ByteClass = &[(0x1A, 0x1A)];
const LOST: ByteClass = &[(0x1A, 0x1A), (b'?', b'?')];
const LOST_OR_CONTINUATION: ByteClass = &[(0x1A, 0x1A), (b'?', b'?'), (0x80, 0xBF)];
const SUBSTITUTE_OR_CONTINUATION: ByteClass = &[(0x1A, 0x1A), (0x80, 0xBF)];
const SURROGATE_LEAD: ByteClass = &[(0xED, 0xED)];

/// UTF-8 sequences in which a 0xA0 byte seems to have become a space (ftfy's
/// `ALTERED_UTF8_RE`), in match order.
static ALTERED_UTF8: &[&[ByteClass]] = &[
    &[
        &[
            (0xC2, 0xC3),
            (0xC5, 0xC5),
            (0xCE, 0xCE),
            (0xD0, 0xD0),
            (0xD9, 0xD9),
        ],
        SPACE,
    ],
    &[&[(0xE2, 0xE3)], SPACE, LIKELY_CONTINUATION],
    &[&[(0xE0, 0xE3)], LIKELY_CONTINUATION, SPACE],
    &[&[(0xF0, 0xF0)], SPACE, CONTINUATION, CONTINUATION],
    &[&[(0xF0, 0xF0)], CONTINUATION, SPACE, CONTINUATION],
    &[&[(0xF0, 0xF0)], CONTINUATION, CONTINUATION, SPACE],
];

/// UTF-8 (and CESU-8) sequences where some bytes were lost to U+FFFD (byte 0x1A in the
/// sloppy codecs) or '?' (ftfy's `LOSSY_UTF8_RE`), in match order.
static LOSSY_UTF8: &[&[ByteClass]] = &[
    &[&[(0xC2, 0xDF)], SUBSTITUTE],
    &[&[(0xC2, 0xC3)], &[(b'?', b'?')]],
    &[
        SURROGATE_LEAD,
        &[(0xA0, 0xAF)],
        LOST,
        SURROGATE_LEAD,
        &[(0xB0, 0xBF)],
        LOST_OR_CONTINUATION,
    ],
    &[
        SURROGATE_LEAD,
        &[(0xA0, 0xAF)],
        LOST_OR_CONTINUATION,
        SURROGATE_LEAD,
        &[(0xB0, 0xBF)],
        LOST,
    ],
    &[&[(0xE0, 0xEF)], LOST, SUBSTITUTE_OR_CONTINUATION],
    &[&[(0xE0, 0xEF)], SUBSTITUTE_OR_CONTINUATION, LOST],
    &[
        &[(0xF0, 0xF4)],
        LOST,
        SUBSTITUTE_OR_CONTINUATION,
        SUBSTITUTE_OR_CONTINUATION,
    ],
    &[
        &[(0xF0, 0xF4)],
        SUBSTITUTE_OR_CONTINUATION,
        LOST,
        SUBSTITUTE_OR_CONTINUATION,
    ],
    &[
        &[(0xF0, 0xF4)],
        SUBSTITUTE_OR_CONTINUATION,
        SUBSTITUTE_OR_CONTINUATION,
        LOST,
    ],
    &[SUBSTITUTE],
];

/// The UTF-8 encoding of U+FFFD.
const REPLACEMENT_UTF8: &[u8] = "\u{fffd}".as_bytes();

/// Words after "Ã " that keep "Ã " from being read as "à" + no-break space (ftfy's
/// `A_GRAVE_WORD_RE` lookahead): Portuguese contractions, and a second space.
const A_GRAVE_EXCEPTIONS: &[&[u8]] = &[b" ", b"quele", b"quela", b"quilo", b"s "];

fn class_accepts(class: ByteClass, byte: u8) -> bool {
    class
        .iter()
        .any(|&(first, last)| (first..=last).contains(&byte))
}

/// Length of the first alternative of `patterns` that matches at `position`.
fn match_len(patterns: &[&[ByteClass]], bytes: &[u8], position: usize) -> Option<usize> {
    patterns.iter().find_map(|pattern| {
        let window = bytes.get(position..position + pattern.len())?;
        let all = pattern
            .iter()
            .zip(window)
            .all(|(&class, &byte)| class_accepts(class, byte));
        all.then_some(pattern.len())
    })
}

/// Replaces every leftmost, non-overlapping match of `patterns` with `replace(matched)`.
fn substitute(
    bytes: &[u8],
    patterns: &[&[ByteClass]],
    replace: impl Fn(&[u8], &mut Vec<u8>),
) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 8);
    let mut position = 0;
    while position < bytes.len() {
        match match_len(patterns, bytes, position) {
            Some(len) => {
                replace(&bytes[position..position + len], &mut out);
                position += len;
            }
            None => {
                out.push(bytes[position]);
                position += 1;
            }
        }
    }
    out
}

/// Whether the bytes contain a UTF-8 sequence with a 0xA0 turned into a space.
pub fn has_altered_utf8(bytes: &[u8]) -> bool {
    (0..bytes.len()).any(|position| match_len(ALTERED_UTF8, bytes, position).is_some())
}

/// ftfy's `restore_byte_a0`: reads "Ã " as "à" + space (unless a Portuguese contraction or
/// another space follows), then turns the spaces in altered UTF-8 sequences back into 0xA0.
pub fn restore_byte_a0(bytes: &[u8]) -> Vec<u8> {
    let mut with_a_grave = Vec::with_capacity(bytes.len() + 4);
    let mut position = 0;
    while position < bytes.len() {
        let rest = &bytes[position..];
        let is_a_grave_word = rest.starts_with(&[0xC3, b' '])
            && !A_GRAVE_EXCEPTIONS
                .iter()
                .any(|exception| rest[2..].starts_with(exception));
        if is_a_grave_word {
            with_a_grave.extend_from_slice(&[0xC3, 0xA0, b' ']);
            position += 2;
        } else {
            with_a_grave.push(bytes[position]);
            position += 1;
        }
    }
    substitute(&with_a_grave, ALTERED_UTF8, |matched, out| {
        out.extend(
            matched
                .iter()
                .map(|&byte| if byte == b' ' { 0xA0 } else { byte }),
        );
    })
}

/// ftfy's `replace_lossy_sequences`: UTF-8 sequences with lost bytes become U+FFFD.
pub fn replace_lossy_sequences(bytes: &[u8]) -> Vec<u8> {
    substitute(bytes, LOSSY_UTF8, |_, out| {
        out.extend_from_slice(REPLACEMENT_UTF8)
    })
}
