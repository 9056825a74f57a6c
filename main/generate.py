"""Sample completions for a benchmark: `python -m main.generate --benchmark humaneval --model M ...`.

Runs plain or under `torchrun --nproc_per_node N`. Problems are dealt round-robin to the ranks; each
rank appends its samples to its own shard, `SAMPLES.jsonl.shards/rankRRR-of-WWW.jsonl`, one fsynced
write per batch, so a killed run loses at most the batch in flight and a re-run of the same command
skips every sample already on disk (in any shard, whatever the earlier world size). When every rank
is done, rank 0 merges the shards into SAMPLES.jsonl and checks that every task has exactly samples
0..n-1: a missing sample is an error, never a silently smaller n (CodeCapybara wrote an OOM batch as
empty strings and then dropped them, inflating pass@k). `SAMPLES.jsonl.meta.json` is the run's
fingerprint (model, adapter, prompt style, dataset, decoding, engine, versions); a resume with different
settings is refused (exit 2, nothing touched), naming each setting that changed. `--num-samples`, the
tasks (`--limit`, `--task-ids`), the batch size and the world size may change on resume: a larger n
or more tasks continue exactly what one run would have written. A run that failed before writing any
sample (a model that did not load) blocks nothing: the corrected command starts afresh.

One writer per output: rank 0 holds `SAMPLES.jsonl.lock` and every rank the lock of its own shard
(`data_generation.common.output_lock`), so a second run on the same output stops at once with exit
75, naming the process that holds it, before it reads or writes anything.

Reproducibility: sample s of task t is drawn with its own generator seeded from (seed, t, s), so it
does not depend on the batch size, the world size, the order or on resuming. On CPU (float32) the
texts are identical across batch sizes (tested); on GPUs, batched matmuls can differ in the last bits
between batch shapes, which rarely flips a sampled token.

Exit codes: 0 done; 1 samples still missing (re-run to resume); 2 bad input or settings; 75 the
output is in use by another run.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from data_generation.common.benchmarks import get_benchmark
from data_generation.common.benchmarks.options import add_benchmark_arguments, data_choice
from data_generation.common.benchmarks.styles import STYLES
from data_generation.common.command import run_command, setup_logging
from data_generation.common.defaults import PRECISIONS
from data_generation.common.io import DataError
from data_generation.common.output_lock import output_lock
from main.sampling.backends import make_backend
from main.sampling.config import BackendConfig, GenerateConfig
from main.sampling.lineage import choose_style, load_tokenizer, model_info
from main.sampling.meta import prepare, record_complete, run_fingerprint, select_problems
from main.sampling.run import barrier, close_process_group, dist_rank, run_shard
from main.sampling.shards import IncompleteSamples, merge_shards, shard_path

log = logging.getLogger("main.generate")


def build_parser() -> argparse.ArgumentParser:
    d = GenerateConfig(benchmark="", model="", output=Path())
    p = argparse.ArgumentParser(prog="python -m main.generate", description=__doc__.split("\n")[0])
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
        "with a chat template, else the benchmark's raw prompt for base models",
    )
    p.add_argument(
        "--run-name",
        default=None,
        help="the name report rows give this run (default: the training run's name for a tuned model, "
        "else the model's)",
    )
    p.add_argument("--output", type=Path, required=True, help="samples JSONL (shards and .meta.json beside it)")
    _add_decoding_arguments(p, d)
    add_benchmark_arguments(p)
    s = p.add_argument_group("tasks")
    s.add_argument("--limit", type=int, default=None, help="first N problems only")
    s.add_argument("--task-ids", default=None, help="comma-separated task ids to keep")
    _add_backend_arguments(p, d.backend)
    p.add_argument("--overwrite", action="store_true", help="delete earlier samples of --output first")
    p.add_argument("--merge-only", action="store_true", help="only merge existing shards into --output")
    p.add_argument("--no-progress", action="store_true")
    return p


def _add_decoding_arguments(p: argparse.ArgumentParser, d: GenerateConfig) -> None:
    g = p.add_argument_group("decoding")
    # not `--n`: torchrun's parser would take it for an abbreviation of its --nnodes/--nproc...
    g.add_argument(
        "--num-samples",
        dest="n",
        type=int,
        default=d.n,
        help="samples per problem (200 for pass@100); spell it --num-samples under torchrun",
    )
    g.add_argument("--temperature", type=float, default=d.temperature)
    g.add_argument("--top-p", type=float, default=d.top_p)
    g.add_argument("--top-k", type=int, default=d.top_k, help="0: off")
    g.add_argument("--greedy", action="store_true", help="greedy decoding (temperature/top-p/top-k unused)")
    g.add_argument("--max-new-tokens", type=int, default=d.max_new_tokens)
    g.add_argument("--seed", type=int, default=d.seed, help="base seed; sample s of task t uses seed(seed, t, s)")
    g.add_argument("--stop", action="append", default=None, help="stop string (repeatable); replaces the style's")
    g.add_argument("--no-stop", action="store_true", help="no stop strings at all (generate to EOS or the limit)")
    g.add_argument("--batch-size", type=int, default=d.batch_size, help="rows (prompts x samples) per generate call")


def _add_backend_arguments(p: argparse.ArgumentParser, e: BackendConfig) -> None:
    b = p.add_argument_group("backend")
    b.add_argument("--backend", choices=("transformers", "vllm", "openai"), default=e.kind)
    b.add_argument("--dtype", choices=PRECISIONS, default=e.dtype, help="auto: bf16 on CUDA, fp32 on CPU")
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
    b.add_argument("--api-key-env", default=e.api_key_env, help="openai: variable holding the key")
    b.add_argument("--concurrency", type=int, default=None, help="openai: requests in flight")


def config_from_args(args: argparse.Namespace) -> GenerateConfig:
    backend = BackendConfig(
        kind=args.backend,
        dtype=args.dtype,
        device=args.device,
        quantize="8bit" if args.load_in_8bit else "4bit" if args.load_in_4bit else None,
        threads=args.threads,
        decode=args.decode,
        tensor_parallel_size=args.tensor_parallel_size,
        base_url=args.base_url,
        api_key_env=args.api_key_env,
        concurrency=args.concurrency,
    )
    return GenerateConfig(
        benchmark=args.benchmark,
        model=args.model,
        output=args.output,
        data=data_choice(args, get_benchmark(args.benchmark)),
        adapter=args.adapter,
        merge_adapter=not args.no_merge_adapter,
        prompt_style=args.prompt_style,
        run_name=args.run_name,
        n=args.n,
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=args.top_k,
        greedy=args.greedy,
        max_new_tokens=args.max_new_tokens,
        seed=args.seed,
        stop=tuple(args.stop) if args.stop else None,
        no_stop=args.no_stop,
        batch_size=args.batch_size,
        limit=args.limit,
        task_ids=tuple(args.task_ids.split(",")) if args.task_ids else (),
        backend=backend,
        overwrite=args.overwrite,
        merge_only=args.merge_only,
        progress=not args.no_progress,
    )


def run(config: GenerateConfig, rank: int, world: int) -> int:
    """Sample every missing sample of `config.output` and merge them. Rank 0 holds the output's lock
    from before anything is read for resume until the merge is recorded, so a second run on the same
    output exits 75 having touched nothing; the other ranks wait for it at `prepare`'s barrier."""
    with output_lock(config.output, enabled=rank == 0):
        return _run(config, rank, world)


