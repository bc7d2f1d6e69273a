//! The synthetic world: the attribute vocabularies (shape, colour, size, count, position,
//! background texture, digit), a [`Scene`] made of them, and how scenes are drawn at random
//! under the constraints of a task ([`SceneSpec`]).
//!
//! Geometry lives in the unit square (x to the right, y downwards), so a scene can be rendered
//! at any resolution.

use mvlpt_framework::rng::Rng;
use rand::seq::IndexedRandom;
use rand::Rng as _;

/// Object shapes. The last four are never drawn nor named during pretraining.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shape {
    /// A filled disc.
    Circle,
    /// An axis-aligned square.
    Square,
    /// An upward-pointing triangle.
    Triangle,
    /// A five-pointed star.
    Star,
    /// A square standing on a corner.
    Diamond,
    /// A plus sign.
    Cross,
    /// A heart (held out of pretraining).
    Heart,
    /// A regular hexagon (held out of pretraining).
    Hexagon,
    /// A crescent moon (held out of pretraining).
    Crescent,
    /// An annulus (held out of pretraining).
    Ring,
}

impl Shape {
    /// Shapes that appear in pretraining.
    pub const SEEN: [Shape; 6] = [
        Shape::Circle,
        Shape::Square,
        Shape::Triangle,
        Shape::Star,
        Shape::Diamond,
        Shape::Cross,
    ];
    /// Shapes held out of pretraining (the `novel_shape` task).
    pub const NOVEL: [Shape; 4] = [Shape::Heart, Shape::Hexagon, Shape::Crescent, Shape::Ring];

    /// The class name.
    pub fn name(self) -> &'static str {
        match self {
            Shape::Circle => "circle",
            Shape::Square => "square",
            Shape::Triangle => "triangle",
            Shape::Star => "star",
            Shape::Diamond => "diamond",
            Shape::Cross => "cross",
            Shape::Heart => "heart",
            Shape::Hexagon => "hexagon",
            Shape::Crescent => "crescent",
            Shape::Ring => "ring",
        }
    }

    /// The plural noun.
    pub fn plural(self) -> &'static str {
        match self {
            Shape::Cross => "crosses",
            Shape::Circle => "circles",
            Shape::Square => "squares",
            Shape::Triangle => "triangles",
            Shape::Star => "stars",
            Shape::Diamond => "diamonds",
            Shape::Heart => "hearts",
            Shape::Hexagon => "hexagons",
            Shape::Crescent => "crescents",
            Shape::Ring => "rings",
        }
    }
}

/// Object and glyph colours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Colour {
    /// Red.
    Red,
    /// Orange.
    Orange,
    /// Yellow.
    Yellow,
    /// Green.
    Green,
    /// Cyan.
    Cyan,
    /// Blue.
    Blue,
    /// Purple.
    Purple,
    /// Pink.
    Pink,
}

impl Colour {
    /// Every colour, in label order.
    pub const ALL: [Colour; 8] = [
        Colour::Red,
        Colour::Orange,
        Colour::Yellow,
        Colour::Green,
        Colour::Cyan,
        Colour::Blue,
        Colour::Purple,
        Colour::Pink,
    ];

    /// The class name.
    pub fn name(self) -> &'static str {
        match self {
            Colour::Red => "red",
            Colour::Orange => "orange",
            Colour::Yellow => "yellow",
            Colour::Green => "green",
            Colour::Cyan => "cyan",
            Colour::Blue => "blue",
            Colour::Purple => "purple",
            Colour::Pink => "pink",
        }
    }

    /// The nominal sRGB value (samples jitter around it).
    pub fn rgb(self) -> [u8; 3] {
        match self {
            Colour::Red => [220, 30, 30],
            Colour::Orange => [245, 135, 20],
            Colour::Yellow => [240, 225, 40],
            Colour::Green => [40, 190, 50],
            Colour::Cyan => [40, 215, 225],
            Colour::Blue => [45, 80, 235],
            Colour::Purple => [150, 55, 210],
            Colour::Pink => [250, 140, 200],
        }
    }
}

