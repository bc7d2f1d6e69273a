//! Parallel image loading with prefetch: batches of samples are decoded and transformed on the
//! rayon pool by a producer thread that stays `prefetch` batches ahead of the training step.
//!
//! Every sample's random transform is drawn from a generator seeded by (run seed, epoch,
//! sample index), so the pixels of a batch do not depend on thread scheduling and a resumed
//! run sees exactly the images an uninterrupted run would have seen.

use super::dataset::{Dataset, Sample};
use super::transforms::{stack_batch, ImageTensor, Pipeline};
use crate::config::OnBadImage;
use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use rayon::prelude::*;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What to do with an image that cannot be read or decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadImagePolicy {
    /// Stop with an error naming the file.
    Error,
    /// Drop the sample from its batch and count it.
    Skip,
}

impl From<OnBadImage> for BadImagePolicy {
    /// The policy `data.on_bad_image` chooses.
    fn from(choice: OnBadImage) -> Self {
        match choice {
            OnBadImage::Error => Self::Error,
            OnBadImage::Skip => Self::Skip,
        }
    }
}

/// Samples of possibly several datasets (multitask), each remembered with its dataset.
#[derive(Clone)]
pub struct SampleSet {
    /// The datasets (index = task).
    pub datasets: Vec<Arc<dyn Dataset>>,
    /// `(dataset index, sample)` pairs; labels may already be offset into a joint space.
    pub items: Vec<(usize, Sample)>,
}

impl SampleSet {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Decodes and transforms sample `index` with its task's pipeline and the generator of
    /// (seed, epoch, index).
    pub fn transformed(
        &self,
        index: usize,
        pipelines: &[Pipeline],
        seed: u64,
        epoch: usize,
    ) -> Result<ImageTensor> {
        let (task, sample) = &self.items[index];
        let pipeline = pipelines
            .get(*task)
            .with_context(|| format!("no transform for task {task}"))?;
        let image = self.datasets[*task]
            .load_image(sample)
            .with_context(|| format!("loading image {}", sample.image))?;
        let mut rng = crate::rng::seeded(sample_seed(seed, epoch, index));
        pipeline
            .apply(&image, &mut rng)
            .with_context(|| format!("transforming image {}", sample.image))
    }
}

