//! Tests against the reference fixtures written by `tools/fixtures/tokenizer.py` (OpenAI's
//! `clip.simple_tokenizer`, ftfy 6.3.1, CPython 3.11).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::*;

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/tokenizer"
    ))
    .join(name)
}

fn load<T: serde::de::DeserializeOwned>(name: &str) -> T {
    let path = fixture_path(name);
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[derive(Deserialize)]
struct EncodeRow {
    text: String,
    ids: Vec<u32>,
}

#[derive(Deserialize)]
struct TokenizeFixture {
    vocab_size: usize,
    sot: u32,
    eot: u32,
    rows: Vec<TokenizeRow>,
}

#[derive(Deserialize)]
struct TokenizeRow {
    text: String,
    context_length: usize,
    truncated: Vec<u32>,
    fits: bool,
    token_count: usize,
}

#[derive(Deserialize)]
struct DecodeRow {
    ids: Vec<u32>,
    text: String,
}

#[derive(Deserialize)]
struct FtfyFixture {
    is_bad: Vec<BadnessRow>,
    fix_text: Vec<FixTextRow>,
}

#[derive(Deserialize)]
struct BadnessRow {
    text: String,
    bad: bool,
}

#[derive(Deserialize)]
struct FixTextRow {
    text: String,
    fixed: String,
}

#[derive(Deserialize)]
struct PyStrRow {
    text: String,
    lower: String,
    strip: String,
    nfc: String,
    unescape: String,
}

fn encode_groups() -> BTreeMap<String, Vec<EncodeRow>> {
    load("encode.json")
}

/// Asserts that no case failed, printing the first few failures.
fn assert_all_pass(what: &str, failures: &[String], total: usize) {
    let shown: Vec<&String> = failures.iter().take(10).collect();
    assert!(
        failures.is_empty(),
        "{what}: {} of {total} differ from the reference, e.g.:\n{shown:#?}",
        failures.len()
    );
}

#[test]
fn encode_matches_the_reference_for_every_fixture_string() {
    let tokenizer = ClipTokenizer::new();
    let groups = encode_groups();
    let mut total = 0;
    for (group, rows) in &groups {
        let failures: Vec<String> = rows
            .iter()
            .filter_map(|row| {
                let ids = tokenizer.encode(&row.text);
                (ids != row.ids).then(|| format!("{:?}: got {ids:?}, want {:?}", row.text, row.ids))
            })
            .collect();
        eprintln!(
            "group {group}: {} strings, {} differ",
            rows.len(),
            failures.len()
        );
        assert_all_pass(group, &failures, rows.len());
        total += rows.len();
    }
    assert!(total >= 1000, "only {total} fixture strings");
}

#[test]
fn vocabulary_and_special_tokens_match_the_reference() {
    let fixture: TokenizeFixture = load("tokenize.json");
    let tokenizer = ClipTokenizer::new();
    assert_eq!(tokenizer.vocab_size(), fixture.vocab_size);
    assert_eq!((SOT_TOKEN, EOT_TOKEN), (fixture.sot, fixture.eot));
    assert_eq!(
        (tokenizer.sot_token(), tokenizer.eot_token()),
        (fixture.sot, fixture.eot)
    );
}

#[test]
fn tokenize_with_truncation_matches_clip_tokenize() {
    let fixture: TokenizeFixture = load("tokenize.json");
    let tokenizer = ClipTokenizer::new();
    let failures: Vec<String> = fixture
        .rows
        .iter()
        .filter_map(|row| {
            let tokens = tokenizer
                .tokenize(&row.text, row.context_length, true)
                .unwrap();
            (tokens != row.truncated).then(|| format!("{:?}: got {tokens:?}", row.text))
        })
        .collect();
    assert_all_pass("tokenize(truncate=true)", &failures, fixture.rows.len());
    assert!(fixture.rows.iter().any(|row| !row.fits));
    assert!(fixture.rows.iter().any(|row| row.fits));
}

#[test]
fn tokenize_without_truncation_pads_fitting_texts_and_rejects_long_ones() {
    let fixture: TokenizeFixture = load("tokenize.json");
    let tokenizer = ClipTokenizer::new();
    for row in &fixture.rows {
        let result = tokenizer.tokenize(&row.text, row.context_length, false);
        if row.fits {
            assert_eq!(result.unwrap(), row.truncated, "{:?}", row.text);
        } else {
            let error = result.unwrap_err();
            let TokenizeError::TooLong {
                text,
                token_count,
                context_length,
            } = &error
            else {
                panic!("unexpected error {error:?}");
            };
            assert_eq!(
                (*token_count, *context_length),
                (row.token_count, row.context_length)
            );
            assert!(row.text.starts_with(text.trim_end_matches('…')));
            let message = error.to_string();
            assert!(message.contains(&row.token_count.to_string()), "{message}");
            let quoted_start: String = text.chars().take(10).collect();
            assert!(message.contains(&quoted_start), "{message}");
        }
    }
}

#[test]
fn tokenize_frames_ids_with_start_end_and_padding() {
    let fixture: TokenizeFixture = load("tokenize.json");
    let tokenizer = ClipTokenizer::new();
    let row = fixture.rows.iter().find(|row| row.fits).unwrap();
    let ids = tokenizer.encode(&row.text);
    let tokens = tokenizer
        .tokenize(&row.text, row.context_length, false)
        .unwrap();
    assert_eq!(tokens.len(), row.context_length);
    assert_eq!(tokens[0], fixture.sot);
    assert_eq!(&tokens[1..=ids.len()], ids.as_slice());
    assert_eq!(tokens[ids.len() + 1], fixture.eot);
    assert!(tokens[ids.len() + 2..].iter().all(|&id| id == PAD_TOKEN));
    assert_eq!(row.token_count, ids.len() + 2);
}

#[test]
fn batch_errors_name_the_failing_index() {
    let fixture: TokenizeFixture = load("tokenize.json");
    let tokenizer = ClipTokenizer::new();
    let fitting = fixture.rows.iter().find(|row| row.fits).unwrap();
    let too_long = fixture.rows.iter().find(|row| !row.fits).unwrap();
    let texts = [
        fitting.text.as_str(),
        fitting.text.as_str(),
        too_long.text.as_str(),
    ];
    let error = tokenizer
        .tokenize_batch(&texts, DEFAULT_CONTEXT_LENGTH, false)
        .unwrap_err();
    assert_eq!(error.index, 2);
    assert!(error.to_string().starts_with("text 2 of the batch"));
    let batch = tokenizer
        .tokenize_batch(&texts, DEFAULT_CONTEXT_LENGTH, true)
        .unwrap();
    assert_eq!(batch[0], fitting.truncated);
    assert_eq!(batch[2], too_long.truncated);
}

#[test]
fn zero_context_length_is_an_error() {
    let tokenizer = ClipTokenizer::new();
    assert_eq!(
        tokenizer.tokenize("cat", 0, true),
        Err(TokenizeError::ZeroContextLength)
    );
}

#[test]
fn decode_matches_the_reference() {
    let rows: Vec<DecodeRow> = load("decode.json");
    let tokenizer = ClipTokenizer::new();
    for row in &rows {
        assert_eq!(tokenizer.decode(&row.ids), row.text, "{:?}", row.ids);
    }
}

#[test]
fn decode_round_trips_plain_ascii_words() {
    let tokenizer = ClipTokenizer::new();
    let groups = encode_groups();
    let plain: Vec<&str> = groups
        .values()
        .flatten()
        .map(|row| row.text.as_str())
        .filter(|text| {
            !text.is_empty()
                && text.bytes().all(|b| b.is_ascii_lowercase() || b == b' ')
                && !text.starts_with(' ')
                && !text.ends_with(' ')
                && !text.contains("  ")
        })
        .collect();
    assert!(plain.len() > 100);
    for text in plain {
        assert_eq!(
            tokenizer.decode(&tokenizer.encode(text)),
            format!("{text} ")
        );
    }
}

#[test]
fn ftfy_badness_matches_the_reference() {
    let fixture: FtfyFixture = load("ftfy.json");
    let failures: Vec<String> = fixture
        .is_bad
        .iter()
        .filter(|row| ftfy::badness::is_bad(&row.text) != row.bad)
        .map(|row| format!("{:?} should be bad: {}", row.text, row.bad))
        .collect();
    assert_all_pass("is_bad", &failures, fixture.is_bad.len());
    assert!(fixture.is_bad.iter().filter(|row| row.bad).count() > 100);
    assert!(fixture.is_bad.iter().filter(|row| !row.bad).count() > 100);
}

#[test]
fn ftfy_fix_text_matches_the_reference() {
    let fixture: FtfyFixture = load("ftfy.json");
    let failures: Vec<String> = fixture
        .fix_text
        .iter()
        .filter_map(|row| {
            let fixed = ftfy::fix_text(&row.text);
            (fixed != row.fixed.as_str())
                .then(|| format!("{:?}: got {fixed:?}, want {:?}", row.text, row.fixed))
        })
        .collect();
    assert_all_pass("fix_text", &failures, fixture.fix_text.len());
}

#[test]
fn python_string_semantics_match_the_reference() {
    let rows: Vec<PyStrRow> = load("pystr.json");
    let mut failures = Vec::new();
    for row in &rows {
        let text = row.text.as_str();
        let checks = [
            ("lower", pystr::lower(text), &row.lower),
            ("strip", pystr::strip(text).to_owned(), &row.strip),
            ("nfc", nfc::nfc(text), &row.nfc),
            ("unescape", html::unescape(text).into_owned(), &row.unescape),
        ];
        for (name, got, want) in checks {
            if &got != want {
                failures.push(format!("{name}({text:?}): got {got:?}, want {want:?}"));
            }
        }
    }
    assert_all_pass("str semantics", &failures, rows.len());
}

#[test]
fn loading_the_vocabulary_from_files_matches_the_embedded_one() {
    let embedded = ClipTokenizer::new();
    let directory = std::env::temp_dir().join(format!("mvlpt-tokenizer-{}", std::process::id()));
    std::fs::create_dir_all(&directory).unwrap();
    let gz_path = directory.join("vocab.txt.gz");
    let plain_path = directory.join("vocab.txt");
    std::fs::write(&gz_path, EMBEDDED_BPE).unwrap();
    std::fs::write(&plain_path, bpe::read_merges_text(EMBEDDED_BPE).unwrap()).unwrap();
    let samples: Vec<String> = encode_groups()
        .into_values()
        .flat_map(|rows| rows.into_iter().take(5))
        .map(|row| row.text)
        .collect();
    for path in [&gz_path, &plain_path] {
        let loaded = ClipTokenizer::from_bpe_file(path).unwrap();
        assert_eq!(loaded.vocab_size(), embedded.vocab_size());
        for text in &samples {
            assert_eq!(loaded.encode(text), embedded.encode(text), "{text:?}");
        }
    }
    std::fs::remove_dir_all(&directory).unwrap();
}

#[test]
fn a_missing_vocabulary_file_is_an_error_naming_it() {
    let path = fixture_path("no-such-vocabulary.txt.gz");
    let error = ClipTokenizer::from_bpe_file(&path).unwrap_err();
    assert!(format!("{error:#}").contains("no-such-vocabulary.txt.gz"));
}

#[test]
fn the_tokenizer_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<ClipTokenizer>();
}
