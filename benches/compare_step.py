#!/usr/bin/env python3
"""Side-by-side timing of one CoOp step: mvlpt (candle) against PyTorch eager, alternately.

Each round runs, one after the other, in separate processes with the same thread count:
ours with the text sequence cut after the last end-of-text token (our default), ours on the
full sequence (like for like with PyTorch), and benches/reference_step.py. Alternating rounds
expose both sides to the same machine load; the table gives the median over rounds of each
run's median, the per-round ratios' range (a noise indicator) and the raw reports are kept.

Usage (from the repository root):
    python benches/compare_step.py --threads 2 --rounds 5
Options pass through to both benchmarks: --preset --classes --context-length --n-ctx --batch
--warmup --iterations --threads --seed. --python selects the interpreter with torch and
open_clip; --out a folder for the raw JSON reports.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_json(command, env):
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(map(str, command))} failed:\n{result.stderr}")
    return json.loads(result.stdout)


def target_dir():
    if "CARGO_TARGET_DIR" in os.environ:
        return Path(os.environ["CARGO_TARGET_DIR"])
    meta = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )
    return Path(json.loads(meta.stdout)["target_directory"])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--no-build", action="store_true")
    p.add_argument("--preset", default="ViT-B/32")
    for name, default in [("classes", 10), ("context-length", 77), ("n-ctx", 16), ("batch", 32),
                          ("warmup", 2), ("iterations", 5), ("threads", 2), ("seed", 0)]:
        p.add_argument(f"--{name}", type=int, default=default)
    args = p.parse_args()

    if not args.no_build:
        # No `-p`: selecting the framework alone resolves dependency features differently from
        # the workspace's default members and rebuilds every dependency.
        subprocess.run(["cargo", "build", "--release"], cwd=ROOT, check=True)
    ours = [target_dir() / "release" / "mvlpt", "bench", "step"]
    common = ["--preset", args.preset]
    for name in ["classes", "context-length", "n-ctx", "batch", "warmup", "iterations",
                 "threads", "seed"]:
        common += [f"--{name}", str(getattr(args, name.replace("-", "_")))]
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads))
    commands = {
        "ours (cut)": [*ours, *common],
        "ours (full)": [*ours, *common, "--no-cut", "--no-image"],
        "pytorch": [args.python, ROOT / "benches" / "reference_step.py", *common],
    }
    reports = {name: [] for name in commands}
    for round_index in range(args.rounds):
        for name, command in commands.items():
            reports[name].append(run_json(command, env))
            print(f"round {round_index + 1}/{args.rounds}: {name} done", file=sys.stderr)

    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "reports.json").write_text(json.dumps(reports, indent=1))
    print_table(args, reports)


def metric(report, *path):
    for key in path:
        report = report.get(key) if report else None
    return report


def print_table(args, reports):
    rows = [
        ("text step ms, full sequence", "ours (full)", ("text_step", "timing", "median_ms")),
        ("text step ms, cut after EOT", "ours (cut)", ("text_step", "timing", "median_ms")),
        ("image forward ms", "ours (cut)", ("image_forward", "timing", "median_ms")),
        ("resident before timing MB", "ours (full)", ("baseline_rss_bytes",)),
        ("text step peak RSS MB", "ours (full)", ("text_step", "peak_rss_bytes")),
        ("image forward peak RSS MB", "ours (cut)", ("image_forward", "peak_rss_bytes")),
        ("GEMM 2048 GFLOP/s", "ours (cut)", ("gemm", "gflop_per_s")),
    ]
    torch = reports["pytorch"]
    print(f"\n{args.preset}, {args.classes} classes x {args.context_length} tokens, n_ctx "
          f"{args.n_ctx}, batch {args.batch}, {args.threads} threads, {args.rounds} rounds "
          f"alternating, {args.iterations} timed runs each (medians of run medians)\n")
    print(f"| {'measure':30} | {'ours':>9} | {'pytorch':>9} | {'ratio':>6} | {'ratio range':>13} |")
    print(f"|{'-' * 32}|{'-' * 11}|{'-' * 11}|{'-' * 8}|{'-' * 15}|")
    for label, ours_name, path in rows:
        ours_values = [metric(r, *path) for r in reports[ours_name]]
        torch_values = [metric(r, *path) for r in torch]
        if None in ours_values or None in torch_values:
            continue
        scale = 1e-6 if label.endswith(" MB") else 1.0
        ratios = [o / t for o, t in zip(ours_values, torch_values)]
        o, t = statistics.median(ours_values) * scale, statistics.median(torch_values) * scale
        print(f"| {label:30} | {o:9.1f} | {t:9.1f} | {o / t:6.2f} | "
              f"{min(ratios):5.2f} - {max(ratios):5.2f} |")
    for name in ["ours (full)", "pytorch"]:
        fractions = [metric(r, "text_step", "fraction_of_gemm") for r in reports[name]]
        print(f"\n{name}: text step at {statistics.median(fractions):.0%} of its own GEMM rate",
              end="")
    print()


if __name__ == "__main__":
    main()
