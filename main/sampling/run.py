"""One rank's share of a `main.generate` run: plan the missing samples, batch them, generate, extract.

Problems are dealt round-robin to the ranks; each rank appends its samples to its own shard
(`main.sampling.shards`). Sample s of task t is drawn with its own generator seeded from
(seed, t, s), so it does not depend on the batch size, the world size, the order or on resuming.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Iterator, Sequence

from data_generation.common.benchmarks.base import Problem, PromptStyle
from data_generation.common.sampling import SamplingSettings, derive_seed
from main.sampling.config import GenerateConfig
from main.sampling.extract import extract_completion
from main.sampling.rows import Backend, Row
from main.sampling.shards import ShardWriter, finished_samples, shard_path


@dataclass(frozen=True)
class Work:
    """One row to generate for `problem`; `samples` are the sample numbers it answers (greedy: all)."""

    problem: Problem
    samples: tuple[int, ...]
    seed: int


def sample_seed(seed: int, task_id: str | int, sample: int) -> int:
    return derive_seed("sample", seed, task_id, sample)


def plan(problems: Sequence[Problem], n: int, seed: int, greedy: bool, done: set[tuple[str | int, int]]) -> list[Work]:
    """Rows still to generate. Greedy samples are all the same text: one row answers all of a task's."""
    work = []
    for problem in problems:
        todo = tuple(s for s in range(n) if (problem.task_id, s) not in done)
        if greedy and todo:
            work.append(Work(problem, todo, sample_seed(seed, problem.task_id, todo[0])))
        else:
            work.extend(Work(problem, (s,), sample_seed(seed, problem.task_id, s)) for s in todo)
    return work


def batches(work: Sequence[Work], prompts: dict[str | int, Row], size: int) -> Iterator[list[Work]]:
    """Longest prompts first (an OOM shows at once; similar lengths share a batch: little padding)."""
    ordered = sorted(work, key=lambda w: -len(prompts[w.problem.task_id].prompt))
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


def prompt_rows(
    style: PromptStyle, problems: Sequence[Problem], shots: Sequence[Problem], tokenizer: Any
) -> dict[str | int, Row]:
    """Each problem's prompt as a Row (seed filled in per sample). Without a tokenizer (an OpenAI
    endpoint) a chat style goes as chat messages and the server applies its template."""
    rows = {}
    for problem in problems:
        if style.format == "chat" and tokenizer is None:
            text = style.instruction(problem, shots)
            rows[problem.task_id] = Row(text, 0, templated=True, messages=(("user", text),))
        else:
            rows[problem.task_id] = Row(style.render(problem, shots, tokenizer), 0, templated=style.templated)
    return rows


def sample_rows(
    backend: Backend,
    style: PromptStyle,
    work: Sequence[Work],
    prompts: dict[str | int, Row],
    settings: SamplingSettings,
) -> list[dict[str, Any]]:
    """Generate one batch and turn it into samples rows (raw and extracted text both kept). The code is
    extracted with the stop rule the batch ran with, so `--no-stop` and `--stop` hold here too."""
    rows_in = [replace(prompts[w.problem.task_id], seed=w.seed) for w in work]
    generations = backend.generate(rows_in, settings)
    rows = []
    for item, gen in zip(work, generations):
        got = extract_completion(
            gen.text,
            style,
            item.problem,
            stop=settings.stop,
            after_fence=settings.stop_after_fence,
            finish_reason=gen.finish_reason,
        )
        rows.extend(
            {
                "task_id": item.problem.task_id,
                "sample": s,
                "completion": got.completion,
                "raw": gen.text,
                "prompt_style": style.name,
                "completion_is_full_program": style.full_program,
                "finish_reason": gen.finish_reason,
                "stopped_by": got.stopped_by,
                "empty_cause": got.empty_cause,
                "num_tokens": gen.tokens,
                "seed": None if settings.greedy else item.seed,
            }
            for s in item.samples
        )
    return rows


def run_shard(
    backend: Backend,
    style: PromptStyle,
    problems: Sequence[Problem],
    shots: Sequence[Problem],
    settings: SamplingSettings,
    config: GenerateConfig,
    *,
    rank: int = 0,
    world: int = 1,
    tokenizer: Any = None,
) -> dict[str, Any]:
    """Generate this rank's missing samples into its shard; returns counts and timings."""
    from tqdm.auto import tqdm

    mine = list(problems)[rank::world]
    work = plan(mine, config.n, config.seed, settings.greedy, finished_samples(config.output))
    prompts = prompt_rows(style, mine, shots, tokenizer)
    writer = ShardWriter(shard_path(config.output, rank, world))
    stats = {"rows_generated": 0, "samples_written": 0, "tokens": 0, "seconds": 0.0}
    started = time.perf_counter()
    progress = config.progress and rank == 0
    try:
        with tqdm(
            total=sum(len(w.samples) for w in work), desc=f"rank {rank}", unit="sample", disable=not progress
        ) as bar:
            for batch in batches(work, prompts, config.batch_size):
                rows = sample_rows(backend, style, batch, prompts, settings)
                writer.append(rows)
                stats["rows_generated"] += len(batch)
                stats["samples_written"] += len(rows)
                stats["tokens"] += sum(r["num_tokens"] for r in rows)
                bar.update(len(rows))
    finally:
        writer.close()
    stats["seconds"] = round(time.perf_counter() - started, 3)
    return stats


def dist_rank() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; (0, 1) when started plainly."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def barrier(world: int) -> None:
    if world > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            # gloo works with and without GPUs; the long timeout covers ranks that finish hours apart.
            dist.init_process_group("gloo", timeout=timedelta(hours=72))
        dist.barrier()


def close_process_group(world: int) -> None:
    if world > 1:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
