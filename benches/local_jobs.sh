#!/usr/bin/env bash
# Wall time of the quickstart sweep run sequentially (one process, all cores) and with the
# local executor (`--jobs 2`: two worker processes, cores / 2 threads each), alternating, each
# into a fresh runs directory; checks that both give the same report. docs/cluster.md quotes
# the result. Run after `cargo build --release`:
#
#   benches/local_jobs.sh [rounds]     (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
mvlpt="${CARGO_TARGET_DIR:-target}/release/mvlpt"
rounds="${1:-2}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

for round in $(seq 1 "$rounds"); do
  for mode in sequential jobs2; do
    runs="$scratch/$mode-$round"
    extra=()
    [[ "$mode" == jobs2 ]] && extra=(--jobs 2)
    load="$(cut -d' ' -f1 /proc/loadavg)"
    start="$(date +%s.%N)"
    "$mvlpt" run experiments/quickstart.toml --set "output.runs_dir=\"$runs\"" "${extra[@]}" \
      >"$runs.log" 2>&1
    end="$(date +%s.%N)"
    printf '%-10s round %d: %6.1f s (load average before: %s)\n' \
      "$mode" "$round" "$(echo "$end - $start" | bc)" "$load"
  done
  cmp -s "$scratch/sequential-$round/quickstart/report.json" \
    "$scratch/jobs2-$round/quickstart/report.json" \
    || { echo "round $round: the reports differ" >&2; exit 1; }
done
echo "the reports are identical"
