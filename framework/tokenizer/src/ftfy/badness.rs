//! ftfy's mojibake detector: does the text contain an unlikely juxtaposition of characters?
//!
//! ftfy 6 sorts the few hundred characters that show up in UTF-8 mojibake into categories
//! (currency signs, accented capitals, box drawing, ...) and calls text "bad" when one of a
//! fixed list of short category sequences occurs anywhere in it. The categories come from
//! `tables::ftfy::MOJIBAKE_CATEGORIES`; the sequences are listed in `RULES` below, in the
//! order of ftfy's `BADNESS_RE`.

use super::super::pystr;
use super::super::tables::ftfy::MOJIBAKE_CATEGORIES;
use super::super::tables::lookup;

// Category bits, in the order `tools/tokenizer_tables.py` assigns them.
const COMMON: u16 = 1 << 0;
const C1: u16 = 1 << 1;
const BAD: u16 = 1 << 2;
const LAW: u16 = 1 << 3;
const CURRENCY: u16 = 1 << 4;
const START_PUNCT: u16 = 1 << 5;
const END_PUNCT: u16 = 1 << 6;
const NUMERIC: u16 = 1 << 7;
const KAOMOJI: u16 = 1 << 8;
const UPPER_ACCENTED: u16 = 1 << 9;
const LOWER_ACCENTED: u16 = 1 << 10;
const UPPER_COMMON: u16 = 1 << 11;
const LOWER_COMMON: u16 = 1 << 12;
const BOX: u16 = 1 << 13;

