//! `mvlpt zero-shot`: CLIP zero-shot classification with one template or an ensemble.

use super::encode::{encode_images, image_files, read_lines};
use super::ModelArgs;
use anyhow::{bail, Result};
use candle_core::{Tensor, D};
use mvlpt_framework::model::{l2_normalize, tokenizer::ClipTokenizer};
use std::path::PathBuf;

/// Arguments of `mvlpt zero-shot`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// Directory of images.
    #[arg(long)]
    images: PathBuf,
    /// Class names, one per line.
    #[arg(long)]
    classes: PathBuf,
    /// Templates with `{}` for the class name, one per line (default: "a photo of a {}.").
    /// Several templates are ensembled by averaging normalised text features.
    #[arg(long)]
    templates: Option<PathBuf>,
    /// How many classes to print per image.
    #[arg(long, default_value_t = 5)]
    top: usize,
}

/// Ensemble text features `(classes, embed_dim)`: per class, the normalised mean of the
/// normalised features of every template (CLIP's zero-shot recipe).
pub fn class_features(
    clip: &mvlpt_framework::model::Clip,
    classes: &[String],
    templates: &[String],
) -> Result<Tensor> {
    let tokenizer = ClipTokenizer::new();
    let mut rows = Vec::with_capacity(classes.len());
    for class in classes {
        let texts: Vec<String> = templates
            .iter()
            .map(|t| t.replace("{}", &class.replace('_', " ")))
            .collect();
        let ids = tokenizer.tokenize_batch(&texts, clip.config.text.context_length, false)?;
        let features = l2_normalize(&clip.encode_text(&ids)?)?;
        rows.push(l2_normalize(&features.mean_keepdim(0)?)?);
    }
    Ok(Tensor::cat(&rows, 0)?)
}

/// Runs `mvlpt zero-shot`.
pub fn run(args: Args) -> Result<()> {
    let clip = args.model.load()?;
    let classes = read_lines(&args.classes)?;
    if classes.is_empty() {
        bail!("{} lists no classes", args.classes.display());
    }
    let templates = match &args.templates {
        Some(path) => read_lines(path)?,
        None => vec!["a photo of a {}.".to_string()],
    };
    if let Some(bad) = templates.iter().find(|t| !t.contains("{}")) {
        bail!("template {bad:?} has no {{}} placeholder for the class name");
    }
    let files = image_files(&args.images)?;
    let device = clip.text.token_embedding.device().clone();
    let images = encode_images(&clip, &files, 32, &device)?;
    let text = class_features(&clip, &classes, &templates)?;
    let probs = candle_nn::ops::softmax(
        &(l2_normalize(&images)?.matmul(&text.t()?)? * clip.logit_scale_exp()?)?,
        D::Minus1,
    )?;
    let probs: Vec<Vec<f32>> = probs.to_vec2()?;
    for (file, row) in files.iter().zip(probs) {
        let mut order: Vec<usize> = (0..row.len()).collect();
        order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
        let top: Vec<String> = order
            .iter()
            .take(args.top)
            .map(|&c| format!("{} {:.1}%", classes[c], 100.0 * row[c]))
            .collect();
        println!(
            "{}\t{}",
            file.file_name()
                .map(|f| f.to_string_lossy())
                .unwrap_or_default(),
            top.join("\t")
        );
    }
    Ok(())
}
