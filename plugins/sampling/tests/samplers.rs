//! The batch samplers: determinism in `(seed, epoch)`, coverage, batch structure, and task
//! proportions within stated statistical bounds.

use mvlpt_framework::config::LoadedConfig;
use mvlpt_framework::data::{BatchSampler, SampleMeta};
use mvlpt_sampling::samplers::{
    ClassBalancedOptions, ClassBalancedSampler, DropLast, RandomSampler, SequentialOptions,
    SequentialSampler, ShuffleOptions, TaskMixSampler, TaskTemperatureOptions, TaskWeighting,
};
use std::collections::{BTreeMap, HashSet};

/// `sizes[t]` samples of task `t`, tasks interleaved round-robin, class = position % classes.
fn multitask_items(sizes: &[usize], classes: usize) -> Vec<SampleMeta> {
    let mut items = Vec::new();
    let longest = sizes.iter().copied().max().unwrap_or(0);
    for round in 0..longest {
        for (task, &size) in sizes.iter().enumerate() {
            if round < size {
                let position = items.len();
                items.push(SampleMeta {
                    task,
                    label: Some(position % classes),
                });
            }
        }
    }
    items
}

fn single_task_items(n: usize, classes: usize) -> Vec<SampleMeta> {
    multitask_items(&[n], classes)
}

fn flat(batches: &[Vec<usize>]) -> Vec<usize> {
    batches.iter().flatten().copied().collect()
}

fn shuffling_samplers() -> Vec<(&'static str, Box<dyn BatchSampler>)> {
    vec![
        ("random", Box::new(RandomSampler::default())),
        (
            "class_balanced",
            Box::new(ClassBalancedSampler::new(ClassBalancedOptions { instances: 4 }).unwrap()),
        ),
        (
            "task_uniform",
            Box::new(TaskMixSampler::new(TaskWeighting::Uniform, DropLast::Auto).unwrap()),
        ),
        (
            "task_temperature",
            Box::new(TaskMixSampler::new(TaskWeighting::Temperature(2.0), DropLast::Auto).unwrap()),
        ),
    ]
}

#[test]
fn orders_are_functions_of_seed_and_epoch() {
    let items = multitask_items(&[60, 25, 11], 6);
    for (name, sampler) in shuffling_samplers() {
        let run = |seed, epoch| sampler.batches(&items, 16, seed, epoch).unwrap();
        assert_eq!(run(3, 5), run(3, 5), "{name}: replay of seed 3 epoch 5");
        assert_ne!(run(3, 5), run(3, 6), "{name}: epochs 5 and 6");
        assert_ne!(run(3, 5), run(4, 5), "{name}: seeds 3 and 4");
    }
}

#[test]
fn random_and_task_proportional_cover_every_sample_once_per_epoch() {
    let items = multitask_items(&[70, 31, 9], 5);
    let n = items.len();
    let keep_all = RandomSampler::new(ShuffleOptions {
        drop_last: DropLast::Never,
        fixed_seed: None,
    });
    for epoch in 0..5 {
        let batches = keep_all.batches(&items, 32, 1, epoch).unwrap();
        assert_eq!(batches.len(), n.div_ceil(32));
        assert!(batches[..batches.len() - 1].iter().all(|b| b.len() == 32));
        let mut seen = flat(&batches);
        assert_ne!(
            seen,
            (0..n).collect::<Vec<_>>(),
            "epoch {epoch} is not shuffled"
        );
        seen.sort_unstable();
        assert_eq!(seen, (0..n).collect::<Vec<_>>(), "epoch {epoch}");
    }
    // Dassl's rule drops the incomplete last batch: 110 samples make 3 batches of 32.
    let dassl = RandomSampler::default().batches(&items, 32, 1, 0).unwrap();
    assert_eq!(dassl.len(), 3);
    let seen = flat(&dassl);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 96);
}

#[test]
fn fixed_seed_gives_every_run_seed_the_same_orders() {
    let items = single_task_items(50, 5);
    let fixed = RandomSampler::new(ShuffleOptions {
        fixed_seed: Some(0),
        ..Default::default()
    });
    assert_eq!(
        fixed.batches(&items, 8, 1, 2).unwrap(),
        fixed.batches(&items, 8, 2, 2).unwrap()
    );
    assert_eq!(
        fixed.batches(&items, 8, 1, 2).unwrap(),
        RandomSampler::default().batches(&items, 8, 0, 2).unwrap()
    );
    assert_ne!(
        fixed.batches(&items, 8, 1, 2).unwrap(),
        fixed.batches(&items, 8, 1, 3).unwrap()
    );
}

