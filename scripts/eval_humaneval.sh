#!/usr/bin/env bash
# HumanEval: sample completions with main.generate under torchrun, then run them in the sandbox
# (main.eval_humaneval): OUT/samples.jsonl, results.jsonl, metrics.json, report.md, passk.png.
#   bash scripts/eval_humaneval.sh                       # embedded SmolLM2, greedy pass@1, offline, CPU
#   MODEL=path/or/hub-id N=200 TEMPERATURE=0.8 NPROC=4 bash scripts/eval_humaneval.sh   # pass@1/10/100
#   MODEL=base ADAPTER=out/lora/final STYLE=alpaca bash scripts/eval_humaneval.sh       # a tuned model
# Options after the script name go to main.generate (e.g. --limit 10 --max-new-tokens 256).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${MODEL:-embedded}"
OUT="${OUT:-data/out/eval/humaneval}"
N="${N:-1}"
GEN=(--benchmark humaneval --model "$MODEL" --output "$OUT/samples.jsonl" --num-samples "$N")
if [ -z "${TEMPERATURE:-}" ] && [ "$N" = 1 ]; then GEN+=(--greedy); else GEN+=(--temperature "${TEMPERATURE:-0.8}"); fi
if [ -n "${ADAPTER:-}" ]; then GEN+=(--adapter "$ADAPTER"); fi
if [ -n "${STYLE:-}" ]; then GEN+=(--prompt-style "$STYLE"); fi
mkdir -p "$OUT"
# shellcheck disable=SC2086  # TORCHRUN_ARGS is a list of options
torchrun --standalone --nproc_per_node "${NPROC:-1}" ${TORCHRUN_ARGS:-} -m main.generate "${GEN[@]}" "$@"
python -m main.eval_humaneval --input "$OUT/samples.jsonl" --output-dir "$OUT" \
    --n-workers "${WORKERS:-$(nproc)}" --timeout "${TIMEOUT:-3}"
