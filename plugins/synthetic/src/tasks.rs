//! The classification tasks over the synthetic world: for each, its class names, zero-shot
//! templates, the scenes it draws and how a scene is labelled.
//!
//! Eight tasks use only what pretraining shows (their class names all occur in pretraining
//! captions); two are "unseen" targets in the spirit of ELEVATER: `novel_shape` (shapes never
//! drawn nor named in pretraining) and `parity` (odd/even digits: seen images, unseen words).

use crate::world::{
    Colour, Content, ContentKind, Position, Scene, SceneSpec, Shape, Size, Texture, COUNT_WORDS,
    DIGIT_WORDS, NATURAL_COUNTS, SINGLE_COUNT, UNIFORM_COUNTS,
};
use anyhow::{bail, Result};

/// A classification task of the synthetic world.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Task {
    /// Which of the six seen shapes.
    Shape,
    /// Which of eight colours (objects and digits).
    Colour,
    /// Small, medium or large objects.
    Size,
    /// One to four objects.
    Count,
    /// Where a single object sits (centre, left, right, top, bottom).
    Position,
    /// The background texture (objects and digits).
    Texture,
    /// Which digit, zero to nine.
    Digit,
    /// Colour and shape together (48 classes, "red star").
    ColourShape,
    /// Which of four shapes held out of pretraining (unseen target).
    NovelShape,
    /// Whether a digit is even or odd (unseen words over seen images).
    Parity,
}

impl Task {
    /// Every task, in a fixed order (also their stream ids for seeding).
    pub const ALL: [Task; 10] = [
        Task::Shape,
        Task::Colour,
        Task::Size,
        Task::Count,
        Task::Position,
        Task::Texture,
        Task::Digit,
        Task::ColourShape,
        Task::NovelShape,
        Task::Parity,
    ];