#[test]
fn sequential_keeps_the_given_order() {
    let items = single_task_items(10, 3);
    let keep = SequentialSampler::new(SequentialOptions {
        drop_last: DropLast::Never,
    });
    let batches = keep.batches(&items, 4, 9, 3).unwrap();
    assert_eq!(
        batches,
        vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9]]
    );
    let dassl = SequentialSampler::default()
        .batches(&items, 4, 9, 3)
        .unwrap();
    assert_eq!(dassl, vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7]]);
    // Fewer samples than a batch: Dassl keeps the one incomplete batch.
    let short = SequentialSampler::default()
        .batches(&items, 16, 0, 0)
        .unwrap();
    assert_eq!(short, vec![(0..10).collect::<Vec<_>>()]);
}

#[test]
fn class_balanced_batches_hold_n_classes_of_k_samples() {
    // Class sizes 3 (fewer than K: drawn with replacement), 4, 9 and 13, 25 over 6 classes.
    let mut items = Vec::new();
    for (class, size) in [3usize, 4, 9, 13, 25, 8].into_iter().enumerate() {
        for _ in 0..size {
            items.push(SampleMeta {
                task: 0,
                label: Some(class),
            });
        }
    }
    let (k, batch) = (4, 12);
    let sampler = ClassBalancedSampler::new(ClassBalancedOptions { instances: k }).unwrap();
    for epoch in 0..20 {
        let batches = sampler.batches(&items, batch, 7, epoch).unwrap();
        assert!(!batches.is_empty());
        let mut used_per_class: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for b in &batches {
            assert_eq!(b.len(), batch);
            for chunk in b.chunks(k) {
                let class = items[chunk[0]].label.unwrap();
                assert!(chunk.iter().all(|&i| items[i].label == Some(class)));
                used_per_class.entry(class).or_default().extend(chunk);
            }
            let classes: HashSet<_> = b.chunks(k).map(|c| items[c[0]].label).collect();
            assert_eq!(classes.len(), batch / k, "epoch {epoch}: distinct classes");
        }
        for (class, used) in used_per_class {
            let distinct = used.iter().collect::<HashSet<_>>().len();
            if class != 0 {
                // Classes with at least K samples never repeat one within an epoch.
                assert_eq!(distinct, used.len(), "epoch {epoch} class {class}");
            }
        }
    }
}

#[test]
fn class_balanced_refuses_what_it_cannot_build() {
    let items = single_task_items(40, 4);
    let sampler = ClassBalancedSampler::new(ClassBalancedOptions { instances: 4 }).unwrap();
    assert!(
        sampler.batches(&items, 10, 0, 0).is_err(),
        "10 is not a multiple of 4"
    );
    assert!(
        sampler.batches(&items, 20, 0, 0).is_err(),
        "5 classes of 4 from 4 classes"
    );
    let unlabelled = vec![
        SampleMeta {
            task: 0,
            label: None
        };
        8
    ];
    let err = sampler.batches(&unlabelled, 4, 0, 0).unwrap_err();
    assert!(err.to_string().contains("sample 0"), "{err}");
    assert!(ClassBalancedSampler::new(ClassBalancedOptions { instances: 0 }).is_err());
}

/// Task frequencies over `epochs` epochs of `sampler` on `items`.
fn task_frequencies(sampler: &dyn BatchSampler, items: &[SampleMeta], epochs: usize) -> Vec<f64> {
    let tasks = items.iter().map(|m| m.task).max().unwrap() + 1;
    let mut counts = vec![0usize; tasks];
    let mut total = 0usize;
    for epoch in 0..epochs {
        for index in flat(&sampler.batches(items, 32, 11, epoch).unwrap()) {
            counts[items[index].task] += 1;
            total += 1;
        }
    }
    counts.iter().map(|&c| c as f64 / total as f64).collect()
}

/// Asserts each observed frequency lies within 5 binomial standard deviations of its
/// expectation: with `draws` independent draws, sd = sqrt(p (1 - p) / draws). (Draws are
/// independent across slots; 5 sd bounds fail by chance with probability below 1e-6.)
fn assert_within_five_sd(observed: &[f64], expected: &[f64], draws: usize, what: &str) {
    for (task, (&o, &p)) in observed.iter().zip(expected).enumerate() {
        let sd = (p * (1.0 - p) / draws as f64).sqrt();
        assert!(
            (o - p).abs() < 5.0 * sd,
            "{what}: task {task} frequency {o:.4}, expected {p:.4} ± {:.4}",
            5.0 * sd
        );
    }
}

