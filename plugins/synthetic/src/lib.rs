//! The built-in `synthetic` dataset: a procedural world of coloured shapes and digits on
//! textured backgrounds, drawn on demand from a seed (no files), with natural captions.
//!
//! It serves two purposes. With `pretraining = true` it is an endless-looking stream of
//! image–caption pairs (held-out values excluded) for `mvlpt pretrain`, which trains the
//! embedded tiny CLIP. Otherwise it is one of ten classification tasks over the same world
//! ([`Task`]), each also registered as its own dataset plugin `synthetic_<task>` so that
//! multitask runs can list them in `data.tasks`.
//!
//! Options (`[data.synthetic]`, or `[data.synthetic_<task>]` for the per-task plugins):
//! `task`, `train_size`, `val_size`, `test_size`, `seed`, `pretraining`, `image_size`.

mod caption;
mod glyphs;
mod render;
mod tasks;
mod world;

pub use caption::caption;
pub use render::render;
pub use tasks::Task;
pub use world::{
    Background, Colour, Content, ContentKind, Position, Scene, SceneSpec, Shape, Size, Texture,
    COUNT_WORDS, DIGIT_WORDS,
};

use anyhow::{bail, Context, Result};
use mvlpt_framework::data::image::RgbImage8;
use mvlpt_framework::data::{Dataset, DatasetContext, DatasetInfo, ImageSource, Sample, Split};
use mvlpt_framework::eval::metrics::Metric;
use mvlpt_framework::register_plugin;
use mvlpt_framework::rng::seeded;
use serde::Deserialize;

/// Referenced from the binary so that the linker keeps this crate's plugin registrations.
pub fn link() {}

/// Options of the synthetic dataset plugins.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyntheticOptions {
    /// Task name (see [`Task`]); the per-task plugins fix it. Default `shape`.
    #[serde(default)]
    pub task: Option<String>,
    /// Samples in the training split.
    #[serde(default = "default_train_size")]
    pub train_size: usize,
    /// Samples in the validation split.
    #[serde(default = "default_val_size")]
    pub val_size: usize,
    /// Samples in the test split.
    #[serde(default = "default_test_size")]
    pub test_size: usize,
    /// Seed of the whole dataset (every sample's scene and caption derive from it).
    #[serde(default)]
    pub seed: u64,
    /// Draw the pretraining stream (seen values only, captions, no labels) instead of a task.
    #[serde(default)]
    pub pretraining: bool,
    /// Side of the rendered square images in pixels.
    #[serde(default = "default_image_size")]
    pub image_size: usize,
}

fn default_train_size() -> usize {
    2000
}
fn default_val_size() -> usize {
    500
}
fn default_test_size() -> usize {
    1000
}
fn default_image_size() -> usize {
    64
}

impl Default for SyntheticOptions {
    fn default() -> Self {
        Self {
            task: None,
            train_size: default_train_size(),
            val_size: default_val_size(),
            test_size: default_test_size(),
            seed: 0,
            pretraining: false,
            image_size: default_image_size(),
        }
    }
}

/// Stream id of the pretraining distribution in [`sample_seed`] (tasks use their index).
const PRETRAINING_STREAM: u64 = 0xC11F;

/// A synthetic dataset: one task, or the pretraining stream.
pub struct SyntheticDataset {
    info: DatasetInfo,
    task: Task,
    options: SyntheticOptions,
    spec: SceneSpec,
    stream: u64,
}

impl SyntheticDataset {
    /// The dataset of `task` (ignored for drawing when `options.pretraining` is set, but still
    /// giving the label space).
    pub fn new(task: Task, options: SyntheticOptions) -> Result<Self> {
        if options.image_size < 8 {
            bail!(
                "synthetic dataset: image_size = {} is too small (at least 8 pixels)",
                options.image_size
            );
        }
        let (spec, stream, name) = if options.pretraining {
            (
                SceneSpec::pretraining(),
                PRETRAINING_STREAM,
                "synthetic_pretraining".to_string(),
            )
        } else {
            (
                task.scene_spec(),
                task.index() as u64,
                format!("synthetic_{}", task.name()),
            )
        };
        let info = DatasetInfo {
            name,
            classnames: task.classnames(),
            templates: task.templates().iter().map(|t| t.to_string()).collect(),
            metric: Metric::Accuracy,
            multilabel: false,
        };
        Ok(Self {
            info,
            task,
            options,
            spec,
            stream,
        })
    }

    /// The task.
    pub fn task(&self) -> Task {
        self.task
    }

    /// The options in force.
    pub fn options(&self) -> &SyntheticOptions {
        &self.options
    }

    /// The scene behind a procedural image seed.
    pub fn scene(&self, seed: u64) -> Scene {
        self.spec.sample(&mut seeded(seed))
    }

    /// Sample `index` of `split`: its image seed, label (none when pretraining) and caption.
    pub fn sample(&self, split: Split, index: usize) -> Result<Sample> {
        let seed = sample_seed(self.options.seed, self.stream, split, index);
        let scene = self.scene(seed);
        let labels = if self.options.pretraining {
            Vec::new()
        } else {
            vec![self
                .task
                .label(&scene)
                .with_context(|| format!("{} sample {index}", self.info.name))?]
        };
        let caption = caption(&scene, &mut seeded(splitmix64(seed ^ CAPTION_SALT)));
        Ok(Sample {
            image: ImageSource::Procedural(seed),
            labels,
            caption: Some(caption),
        })
    }

