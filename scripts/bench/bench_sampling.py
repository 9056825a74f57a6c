"""Sampling throughput: our batched sampler vs the CodeCapybara pattern, SmolLM2 on CPU, same samples.

    python -m scripts.bench.bench_sampling [--tasks 2] [--n 20] [--max-new-tokens 128] [--batch-size 40]

Both draw `--n` samples for each of the first `--tasks` HumanEval problems (raw-completion prompt)
with CodeCapybara's decoding (temperature 0.1, top-p 0.75, top-k 40) from the embedded SmolLM2-135M
(float32, CPU):

- CodeCapybara pattern (their main/generate.py): one prompt per `generate` call with
  `num_return_sequences=n`, HF's `do_sample`, no stop sequences, a fixed `max_new_tokens` (128): every
  batch runs until all its rows hit EOS or the limit, and each of the n rows prefills the prompt.
- ours (`TransformersBackend`): rows of several prompts per call (`--batch-size`), the style's stop strings
  checked inside generation, each distinct prompt prefilled once and its KV cache shared by its rows,
  per-row seeded sampling.

Runs alternate (baseline, ours, baseline, ...) so both see the same load on a shared machine.
JSON goes to data/out/bench/sampling.json, a markdown table to stdout.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from transformers import GenerationConfig

from data_generation.common.benchmarks.base import Problem
from data_generation.common.benchmarks.humaneval import COMPLETION_STOPS, load_humaneval
from data_generation.common.models import embedded_default_model
from data_generation.common.sampling import SamplingSettings
from main.sampling.rows import Row
from main.sampling.run import sample_seed
from main.sampling.transformers_backend import TransformersBackend

OUT = Path("data/out/bench/sampling.json")
CODECAPYBARA = {"temperature": 0.1, "top_p": 0.75, "top_k": 40}


def codecapybara(backend: TransformersBackend, problems: list[Problem], n: int, max_new: int) -> dict[str, Any]:
    """Their loop: one prompt, n return sequences, no stops, fixed max_new_tokens."""
    torch.manual_seed(0)
    config = GenerationConfig(
        do_sample=True,
        num_return_sequences=n,
        max_new_tokens=max_new,
        pad_token_id=backend.pad_id,
        eos_token_id=backend.eos_ids,
        **CODECAPYBARA,
    )
    computed = samples = 0
    started = time.perf_counter()
    for problem in problems:
        encoded = backend.tokenizer([problem.prompt], return_tensors="pt")
        with torch.inference_mode():
            output = backend.lm.generate(**encoded, generation_config=config)
        samples += output.shape[0]
        computed += output.shape[0] * (output.shape[1] - encoded["input_ids"].shape[1])
    return {
        "method": "CodeCapybara pattern (1 prompt x n, no stops)",
        "seconds": time.perf_counter() - started,
        "samples": samples,
        "tokens_computed": computed,
    }


def ours(backend: TransformersBackend, problems: list[Problem], n: int, max_new: int, batch: int) -> dict[str, Any]:
    settings = SamplingSettings(max_tokens=max_new, stop=COMPLETION_STOPS, **CODECAPYBARA)
    rows = [Row(p.prompt, sample_seed(1234, p.task_id, s)) for p in problems for s in range(n)]
    generations = []
    started = time.perf_counter()
    for start in range(0, len(rows), batch):
        generations += backend.generate(rows[start : start + batch], settings)
    reasons = {r: sum(g.finish_reason == r for g in generations) for r in ("stop", "eos", "length")}
    return {
        "method": f"ours (batch {batch}, stops, shared prefill, finished rows dropped)",
        "seconds": time.perf_counter() - started,
        "samples": len(generations),
        "tokens_to_stop": sum(g.tokens for g in generations),
        "finish_reasons": reasons,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tasks", type=int, default=2)
    p.add_argument("--n", type=int, default=20)
    p.add_argument("--max-new-tokens", type=int, default=128, help="CodeCapybara's fixed value")
    p.add_argument("--batch-size", type=int, default=40)
    p.add_argument("--repeats", type=int, default=1)
    args = p.parse_args(argv)
    backend = TransformersBackend(str(embedded_default_model()))
    problems = load_humaneval()[: args.tasks]
    backend.generate([Row(problems[0].prompt, 0)], SamplingSettings(max_tokens=2))  # warm-up
    runs: dict[str, list[dict[str, Any]]] = {"baseline": [], "ours": []}
    for _ in range(args.repeats):
        runs["baseline"].append(codecapybara(backend, problems, args.n, args.max_new_tokens))
        runs["ours"].append(ours(backend, problems, args.n, args.max_new_tokens, args.batch_size))
    base = statistics.median(r["seconds"] for r in runs["baseline"])
    mine = statistics.median(r["seconds"] for r in runs["ours"])
    result = {
        "config": vars(args),
        "decoding": CODECAPYBARA,
        "threads": torch.get_num_threads(),
        "machine": platform.platform(),
        "runs": runs,
        "speedup": base / mine,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    samples = args.tasks * args.n
    print("| method | samples | seconds (median) | samples/s | tokens |")
    print("|---|---|---|---|---|")
    print(
        f"| {runs['baseline'][0]['method']} | {samples} | {base:.1f} | {samples / base:.2f} | "
        f"{runs['baseline'][0]['tokens_computed']} computed |"
    )
    print(
        f"| {runs['ours'][0]['method']} | {samples} | {mine:.1f} | {samples / mine:.2f} | "
        f"{runs['ours'][0]['tokens_to_stop']} to stop; {runs['ours'][0]['finish_reasons']} |"
    )
    print(f"\nspeedup: {base / mine:.2f}x")


if __name__ == "__main__":
    main()