#[test]
fn task_uniform_draws_every_task_equally_often() {
    let sizes = [400usize, 100, 20];
    let items = multitask_items(&sizes, 7);
    let epochs = 40;
    let sampler = TaskMixSampler::new(TaskWeighting::Uniform, DropLast::Auto).unwrap();
    let observed = task_frequencies(&sampler, &items, epochs);
    // 520 samples → 16 full batches of 32 per epoch: 512 draws.
    assert_within_five_sd(&observed, &[1.0 / 3.0; 3], 512 * epochs, "task_uniform");
}

#[test]
fn task_temperature_draws_tasks_by_size_to_the_one_over_t() {
    let sizes = [400usize, 100, 20];
    let items = multitask_items(&sizes, 7);
    let epochs = 40;
    for temperature in [1.0, 2.0, 5.0] {
        let weights: Vec<f64> = sizes
            .iter()
            .map(|&n| (n as f64).powf(1.0 / temperature))
            .collect();
        let total: f64 = weights.iter().sum();
        let expected: Vec<f64> = weights.iter().map(|w| w / total).collect();
        let sampler =
            TaskMixSampler::new(TaskWeighting::Temperature(temperature), DropLast::Auto).unwrap();
        let observed = task_frequencies(&sampler, &items, epochs);
        assert_within_five_sd(
            &observed,
            &expected,
            512 * epochs,
            &format!("T = {temperature}"),
        );
    }
}

#[test]
fn task_mixing_cycles_through_each_task_before_repeating() {
    // Task 1 (12 samples) is drawn far more often than its size; each of its samples must be
    // used floor(m/12) or ceil(m/12) times after m draws.
    let items = multitask_items(&[300, 12], 3);
    let sampler = TaskMixSampler::new(TaskWeighting::Uniform, DropLast::Never).unwrap();
    let batches = sampler.batches(&items, 32, 5, 0).unwrap();
    let order = flat(&batches);
    assert_eq!(order.len(), items.len());
    let mut uses: BTreeMap<usize, usize> = BTreeMap::new();
    for &i in order.iter().filter(|&&i| items[i].task == 1) {
        *uses.entry(i).or_default() += 1;
    }
    let draws: usize = uses.values().sum();
    assert!(draws > 100, "{draws}");
    assert_eq!(uses.len(), 12);
    assert!(
        uses.values()
            .all(|&u| u == draws / 12 || u == draws.div_ceil(12)),
        "{uses:?}"
    );
    // Task 0 is drawn about 156 times out of 300: no repeats.
    let task0: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&i| items[i].task == 0)
        .collect();
    assert_eq!(task0.iter().collect::<HashSet<_>>().len(), task0.len());
}

#[test]
fn every_sampler_refuses_an_empty_epoch_or_a_zero_batch() {
    let items = single_task_items(8, 2);
    let mut samplers = shuffling_samplers();
    samplers.push(("sequential", Box::new(SequentialSampler::default())));
    for (name, sampler) in samplers {
        assert!(sampler.batches(&[], 4, 0, 0).is_err(), "{name}: no samples");
        assert!(sampler.batches(&items, 0, 0, 0).is_err(), "{name}: batch 0");
    }
}

#[test]
fn temperature_option_is_read_and_checked() {
    let loaded = LoadedConfig::load(
        None,
        &[
            "data.task_temperature.temperature=3.5".to_owned(),
            "data.task_temperature.drop_last=\"never\"".to_owned(),
            "data.class_balanced.instances=2".to_owned(),
        ],
    )
    .unwrap();
    let options: TaskTemperatureOptions =
        loaded.section("data.task_temperature").extract().unwrap();
    assert_eq!(options.temperature, 3.5);
    assert_eq!(options.drop_last, DropLast::Never);
    let options: ClassBalancedOptions = loaded.section("data.class_balanced").extract().unwrap();
    assert_eq!(options.instances, 2);
    for bad in [0.0, -1.0, f64::NAN] {
        assert!(
            TaskMixSampler::new(TaskWeighting::Temperature(bad), DropLast::Auto).is_err(),
            "{bad}"
        );
    }
    let loaded = LoadedConfig::load(None, &["data.random.drop=true".to_owned()]).unwrap();
    assert!(loaded
        .section("data.random")
        .extract::<ShuffleOptions>()
        .is_err());
}