/// Object sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Size {
    /// Radius about 7.5% of the image side.
    Small,
    /// Radius about 12.5%.
    Medium,
    /// Radius about 19%.
    Large,
}

impl Size {
    /// Every size, in label order.
    pub const ALL: [Size; 3] = [Size::Small, Size::Medium, Size::Large];

    /// The class name.
    pub fn name(self) -> &'static str {
        match self {
            Size::Small => "small",
            Size::Medium => "medium",
            Size::Large => "large",
        }
    }

    /// Range of the object radius, as a fraction of the image side.
    pub fn radius_range(self) -> (f32, f32) {
        match self {
            Size::Small => (0.07, 0.085),
            Size::Medium => (0.115, 0.135),
            Size::Large => (0.175, 0.195),
        }
    }
}

/// Where a single object sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Position {
    /// Near the middle.
    Center,
    /// In the left third, vertically centred.
    Left,
    /// In the right third.
    Right,
    /// In the top third, horizontally centred.
    Top,
    /// In the bottom third.
    Bottom,
}

impl Position {
    /// Every position, in label order.
    pub const ALL: [Position; 5] = [
        Position::Center,
        Position::Left,
        Position::Right,
        Position::Top,
        Position::Bottom,
    ];

    /// The class name: the phrase captions use.
    pub fn phrase(self) -> &'static str {
        match self {
            Position::Center => "in the center",
            Position::Left => "on the left",
            Position::Right => "on the right",
            Position::Top => "at the top",
            Position::Bottom => "at the bottom",
        }
    }

    /// The anchor point in unit coordinates.
    pub fn anchor(self) -> (f32, f32) {
        match self {
            Position::Center => (0.5, 0.5),
            Position::Left => (0.24, 0.5),
            Position::Right => (0.76, 0.5),
            Position::Top => (0.5, 0.24),
            Position::Bottom => (0.5, 0.76),
        }
    }
}

/// Background textures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Texture {
    /// One colour (with a faint gradient).
    Plain,
    /// Straight stripes (horizontal, vertical or diagonal).
    Striped,
    /// A grid of dots.
    Dotted,
    /// A checkerboard.
    Checkered,
    /// Sinusoidal stripes.
    Wavy,
}

impl Texture {
    /// Every texture, in label order.
    pub const ALL: [Texture; 5] = [
        Texture::Plain,
        Texture::Striped,
        Texture::Dotted,
        Texture::Checkered,
        Texture::Wavy,
    ];

    /// The class name.
    pub fn name(self) -> &'static str {
        match self {
            Texture::Plain => "plain",
            Texture::Striped => "striped",
            Texture::Dotted => "dotted",
            Texture::Checkered => "checkered",
            Texture::Wavy => "wavy",
        }
    }
}

/// Digit names, indexed by value.
pub const DIGIT_WORDS: [&str; 10] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
];

/// Number words for object counts 1..=4, indexed by count − 1.
pub const COUNT_WORDS: [&str; 4] = ["one", "two", "three", "four"];

/// The background of a scene: a texture drawn in two tones.
#[derive(Clone, Debug, PartialEq)]
pub struct Background {
    /// Which texture.
    pub texture: Texture,
    /// Base tone (sRGB).
    pub base: [f32; 3],
    /// Pattern tone (sRGB).
    pub pattern: [f32; 3],
    /// Pattern period, in unit coordinates.
    pub period: f32,
    /// Pattern direction in radians (stripes, waves).
    pub angle: f32,
    /// Pattern offset, in periods.
    pub phase: (f32, f32),
}

/// What the scene shows in front of its background.
#[derive(Clone, Debug, PartialEq)]
pub enum Content {
    /// `centres.len()` identical objects that do not overlap.
    Objects {
        /// Their shape.
        shape: Shape,
        /// Their size class.
        size: Size,
        /// Their radius in unit coordinates.
        radius: f32,
        /// Their centres.
        centres: Vec<(f32, f32)>,
        /// The position class, for a single object.
        position: Option<Position>,
    },
    /// One handwritten-looking digit.
    Glyph {
        /// The digit, 0..=9.
        digit: u8,
        /// Centre of the glyph box.
        centre: (f32, f32),
        /// Height of the glyph box (its width is 0.6 of it).
        height: f32,
        /// Horizontal shear (italic slant).
        shear: f32,
        /// Stroke width as a fraction of the height.
        stroke: f32,
    },
}