    /// The task's name (`synthetic_<name>` is its dataset plugin).
    pub fn name(self) -> &'static str {
        match self {
            Task::Shape => "shape",
            Task::Colour => "colour",
            Task::Size => "size",
            Task::Count => "count",
            Task::Position => "position",
            Task::Texture => "texture",
            Task::Digit => "digit",
            Task::ColourShape => "colour_shape",
            Task::NovelShape => "novel_shape",
            Task::Parity => "parity",
        }
    }

    /// The task called `name`, or an error listing them.
    pub fn from_name(name: &str) -> Result<Self> {
        match Self::ALL.into_iter().find(|t| t.name() == name) {
            Some(task) => Ok(task),
            None => {
                let names: Vec<&str> = Self::ALL.iter().map(|t| t.name()).collect();
                bail!(
                    "unknown synthetic task {name:?}; tasks: {}",
                    names.join(", ")
                )
            }
        }
    }

    /// Whether the task's classes are held out of pretraining.
    pub fn is_unseen(self) -> bool {
        matches!(self, Task::NovelShape | Task::Parity)
    }

    /// Index of the task in [`Task::ALL`].
    pub fn index(self) -> usize {
        Self::ALL
            .iter()
            .position(|&t| t == self)
            .expect("every task is listed")
    }

    /// Class names, indexed by label.
    pub fn classnames(self) -> Vec<String> {
        let names: Vec<&str> = match self {
            Task::Shape => Shape::SEEN.iter().map(|s| s.name()).collect(),
            Task::Colour => Colour::ALL.iter().map(|c| c.name()).collect(),
            Task::Size => Size::ALL.iter().map(|s| s.name()).collect(),
            Task::Count => COUNT_WORDS.to_vec(),
            Task::Position => Position::ALL.iter().map(|p| p.phrase()).collect(),
            Task::Texture => Texture::ALL.iter().map(|t| t.name()).collect(),
            Task::Digit => DIGIT_WORDS.to_vec(),
            Task::ColourShape => {
                return Colour::ALL
                    .iter()
                    .flat_map(|c| {
                        Shape::SEEN
                            .iter()
                            .map(move |s| format!("{} {}", c.name(), s.name()))
                    })
                    .collect()
            }
            Task::NovelShape => Shape::NOVEL.iter().map(|s| s.name()).collect(),
            Task::Parity => vec!["even", "odd"],
        };
        names.into_iter().map(str::to_string).collect()
    }

    /// Zero-shot prompt templates (`{}` is the class name), phrased like the captions.
    pub fn templates(self) -> &'static [&'static str] {
        match self {
            Task::Shape | Task::NovelShape => &["a photo of a {}.", "a {}.", "an image of a {}."],
            // "one": no a/an to get wrong before "orange".
            Task::ColourShape => &["a photo of one {}.", "one {}.", "an image of one {}."],
            Task::Colour => &["a photo of one {} shape.", "a single {} object."],
            Task::Size => &["a photo of a {} shape.", "a {} object."],
            Task::Count => &["a photo of {} shapes.", "{} objects."],
            Task::Position => &["a photo of a shape {}.", "an object {}."],
            Task::Texture => &[
                "a photo of a shape on a {} background.",
                "an object on a {} background.",
            ],
            Task::Digit => &["a photo of the digit {}.", "the number {}."],
            Task::Parity => &["a photo of an {} number.", "an {} digit."],
        }
    }

    /// The scenes this task draws.
    pub fn scene_spec(self) -> SceneSpec {
        let objects = |shapes: &'static [Shape], counts| SceneSpec {
            kind: ContentKind::Objects,
            shapes,
            counts,
        };
        match self {
            Task::Shape | Task::Size | Task::ColourShape => objects(&Shape::SEEN, NATURAL_COUNTS),
            Task::Count => objects(&Shape::SEEN, UNIFORM_COUNTS),
            Task::Position => objects(&Shape::SEEN, SINGLE_COUNT),
            Task::NovelShape => objects(&Shape::NOVEL, NATURAL_COUNTS),
            Task::Colour | Task::Texture => SceneSpec {
                kind: ContentKind::Mixed(0.25),
                shapes: &Shape::SEEN,
                counts: NATURAL_COUNTS,
            },
            Task::Digit | Task::Parity => SceneSpec {
                kind: ContentKind::Glyph,
                shapes: &Shape::SEEN,
                counts: SINGLE_COUNT,
            },
        }
    }

    /// The label of a scene drawn from [`Task::scene_spec`].
    pub fn label(self, scene: &Scene) -> Result<usize> {
        let index_of = |found: Option<usize>, what: &str| match found {
            Some(i) => Ok(i),
            None => bail!("scene has no {what} for task {}", self.name()),
        };
        let colour = Colour::ALL.iter().position(|&c| c == scene.colour);
        let texture = Texture::ALL
            .iter()
            .position(|&t| t == scene.background.texture);
        match (&scene.content, self) {
            (_, Task::Colour) => index_of(colour, "colour"),
            (_, Task::Texture) => index_of(texture, "texture"),
            (Content::Objects { shape, .. }, Task::Shape) => {
                index_of(Shape::SEEN.iter().position(|s| s == shape), "seen shape")
            }
            (Content::Objects { shape, .. }, Task::NovelShape) => {
                index_of(Shape::NOVEL.iter().position(|s| s == shape), "novel shape")
            }
            (Content::Objects { shape, .. }, Task::ColourShape) => {
                let s = index_of(Shape::SEEN.iter().position(|x| x == shape), "seen shape")?;
                Ok(index_of(colour, "colour")? * Shape::SEEN.len() + s)
            }
            (Content::Objects { size, .. }, Task::Size) => {
                index_of(Size::ALL.iter().position(|s| s == size), "size")
            }
            (Content::Objects { centres, .. }, Task::Count) => Ok(centres.len() - 1),
            (Content::Objects { position, .. }, Task::Position) => index_of(
                position.and_then(|p| Position::ALL.iter().position(|&q| q == p)),
                "position",
            ),
            (Content::Glyph { digit, .. }, Task::Digit) => Ok(usize::from(*digit)),
            (Content::Glyph { digit, .. }, Task::Parity) => Ok(usize::from(digit % 2)),
            _ => bail!("scene does not fit task {}", self.name()),
        }
    }
}
