"""Merge a LoRA adapter into its base model and write a standalone Hugging Face model folder.

    python -m main.merge_lora --adapter data/out/train/lora/final --output data/out/merged-model

The base is read from the adapter's `adapter_config.json` (`base_model_name_or_path`) unless
`--base` is given ("embedded" works offline). The merge runs in float32 on CPU whatever the saved
dtype, so W + (alpha/r)·B·A is exact before the optional cast (`--dtype bf16`); a QLoRA adapter is
merged into the unquantised base (merging into 4-bit weights would quantise the update away).
The output folder holds the model, the tokenizer and `merge_info.json`; it is written to a temporary
sibling and renamed into place, so a failed merge never leaves a half model.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch

from data_generation.common.command import run_command, setup_logging
from data_generation.common.defaults import PRECISIONS
from data_generation.common.io import atomic_dir
from data_generation.common.models import (
    TRAINING_INFO_FILE,
    read_training_info,
    resolve_model_spec,
    torch_dtype,
)
from data_generation.common.provenance import folder_sha256
from main.training.modeling import check_adapter

log = logging.getLogger(__name__)


def merge_lora(adapter: Path, output: Path, base: str | None = None, dtype: str = "fp32") -> Path:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    summary = check_adapter(adapter)
    if base is None:
        base = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))["base_model_name_or_path"]
    base_path = resolve_model_spec(str(base))
    model = AutoModelForCausalLM.from_pretrained(str(base_path), dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    merged = merged.to(torch_dtype(dtype, torch.device("cpu")))
    tokenizer_source = adapter if (adapter / "tokenizer_config.json").is_file() else base_path
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_source))
    output = Path(output)
    with atomic_dir(output) as tmp:
        merged.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        info = {"adapter": str(adapter), "base": str(base), "base_path": str(base_path), "dtype": dtype, **summary}
        (tmp / "merge_info.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        training = read_training_info(adapter)
        if training is not None:  # the lineage (prompt format, data) goes with the weights, re-hashed
            training = {
                **training,
                "merged_from_adapter_sha256": training.get("weights_sha256"),
                "weights_sha256": folder_sha256(tmp, exclude=(TRAINING_INFO_FILE,)),
            }
            (tmp / TRAINING_INFO_FILE).write_text(json.dumps(training, indent=2) + "\n", encoding="utf-8")
    log.info("merged %s into %s -> %s", adapter, base, output)
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m main.merge_lora", description=__doc__.split("\n\n")[0])
    parser.add_argument("--adapter", required=True, type=Path, help="folder with adapter_config.json + weights")
    parser.add_argument("--output", required=True, type=Path, help="folder for the standalone model")
    parser.add_argument(
        "--base",
        default=None,
        help="base model (folder, hub id or 'embedded'); default: the adapter's base_model_name_or_path",
    )
    parser.add_argument("--dtype", choices=[p for p in PRECISIONS if p != "auto"], default="fp32")
    args = parser.parse_args(argv)
    setup_logging()

    def body() -> int:
        merge_lora(args.adapter, args.output, args.base, args.dtype)
        print(args.output)
        return 0

    return run_command(body, bad_input=(OSError, ValueError, RuntimeError))


if __name__ == "__main__":
    raise SystemExit(main())
