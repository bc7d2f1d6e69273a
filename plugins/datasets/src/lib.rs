//! Dataset plugins: the paper's benchmarks read from their real on-disk layouts, and custom data.
//!
//! - The CoOp datasets of the source stage (reference §6.1) in CoOp's `DATASETS.md` layout:
//!   `imagenet`, `caltech101`, `oxford_pets`, `stanford_cars`, `oxford_flowers`, `food101`,
//!   `fgvc_aircraft`, `sun397`, `describable_textures` (the name `dtd` belongs to ELEVATER's DTD,
//!   whose name fixes its place in the sorted multitask label space), `eurosat`, `ucf101`, and
//!   the ImageNet test sets
//!   `imagenet_v2`, `imagenet_sketch`, `imagenet_a`, `imagenet_r` (see [`coop`]).
//! - The 20 ELEVATER datasets of the target stage (§6.2) under their ELEVATER names
//!   (`cifar-10`, `voc-2007-classification`, ...) in the ELEVATER toolkit's layout, images read
//!   from their zip archives in place (see [`elevater`]).
//! - Custom data: `image_folder` (one folder per class, see [`folder`]) and `manifest` (CSV,
//!   TSV or JSONL, see [`manifest`]).
//!
//! Each plugin reads its options from `[data.<name>]` (unknown keys are errors) and its files
//! from `data.root`. Benchmark metadata (class names, templates, metrics) lives in the data files
//! under `data/`, generated from the reference sources by `tools/datasets_data.py`.

pub mod coop;
pub mod custom;
pub mod elevater;
pub mod folder;
pub mod listing;
pub mod manifest;
pub mod prepared;

pub use prepared::{PreparedDataset, SplitSamples, TransformProtocol};

use anyhow::Result;
use mvlpt_framework::data::{Dataset, DatasetContext};
use mvlpt_framework::register_plugin;

/// Referenced by the `mvlpt` binary so that the linker keeps this crate's registrations.
pub fn link() {}

/// Registers one CoOp dataset: a factory function for `$name` and its plugin entry.
macro_rules! coop_dataset {
    ($factory:ident, $name:literal, $description:literal) => {
        fn $factory(ctx: &DatasetContext<'_>) -> Result<Box<dyn Dataset>> {
            coop::build($name, ctx)
        }
        register_plugin!(Dataset, $name, $description, $factory, coop::CoopOptions);
    };
}

coop_dataset!(
    build_imagenet,
    "imagenet",
    "CoOp ImageNet: train/ and val/ class folders, classnames.txt"
);
coop_dataset!(
    build_caltech101,
    "caltech101",
    "CoOp Caltech101 (split_zhou_Caltech101.json)"
);
coop_dataset!(
    build_oxford_pets,
    "oxford_pets",
    "CoOp OxfordPets (split_zhou_OxfordPets.json)"
);
coop_dataset!(
    build_stanford_cars,
    "stanford_cars",
    "CoOp StanfordCars (split_zhou_StanfordCars.json)"
);
coop_dataset!(
    build_oxford_flowers,
    "oxford_flowers",
    "CoOp OxfordFlowers (split_zhou_OxfordFlowers.json)"
);
coop_dataset!(
    build_food101,
    "food101",
    "CoOp Food101 (split_zhou_Food101.json)"
);
coop_dataset!(
    build_fgvc_aircraft,
    "fgvc_aircraft",
    "CoOp FGVCAircraft (images_variant_*.txt)"
);
coop_dataset!(
    build_sun397,
    "sun397",
    "CoOp SUN397 (split_zhou_SUN397.json)"
);
coop_dataset!(
    build_describable_textures,
    "describable_textures",
    "CoOp DescribableTextures (split_zhou_DescribableTextures.json)"
);
coop_dataset!(
    build_eurosat,
    "eurosat",
    "CoOp EuroSAT (split_zhou_EuroSAT.json)"
);
coop_dataset!(
    build_ucf101,
    "ucf101",
    "CoOp UCF101 mid-frames (split_zhou_UCF101.json)"
);
coop_dataset!(
    build_imagenet_v2,
    "imagenet_v2",
    "CoOp ImageNetV2 matched-frequency (test only)"
);
coop_dataset!(
    build_imagenet_sketch,
    "imagenet_sketch",
    "CoOp ImageNet-Sketch (test only)"
);
coop_dataset!(
    build_imagenet_a,
    "imagenet_a",
    "CoOp ImageNet-A (test only)"
);
coop_dataset!(
    build_imagenet_r,
    "imagenet_r",
    "CoOp ImageNet-R (test only)"
);

/// Registers one ELEVATER dataset: a factory function for `$name` and its plugin entry.
macro_rules! elevater_dataset {
    ($factory:ident, $name:literal) => {
        fn $factory(ctx: &DatasetContext<'_>) -> Result<Box<dyn Dataset>> {
            elevater::build($name, ctx)
        }
        register_plugin!(
            Dataset,
            $name,
            concat!("ELEVATER ", $name, " in the ELEVATER toolkit layout"),
            $factory,
            elevater::ElevaterOptions
        );
    };
}

elevater_dataset!(build_hateful_memes, "hateful-memes");
elevater_dataset!(build_cifar_10, "cifar-10");
elevater_dataset!(build_mnist, "mnist");
elevater_dataset!(build_oxford_flower_102, "oxford-flower-102");
elevater_dataset!(build_oxford_iiit_pets, "oxford-iiit-pets");
elevater_dataset!(build_resisc45_clip, "resisc45_clip");
elevater_dataset!(build_country211, "country211");
elevater_dataset!(build_food_101, "food-101");
elevater_dataset!(build_stanford_cars_elevater, "stanford-cars");
elevater_dataset!(build_caltech_101, "caltech-101");
elevater_dataset!(build_dtd, "dtd");
elevater_dataset!(build_voc_2007, "voc-2007-classification");
elevater_dataset!(build_cifar_100, "cifar-100");
elevater_dataset!(build_fgvc_aircraft_2013b, "fgvc-aircraft-2013b-variants102");
elevater_dataset!(build_patch_camelyon, "patch-camelyon");
elevater_dataset!(build_rendered_sst2, "rendered-sst2");
elevater_dataset!(build_gtsrb, "gtsrb");
elevater_dataset!(build_eurosat_clip, "eurosat_clip");
elevater_dataset!(build_fer_2013, "fer-2013");
elevater_dataset!(build_kitti_distance, "kitti-distance");

fn build_image_folder(ctx: &DatasetContext<'_>) -> Result<Box<dyn Dataset>> {
    folder::build(ctx)
}
register_plugin!(
    Dataset,
    "image_folder",
    "Custom data: one folder per class, optionally inside train/val/test folders",
    build_image_folder,
    folder::ImageFolderOptions
);

fn build_manifest(ctx: &DatasetContext<'_>) -> Result<Box<dyn Dataset>> {
    manifest::build(ctx)
}
register_plugin!(
    Dataset,
    "manifest",
    "Custom data: a CSV, TSV or JSONL file of image paths, labels, splits and captions",
    build_manifest,
    manifest::ManifestOptions
);