    fn split_size(&self, split: Split) -> usize {
        match split {
            Split::Train => self.options.train_size,
            Split::Val => self.options.val_size,
            Split::Test => self.options.test_size,
        }
    }
}

/// Separates a sample's caption randomness from its scene randomness.
const CAPTION_SALT: u64 = 0x5EED_CA97_1015_0000;

impl Dataset for SyntheticDataset {
    fn info(&self) -> &DatasetInfo {
        &self.info
    }

    fn samples(&self, split: Split) -> Result<Vec<Sample>> {
        (0..self.split_size(split))
            .map(|i| self.sample(split, i))
            .collect()
    }

    fn load_image(&self, sample: &Sample) -> Result<RgbImage8> {
        match sample.image {
            ImageSource::Procedural(seed) => Ok(render(&self.scene(seed), self.options.image_size)),
            ref other => bail!(
                "dataset {} draws its images; it cannot read {other}",
                self.info.name
            ),
        }
    }
}

/// The image seed of sample `index` of `split` in stream `stream` of a dataset seeded `base`:
/// distinct for every (base, stream, split, index), so samples of different tasks and splits
/// never share an image.
pub fn sample_seed(base: u64, stream: u64, split: Split, index: usize) -> u64 {
    let split_id = match split {
        Split::Train => 1,
        Split::Val => 2,
        Split::Test => 3,
    };
    let mut h = splitmix64(base);
    for part in [stream, split_id, index as u64] {
        h = splitmix64(h ^ part);
    }
    h
}

/// SplitMix64's finaliser: a bijective 64-bit mix.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Reads the options table and builds the dataset; `fixed` is the task of a per-task plugin.
fn build(context: &DatasetContext<'_>, fixed: Option<Task>) -> Result<Box<dyn Dataset>> {
    let options: SyntheticOptions = context.section.extract()?;
    let task = match (fixed, options.task.as_deref()) {
        (None, None) => Task::Shape,
        (None, Some(name)) => Task::from_name(name)
            .with_context(|| format!("{}.task", context.section.path()))?,
        (Some(task), None) => task,
        (Some(task), Some(name)) if name == task.name() => task,
        (Some(task), Some(name)) => bail!(
            "{}.task = {name:?}, but this plugin is the {:?} task; use the `synthetic` plugin to choose tasks",
            context.section.path(),
            task.name()
        ),
    };
    if fixed.is_some() && options.pretraining {
        bail!(
            "{}.pretraining: the pretraining stream is drawn by the `synthetic` plugin, not by a per-task plugin",
            context.section.path()
        );
    }
    Ok(Box::new(SyntheticDataset::new(task, options)?))
}

fn build_synthetic(context: &DatasetContext<'_>) -> Result<Box<dyn Dataset>> {
    build(context, None)
}

register_plugin!(
    Dataset,
    "synthetic",
    "procedural shapes and digits with captions; `task` picks one of ten tasks, `pretraining` the caption stream",
    build_synthetic,
    SyntheticOptions
);

/// Registers `synthetic_<task>` for one task.
macro_rules! task_plugin {
    ($fn_name:ident, $task:expr, $name:literal, $description:literal) => {
        fn $fn_name(context: &DatasetContext<'_>) -> Result<Box<dyn Dataset>> {
            build(context, Some($task))
        }
        register_plugin!(Dataset, $name, $description, $fn_name, SyntheticOptions);
    };
}

task_plugin!(
    build_shape,
    Task::Shape,
    "synthetic_shape",
    "synthetic world: which of six shapes"
);
task_plugin!(
    build_colour,
    Task::Colour,
    "synthetic_colour",
    "synthetic world: which of eight colours"
);
task_plugin!(
    build_size,
    Task::Size,
    "synthetic_size",
    "synthetic world: small, medium or large objects"
);
task_plugin!(
    build_count,
    Task::Count,
    "synthetic_count",
    "synthetic world: one to four objects"
);
task_plugin!(
    build_position,
    Task::Position,
    "synthetic_position",
    "synthetic world: where a single object sits"
);
task_plugin!(
    build_texture,
    Task::Texture,
    "synthetic_texture",
    "synthetic world: background texture"
);
task_plugin!(
    build_digit,
    Task::Digit,
    "synthetic_digit",
    "synthetic world: which digit"
);
task_plugin!(
    build_colour_shape,
    Task::ColourShape,
    "synthetic_colour_shape",
    "synthetic world: colour and shape together (48 classes)"
);
task_plugin!(
    build_novel_shape,
    Task::NovelShape,
    "synthetic_novel_shape",
    "synthetic world: four shapes never seen in pretraining (unseen target)"
);
task_plugin!(
    build_parity,
    Task::Parity,
    "synthetic_parity",
    "synthetic world: even or odd digit, words never seen in pretraining (unseen target)"
);

#[cfg(test)]
mod tests;
