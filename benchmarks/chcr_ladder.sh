#!/usr/bin/env bash
# CHCR ablation ladder (benchmarks/chcr-ladder.yaml): seed by seed, so that a partial run still holds
# complete rungs; the suite runner skips finished runs, so re-running continues where it stopped.
#   bash benchmarks/chcr_ladder.sh [OUTPUT]      (default runs/chcr-ladder)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/chcr-ladder}
reidkit=${REIDKIT:-.venv/bin/reidkit}
for seed in 0 1 2; do
  "$reidkit" bench benchmarks/chcr-ladder.yaml --output "$out" --only "seed$seed"
done
"$reidkit" report "$out" --format markdown --output "$out/report.md"
for run in "$out"/synthetic-standard/chcr/*/seed0; do
  .venv/bin/python benchmarks/chcr_diagnostics.py "$run" > "$run/diagnostics.json"
done
