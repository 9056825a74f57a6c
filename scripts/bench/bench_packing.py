"""Packing vs Stanford Alpaca's batching: useful-token fraction and training tokens/s, same model, same run.

    python -m scripts.bench.bench_packing [--steps 3] [--warmup 1] [--batch-size 4] [--rows 1] \\
        [--max-length 512] [--threads 1]

Data: the real CodeAlpaca 2k sample, tokenized by `main.training.data` (Alpaca prompt masked, EOS appended).
Model: the embedded SmolLM2-135M-Instruct (float32, sdpa attention) with its tokenizer; one model
and plain AdamW for every configuration, steps interleaved; loss `target_loss_sum / targets`.
Configurations (each with its own epoch plan from `main.training.packing.batches`, seed 0):
- `alpaca`: the baseline, as Stanford Alpaca / CodeAlpaca train: `--batch-size` examples in
  random order (the Trainer's RandomSampler), padded to the longest in the batch, no packing;
- `grouped`: the same with length-grouped batches (transformers' `group_by_length`);
- `packed`: `--rows` rows of `--max-length` tokens, best-fit-decreasing bins, 4D block-diagonal
  mask, position ids restarting per example.
Fractions are over the whole epoch plan (no model needed): non-pad = real tokens / tokens computed,
target = tokens with a loss / tokens computed. Throughput comes from `--steps` timed
forward+backward+AdamW steps after `--warmup` (the first micro-batches of each plan); the epoch time
is projected from the measured computed-tokens/s and the plan's computed tokens.
JSON goes to data/out/bench/packing.json, a markdown table to stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from data_generation.common.provenance import package_versions
from main.training.data import TokenizedExample, load_records, prepare_tokenizer, tokenize_records
from main.training.packing import IGNORE_INDEX, batches, collate_packed, collate_padded, plan_tokens, target_loss_sum

OUT = Path("data/out/bench/packing.json")
CONFIGS = {  # name: (packing, length_grouped)
    "alpaca": (False, False),
    "grouped": (False, True),
    "packed": (True, False),
}


def make_plan(examples: list[TokenizedExample], name: str, args: argparse.Namespace) -> list[list[int]]:
    packing, grouped = CONFIGS[name]
    size = args.rows if packing else args.batch_size
    return batches(
        examples, batch_size=size, packing=packing, length_grouped=grouped, max_length=args.max_length, seed=0, epoch=0
    )


def collate(examples: list[TokenizedExample], name: str, pad_id: int, max_length: int) -> dict[str, torch.Tensor]:
    if CONFIGS[name][0]:
        return collate_packed(examples, pad_id, max_length)
    return collate_padded(examples, pad_id)


def plan_fractions(
    examples: list[TokenizedExample], plan: list[list[int]], name: str, max_length: int
) -> dict[str, Any]:
    real, computed = plan_tokens(examples, plan, packing=CONFIGS[name][0], max_length=max_length)
    targets = sum(sum(t != IGNORE_INDEX for t in examples[i].labels) for micro in plan for i in micro)
    return {
        "micro_batches": len(plan),
        "real_tokens": real,
        "computed_tokens": computed,
        "target_tokens": targets,
        "non_pad_fraction": real / computed,
        "target_fraction": targets / computed,
    }


def time_steps(
    folder: Path, timed: dict[str, list[tuple[dict[str, torch.Tensor], int]]], warmup: int
) -> dict[str, dict[str, float]]:
    """Forward + backward + AdamW on each (batch, real tokens) of every configuration.

    One model and one optimiser for all, the configurations' steps interleaved (step k of each,
    then step k+1): on a shared machine the load then falls evenly on every configuration. The
    weights' values do not change a step's cost. The first `warmup` rounds are not timed.
    """
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="sdpa", dtype=torch.float32)
    model.train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-5)
    totals = {name: dict.fromkeys(("seconds", "computed", "real", "targets"), 0.0) for name in timed}
    for k in range(max(map(len, timed.values()))):
        for name, steps in timed.items():
            if k >= len(steps):
                continue
            batch, batch_real = steps[k]
            start = time.perf_counter()
            loss, n = target_loss_sum(model(**batch, use_cache=False).logits, batch["labels"])
            (loss / max(n, 1)).backward()
            optimiser.step()
            optimiser.zero_grad(set_to_none=True)
            if k >= warmup:
                t = totals[name]
                t["seconds"] += time.perf_counter() - start
                t["computed"] += batch["input_ids"].numel()
                t["real"] += batch_real
                t["targets"] += n
    return {
        name: {
            "timed_steps": len(timed[name]) - warmup,
            "seconds": t["seconds"],
            "computed_tokens_per_s": t["computed"] / t["seconds"],
            "real_tokens_per_s": t["real"] / t["seconds"],
            "target_tokens_per_s": t["targets"] / t["seconds"],
        }
        for name, t in totals.items()
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data/code_alpaca/code_alpaca_2k.json")
    ap.add_argument("--model", default=None, help="model folder (default: the embedded SmolLM2-135M-Instruct)")
    ap.add_argument("--max-length", type=int, default=512, help="truncation and packed row length (Alpaca: 512)")
    ap.add_argument("--batch-size", type=int, default=4, help="examples per step, unpacked (Alpaca: 4 per device)")
    ap.add_argument("--rows", type=int, default=1, help="packed rows per step")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per configuration")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (1: on a busy 2-core box, 2 threads ran 3-4x slower per step)",
    )
    ap.add_argument(
        "--sweep",
        default="4,8,16,32",
        help="batch sizes for the plan-only fraction table (packed rows: batch size / 4)",
    )
    ap.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated from {','.join(CONFIGS)}")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    names = [n for n in args.configs.split(",") if n]
    unknown = set(names) - set(CONFIGS)
    if unknown:
        ap.error(f"unknown configuration(s) {sorted(unknown)}; choose from {sorted(CONFIGS)}")

    torch.set_num_threads(args.threads)
    if args.model:
        folder = Path(args.model)
    else:
        from data_generation.common.models import embedded_default_model

        folder = embedded_default_model()
    tokenizer = prepare_tokenizer(AutoTokenizer.from_pretrained(folder))
    records = load_records(args.data, skip_invalid=True)
    examples, stats = tokenize_records(records, tokenizer, args.max_length)
    plans = {name: make_plan(examples, name, args) for name in names}
    timed = {
        name: [
            (
                collate([examples[i] for i in micro], name, tokenizer.pad_token_id, args.max_length),
                sum(len(examples[i].input_ids) for i in micro),
            )
            for micro in plan[: args.warmup + args.steps]
        ]
        for name, plan in plans.items()
    }
    speeds = time_steps(folder, timed, args.warmup)
    results: dict[str, Any] = {}
    for name, plan in plans.items():
        fractions = plan_fractions(examples, plan, name, args.max_length)
        epoch_s = fractions["computed_tokens"] / speeds[name]["computed_tokens_per_s"]
        results[name] = {**fractions, **speeds[name], "projected_epoch_s": epoch_s}
    report(args, folder, stats.to_dict(), results, sweep(examples, args))


def sweep(examples: list[TokenizedExample], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Non-pad fraction of each configuration's epoch plan at other batch sizes (no model run).

    Packed rows = batch size / 4: at 512 tokens a CodeAlpaca row holds about 4 examples, so a step
    sees about as many examples either way."""
    rows = []
    for size in (int(x) for x in args.sweep.split(",") if x):
        sized = argparse.Namespace(**{**vars(args), "batch_size": size, "rows": max(1, size // 4)})
        row = {"batch_size": size, "rows": sized.rows}
        for name in CONFIGS:
            row[name] = plan_fractions(examples, make_plan(examples, name, sized), name, args.max_length)
        rows.append(row)
    return rows


def report(
    args: argparse.Namespace, folder: Path, stats: dict[str, int], results: dict[str, Any], swept: list[dict[str, Any]]
) -> None:
    meta = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "torch": torch.__version__,
        "transformers": package_versions(("transformers",))["transformers"],
        "threads": torch.get_num_threads(),
        "model": str(folder),
        "args": vars(args),
        "data_stats": stats,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"meta": meta, "results": results, "sweep": swept}, indent=2) + "\n")
    print(
        f"examples {stats['examples']}, truncated {stats['truncated']} at max_length {args.max_length}; "
        f"torch {meta['torch']}, {meta['threads']} threads\n"
    )
    print("| batching | non-pad fraction | target fraction | real tokens/s | target tokens/s | projected epoch |")
    print("|---|---|---|---|---|---|")
    base = results.get("alpaca")
    for name, r in results.items():
        speedup = f" ({base['projected_epoch_s'] / r['projected_epoch_s']:.2f}x)" if base and name != "alpaca" else ""
        print(
            f"| {name} | {r['non_pad_fraction']:.3f} | {r['target_fraction']:.3f} | {r['real_tokens_per_s']:.0f} | "
            f"{r['target_tokens_per_s']:.0f} | {r['projected_epoch_s'] / 60:.1f} min{speedup} |"
        )
    if swept:
        print("\nNon-pad fraction of the whole epoch plan (no model run):\n")
        print("| examples per step (packed rows) | " + " | ".join(CONFIGS) + " |")
        print("|---" * (len(CONFIGS) + 1) + "|")
        for row in swept:
            cells = " | ".join(f"{row[name]['non_pad_fraction']:.3f}" for name in CONFIGS)
            print(f"| {row['batch_size']} ({row['rows']}) | {cells} |")


if __name__ == "__main__":
    main()
