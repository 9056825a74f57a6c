#!/usr/bin/env bash
# Convert CodeContests (deepmind/code_contests) into instruction records.
# Defaults: hub dataset, train split, output in data/out/. Override with INPUT / SPLIT / OUTPUT,
# and pass any other option through, e.g.:
#   INPUT=data/code_contests_train.parquet scripts/codecontests.sh --solutions shortest --max-per-language 2
set -euo pipefail
cd "$(dirname "$0")/.."
python -m data_generation codecontests \
    --input "${INPUT:-deepmind/code_contests}" \
    --split "${SPLIT:-train}" \
    --output "${OUTPUT:-data/out/codecontests.jsonl}" \
    "$@"
