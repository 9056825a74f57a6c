#!/usr/bin/env bash
# LoRA / QLoRA fine-tuning, then (MERGE=1) a standalone merged model.
#   bash scripts/train_lora.sh                                       # alpaca-lora / CodeCapybara-LoRA preset
#   CONFIG=scripts/configs/cpu_smollm2.yaml MERGE=1 bash scripts/train_lora.sh   # small offline CPU run
#   CONFIG=scripts/configs/qlora_7b.yaml bash scripts/train_lora.sh  # QLoRA 4-bit, one GPU
#   NPROC=4 bash scripts/train_lora.sh                               # DDP over 4 GPUs (torchrun)
# Everything after the script name is a key=value override of the config (see main/training/config.py).
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG="${CONFIG:-scripts/configs/alpaca_lora.yaml}"
if [ "${NPROC:-1}" -gt 1 ] || [ -n "${TORCHRUN_ARGS:-}" ]; then
    # shellcheck disable=SC2086  # TORCHRUN_ARGS is a list of options
    torchrun --nproc_per_node "${NPROC:-1}" ${TORCHRUN_ARGS:-} -m main.train --config "$CONFIG" "$@"
else
    python -m main.train --config "$CONFIG" "$@"
fi
if [ "${MERGE:-0}" = 1 ]; then
    OUT="$(python -c 'import sys; from main.training.config import load_config; print(load_config(sys.argv[1], sys.argv[2:]).output_dir)' "$CONFIG" "$@")"
    python -m main.merge_lora --adapter "$OUT/final" --output "$OUT/merged"
fi
