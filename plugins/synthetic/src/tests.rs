//! Tests of the synthetic dataset: determinism, label coverage, captions faithful to the scene,
//! held-out values kept out of pretraining, distinct images, plugin registration.

use super::*;
use mvlpt_framework::config::{LoadedConfig, Section};
use mvlpt_framework::plugin::{PluginKind, Registry};
use std::collections::{BTreeSet, HashSet};

fn dataset(task: Task, options: SyntheticOptions) -> SyntheticDataset {
    SyntheticDataset::new(task, options).unwrap()
}

fn pretraining(train_size: usize) -> SyntheticDataset {
    dataset(
        Task::Shape,
        SyntheticOptions {
            pretraining: true,
            train_size,
            ..Default::default()
        },
    )
}

/// The words of a caption, without punctuation.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '-')
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Whether `phrase` occurs in `text` as whole words.
fn has_phrase(text: &str, phrase: &str) -> bool {
    let padded = format!(" {} ", words(text).join(" "));
    padded.contains(&format!(" {phrase} "))
}

#[test]
fn samples_and_images_are_deterministic_by_seed() {
    for task in Task::ALL {
        let a = dataset(task, SyntheticOptions::default());
        let b = dataset(task, SyntheticOptions::default());
        let sa = a.samples(Split::Val).unwrap();
        assert_eq!(sa, b.samples(Split::Val).unwrap(), "{task:?}");
        for s in &sa[..5] {
            assert_eq!(a.load_image(s).unwrap(), b.load_image(s).unwrap());
        }
        let other = dataset(
            task,
            SyntheticOptions {
                seed: 1,
                ..Default::default()
            },
        );
        let so = other.samples(Split::Val).unwrap();
        assert_ne!(
            sa[0].image, so[0].image,
            "{task:?}: seed changes the samples"
        );
        assert_ne!(
            a.load_image(&sa[0]).unwrap(),
            other.load_image(&so[0]).unwrap()
        );
    }
}

#[test]
fn splits_and_tasks_never_share_an_image() {
    let mut seen = HashSet::new();
    for task in Task::ALL {
        let d = dataset(task, SyntheticOptions::default());
        for split in [Split::Train, Split::Val, Split::Test] {
            for s in d.samples(split).unwrap() {
                assert!(
                    seen.insert(s.image.clone()),
                    "{task:?} {split:?} repeats {}",
                    s.image
                );
            }
        }
    }
}

#[test]
fn every_class_of_every_task_occurs_in_each_split() {
    for task in Task::ALL {
        let d = dataset(task, SyntheticOptions::default());
        let classes = d.info().classnames.len();
        assert_eq!(
            classes,
            d.info().classnames.iter().collect::<BTreeSet<_>>().len(),
            "{task:?}: class names are distinct"
        );
        for split in [Split::Train, Split::Test] {
            let labels: BTreeSet<usize> = d
                .samples(split)
                .unwrap()
                .iter()
                .map(|s| s.label().unwrap())
                .collect();
            assert_eq!(labels, (0..classes).collect(), "{task:?} {split:?}");
        }
    }
}

#[test]
fn there_are_at_least_eight_tasks_with_templates() {
    assert!(Task::ALL.len() >= 8);
    for task in Task::ALL {
        assert!(!task.templates().is_empty());
        assert!(task.templates().iter().all(|t| t.contains("{}")));
        assert_eq!(Task::from_name(task.name()).unwrap(), task);
    }
    assert!(Task::from_name("shapes").is_err());
}

/// Checks that every attribute word of a caption names the scene's own value.
fn assert_caption_matches(scene: &Scene, caption: &str) {
    let w = words(caption);
    let has = |word: &str| w.iter().any(|x| x == word);
    for c in Colour::ALL {
        if has(c.name()) {
            assert_eq!(c, scene.colour, "{caption}");
        }
    }
    for t in Texture::ALL {
        if has(t.name()) {
            assert_eq!(t, scene.background.texture, "{caption}");
        }
    }
    match &scene.content {
        Content::Objects {
            shape,
            size,
            centres,
            position,
            ..
        } => {
            let mut named_shape = false;
            for s in Shape::SEEN.iter().chain(&Shape::NOVEL) {
                if has(s.name()) || has(s.plural()) {
                    assert_eq!(s, shape, "{caption}");
                    named_shape = true;
                }
            }
            let generic = ["shape", "shapes", "object", "objects"];
            assert!(named_shape || generic.iter().any(|g| has(g)), "{caption}");
            for (i, word) in COUNT_WORDS.iter().enumerate().skip(1) {
                if has(word) {
                    assert_eq!(i + 1, centres.len(), "{caption}");
                }
            }
            if centres.len() > 1 {
                assert!(has(COUNT_WORDS[centres.len() - 1]), "{caption}");
            }
            for (s, synonyms) in [
                (Size::Small, &["small", "tiny", "little"][..]),
                (Size::Medium, &["medium", "medium-sized"][..]),
                (Size::Large, &["large", "big"][..]),
            ] {
                if synonyms.iter().any(|x| has(x)) {
                    assert_eq!(s, *size, "{caption}");
                }
            }
            for p in Position::ALL {
                if has_phrase(caption, p.phrase()) {
                    assert_eq!(Some(p), *position, "{caption}");
                }
            }
        }
        Content::Glyph { digit, .. } => {
            let own = usize::from(*digit);
            let mentioned: Vec<usize> = (0..10)
                .filter(|&d| has(DIGIT_WORDS[d]) || has(&d.to_string()))
                .collect();
            assert_eq!(mentioned, vec![own], "{caption}");
        }
    }
}

