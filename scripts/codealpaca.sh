#!/usr/bin/env bash
# CodeAlpaca -> records. INPUT: hub id (default) or a local .json/.jsonl/.parquet; extra args pass through.
#   INPUT=../shared/data/code_alpaca/code_alpaca_2k.json bash scripts/codealpaca.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python -m data_generation codealpaca \
  --input "${INPUT:-sahil2801/CodeAlpaca-20k}" \
  --output "${OUTPUT:-data/out/codealpaca.jsonl}" "$@"
