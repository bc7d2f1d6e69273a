//! `mvlpt encode`: image and text embeddings of a CLIP model, written to safetensors.

use super::ModelArgs;
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use mvlpt_framework::data::image::{decode_file, ExifOrientation};
use mvlpt_framework::data::transforms::{stack_batch, Pipeline};
use mvlpt_framework::model::tokenizer::ClipTokenizer;
use mvlpt_framework::model::Clip;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Arguments of `mvlpt encode`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// Directory of images (every image file, sorted by name).
    #[arg(long)]
    images: Option<PathBuf>,
    /// Text file, one text per line.
    #[arg(long)]
    texts: Option<PathBuf>,
    /// Output .safetensors file.
    #[arg(long)]
    out: PathBuf,
    /// Images per forward pass.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
}

/// Image file extensions read from directories.
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "bmp", "gif", "webp", "tif", "tiff"];

/// Image files of `dir`, sorted by file name.
pub fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading image directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    if files.is_empty() {
        bail!(
            "no image files ({}) in {}",
            IMAGE_EXTENSIONS.join(", "),
            dir.display()
        );
    }
    Ok(files)
}

/// The lines of a text file, one item each (trailing newline ignored); a file without any line
/// is an error naming it.
pub fn read_lines(path: &Path) -> Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    if lines.is_empty() {
        bail!("{} is empty: expected one text per line", path.display());
    }
    Ok(lines)
}

/// Image features `(n, embed_dim)` of `files` with CLIP's test transform.
pub fn encode_images(
    clip: &Clip,
    files: &[PathBuf],
    batch_size: usize,
    device: &Device,
) -> Result<Tensor> {
    let pipeline = Pipeline::clip_test(clip.config.vision.image_size)?;
    let mut rng = mvlpt_framework::rng::seeded(0);
    let mut parts = Vec::new();
    for chunk in files.chunks(batch_size.max(1)) {
        let tensors = chunk
            .iter()
            .map(|f| {
                let image = decode_file(f, ExifOrientation::Ignore)?;
                pipeline
                    .apply(&image, &mut rng)
                    .with_context(|| format!("transforming {}", f.display()))
            })
            .collect::<Result<Vec<_>>>()?;
        let batch = stack_batch(&tensors, device)?;
        parts.push(clip.encode_image(&batch)?.detach());
    }
    Ok(Tensor::cat(&parts, 0)?)
}

/// Text features `(n, embed_dim)` of `texts` (error naming the line if one is too long).
pub fn encode_texts(clip: &Clip, texts: &[String]) -> Result<Tensor> {
    let tokenizer = ClipTokenizer::new();
    let ids = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            tokenizer
                .tokenize(t, clip.config.text.context_length, false)
                .with_context(|| format!("text line {}", i + 1))
        })
        .collect::<Result<Vec<_>>>()?;
    let parts = ids
        .chunks(256)
        .map(|c| Ok(clip.encode_text(c)?.detach()))
        .collect::<Result<Vec<_>>>()?;
    Ok(Tensor::cat(&parts, 0)?)
}

/// Runs `mvlpt encode`.
pub fn run(args: Args) -> Result<()> {
    if args.images.is_none() && args.texts.is_none() {
        bail!("nothing to encode: give --images and/or --texts");
    }
    let clip = args.model.load()?;
    let device = clip.text.token_embedding.device().clone();
    let mut out: HashMap<String, Tensor> = HashMap::new();
    let images = match &args.images {
        Some(dir) => Some(encode_images(
            &clip,
            &image_files(dir)?,
            args.batch_size,
            &device,
        )?),
        None => None,
    };
    let texts = match &args.texts {
        Some(path) => Some(encode_texts(&clip, &read_lines(path)?)?),
        None => None,
    };
    if let (Some(i), Some(t)) = (&images, &texts) {
        out.insert("logits_per_image".into(), clip.logits(i, t)?);
    }
    if let Some(i) = images {
        out.insert("image_embeds".into(), i);
    }
    if let Some(t) = texts {
        out.insert("text_embeds".into(), t);
    }
    let out = out
        .into_iter()
        .map(|(k, v)| {
            Ok((
                k,
                v.to_dtype(candle_core::DType::F32)?
                    .to_device(&Device::Cpu)?,
            ))
        })
        .collect::<Result<HashMap<_, _>>>()?;
    let bytes = safetensors::serialize(&out, None).context("serialising embeddings")?;
    mvlpt_framework::io::write_atomic(&args.out, &bytes)?;
    eprintln!(
        "wrote {} ({})",
        args.out.display(),
        out.keys().cloned().collect::<Vec<_>>().join(", ")
    );
    Ok(())
}
