#!/usr/bin/env bash
# Self-instruct: a teacher LLM writes new code tasks from data/seed_tasks.jsonl. Resumable: re-run the
# same command after a crash or Ctrl-C and it continues (the output is an append-only journal).
#   Offline, embedded teacher (SmolLM2-135M-Instruct):
#     NUM=20 bash scripts/self_instruct.sh
#   Any OpenAI-compatible endpoint (key read from $OPENAI_API_KEY, never from the command line):
#     TEACHER=openai BASE_URL=http://127.0.0.1:8000/v1 MODEL=my-model NUM=5000 bash scripts/self_instruct.sh --api chat
set -euo pipefail
cd "$(dirname "$0")/.."
args=(--teacher "${TEACHER:-local}" --num-instructions "${NUM:-100}" --output "${OUTPUT:-data/out/self_instruct.jsonl}")
[ -n "${MODEL:-}" ] && args+=(--model "$MODEL")
[ -n "${BASE_URL:-}" ] && args+=(--base-url "$BASE_URL")
python -m data_generation self-instruct "${args[@]}" "$@"