def _run(config: GenerateConfig, rank: int, world: int) -> int:
    bench = get_benchmark(config.benchmark)
    problems, dataset = select_problems(config, bench)
    model = model_info(config)
    tokenizer = load_tokenizer(config, model)
    style, reason = choose_style(config, tokenizer, model.training)
    log.info("%s: prompt style %s (%s)", model.run_name, style.name, reason)
    settings = config.settings(style)
    fingerprint = run_fingerprint(config, model, style, reason, settings, dataset)
    prepare(config, fingerprint, rank, world)
    stats: dict[str, Any] = {}
    if not config.merge_only:
        with output_lock(shard_path(config.output, rank, world)):  # read for resume and appended to
            shots = bench.shots(config.data, style)
            options = {k: v for k, v in asdict(config.backend).items() if k != "kind"}
            backend = make_backend(
                config.backend.kind, model.path, adapter=config.adapter, merge_adapter=config.merge_adapter, **options
            )
            try:
                stats = run_shard(
                    backend, style, problems, shots, settings, config, rank=rank, world=world, tokenizer=tokenizer
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
    count = merge_shards(config.output, problems, config.n)
    record_complete(config, fingerprint, world, count, stats)
    print(f"{config.output}: {count} samples ({len(problems)} tasks x {config.n})")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    rank, world = dist_rank()
    setup_logging(rank=rank, world=world)
    try:
        return run_command(
            lambda: run(config_from_args(args), rank, world),
            bad_input=(ValueError, DataError),
            failures=(IncompleteSamples,),
        )
    finally:
        close_process_group(world)


if __name__ == "__main__":
    sys.exit(main())