/// One image's worth of attributes and geometry.
#[derive(Clone, Debug, PartialEq)]
pub struct Scene {
    /// Objects or a digit.
    pub content: Content,
    /// Colour class of the objects / glyph.
    pub colour: Colour,
    /// Actual (jittered) sRGB colour.
    pub rgb: [f32; 3],
    /// The background.
    pub background: Background,
}

impl Scene {
    /// Number of objects (a digit counts as one).
    pub fn count(&self) -> usize {
        match &self.content {
            Content::Objects { centres, .. } => centres.len(),
            Content::Glyph { .. } => 1,
        }
    }
}

/// Which kind of content a spec allows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ContentKind {
    /// Objects only.
    Objects,
    /// Digits only.
    Glyph,
    /// Digits with this probability, objects otherwise.
    Mixed(f64),
}

/// Constraints on the scenes a task or the pretraining stream draws.
#[derive(Clone, Debug, PartialEq)]
pub struct SceneSpec {
    /// Objects, digits or both.
    pub kind: ContentKind,
    /// Shapes to choose from (uniformly).
    pub shapes: &'static [Shape],
    /// Object counts to choose from, with weights.
    pub counts: &'static [(usize, f64)],
}

/// Counts with a preference for single objects (so positions are common).
pub const NATURAL_COUNTS: &[(usize, f64)] = &[(1, 0.4), (2, 0.2), (3, 0.2), (4, 0.2)];
/// Every count equally likely.
pub const UNIFORM_COUNTS: &[(usize, f64)] = &[(1, 1.0), (2, 1.0), (3, 1.0), (4, 1.0)];
/// Single objects only.
pub const SINGLE_COUNT: &[(usize, f64)] = &[(1, 1.0)];

impl SceneSpec {
    /// The pretraining distribution: seen shapes only, a quarter digits.
    pub fn pretraining() -> Self {
        Self {
            kind: ContentKind::Mixed(0.25),
            shapes: &Shape::SEEN,
            counts: NATURAL_COUNTS,
        }
    }

    /// Draws a scene.
    pub fn sample(&self, rng: &mut Rng) -> Scene {
        let glyph = match self.kind {
            ContentKind::Objects => false,
            ContentKind::Glyph => true,
            ContentKind::Mixed(p) => rng.random_bool(p),
        };
        let colour = *Colour::ALL.choose(rng).expect("colours are not empty");
        let rgb = jitter(colour.rgb(), 18.0, rng);
        let content = if glyph {
            sample_glyph(rng)
        } else {
            self.sample_objects(rng)
        };
        let background = sample_background(rng);
        Scene {
            content,
            colour,
            rgb,
            background,
        }
    }

    fn sample_objects(&self, rng: &mut Rng) -> Content {
        let shape = *self.shapes.choose(rng).expect("a spec names shapes");
        let count = self
            .counts
            .choose_weighted(rng, |(_, w)| *w)
            .map(|(c, _)| *c)
            .unwrap_or(1);
        let size = *Size::ALL.choose(rng).expect("sizes are not empty");
        let (lo, hi) = size.radius_range();
        let radius = rng.random_range(lo..hi);
        let (centres, position) = if count == 1 {
            let position = *Position::ALL.choose(rng).expect("positions are not empty");
            let (ax, ay) = position.anchor();
            let jitter = 0.05;
            let centre = (
                clamp_inside(ax + rng.random_range(-jitter..jitter), radius),
                clamp_inside(ay + rng.random_range(-jitter..jitter), radius),
            );
            (vec![centre], Some(position))
        } else {
            (place_apart(count, radius, rng), None)
        };
        Content::Objects {
            shape,
            size,
            radius,
            centres,
            position,
        }
    }
}

/// Keeps a coordinate so that a disc of `radius` stays inside the image with a small margin.
fn clamp_inside(v: f32, radius: f32) -> f32 {
    v.clamp(radius + 0.02, 1.0 - radius - 0.02)
}

