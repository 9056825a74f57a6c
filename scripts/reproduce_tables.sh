#!/usr/bin/env bash
# The seeds' tables at GPU scale: the CodeCapybara experiment (scripts/configs/codecapybara.yaml) run twice,
# LoRA and full fine-tuning on the same merged data, then our rows printed beside the seeds' published ones.
#   MODEL=/models/llama-7b NPROC=8 OPENAI_BASE_URL=http://127.0.0.1:8000/v1 OPENAI_MODEL=gpt-3.5-turbo \
#     bash scripts/reproduce_tables.sh
# MODEL: the LLaMA-7B base (folder or hub id); NPROC: GPUs (training under torchrun, sampling sharded);
# OUT: output folder (default data/out/codecapybara). Options after the script name go to both pipeline runs
# (section.key=value). The teacher key is read from $OPENAI_API_KEY. Needs, as estimated in scripts/README.md:
# 8 x 80 GB GPUs for the full fine-tune (FSDP); LoRA runs data-parallel on the same GPUs (one 24 GB+ GPU
# would do for it alone); about a day of GPU time in all.
# Every stage is resumable: re-run the same command after a failure. The second run reuses the teacher
# cache (data/cache/teacher), so its sources cost nothing; it samples only the tuned model.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${MODEL:-huggyllama/llama-7b}"
NPROC="${NPROC:-8}"
OUT="${OUT:-data/out/codecapybara}"
common=("model=$MODEL" "train.nproc=$NPROC" "evaluate.nproc=$NPROC")
python -m main.pipeline --config scripts/configs/codecapybara.yaml "${common[@]}" \
    "output_dir=$OUT/lora" "name=codecapybara-lora" "$@"
python -m main.pipeline --config scripts/configs/codecapybara.yaml "${common[@]}" \
    "output_dir=$OUT/full" "name=codecapybara-full" "train.preset=scripts/configs/codealpaca_full.yaml" \
    "train.save_every=200" "evaluate.runs=[tuned]" "$@"
python -m scripts.seeds_table --input "$OUT/lora" "$OUT/full"
