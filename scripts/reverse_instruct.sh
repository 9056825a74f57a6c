#!/usr/bin/env bash
# Reverse instruction: real functions -> problem statements -> complete programs, checked with tree-sitter and
# the toolchains found here. Resumable: re-run the same command after a crash or Ctrl-C and it continues.
# Records go to OUTPUT, rejected functions (with reasons) to OUTPUT's .rejects.jsonl, counts to its manifest.
#   Offline, embedded teacher, Python stdlib + the other languages' sources found on this machine:
#     LIMIT=12 bash scripts/reverse_instruct.sh
#   Offline, the bundled sample in all ten languages plus the Python stdlib (finds functions on any machine):
#     PATHS=data/samples/functions STDLIB=1 LIMIT=30 bash scripts/reverse_instruct.sh
#   Your own code, some languages only, at most 500 functions per language:
#     PATHS="src/ vendor/lib" LANGUAGES=go,rust PER_LANGUAGE=500 bash scripts/reverse_instruct.sh
#   A Hugging Face dataset of functions (columns configurable), any OpenAI-compatible teacher:
#     DATASET=my/functions TEACHER=openai BASE_URL=http://127.0.0.1:8000/v1 MODEL=my-model \
#       bash scripts/reverse_instruct.sh --code-column func_code_string --language-column language
set -euo pipefail
cd "$(dirname "$0")/.."
args=(--teacher "${TEACHER:-local}" --output "${OUTPUT:-data/out/reverse_instruct.jsonl}")
# shellcheck disable=SC2206  # PATHS is a space-separated list on purpose
[ -n "${PATHS:-}" ] && args+=(--paths ${PATHS})
[ -n "${STDLIB:-}" ] && args+=(--stdlib)
[ -n "${DATASET:-}" ] && args+=(--dataset "$DATASET")
[ -n "${LANGUAGES:-}" ] && args+=(--languages "$LANGUAGES")
[ -n "${PER_LANGUAGE:-}" ] && args+=(--per-language "$PER_LANGUAGE")
[ -n "${LIMIT:-}" ] && args+=(--limit "$LIMIT")
[ -n "${MODEL:-}" ] && args+=(--model "$MODEL")
[ -n "${BASE_URL:-}" ] && args+=(--base-url "$BASE_URL")
if [ "${TEACHER:-local}" = local ]; then
  # the embedded 135M model: short functions, one per request, compact prompts, short replies, one
  # batch per step (flags given after these win)
  args+=(--max-lines 12 --snippets-per-request 1 --requests-per-step 15 --local-batch-size 15 --compact-prompts
         --statement-max-tokens 64 --program-max-tokens 192)
fi
python -m data_generation reverse-instruct "${args[@]}" "$@"
