#!/usr/bin/env bash
# Full fine-tuning (CodeAlpaca / Stanford Alpaca recipe) with FSDP, or DeepSpeed via overrides.
#   NPROC=8 bash scripts/train_full.sh                      # one node, 8 GPUs, FSDP
#   NPROC=8 bash scripts/train_full.sh strategy=deepspeed deepspeed_config=scripts/configs/ds_zero3.json
#   NPROC=8 TORCHRUN_ARGS="--nnodes 2 --node_rank 0 --rdzv_backend c10d --rdzv_endpoint HOST:29500" \
#       bash scripts/train_full.sh                          # multi-node: same command on every node
# Everything after the script name is a key=value override of the config (see main/training/config.py).
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG="${CONFIG:-scripts/configs/codealpaca_full.yaml}"
if [ "${NPROC:-1}" -gt 1 ] || [ -n "${TORCHRUN_ARGS:-}" ]; then
    # shellcheck disable=SC2086  # TORCHRUN_ARGS is a list of options
    exec torchrun --nproc_per_node "${NPROC:-1}" ${TORCHRUN_ARGS:-} -m main.train --config "$CONFIG" "$@"
fi
exec python -m main.train --config "$CONFIG" "$@"
