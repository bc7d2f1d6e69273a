#!/usr/bin/env bash
# Peak memory of one CoOp training step against the size of the label space (reference §3.1,
# §3.4: 2,191 classes for the 11 CoOp source datasets), ViT-B/16 sizes with random weights, with
# the text tower chunked (the default) and unchunked. Prints one line per setting and the ratio
# of the chunked peak at 2,191 classes to the chunked peak at 100 classes.
#
# Usage: benches/memory_classes.sh [extra `mvlpt bench step` options]   (after cargo build --release)
# SETTINGS="100 128|2191 128" picks the "classes text_chunk" pairs (0 = unchunked).
set -euo pipefail
cd "$(dirname "$0")/.."
mvlpt="${CARGO_TARGET_DIR:-target}/release/mvlpt"
common=(bench step --method coop --preset ViT-B/16 --batch 8 --warmup 0 --iterations 1 "$@")

peak() { # classes text_chunk -> "peak_bytes median_ms"
  "$mvlpt" "${common[@]}" --classes "$1" --text-chunk "$2" |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["peak_rss_bytes"], r["step"]["median_ms"], r["baseline_rss_bytes"])'
}

printf '%-9s %-10s %14s %14s %12s\n' classes text_chunk peak_MiB baseline_MiB step_ms
declare -A peaks
IFS="|" read -r -a settings <<< "${SETTINGS:-100 128|2191 128|100 0|400 0|800 0}"
for setting in "${settings[@]}"; do
  set -- $setting
  read -r bytes ms base < <(peak "$1" "$2")
  peaks["$1/$2"]=$bytes
  python3 -c "print(f'{$1:<9} {$2:<10} {$bytes/2**20:14.0f} {$base/2**20:14.0f} {$ms:12.0f}')"
done
python3 -c "print(f'chunked peak, 2191 vs 100 classes: {${peaks[2191/128]}/${peaks[100/128]}:.2f}x')"