#[test]
fn captions_mention_the_sampled_attributes_and_nothing_else() {
    let mut mentioned = [0usize; 4];
    for task in Task::ALL {
        let d = dataset(task, SyntheticOptions::default());
        for s in d.samples(Split::Val).unwrap() {
            let ImageSource::Procedural(seed) = s.image else {
                panic!("procedural images expected")
            };
            let scene = d.scene(seed);
            let caption = s.caption.unwrap();
            assert_caption_matches(&scene, &caption);
            let w = words(&caption);
            mentioned[0] += usize::from(w.iter().any(|x| x == scene.colour.name()));
            mentioned[1] += usize::from(w.iter().any(|x| x == scene.background.texture.name()));
            if let Content::Objects { shape, .. } = scene.content {
                mentioned[2] +=
                    usize::from(w.iter().any(|x| x == shape.name() || x == shape.plural()));
            }
            mentioned[3] += 1;
        }
    }
    // Attributes are optional in a caption but usually present.
    assert!(mentioned[0] * 10 > mentioned[3] * 7, "{mentioned:?}");
    assert!(mentioned[1] * 10 > mentioned[3] * 5, "{mentioned:?}");
    assert!(mentioned[2] > 0, "{mentioned:?}");
}

#[test]
fn pretraining_captions_name_every_seen_class_and_no_held_out_value() {
    let d = pretraining(6000);
    let samples = d.samples(Split::Train).unwrap();
    let captions: Vec<String> = samples.iter().map(|s| s.caption.clone().unwrap()).collect();
    assert!(samples.iter().all(|s| s.labels.is_empty()));
    for task in Task::ALL.into_iter().filter(|t| !t.is_unseen()) {
        for class in task.classnames() {
            assert!(
                captions.iter().any(|c| has_phrase(c, &class)),
                "class {class:?} of {task:?} never appears in pretraining captions"
            );
        }
    }
    let held_out: Vec<String> = Shape::NOVEL
        .iter()
        .flat_map(|s| [s.name().to_string(), s.plural().to_string()])
        .chain(Task::Parity.classnames())
        .collect();
    for c in &captions {
        for word in words(c) {
            assert!(!held_out.contains(&word), "held-out word {word:?} in {c:?}");
        }
    }
    for s in &samples[..2000] {
        let ImageSource::Procedural(seed) = s.image else {
            panic!("procedural images expected")
        };
        if let Content::Objects { shape, .. } = d.scene(seed).content {
            assert!(Shape::SEEN.contains(&shape), "pretraining drew {shape:?}");
        }
    }
    // Every unseen task's class names are held out.
    for task in Task::ALL.into_iter().filter(|t| t.is_unseen()) {
        for class in task.classnames() {
            assert!(held_out.contains(&class), "{class}");
        }
    }
}

#[test]
fn images_differ_across_samples_and_have_the_configured_size() {
    let d = dataset(
        Task::Colour,
        SyntheticOptions {
            image_size: 48,
            ..Default::default()
        },
    );
    let images: Vec<RgbImage8> = d.samples(Split::Test).unwrap()[..60]
        .iter()
        .map(|s| d.load_image(s).unwrap())
        .collect();
    for (i, a) in images.iter().enumerate() {
        assert_eq!((a.width(), a.height()), (48, 48));
        for b in &images[i + 1..] {
            assert_ne!(a, b);
        }
    }
}

#[test]
fn the_foreground_colour_dominates_a_large_single_object() {
    // A large centred object covers the centre pixel with (about) its colour.
    let d = dataset(Task::Position, SyntheticOptions::default());
    let mut checked = 0;
    for s in d.samples(Split::Val).unwrap() {
        let ImageSource::Procedural(seed) = s.image else {
            panic!()
        };
        let scene = d.scene(seed);
        let Content::Objects {
            shape,
            size,
            position,
            ..
        } = &scene.content
        else {
            panic!()
        };
        if *size != Size::Large
            || *position != Some(Position::Center)
            || matches!(shape, Shape::Cross | Shape::Star)
        {
            continue;
        }
        let image = d.load_image(&s).unwrap();
        let centre = &image.row(32)[32 * 3..32 * 3 + 3];
        for (c, expected) in centre.iter().zip(scene.rgb) {
            assert!(
                (f32::from(*c) - expected).abs() <= 1.0,
                "{centre:?} vs {:?}",
                scene.rgb
            );
        }
        checked += 1;
    }
    assert!(checked > 3, "only {checked} large centred objects");
}

#[test]
fn plugins_are_registered_and_read_their_options() {
    let registry = Registry::builtin().unwrap();
    let mut names = vec!["synthetic".to_string()];
    names.extend(Task::ALL.iter().map(|t| format!("synthetic_{}", t.name())));
    for name in &names {
        assert!(registry.contains(PluginKind::Dataset, name), "{name}");
    }
    let config = LoadedConfig::load(
        None,
        &[
            "data.synthetic.task=\"digit\"".to_string(),
            "data.synthetic.test_size=7".to_string(),
            "data.synthetic_parity.val_size=3".to_string(),
            "data.synthetic_count.task=\"shape\"".to_string(),
        ],
    )
    .unwrap();
    let build = |name: &str| {
        let factory = registry.dataset(name).unwrap();
        factory(&DatasetContext {
            section: Section::new(&config.figment, format!("data.{name}")),
            root: "data".into(),
        })
    };
    let digit = build("synthetic").unwrap();
    assert_eq!(digit.info().name, "synthetic_digit");
    assert_eq!(digit.samples(Split::Test).unwrap().len(), 7);
    let parity = build("synthetic_parity").unwrap();
    assert_eq!(parity.info().classnames, ["even", "odd"]);
    assert_eq!(parity.samples(Split::Val).unwrap().len(), 3);
    let err = build("synthetic_count").err().unwrap().to_string();
    assert!(err.contains("data.synthetic_count.task"), "{err}");
}
