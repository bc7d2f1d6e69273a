//! Criterion benchmarks over the code of `mvlpt bench step` (the `mvlpt-bench` crate, framework/bench) at sizes
//! that keep `cargo bench` short: the CoOp text step (forward + backward to the context) and
//! the image-tower forward, on the `tiny` preset and on ViT-B/32 with few classes / images.
//! For the full-size side-by-side comparison with PyTorch use `benches/compare_step.py`.

use candle_core::{DType, Device};
use criterion::{criterion_group, criterion_main, Criterion};
use mvlpt_bench::CoopTextStep;
use mvlpt_framework::model::{Clip, ClipConfig};
use mvlpt_framework::rng;
use std::hint::black_box;

/// A random model of `preset`, with or without the cut after the last end-of-text token.
fn model(preset: &str, cut_after_eot: bool) -> Clip {
    let config = ClipConfig::preset(preset).unwrap();
    let mut clip = Clip::random(&config, 0, &Device::Cpu, DType::F32).unwrap();
    clip.text.cut_after_eot = cut_after_eot;
    clip
}

fn text_step(c: &mut Criterion) {
    // As the `mvlpt` binary does at start-up (criterion runs this group first).
    mvlpt_framework::ops::tune_allocator();
    let mut group = c.benchmark_group("coop_text_step");
    group.sample_size(10);
    for (name, preset, classes, cut) in [
        ("tiny/10 classes/77 tokens", "tiny", 10, false),
        ("tiny/10 classes/cut", "tiny", 10, true),
        ("ViT-B-32/2 classes/cut", "ViT-B/32", 2, true),
    ] {
        let step = CoopTextStep::new(model(preset, cut), classes, 77, 16, 32, 0).unwrap();
        group.bench_function(name, |b| b.iter(|| black_box(step.run().unwrap())));
    }
    group.finish();
}

fn image_forward(c: &mut Criterion) {
    let mut group = c.benchmark_group("image_forward");
    group.sample_size(10);
    for (name, preset, batch) in [
        ("tiny/32 images", "tiny", 32),
        ("ViT-B-32/2 images", "ViT-B/32", 2),
    ] {
        let clip = model(preset, true);
        let size = clip.config.vision.image_size;
        let mut r = rng::seeded(1);
        let images = rng::normal((batch, 3, size, size), 0.0, 1.0, &mut r, &Device::Cpu).unwrap();
        group.bench_function(name, |b| {
            b.iter(|| black_box(clip.vision.forward(&images, None).unwrap()))
        });
    }
    group.finish();
}

criterion_group!(benches, text_step, image_forward);
criterion_main!(benches);
