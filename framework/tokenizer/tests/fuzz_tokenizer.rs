//! Property tests of the CLIP tokenizer: random Unicode, text assembled from the pieces its
//! cleaning steps treat specially (HTML entities, mojibake, ligatures, combining marks, special
//! tokens, control characters), invalid UTF-8 decoded as `mvlpt` decodes it, and very long
//! lines. It never panics, and every result has the shape `clip.tokenize` gives.
//!
//! `PROPTEST_CASES` scales the run (256 cases by default; docs/testing.md shows a long run).

use mvlpt_tokenizer::{ClipTokenizer, TokenizeError, EOT_TOKEN, PAD_TOKEN, SOT_TOKEN};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use std::sync::OnceLock;

fn tokenizer() -> &'static ClipTokenizer {
    static TOKENIZER: OnceLock<ClipTokenizer> = OnceLock::new();
    TOKENIZER.get_or_init(ClipTokenizer::new)
}

/// Pieces the cleaning steps (ftfy, HTML unescaping, whitespace, lower-casing, the split
/// pattern) handle specially.
const PIECES: &[&str] = &[
    "&amp;",
    "&lt;b&gt;",
    "&#x1F600;",
    "&#99999999999;",
    "&#0;",
    "&nbsp",
    "&amp;amp;",
    "Ã©",
    "â€™",
    "Ã¢â‚¬Å“",
    "ﬁ",
    "ﬀ",
    "\u{301}",
    "e\u{301}",
    "Σ",
    "ΣΑΣ",
    "İ",
    "ß",
    "'s",
    "'LL",
    "<|startoftext|>",
    "<|endoftext|>",
    " ",
    "\t",
    "\n",
    "\r\n",
    "\u{a0}",
    "\u{200b}",
    "\u{feff}",
    "\u{0}",
    "\u{7f}",
    "\u{85}",
    "\u{2028}",
    "1234",
    "١٢٣",
    "🐈",
    "👩‍👩‍👧",
    "a",
    "Cat",
    "photo",
    "\u{d7ff}",
    "\u{e000}",
    "\u{10ffff}",
    "｡",
    "“",
    "”",
    "—",
    "...",
];

fn tricky_text(max_pieces: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            3 => prop::sample::select(PIECES).prop_map(str::to_string),
            1 => any::<char>().prop_map(String::from),
        ],
        0..max_pieces,
    )
    .prop_map(|pieces| pieces.concat())
}

/// Tokenizes `text` and checks the result against its definition: `[SOT, encode(text), EOT]`,
/// cut to `length` with EOT last when truncating (an error otherwise), padded with 0.
fn check(text: &str, length: usize, truncate: bool) -> Result<(), TestCaseError> {
    let tokenizer = tokenizer();
    let encoded = tokenizer.encode(text);
    let _ = tokenizer.decode(&encoded);
    let mut expected = vec![SOT_TOKEN];
    expected.extend(&encoded);
    expected.push(EOT_TOKEN);
    let fits = expected.len() <= length;
    match tokenizer.tokenize(text, length, truncate) {
        Ok(ids) => {
            prop_assert!(
                fits || truncate,
                "{} tokens do not fit {length}",
                expected.len()
            );
            expected.truncate(length);
            if let Some(last) = expected.last_mut() {
                *last = EOT_TOKEN;
            }
            expected.resize(length, PAD_TOKEN);
            prop_assert_eq!(ids, expected);
        }
        Err(TokenizeError::TooLong { token_count, .. }) => {
            prop_assert!(!truncate, "truncation never fails");
            prop_assert_eq!(token_count, expected.len());
            prop_assert!(!fits);
        }
        Err(other) => prop_assert!(false, "unexpected error {other}"),
    }
    Ok(())
}

/// The run's settings: the configured number of cases divided by `divisor` (at least 4),
/// failures reported, not stored in the source tree.
fn settings(divisor: u32) -> ProptestConfig {
    let base = ProptestConfig::default();
    ProptestConfig {
        cases: (base.cases / divisor).max(4),
        failure_persistence: None,
        ..base
    }
}

proptest! {
    #![proptest_config(settings(1))]

    #[test]
    fn any_unicode_text_tokenizes(text in any::<String>(), length in 1usize..100, truncate: bool) {
        check(&text, length, truncate)?;
    }

    #[test]
    fn text_made_of_special_pieces_tokenizes(
        text in tricky_text(48),
        length in 1usize..100,
        truncate: bool,
    ) {
        check(&text, length, truncate)?;
    }

    #[test]
    fn invalid_utf8_read_lossily_tokenizes(
        bytes in prop::collection::vec(any::<u8>(), 0..256),
        truncate: bool,
    ) {
        check(&String::from_utf8_lossy(&bytes), 77, truncate)?;
    }
}

proptest! {
    #![proptest_config(settings(32))]

    #[test]
    fn very_long_lines_tokenize(text in tricky_text(64), repeats in 500usize..3000) {
        let line = text.repeat(repeats);
        check(&line, 77, true)?;
        check(&line, 77, false)?;
    }
}
