//! The data pipeline: dataset, few-shot and sampler plugin interfaces, images and transforms,
//! Python-compatible randomness and the reference few-shot algorithms.

pub mod archive;
mod dataset;
pub mod fewshot;
pub mod image;
pub mod loader;
mod protocol;
pub mod pyrandom;
mod sampler;
pub mod transforms;
mod truncation;

pub use archive::{load_image_source, split_archive_path, ArchiveError, ZipArchives};
pub use dataset::{Dataset, DatasetContext, DatasetInfo, ImageSource, Sample, Split};
pub use protocol::{FewShotProtocol, FewShotSplit};
pub use sampler::{BatchSampler, SampleMeta};
