//! Natural-language captions of scenes ("two small red stars on a striped background"), with
//! enough variety (optional attributes, synonyms, sentence frames, word orders) for a text
//! tower to learn the words rather than one fixed string per scene.
//!
//! Every class name of every task built from seen values appears in captions; the held-out
//! shapes and the parity words never do, because pretraining scenes never contain held-out
//! shapes and no caption speaks of parity.

use crate::world::{Content, Scene, Shape, Size, COUNT_WORDS, DIGIT_WORDS};
use mvlpt_framework::rng::Rng;
use rand::seq::IndexedRandom;
use rand::Rng as _;

/// A caption of `scene`, drawn from `rng`.
pub fn caption(scene: &Scene, rng: &mut Rng) -> String {
    let (phrase, plural) = match &scene.content {
        Content::Objects {
            shape,
            size,
            centres,
            position,
            ..
        } => {
            let np = object_phrase(*shape, *size, centres.len(), scene, rng);
            let pos = match position {
                Some(p) if rng.random_bool(0.75) => format!(" {}", p.phrase()),
                _ => String::new(),
            };
            (format!("{np}{pos}"), centres.len() > 1)
        }
        Content::Glyph { digit, .. } => (digit_phrase(*digit, scene, rng), false),
    };
    let texture = scene.background.texture.name();
    let mentions_background = rng.random_bool(0.65);
    let body = if mentions_background {
        let tail = pick(
            rng,
            &[
                " on a {} background",
                " on a {} background",
                ", {} background",
            ],
        );
        format!("{phrase}{}", tail.replace("{}", texture))
    } else {
        phrase.clone()
    };
    let there = if plural { "there are " } else { "there is " };
    let frame = rng.random_range(0..7);
    let sentence = match frame {
        0 | 1 => body,
        2 => format!("a photo of {body}"),
        3 => format!("an image of {body}"),
        4 => format!("a picture of {body}"),
        5 => format!("{there}{body}"),
        _ if mentions_background => {
            format!("{} {texture} background with {phrase}", article(texture))
        }
        _ => format!("a photo of {body}"),
    };
    format!("{sentence}.")
}

/// "two small red stars", "a large shape in blue", "one cyan diamond".
fn object_phrase(shape: Shape, size: Size, count: usize, scene: &Scene, rng: &mut Rng) -> String {
    let plural = count > 1;
    let noun = if rng.random_bool(0.85) {
        if plural {
            shape.plural()
        } else {
            shape.name()
        }
    } else {
        let generic = pick(rng, &["shape", "object"]);
        if plural {
            if generic == "shape" {
                "shapes"
            } else {
                "objects"
            }
        } else {
            generic
        }
    };
    let size_word = rng.random_bool(0.75).then(|| size_word(size, rng));
    let colour = rng.random_bool(0.8).then(|| scene.colour.name());
    let colour_after = colour.is_some() && rng.random_bool(0.2);
    let mut words: Vec<&str> = Vec::new();
    words.extend(size_word);
    if !colour_after {
        words.extend(colour);
    }
    words.push(noun);
    let mut np = words.join(" ");
    if let (true, Some(c)) = (colour_after, colour) {
        np = format!("{np} in {c}");
    }
    let determiner = if plural {
        COUNT_WORDS[count - 1].to_string()
    } else {
        match rng.random_range(0..4) {
            0 => "one".to_string(),
            1 => "a single".to_string(),
            _ => article(&np).to_string(),
        }
    };
    format!("{determiner} {np}")
}

/// "the digit seven", "a red 7", "the number five in green".
fn digit_phrase(digit: u8, scene: &Scene, rng: &mut Rng) -> String {
    let word = DIGIT_WORDS[usize::from(digit)];
    let numeral = digit.to_string();
    let colour = scene.colour.name();
    let with_colour = rng.random_bool(0.75);
    let name = if rng.random_bool(0.5) {
        word
    } else {
        numeral.as_str()
    };
    if !with_colour {
        return match rng.random_range(0..3) {
            0 => format!("the digit {name}"),
            1 => format!("the number {name}"),
            _ => format!("a handwritten {name}"),
        };
    }
    match rng.random_range(0..5) {
        0 => format!("{} {colour} {numeral}", article(colour)),
        1 => format!("the digit {name} in {colour}"),
        2 => format!("{} {colour} digit {word}", article(colour)),
        3 => format!("the number {name} written in {colour}"),
        _ => format!("the {colour} number {name}"),
    }
}

fn size_word(size: Size, rng: &mut Rng) -> &'static str {
    let options: &[&str] = match size {
        Size::Small => &["small", "small", "tiny", "little"],
        Size::Medium => &["medium", "medium", "medium-sized"],
        Size::Large => &["large", "large", "big"],
    };
    pick(rng, options)
}

fn pick(rng: &mut Rng, options: &[&'static str]) -> &'static str {
    options.choose(rng).copied().unwrap_or_default()
}

/// "a" or "an" before `next` (by its first letter).
fn article(next: &str) -> &'static str {
    match next.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
        _ => "a",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::SceneSpec;
    use mvlpt_framework::rng::seeded;

    #[test]
    fn captions_are_lower_case_sentences_with_articles_right() {
        let spec = SceneSpec::pretraining();
        for seed in 0..300 {
            let mut rng = seeded(seed);
            let scene = spec.sample(&mut rng);
            let text = caption(&scene, &mut rng);
            assert!(text.ends_with('.'), "{text}");
            assert_eq!(text, text.to_lowercase());
            assert!(
                !text.contains("a orange") && !text.contains("an red"),
                "{text}"
            );
            assert!(!text.contains("  "), "{text}");
        }
    }
}