/// One position of a rule: which characters may stand there.
#[derive(Clone, Copy)]
enum Slot {
    /// A character of any of these categories.
    In(u16),
    /// A character of any of these categories, or one of the listed characters.
    InOr(u16, &'static str),
    /// One of the listed characters.
    OneOf(&'static str),
    /// `[a-zA-Z]`.
    AsciiLetter,
    /// `[a-z]`.
    AsciiLower,
    /// `[^A-Za-z]`.
    NotAsciiLetter,
    /// `[A-Za-z ]`.
    AsciiLetterOrSpace,
    /// `.`: anything but a newline.
    NotNewline,
    /// `\s` of the stdlib `re`.
    Space,
    /// `\w` of the stdlib `re`.
    Word,
}

const ACCENTED: u16 = LOWER_ACCENTED | UPPER_ACCENTED;
const ARABIC_MOJIBAKE: Slot = Slot::InOr(
    COMMON | CURRENCY | BAD | NUMERIC | START_PUNCT,
    "\u{178}\u{160}\u{ae}\u{b0}\u{b5}\u{bb}",
);

/// The sequences ftfy 6.3 treats as mojibake, one per `BADNESS_RE` alternative, except that
/// the alternative with an optional whitespace is written out twice and the one anchored to
/// the start of the text is handled by `ANCHORED_RULE`.
static RULES: &[&[Slot]] = &[
    &[Slot::In(C1)],
    &[
        Slot::In(BAD | ACCENTED | BOX | START_PUNCT | END_PUNCT | CURRENCY | NUMERIC | LAW),
        Slot::In(BAD),
    ],
    &[
        Slot::AsciiLetter,
        Slot::In(LOWER_COMMON | UPPER_COMMON),
        Slot::In(BAD),
    ],
    &[
        Slot::In(BAD),
        Slot::In(ACCENTED | BOX | START_PUNCT | END_PUNCT | CURRENCY | NUMERIC | LAW),
    ],
    &[
        Slot::In(LOWER_ACCENTED | LOWER_COMMON | BOX | END_PUNCT | CURRENCY | NUMERIC),
        Slot::In(UPPER_ACCENTED),
    ],
    &[
        Slot::In(BOX | END_PUNCT | CURRENCY | NUMERIC),
        Slot::In(LOWER_ACCENTED),
    ],
    &[
        Slot::In(LOWER_ACCENTED | BOX | END_PUNCT),
        Slot::In(CURRENCY),
    ],
    &[Slot::Space, Slot::In(UPPER_ACCENTED), Slot::In(CURRENCY)],
    &[Slot::In(UPPER_ACCENTED | BOX), Slot::In(NUMERIC | LAW)],
    &[
        Slot::In(ACCENTED | BOX | CURRENCY | END_PUNCT),
        Slot::In(START_PUNCT),
        Slot::In(NUMERIC),
    ],
    &[
        Slot::In(ACCENTED | CURRENCY | NUMERIC | BOX | LAW),
        Slot::In(END_PUNCT),
        Slot::In(START_PUNCT),
    ],
    &[Slot::In(CURRENCY | NUMERIC | BOX), Slot::In(START_PUNCT)],
    &[
        Slot::AsciiLower,
        Slot::In(UPPER_ACCENTED),
        Slot::In(START_PUNCT | CURRENCY),
    ],
    &[Slot::In(BOX), Slot::In(KAOMOJI)],
    &[
        Slot::In(ACCENTED | CURRENCY | NUMERIC | START_PUNCT | END_PUNCT | LAW),
        Slot::In(BOX),
    ],
    &[Slot::In(BOX), Slot::In(END_PUNCT)],
    &[
        Slot::In(ACCENTED),
        Slot::In(START_PUNCT | END_PUNCT),
        Slot::Word,
    ],
    // The ligature œ not followed by an unaccented Latin letter.
    &[Slot::OneOf("\u{152}\u{153}"), Slot::NotAsciiLetter],
    // A degree sign after an accented capital.
    &[Slot::In(UPPER_ACCENTED), Slot::OneOf("\u{b0}")],
    // Common two-character windows-1252 mojibake.
    &[
        Slot::OneOf("\u{c2}\u{c3}\u{ce}\u{d0}"),
        Slot::InOr(
            START_PUNCT | END_PUNCT,
            "\u{20ac}\u{153}\u{160}\u{161}\u{a2}\u{a3}\u{178}\u{17e}\u{a0}\u{ad}\u{ae}\u{a9}\u{b0}\
             \u{b7}\u{bb}\u{2013}\u{2014}\u{b4}",
        ),
    ],
    &[Slot::OneOf("\u{d7}"), Slot::OneOf("\u{b2}\u{b3}")],
    // Windows-1252 mojibake of Arabic: four characters.
    &[
        Slot::OneOf("\u{d8}\u{d9}"),
        ARABIC_MOJIBAKE,
        Slot::OneOf("\u{d8}\u{d9}"),
        ARABIC_MOJIBAKE,
    ],
    // Windows-1252 mojibake starting three-byte South Asian letters.
    &[
        Slot::OneOf("\u{e0}"),
        Slot::OneOf("\u{b2}\u{b5}\u{b9}\u{bc}\u{bd}\u{be}"),
    ],
    // MacRoman mojibake.
    &[
        Slot::OneOf("\u{221a}"),
        Slot::OneOf(
            "\u{b1}\u{2202}\u{2020}\u{2260}\u{ae}\u{2122}\u{b4}\u{2264}\u{2265}\u{a5}\u{b5}\u{f8}",
        ),
    ],
    &[Slot::OneOf("\u{2248}"), Slot::OneOf("\u{b0}\u{a2}")],
    &[
        Slot::OneOf("\u{201a}"),
        Slot::OneOf("\u{c4}"),
        Slot::OneOf("\u{ec}\u{ee}\u{ef}\u{f2}\u{f4}\u{fa}\u{f9}\u{fb}\u{2020}\u{b0}\u{a2}\u{3c0}"),
    ],
    &[
        Slot::OneOf("\u{201a}"),
        Slot::OneOf("\u{e2}\u{f3}"),
        Slot::OneOf("\u{e0}\u{e4}\u{b0}\u{ea}"),
    ],
    // Windows-1251 mojibake of U+2000-range punctuation.
    &[Slot::OneOf("\u{432}"), Slot::OneOf("\u{402}")],
    // Windows-1251 mojibake of Latin-1 or Cyrillic: three characters.
    &[
        Slot::OneOf("\u{412}\u{413}\u{420}\u{421}"),
        Slot::InOr(
            C1 | BAD | START_PUNCT | END_PUNCT | CURRENCY,
            "\u{b0}\u{b5}",
        ),
        Slot::OneOf("\u{412}\u{413}\u{420}\u{421}"),
    ],
    // Windows-1251 over Latin-1 over windows-1252, next to a Latin letter.
    &[
        Slot::OneOf("\u{413}"),
        Slot::OneOf("\u{45e}"),
        Slot::OneOf("\u{412}"),
        Slot::OneOf("\u{402}"),
        Slot::OneOf("\u{412}"),
        Slot::NotNewline,
        Slot::AsciiLetterOrSpace,
    ],
    // Windows-1252 encodings of 'à', 'á' and U+00A0.
    &[Slot::OneOf("\u{c3}"), Slot::OneOf("\u{a0}\u{a1}")],
    &[
        Slot::AsciiLower,
        Slot::OneOf("\u{c3}\u{c2}"),
        Slot::OneOf(" "),
    ],
    &[
        Slot::AsciiLower,
        Slot::Space,
        Slot::OneOf("\u{c3}\u{c2}"),
        Slot::OneOf(" "),
    ],
    // Â standing for itself before common punctuation.
    &[
        Slot::InOr(END_PUNCT, "abcdefghijklmnopqrstuvwxyz.,?!"),
        Slot::OneOf("\u{c2}"),
        Slot::InOr(START_PUNCT | END_PUNCT, " "),
    ],
    // Windows-1253 mojibake of U+2000-range punctuation.
    &[
        Slot::OneOf("\u{3b2}"),
        Slot::OneOf("\u{20ac}"),
        Slot::OneOf("\u{2122}\u{a0}\u{386}\u{ad}\u{ae}\u{b0}"),
    ],
    // Windows-1253 mojibake of Latin-1 or Greek: three characters.
    &[
        Slot::OneOf("\u{392}\u{393}\u{39e}\u{39f}"),
        Slot::InOr(C1 | BAD | START_PUNCT | END_PUNCT | CURRENCY, "\u{b0}"),
        Slot::OneOf("\u{392}\u{393}\u{39e}\u{39f}"),
    ],
    // Windows-1257 mojibake of U+2000-range punctuation.
    &[Slot::OneOf("\u{101}"), Slot::OneOf("\u{20ac}")],
];

/// The rule that only applies at the very start of the text (`^[ÃÂ][ ]`).
static ANCHORED_RULE: &[Slot] = &[Slot::OneOf("\u{c3}\u{c2}"), Slot::OneOf(" ")];

/// A character together with its mojibake categories.
#[derive(Clone, Copy)]
struct Classified {
    c: char,
    categories: u16,
}

impl Slot {
    fn accepts(self, item: Classified) -> bool {
        let c = item.c;
        match self {
            Slot::In(mask) => item.categories & mask != 0,
            Slot::InOr(mask, extra) => item.categories & mask != 0 || extra.contains(c),
            Slot::OneOf(chars) => chars.contains(c),
            Slot::AsciiLetter => c.is_ascii_alphabetic(),
            Slot::AsciiLower => c.is_ascii_lowercase(),
            Slot::NotAsciiLetter => !c.is_ascii_alphabetic(),
            Slot::AsciiLetterOrSpace => c.is_ascii_alphabetic() || c == ' ',
            Slot::NotNewline => c != '\n',
            Slot::Space => pystr::is_space(c),
            Slot::Word => pystr::is_word(c),
        }
    }
}

fn matches_at(rule: &[Slot], text: &[Classified], start: usize) -> bool {
    text.len() - start >= rule.len()
        && rule
            .iter()
            .zip(&text[start..])
            .all(|(slot, &item)| slot.accepts(item))
}

/// ftfy's `is_bad`: whether the text contains a sequence that is very likely mojibake.
pub fn is_bad(text: &str) -> bool {
    let classified: Vec<Classified> = text
        .chars()
        .map(|c| Classified {
            c,
            categories: lookup(MOJIBAKE_CATEGORIES, c).unwrap_or(0),
        })
        .collect();
    if matches_at(ANCHORED_RULE, &classified, 0) {
        return true;
    }
    (0..classified.len()).any(|start| {
        RULES
            .iter()
            .any(|rule| matches_at(rule, &classified, start))
    })
}
