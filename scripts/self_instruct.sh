#!/usr/bin/env bash
# Self-instruct: a teacher LLM writes new code tasks from data/seed_tasks.jsonl. Resumable: re-run the
# same command after a crash or Ctrl-C and it continues (the output is an append-only journal).
#   Offline, embedded teacher (SmolLM2-135M-Instruct; single mode, Python and JavaScript tasks, short replies):
#     NUM=20 bash scripts/self_instruct.sh
#   Any OpenAI-compatible endpoint (key read from $OPENAI_API_KEY, never from the command line):
#     TEACHER=openai BASE_URL=http://127.0.0.1:8000/v1 MODEL=my-model NUM=5000 bash scripts/self_instruct.sh --api chat
set -euo pipefail
cd "$(dirname "$0")/.."
args=(--teacher "${TEACHER:-local}" --num-instructions "${NUM:-100}" --output "${OUTPUT:-data/out/self_instruct.jsonl}")
[ -n "${MODEL:-}" ] && args+=(--model "$MODEL")
[ -n "${BASE_URL:-}" ] && args+=(--base-url "$BASE_URL")
if [ "${TEACHER:-local}" = local ]; then
  # the embedded 135M model cannot keep to Alpaca's 20-task list: one task per request (it starts
  # "Write a Python function that"), then its answer as a plain chat question; short replies, the
  # two languages whose answers it most often finishes and parses (flags given after these win)
  args+=(--mode single --languages python,javascript --requests-per-step 16 --num-prompt-instructions 2
         --temperature 0.7 --top-p 0.95 --instruction-max-tokens 48 --max-tokens 128 --answer-temperature 0.6
         --local-batch-size 16)
fi
python -m data_generation self-instruct "${args[@]}" "$@"
