"""The anchor of scripts/bench/gpu_check.py's training part: transformers' Trainer on the same examples.

    python -m scripts.bench.gpu_anchor --model DIR --data CODE_ALPACA.json --max-length 2048 --rows 8 \\
        --steps 12 --device cuda --output anchor.json

The examples are main.train's own (same records, prompt format, tokenization, prompt masking), and a
Trainer step takes as many examples as one of main.train's packed micro-batches of `--rows` rows holds
on average. What a user of the Trainer does without packing is its best practice here: bf16, fused
AdamW, `group_by_length` (similar lengths share a batch) and padding to the batch's longest example
(as DataCollatorForSeq2Seq does). When flash-attn is installed, the anchor is instead the Trainer's own
padding-free packing (DataCollatorWithFlattening with flash-attention kwargs), and it says so.
Tokens/s counts non-pad tokens per step over the step's wall time (CUDA synchronised); steps 1-2 left out.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import time
from pathlib import Path

import torch


def examples(model: str, data: str, max_length: int) -> list[dict[str, list[int]]]:
    """main.train's examples of `data` in the Alpaca format: prompt masked, EOS appended."""
    from main.training.data import load_records, prepare_tokenizer, tokenize_records
    from main.training.modeling import load_tokenizer

    tokenizer = prepare_tokenizer(load_tokenizer(Path(model)))
    tokenized, _ = tokenize_records(load_records(data, skip_invalid=True), tokenizer, max_length)
    return [{"input_ids": list(ex.input_ids), "labels": list(ex.labels)} for ex in tokenized]


class StepTimer:
    """A TrainerCallback's worth of timing: real tokens and seconds per optimizer step."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, float]] = []
        self.tokens = 0
        self.started = 0.0


def main(argv: list[str] | None = None) -> None:
    from transformers import (
        AutoModelForCausalLM,
        DataCollatorWithFlattening,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    from main.training.packing import batches

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for flag in ("--model", "--data", "--output", "--device"):
        p.add_argument(flag, required=True)
    for flag in ("--max-length", "--rows", "--steps"):
        p.add_argument(flag, type=int, required=True)
    args = p.parse_args(argv)
    rows = examples(args.model, args.data, args.max_length)
    plan = batches(
        [_Len(len(r["input_ids"])) for r in rows], batch_size=args.rows, packing=True, max_length=args.max_length
    )
    per_step = max(1, round(statistics.mean(len(b) for b in plan)))
    flash = importlib.util.find_spec("flash_attn") is not None and args.device == "cuda"
    model = _load(AutoModelForCausalLM, args.model, "flash_attention_2" if flash else "sdpa")
    tokenizer_pad = model.config.pad_token_id
    collator = DataCollatorWithFlattening(return_flash_attn_kwargs=True) if flash else _Padder(tokenizer_pad)
    timer = StepTimer()

    class Timing(TrainerCallback):
        def on_step_begin(self, *a, **k):  # noqa: ANN002, ANN003
            _sync()
            timer.started = time.perf_counter()

        def on_step_end(self, *a, **k):  # noqa: ANN002, ANN003
            _sync()
            timer.rows.append((timer.tokens, time.perf_counter() - timer.started))
            timer.tokens = 0

    counting = _Counting(collator, timer)
    targs = TrainingArguments(
        output_dir=str(Path(args.output).parent / "anchor_run"),
        per_device_train_batch_size=per_step,
        max_steps=args.steps,
        learning_rate=1e-5,
        lr_scheduler_type="constant",
        bf16=args.device == "cuda",
        use_cpu=args.device != "cuda",
        optim="adamw_torch_fused" if args.device == "cuda" else "adamw_torch",
        **_grouping(TrainingArguments, not flash),
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        remove_unused_columns=False,
        dataloader_num_workers=0,
    )
    trainer = Trainer(model=model, args=targs, train_dataset=_Rows(rows), data_collator=counting, callbacks=[Timing()])
    trainer.train()
    steady = timer.rows[2:] or timer.rows
    rates = [tokens / seconds for tokens, seconds in steady if seconds > 0]
    result = {
        "anchor": "Trainer + DataCollatorWithFlattening (flash-attention)"
        if flash
        else "Trainer, padded, group_by_length",
        "examples_per_step": per_step,
        "steps": len(timer.rows),
        "tokens_per_s": statistics.median(rates),
        "max_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None,
        "losses": [round(h["loss"], 6) for h in trainer.state.log_history if "loss" in h],
    }
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")


def _grouping(arguments: type, grouped: bool) -> dict[str, object]:
    """Length grouping as this transformers spells it (5.x: a sampling strategy; 4.x: a flag): a GPU
    machine's preinstalled version may differ from our pin."""
    fields = getattr(arguments, "__dataclass_fields__", {})
    if "train_sampling_strategy" in fields:
        return {"train_sampling_strategy": "group_by_length" if grouped else "random"}
    return {"group_by_length": grouped}


def _load(auto: type, path: str, attention: str) -> torch.nn.Module:
    """float32 master weights, as main.train's full mode; `dtype` (5.x) or `torch_dtype` (4.x)."""
    try:
        return auto.from_pretrained(path, dtype=torch.float32, attn_implementation=attention)
    except TypeError:
        return auto.from_pretrained(path, torch_dtype=torch.float32, attn_implementation=attention)


class _Len:
    """What main.training.packing.batches reads of an example: its input ids' length."""

    def __init__(self, n: int) -> None:
        self.input_ids = range(n)


class _Rows(torch.utils.data.Dataset):
    def __init__(self, rows: list[dict[str, list[int]]]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        return self.rows[i]


class _Padder:
    """Right-pads input_ids (pad id), labels (-100) and the attention mask to the batch's longest."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, features: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(features), width), -100, dtype=torch.long)
        mask = torch.zeros((len(features), width), dtype=torch.long)
        for i, f in enumerate(features):
            n = len(f["input_ids"])
            ids[i, :n], labels[i, :n], mask[i, :n] = torch.tensor(f["input_ids"]), torch.tensor(f["labels"]), 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}


class _Counting:
    """The collator, counting the real tokens each batch holds."""

    def __init__(self, collator, timer: StepTimer) -> None:  # noqa: ANN001
        self.collator, self.timer = collator, timer

    def __call__(self, features: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        self.timer.tokens += sum(len(f["input_ids"]) for f in features)
        return self.collator(features)


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


if __name__ == "__main__":
    main()
