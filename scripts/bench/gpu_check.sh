#!/usr/bin/env bash
# The GPU proof in one command (scripts/bench/gpu_check.py): results.json and gpu_check.log in DIR.
#   bash scripts/bench/gpu_check.sh [--tiny] [DIR]      # DIR default data/out/bench/gpu
# It stops itself after $LIMIT seconds (default 480: the 8 minutes it is sized for on one H100/H200);
# what finished by then is in the log, and the exit code is 124.
set -euo pipefail
cd "$(dirname "$0")/../.."
TINY=()
if [[ "${1:-}" == "--tiny" ]]; then TINY=(--tiny); shift; fi
OUT="${1:-data/out/bench/gpu}"
mkdir -p "$OUT"
PY="${PYTHON:-$( [[ -x .venv/bin/python ]] && echo .venv/bin/python || echo python3 )}"
timeout "${LIMIT:-480}" "$PY" -m scripts.bench.gpu_check "${TINY[@]}" --output-dir "$OUT" 2>&1 | tee "$OUT/gpu_check.log"
exit "${PIPESTATUS[0]}"
