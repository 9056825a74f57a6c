#!/usr/bin/env bash
# Offline demo: real CodeAlpaca sample + the CodeContests fixture -> one decontaminated dataset.
#   bash scripts/demo.sh            (reads ../shared/data; set SHARED=... to point elsewhere)
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${SHARED:-../shared/data}"
OUT="${OUT:-data/out/demo}"
mkdir -p "$OUT"
python -m data_generation codealpaca --input "$SHARED/code_alpaca/code_alpaca_2k.json" --output "$OUT/codealpaca.jsonl"
python -m data_generation codecontests --input tests/fixtures/code_contests_sample.jsonl \
  --output "$OUT/codecontests.jsonl" --show-tests
python -m data_generation merge "$OUT/codealpaca.jsonl" "$OUT/codecontests.jsonl" \
  --output-dir "$OUT/merged" --mbpp-path "$SHARED/mbpp/mbpp.jsonl" --validation-size 0.02 \
  --formats json,jsonl,hf --overwrite
cat "$OUT/merged/report.md"
