#!/usr/bin/env bash
# Merge source outputs into one dataset (dedup, near-dup, decontamination, split, manifest, report).
#   MBPP_PATH=../shared/data/mbpp/mbpp.jsonl bash scripts/merge.sh data/out/codealpaca.jsonl data/out/codecontests.jsonl
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$#" -eq 0 ]; then
  echo "usage: [OUT=data/out/merged] [MBPP_PATH=...] bash scripts/merge.sh SOURCE_OUTPUT... [-- merge options]" >&2
  exit 2
fi
inputs=()
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do inputs+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
python -m data_generation merge --input "${inputs[@]}" \
  --output-dir "${OUT:-data/out/merged}" \
  --mbpp-path "${MBPP_PATH:-google-research-datasets/mbpp}" \
  --validation-size "${VALIDATION_SIZE:-0.02}" \
  --formats "${FORMATS:-json,jsonl,hf}" --overwrite "$@"
