//! Prompt tensors from the reference implementation's checkpoints (§3.2).
//!
//! MVLPT saves its prompt learner with Dassl's `save_checkpoint`: a `torch.save` zip archive of
//! `{state_dict, epoch, optimizer, scheduler, val_result}` named `model-best.pth.tar` or
//! `model.pth.tar-<epoch>`. Its loader renames the legacy `upt_proj` prefix of the released
//! weights to `mvlpt_proj` and drops the class-dependent `token_prefix` / `token_suffix` buffers;
//! [`import_reference_checkpoint`] does the same, so the result loads into a method with
//! [`super::PromptLearner::load_parameters`].

use anyhow::{bail, Context, Result};
use candle_core::pickle::PthTensors;
use candle_core::Tensor;
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

/// Buffers the reference saves but never loads: they hold the embeddings of the class names.
pub const CLASS_DEPENDENT_BUFFERS: [&str; 2] = ["token_prefix", "token_suffix"];

/// How a file starts: a zip archive (`torch.save` since PyTorch 1.6), the legacy `torch.save`
/// format (a pickled magic number first), or something else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FileKind {
    Zip,
    LegacyTorch,
    Other,
}

/// The pickle (protocol 2) of `torch.serialization.MAGIC_NUMBER`, the first bytes of a legacy
/// `torch.save` file.
const LEGACY_MAGIC: [u8; 15] = [
    0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e,
];

fn file_kind(path: &Path) -> Result<FileKind> {
    let mut head = Vec::with_capacity(LEGACY_MAGIC.len());
    std::fs::File::open(path)
        .with_context(|| format!("opening {}", path.display()))?
        .take(LEGACY_MAGIC.len() as u64)
        .read_to_end(&mut head)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(if head.starts_with(b"PK\x03\x04") {
        FileKind::Zip
    } else if head == LEGACY_MAGIC {
        FileKind::LegacyTorch
    } else {
        FileKind::Other
    })
}

/// Reads the prompt tensors of a reference checkpoint (a `torch.save` zip archive holding either
/// Dassl's `{state_dict: …, epoch, optimizer, scheduler, val_result}` or a bare state dict) as the
/// reference's `load_model` would load them: every `upt_proj` in a name becomes `mvlpt_proj`, and
/// `token_prefix` / `token_suffix` are dropped. Tensors keep their stored dtype (fp16 for the
/// reference's fp16 training) and are returned on the CPU.
pub fn import_reference_checkpoint(path: &Path) -> Result<HashMap<String, Tensor>> {
    match file_kind(path)? {
        FileKind::Zip => {}
        FileKind::LegacyTorch => bail!(
            "{} uses the legacy torch.save format (PyTorch < 1.6 or \
             _use_new_zipfile_serialization=False), which cannot be read here; re-save it with \
             `torch.save(torch.load(path), path)` under PyTorch >= 1.6",
            path.display()
        ),
        FileKind::Other => bail!(
            "{} is not a PyTorch checkpoint (expected a torch.save zip archive)",
            path.display()
        ),
    }
    let archive = match PthTensors::new(path, Some("state_dict")) {
        Ok(archive) => archive,
        Err(wrapped) => PthTensors::new(path, None).map_err(|_| {
            anyhow::Error::from(wrapped).context(format!(
                "reading the state_dict of {} (a Dassl checkpoint or a bare state dict)",
                path.display()
            ))
        })?,
    };
    let mut names: Vec<&String> = archive.tensor_infos().keys().collect();
    names.sort();
    let mut out = HashMap::new();
    for name in names {
        if CLASS_DEPENDENT_BUFFERS.contains(&name.as_str()) {
            continue;
        }
        let tensor = archive
            .get(name)
            .with_context(|| format!("reading tensor `{name}` of {}", path.display()))?
            .with_context(|| format!("tensor `{name}` vanished from {}", path.display()))?;
        let renamed = name.replace("upt_proj", "mvlpt_proj");
        if out.insert(renamed.clone(), tensor).is_some() {
            bail!(
                "{}: two tensors map to `{renamed}` (a legacy `upt_proj` name and its current name)",
                path.display()
            );
        }
    }
    if out.is_empty() {
        bail!("{} holds no prompt tensors", path.display());
    }
    Ok(out)
}

/// Prompt tensors from `path`: a reference checkpoint (see [`import_reference_checkpoint`]) or
/// a safetensors file of tensors under their reference names (what mvlpt writes).
pub fn read_prompt_tensors(path: &Path) -> Result<HashMap<String, Tensor>> {
    if file_kind(path)? != FileKind::Other {
        return import_reference_checkpoint(path);
    }
    candle_core::safetensors::load(path, &candle_core::Device::Cpu).with_context(|| {
        format!(
            "reading prompt tensors from {} (expected safetensors or a PyTorch checkpoint)",
            path.display()
        )
    })
}