/// Seed of one sample's augmentation in one epoch (SplitMix64 mixing of the three numbers).
pub fn sample_seed(seed: u64, epoch: usize, index: usize) -> u64 {
    let mut z = seed
        ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (index as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One loaded batch.
pub struct LoadedBatch {
    /// Indices (into the [`SampleSet`]) of the images in `images`, in order.
    pub indices: Vec<usize>,
    /// Normalised pixels `(batch, 3, H, W)` on the CPU; `None` when every image of the batch
    /// was skipped under [`BadImagePolicy::Skip`] (the batch is then only its `skipped` list).
    pub images: Option<Tensor>,
    /// Samples dropped under [`BadImagePolicy::Skip`], with the reason.
    pub skipped: Vec<(usize, String)>,
}

/// How to load.
#[derive(Clone)]
pub struct LoaderOptions {
    /// The transform of each task.
    pub pipelines: Arc<Vec<Pipeline>>,
    /// Batches decoded ahead of the consumer.
    pub prefetch: usize,
    /// Unreadable images.
    pub on_bad_image: BadImagePolicy,
    /// Run seed (augmentation randomness).
    pub seed: u64,
    /// Epoch (augmentation randomness).
    pub epoch: usize,
}

/// A stream of loaded batches produced in the background.
pub struct BatchStream {
    receiver: Receiver<Result<LoadedBatch>>,
    waited: Duration,
}

impl BatchStream {
    /// Starts loading `batches` (lists of sample indices) in the background.
    pub fn start(set: Arc<SampleSet>, batches: Vec<Vec<usize>>, options: LoaderOptions) -> Self {
        let (sender, receiver) = sync_channel(options.prefetch.max(1));
        std::thread::spawn(move || {
            for batch in batches {
                let result = load_batch(&set, &batch, &options);
                let failed = result.is_err();
                if sender.send(result).is_err() || failed {
                    break;
                }
            }
        });
        Self {
            receiver,
            waited: Duration::ZERO,
        }
    }

    /// Total time the consumer spent waiting for data (0 when decoding keeps ahead).
    pub fn waited(&self) -> Duration {
        self.waited
    }
}

impl Iterator for BatchStream {
    type Item = Result<LoadedBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        let start = Instant::now();
        let item = self.receiver.recv().ok();
        self.waited += start.elapsed();
        item
    }
}

/// Decodes one batch in parallel.
pub fn load_batch(
    set: &SampleSet,
    batch: &[usize],
    options: &LoaderOptions,
) -> Result<LoadedBatch> {
    let results: Vec<(usize, Result<ImageTensor>)> = batch
        .par_iter()
        .map(|&i| {
            (
                i,
                set.transformed(i, &options.pipelines, options.seed, options.epoch),
            )
        })
        .collect();
    let mut indices = Vec::with_capacity(batch.len());
    let mut tensors = Vec::with_capacity(batch.len());
    let mut skipped = Vec::new();
    for (i, result) in results {
        match result {
            Ok(t) => {
                indices.push(i);
                tensors.push(t);
            }
            Err(e) if options.on_bad_image == BadImagePolicy::Skip => {
                tracing::warn!("skipping unreadable image: {e:#}");
                skipped.push((i, format!("{e:#}")));
            }
            Err(e) => {
                return Err(e.context("set data.on_bad_image = \"skip\" to skip unreadable images"))
            }
        }
    }
    let images = if tensors.is_empty() {
        None
    } else {
        Some(stack_batch(&tensors, &Device::Cpu)?)
    };
    Ok(LoadedBatch {
        indices,
        images,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::dataset::{DatasetInfo, Split};
    use crate::eval::metrics::Metric;

    struct Files(DatasetInfo);

    impl Dataset for Files {
        fn info(&self) -> &DatasetInfo {
            &self.0
        }
        fn samples(&self, _: Split) -> Result<Vec<Sample>> {
            Ok(Vec::new())
        }
    }

    #[test]
    fn unreadable_images_fail_with_their_name_or_are_skipped_and_counted() {
        let dir = std::env::temp_dir().join(format!("mvlpt-loader-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (good, bad) = (dir.join("good.png"), dir.join("bad.jpg"));
        image::RgbImage::from_pixel(8, 8, image::Rgb([10, 200, 30]))
            .save(&good)
            .unwrap();
        std::fs::write(&bad, b"not an image").unwrap();
        let info = DatasetInfo {
            name: "files".into(),
            classnames: vec!["a".into()],
            templates: Vec::new(),
            metric: Metric::Accuracy,
            multilabel: false,
        };
        let set = Arc::new(SampleSet {
            datasets: vec![Arc::new(Files(info))],
            items: vec![(0, Sample::file(&good, 0)), (0, Sample::file(&bad, 0))],
        });
        let options = |on_bad_image| LoaderOptions {
            pipelines: Arc::new(vec![Pipeline::clip_test(8).unwrap()]),
            prefetch: 1,
            on_bad_image,
            seed: 0,
            epoch: 0,
        };
        let mut failing = BatchStream::start(
            set.clone(),
            vec![vec![0, 1]],
            options(BadImagePolicy::Error),
        );
        let error = match failing.next() {
            Some(Err(e)) => format!("{e:#}"),
            _ => panic!("an unreadable image must fail the batch"),
        };
        assert!(error.contains("bad.jpg"), "{error}");

        let mut skipping =
            BatchStream::start(set.clone(), vec![vec![0, 1]], options(BadImagePolicy::Skip));
        let batch = skipping.next().unwrap().unwrap();
        assert_eq!(batch.indices, vec![0]);
        assert_eq!(batch.images.as_ref().unwrap().dims()[0], 1);
        assert_eq!(batch.skipped.len(), 1);
        assert_eq!(batch.skipped[0].0, 1);
        assert!(
            batch.skipped[0].1.contains("bad.jpg"),
            "{}",
            batch.skipped[0].1
        );

        // A batch of nothing but unreadable images is skipped whole, and counted.
        let mut alone =
            BatchStream::start(set, vec![vec![0], vec![1]], options(BadImagePolicy::Skip));
        assert!(alone.next().unwrap().unwrap().images.is_some());
        let last = alone.next().unwrap().unwrap();
        assert!(last.images.is_none() && last.indices.is_empty());
        assert_eq!(last.skipped.len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
