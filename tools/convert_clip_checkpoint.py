#!/usr/bin/env python3
"""Convert a PyTorch CLIP checkpoint to safetensors, which is what mvlpt loads.

Handles the three files researchers usually have:

* OpenAI's released models (`ViT-B-16.pt`, a TorchScript archive, or a plain state dict);
* open_clip checkpoints (`open_clip_pytorch_model.bin`, a state dict, sometimes under
  `state_dict` with a `module.` prefix from DDP training);
* Hugging Face `pytorch_model.bin` (a state dict in the transformers layout; copy the model's
  `config.json` next to the output as well).

The tensor names are kept as they are; mvlpt detects the layout from them.

Usage:
    python tools/convert_clip_checkpoint.py ViT-B-16.pt ViT-B-16.safetensors
    python tools/convert_clip_checkpoint.py hf-dir/pytorch_model.bin hf-dir/model.safetensors

Needs `torch` and `safetensors` (pip install torch safetensors).
"""

import argparse
import sys

import torch
from safetensors.torch import save_file


def load_state_dict(path):
    try:
        # OpenAI's .pt files are TorchScript archives.
        return torch.jit.load(path, map_location="cpu").state_dict()
    except RuntimeError:
        pass
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(checkpoint, dict) and "state_dict" in checkpoint:
        checkpoint = checkpoint["state_dict"]
    if not isinstance(checkpoint, dict):
        sys.exit(f"{path}: expected a state dict or a TorchScript model, found {type(checkpoint)}")
    return {
        (name[len("module."):] if name.startswith("module.") else name): tensor
        for name, tensor in checkpoint.items()
        if isinstance(tensor, torch.Tensor)
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="the PyTorch file (.pt, .pth or .bin)")
    parser.add_argument("output", help="the .safetensors file to write")
    args = parser.parse_args()
    state = load_state_dict(args.checkpoint)
    # safetensors wants contiguous tensors that share no storage.
    tensors = {name: tensor.detach().clone().contiguous() for name, tensor in state.items()}
    save_file(tensors, args.output)
    print(f"wrote {len(tensors)} tensors to {args.output}")


if __name__ == "__main__":
    main()
