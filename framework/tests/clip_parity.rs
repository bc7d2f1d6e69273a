//! The CLIP port against open_clip / transformers on a tiny random model
//! (fixtures from tools/fixtures/clip_parity.py).

use candle_core::{DType, Device, Tensor};
use mvlpt_framework::model::{load_clip, weights, Clip, LoadOptions};
use std::path::PathBuf;

fn fixture(path: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/clip"
    ))
    .join(path)
}

struct Reference {
    pixels: Tensor,
    ids: Vec<Vec<u32>>,
    image_embeds: Tensor,
    text_embeds: Tensor,
    logits: Tensor,
}

fn reference() -> Reference {
    let r = candle_core::safetensors::load(fixture("reference.safetensors"), &Device::Cpu).unwrap();
    let ids = r["input_ids"]
        .to_dtype(DType::U32)
        .unwrap()
        .to_vec2::<u32>()
        .unwrap();
    Reference {
        pixels: r["pixels"].clone(),
        ids,
        image_embeds: r["image_embeds"].clone(),
        text_embeds: r["text_embeds"].clone(),
        logits: r["logits_per_image"].clone(),
    }
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar()
        .unwrap()
}

fn check_against_reference(clip: &Clip) {
    let r = reference();
    let img = clip.encode_image(&r.pixels).unwrap();
    let txt = clip.encode_text(&r.ids).unwrap();
    let logits = clip.logits(&img, &txt).unwrap();
    let (di, dt, dl) = (
        max_abs_diff(&img, &r.image_embeds),
        max_abs_diff(&txt, &r.text_embeds),
        max_abs_diff(&logits, &r.logits),
    );
    assert!(
        di < 1e-4 && dt < 1e-4 && dl < 1e-4,
        "image {di}, text {dt}, logits {dl}"
    );
}

#[test]
fn openai_layout_matches_open_clip() {
    let clip = load_clip(fixture("openai").to_str().unwrap(), &LoadOptions::default()).unwrap();
    assert_eq!(clip.config.text.heads, 2);
    assert_eq!(clip.config.vision.heads, 2);
    check_against_reference(&clip);
}

#[test]
fn full_sequence_text_tower_matches_open_clip() {
    // Without the cut after the last end-of-text token the tower runs every position, as
    // open_clip does; the features must not change.
    let mut clip = load_clip(fixture("openai").to_str().unwrap(), &LoadOptions::default()).unwrap();
    clip.text.cut_after_eot = false;
    check_against_reference(&clip);
}

#[test]
fn hugging_face_layout_matches_open_clip() {
    let clip = load_clip(fixture("hf").to_str().unwrap(), &LoadOptions::default()).unwrap();
    check_against_reference(&clip);
}

#[test]
fn bare_openai_file_infers_the_architecture_from_shapes() {
    // Without open_clip_config.json heads follow OpenAI's rule (width / 64): one head each here.
    let file = fixture("openai/open_clip_model.safetensors");
    let clip = weights::load_file(&file, None, &LoadOptions::default()).unwrap();
    let c = &clip.config;
    assert_eq!(
        (
            c.embed_dim,
            c.vision.image_size,
            c.vision.patch_size,
            c.vision.width,
            c.vision.layers
        ),
        (24, 32, 8, 64, 2)
    );
    assert_eq!(
        (
            c.text.width,
            c.text.layers,
            c.text.context_length,
            c.text.vocab_size
        ),
        (32, 2, 77, 49408)
    );
    assert_eq!((c.vision.heads, c.text.heads), (1, 1));
}

#[test]
fn saved_model_round_trips_with_its_architecture() {
    let clip = load_clip(fixture("hf").to_str().unwrap(), &LoadOptions::default()).unwrap();
    let dir = std::env::temp_dir().join(format!("mvlpt-roundtrip-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tiny.safetensors");
    weights::save_clip(&clip, &path, DType::F32).unwrap();
    let again = load_clip(path.to_str().unwrap(), &LoadOptions::default()).unwrap();
    assert_eq!(again.config, clip.config);
    check_against_reference(&again);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_and_misshaped_tensors_are_named() {
    let file = fixture("openai/open_clip_model.safetensors");
    let mut tensors = candle_core::safetensors::load(&file, &Device::Cpu).unwrap();
    let config = load_clip(fixture("openai").to_str().unwrap(), &LoadOptions::default())
        .unwrap()
        .config;

    let mut missing = tensors.clone();
    missing.remove("transformer.resblocks.1.mlp.c_fc.weight");
    let err = Clip::from_tensors(
        &config,
        &mut weights::TensorMap::new(missing, "x.safetensors"),
        DType::F32,
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("x.safetensors")
            && msg.contains("transformer.resblocks.1.mlp.c_fc.weight")
            && msg.contains("[128, 32]"),
        "{msg}"
    );

    tensors.insert(
        "ln_final.weight".into(),
        Tensor::zeros(31, DType::F32, &Device::Cpu).unwrap(),
    );
    let err = Clip::from_tensors(
        &config,
        &mut weights::TensorMap::new(tensors, "y.safetensors"),
        DType::F32,
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("ln_final.weight") && msg.contains("[31]") && msg.contains("[32]"),
        "{msg}"
    );
}

#[test]
fn offline_hub_request_fails_fast_with_instructions() {
    let cache = std::env::temp_dir().join(format!("mvlpt-hub-{}", std::process::id()));
    std::env::set_var("MVLPT_OFFLINE", "1");
    let options = LoadOptions {
        cache_dir: Some(cache),
        ..LoadOptions::default()
    };
    let err = load_clip("openai/clip-vit-base-patch16", &options)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("openai/clip-vit-base-patch16")
            && err.contains("model.safetensors")
            && err.contains("offline"),
        "{err}"
    );
}
