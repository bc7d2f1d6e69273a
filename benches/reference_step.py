#!/usr/bin/env python3
"""PyTorch eager version of `mvlpt bench step` (framework/bench/src/coop_step.rs), for side-by-side timing.

Same computation, same sizes, same FLOP convention, same JSON layout:

- the CoOp text step: `n_ctx` learned context vectors (the only tensor with requires_grad)
  spliced into "X X ... X {class}." prompts of `classes` synthetic classes, open_clip's text
  transformer (random weights, fp32, QuickGELU as in OpenAI's CLIP), LayerNorm, end-of-text
  pooling and projection as CoOp's TextEncoder does, cosine logits against `batch` fixed image
  features, cross-entropy, and `torch.autograd.grad` to the context;
- the image-tower forward of `batch` random images under `torch.no_grad()`;
- a square f32 `torch.mm` of size 2048 (the machine's attainable GEMM rate through PyTorch).

By default the text tower runs all `context_length` positions, as CoOp does; `--cut-after-eot`
truncates the sequence after the last end-of-text token like our default.

Usage: python benches/reference_step.py --threads 2 [--classes 10 --context-length 77 ...]
"""

import argparse
import json
import statistics
import time

import open_clip
import torch
import torch.nn.functional as F

START_OF_TEXT, END_OF_TEXT, PLACEHOLDER, FULL_STOP = 49406, 49407, 343, 269

# Our preset names -> open_clip architectures with OpenAI's QuickGELU.
ARCHITECTURES = {
    "ViT-B/32": "ViT-B-32-quickgelu",
    "ViT-B/16": "ViT-B-16-quickgelu",
    "ViT-L/14": "ViT-L-14-quickgelu",
    "ViT-L/14@336px": "ViT-L-14-336-quickgelu",
}


def coop_token_ids(classes, context_length, n_ctx):
    """The ids of framework/bench/src/coop_step.rs `coop_token_ids`: class i has 1 + i % 3 name tokens."""
    ids, eot = [], []
    for i in range(classes):
        row = [START_OF_TEXT] + [PLACEHOLDER] * n_ctx
        row += [1000 + 10 * i + j for j in range(1 + i % 3)]
        row.append(FULL_STOP)
        eot.append(len(row))
        row.append(END_OF_TEXT)
        if len(row) > context_length:
            raise SystemExit(f"class {i} needs {len(row)} positions > {context_length}")
        ids.append(row + [0] * (context_length - len(row)))
    return torch.tensor(ids), torch.tensor(eot)


def timing(samples_ms):
    return {
        "median_ms": statistics.median(samples_ms),
        "min_ms": min(samples_ms),
        "max_ms": max(samples_ms),
        "samples_ms": samples_ms,
    }


def time_runs(warmup, iterations, fn):
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e3)
    return timing(samples)


def proc_status_bytes(key):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def text_step_flops(width, layers, embed_dim, classes, length, batch):
    """Same convention as bench.rs: 2 FLOPs per multiply-add, matrix products only."""
    tokens = classes * length
    linear = 12 * tokens * width * width
    attention = 2 * tokens * length * width
    head = classes * width * embed_dim + batch * classes * embed_dim
    forward = layers * (linear + attention) + head
    backward = layers * (linear + 2 * attention) + head
    return 2 * (forward + backward)


def image_forward_flops(visual, embed_dim, batch):
    width = visual.conv1.out_channels
    patch = visual.conv1.kernel_size[0]
    grid = visual.grid_size[0]
    length = grid * grid + 1
    layers = len(visual.transformer.resblocks)
    patches = batch * grid * grid
    tokens = batch * length
    block = tokens * width * 12 * width + 2 * tokens * length * width
    return 2 * (patches * width * 3 * patch * patch + layers * block + batch * width * embed_dim)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="ViT-B/32", choices=sorted(ARCHITECTURES))
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--context-length", type=int, default=77)
    p.add_argument("--n-ctx", type=int, default=16)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cut-after-eot", action="store_true")
    p.add_argument("--no-image", action="store_true")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = open_clip.create_model(ARCHITECTURES[args.preset], pretrained=None)
    model.eval()
    model.requires_grad_(False)
    width = model.transformer.width
    embed_dim = model.text_projection.shape[1]
    layers = len(model.transformer.resblocks)

    ids, eot = coop_token_ids(args.classes, args.context_length, args.n_ctx)
    classes = args.classes
    length = int(eot.max()) + 1 if args.cut_after_eot else args.context_length
    with torch.no_grad():
        embedded = model.token_embedding(ids)[:, :length]
    prefix = embedded[:, :1]
    suffix = embedded[:, 1 + args.n_ctx :]
    context = (torch.randn(args.n_ctx, width) * 0.02).requires_grad_(True)
    image_features = F.normalize(torch.randn(args.batch, embed_dim), dim=-1)
    labels = torch.arange(args.batch) % classes
    logit_scale = model.logit_scale.exp().item()
    positions = model.positional_embedding[:length]
    mask = model.attn_mask[:length, :length]
    rows = torch.arange(classes)
    images = torch.randn(args.batch, 3, model.visual.image_size[0], model.visual.image_size[1])

    def text_step():
        ctx = context.unsqueeze(0).expand(classes, -1, -1)
        x = torch.cat([prefix, ctx, suffix], dim=1) + positions
        x = model.transformer(x, attn_mask=mask)
        x = model.ln_final(x)
        x = x[rows, eot] @ model.text_projection
        logits = logit_scale * image_features @ F.normalize(x, dim=-1).t()
        loss = F.cross_entropy(logits, labels)
        (grad,) = torch.autograd.grad(loss, [context])
        return grad

    def image_forward():
        with torch.no_grad():
            return model.encode_image(images)

    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    gemm = time_runs(1, max(args.iterations, 3), lambda: torch.mm(a, b))
    gemm_rate = 2 * 2048**3 / (gemm["median_ms"] * 1e6)

    def phase(t, flops, peak):
        rate = flops / (t["median_ms"] * 1e6)
        return {
            "timing": t,
            "flops": flops,
            "gflop_per_s": rate,
            "fraction_of_gemm": rate / gemm_rate,
            "peak_rss_bytes": peak,
        }

    baseline = proc_status_bytes("VmRSS:")
    reset = reset_peak_rss()
    t = time_runs(args.warmup, args.iterations, text_step)
    flops = text_step_flops(width, layers, embed_dim, classes, length, args.batch)
    text = phase(t, flops, proc_status_bytes("VmHWM:") if reset else None)
    image = None
    if not args.no_image:
        reset = reset_peak_rss()
        t = time_runs(args.warmup, args.iterations, image_forward)
        flops = image_forward_flops(model.visual, embed_dim, args.batch)
        image = phase(t, flops, proc_status_bytes("VmHWM:") if reset else None)

    report = {
        "implementation": f"pytorch {torch.__version__} eager, open_clip {open_clip.__version__}",
        "config": vars(args),
        "torch_threads": torch.get_num_threads(),
        "text_sequence_length": length,
        "trainable_parameters": context.numel(),
        "frozen_parameters": sum(p.numel() for p in model.parameters()),
        "baseline_rss_bytes": baseline,
        "gemm": {"size": 2048, "timing": gemm, "gflop_per_s": gemm_rate},
        "text_step": text,
        "image_forward": image,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
