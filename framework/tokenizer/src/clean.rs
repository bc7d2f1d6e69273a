//! CLIP's text cleaning before pre-tokenization:
//! `whitespace_clean(basic_clean(text)).lower()`, where `basic_clean` is `ftfy.fix_text`,
//! `html.unescape` twice and `str.strip()`, and `whitespace_clean` replaces every run of
//! `regex`-module whitespace with one space and strips again.

use super::{ftfy, html, pystr};

/// Cleans `text` exactly as OpenAI's `simple_tokenizer` does before splitting it.
pub fn clean(text: &str) -> String {
    let fixed = ftfy::fix_text(text);
    let unescaped_once = html::unescape(&fixed);
    let unescaped = html::unescape(&unescaped_once);
    let collapsed = collapse_whitespace(pystr::strip(&unescaped));
    pystr::lower(pystr::strip(&collapsed))
}

/// `regex.sub(r"\s+", " ", text)`.
fn collapse_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_space = false;
    for c in text.chars() {
        if pystr::is_regex_space(c) {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
        } else {
            out.push(c);
            in_space = false;
        }
    }
    out
}
