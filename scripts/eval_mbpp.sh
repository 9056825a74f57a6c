#!/usr/bin/env bash
# MBPP: sample completions with main.generate under torchrun, then run them in the sandbox
# (main.eval_mbpp): OUT/samples.jsonl, results.jsonl, metrics.json, report.md, passk.png.
#   bash scripts/eval_mbpp.sh                            # embedded SmolLM2, greedy pass@1, test split (500)
#   SANITIZED=1 MBPP_PATH=../shared/data/mbpp/sanitized-mbpp.json bash scripts/eval_mbpp.sh
#   MODEL=path/or/hub-id N=200 TEMPERATURE=0.8 NPROC=4 STYLE=3shot bash scripts/eval_mbpp.sh
# MBPP_PATH: mbpp.jsonl, sanitized-mbpp.json, a save_to_disk folder or the hub id (needs network).
# Options after the script name go to main.generate (e.g. --limit 10 --split test).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${MODEL:-embedded}"
OUT="${OUT:-data/out/eval/mbpp}"
N="${N:-1}"
MBPP_PATH="${MBPP_PATH:-${SHARED:-../shared/data}/mbpp/mbpp.jsonl}"
GEN=(--benchmark mbpp --model "$MODEL" --mbpp-path "$MBPP_PATH" --output "$OUT/samples.jsonl" --num-samples "$N")
if [ -z "${TEMPERATURE:-}" ] && [ "$N" = 1 ]; then GEN+=(--greedy); else GEN+=(--temperature "${TEMPERATURE:-0.8}"); fi
if [ -n "${ADAPTER:-}" ]; then GEN+=(--adapter "$ADAPTER"); fi
if [ -n "${STYLE:-}" ]; then GEN+=(--prompt-style "$STYLE"); fi
if [ "${SANITIZED:-0}" = 1 ]; then GEN+=(--sanitized); fi
mkdir -p "$OUT"
# shellcheck disable=SC2086  # TORCHRUN_ARGS is a list of options
torchrun --standalone --nproc_per_node "${NPROC:-1}" ${TORCHRUN_ARGS:-} -m main.generate "${GEN[@]}" "$@"
# split, flavour and path come from the samples' .meta.json
python -m main.eval_mbpp --input "$OUT/samples.jsonl" --output-dir "$OUT" \
    --n-workers "${WORKERS:-$(nproc)}" --timeout "${TIMEOUT:-3}"