/// `count` centres at least `2·radius` plus a gap apart: rejection sampling, then a jittered
/// quadrant layout when the objects are too large to place at random.
fn place_apart(count: usize, radius: f32, rng: &mut Rng) -> Vec<(f32, f32)> {
    let (lo, hi) = (radius + 0.02, 1.0 - radius - 0.02);
    let min_distance = 2.0 * radius + 0.04;
    for _ in 0..200 {
        let mut centres: Vec<(f32, f32)> = Vec::with_capacity(count);
        for _ in 0..50 {
            let c = (rng.random_range(lo..hi), rng.random_range(lo..hi));
            if centres
                .iter()
                .all(|p| (p.0 - c.0).hypot(p.1 - c.1) >= min_distance)
            {
                centres.push(c);
                if centres.len() == count {
                    return centres;
                }
            }
        }
    }
    let mut quadrants = [(0.27f32, 0.27f32), (0.73, 0.27), (0.27, 0.73), (0.73, 0.73)];
    // A fixed shuffle of the quadrants keeps the layout varied.
    for i in (1..quadrants.len()).rev() {
        quadrants.swap(i, rng.random_range(0..=i));
    }
    quadrants[..count]
        .iter()
        .map(|&(x, y)| {
            let j = 0.02;
            (
                clamp_inside(x + rng.random_range(-j..j), radius),
                clamp_inside(y + rng.random_range(-j..j), radius),
            )
        })
        .collect()
}

fn sample_glyph(rng: &mut Rng) -> Content {
    let digit = rng.random_range(0..10u8);
    let height = rng.random_range(0.5f32..0.78);
    let half_w = 0.3 * height + 0.06;
    let half_h = 0.5 * height + 0.06;
    let centre = (
        rng.random_range(half_w..1.0 - half_w),
        rng.random_range(half_h..1.0 - half_h),
    );
    Content::Glyph {
        digit,
        centre,
        height,
        shear: rng.random_range(-0.2f32..0.2),
        stroke: rng.random_range(0.11f32..0.16),
    }
}

fn sample_background(rng: &mut Rng) -> Background {
    let texture = *Texture::ALL.choose(rng).expect("textures are not empty");
    let grey = rng.random_range(30.0f32..75.0);
    let base = [0, 1, 2].map(|_| grey + rng.random_range(-12.0f32..12.0));
    let lift = rng.random_range(40.0f32..65.0);
    let pattern = base.map(|c| c + lift + rng.random_range(-8.0f32..8.0));
    let angle = match texture {
        Texture::Striped => {
            *[0.0f32, 0.5, 0.25, 0.75].choose(rng).expect("angles") * std::f32::consts::PI
        }
        Texture::Wavy => *[0.0f32, 0.5].choose(rng).expect("angles") * std::f32::consts::PI,
        _ => 0.0,
    };
    Background {
        texture,
        base,
        pattern,
        period: rng.random_range(0.1f32..0.16),
        angle,
        phase: (rng.random::<f32>(), rng.random::<f32>()),
    }
}

fn jitter(rgb: [u8; 3], amount: f32, rng: &mut Rng) -> [f32; 3] {
    rgb.map(|c| (f32::from(c) + rng.random_range(-amount..amount)).clamp(0.0, 255.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mvlpt_framework::rng::seeded;

    #[test]
    fn objects_never_overlap_and_stay_inside() {
        let spec = SceneSpec {
            kind: ContentKind::Objects,
            shapes: &Shape::SEEN,
            counts: UNIFORM_COUNTS,
        };
        for seed in 0..500 {
            let scene = spec.sample(&mut seeded(seed));
            let Content::Objects {
                radius, centres, ..
            } = &scene.content
            else {
                panic!("objects expected");
            };
            for (i, a) in centres.iter().enumerate() {
                assert!(a.0 - radius > 0.0 && a.0 + radius < 1.0, "seed {seed}");
                assert!(a.1 - radius > 0.0 && a.1 + radius < 1.0, "seed {seed}");
                for b in &centres[i + 1..] {
                    assert!((a.0 - b.0).hypot(a.1 - b.1) >= 2.0 * radius, "seed {seed}");
                }
            }
        }
    }
}
