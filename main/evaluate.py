"""Evaluate samples of any registered benchmark in the sandbox: results.jsonl, metrics.json, report.md, passk.png.

    python -m main.evaluate --benchmark NAME --input SAMPLES.jsonl --output-dir DIR [--n-workers N] [--timeout S]
        [--NAME-path PATH] [--split SPLIT] [--subset SUBSET | --sanitized]

The problems are the ones the samples were generated for: the data path, split and subset are the
command line's, else what the generation run recorded in SAMPLES.meta.json, else the benchmark's
defaults. `main.eval_humaneval` and `main.eval_mbpp` are this command with the benchmark fixed.
Verdicts are kept as they finish: a stopped or killed evaluation, run again with the same inputs,
evaluates only what is missing. Exit codes: 0 ok; 2 bad input (malformed samples, unknown task ids,
missing samples, a sandbox the kernel refuses); 75 another run holds the output folder; 130/143
stopped; 1 anything else.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import Any, Sequence

from data_generation.common.benchmarks import get_benchmark
from data_generation.common.benchmarks.base import Benchmark, DataChoice
from data_generation.common.benchmarks.options import add_benchmark_arguments, data_choice
from data_generation.common.command import run_command, setup_logging
from data_generation.common.io import DataError
from data_generation.common.sandbox.execution import Limits
from data_generation.common.sandbox.processes import SandboxError
from main.evaluation.harness import EvalConfig, evaluate, read_fingerprint


@dataclass(frozen=True)
class EvaluateConfig:
    """One evaluation, as the command line asked for it (`data`'s gaps are filled from the samples' record)."""

    benchmark: str
    samples: str
    output_dir: str
    data: DataChoice
    settings: EvalConfig


def build_parser(*, fixed: str | None = None, prog: str = "python -m main.evaluate") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--input",
        dest="samples",
        required=True,
        metavar="SAMPLES",
        help="samples JSONL (task_id, completion[, sample, raw, ...])",
    )
    parser.add_argument("--output-dir", required=True, help="results.jsonl, metrics.json, report.md, passk.png")
    parser.add_argument("--n-workers", type=int, default=os.cpu_count() or 1, help="samples run in parallel")
    parser.add_argument(
        "--timeout", type=float, default=3.0, help="CPU seconds per sample (default 3, rounded up to whole seconds)"
    )
    parser.add_argument(
        "--wall-timeout",
        type=float,
        default=None,
        help="wall-clock seconds per sample (default 2 × timeout + 1: catches sleeping samples)",
    )
    parser.add_argument("--memory-mb", type=int, default=Limits.memory_mb, help="address-space limit per sample")
    parser.add_argument(
        "--ks", default="1,10,100", help="pass@k values to report (each only if every task has >= k samples)"
    )
    parser.add_argument(
        "--allow-incomplete",
        action="store_true",
        help="evaluate even when tasks are missing or have fewer samples than the others",
    )
    parser.add_argument(
        "--allow-weak-sandbox",
        action="store_true",
        help="run even where the kernel refuses the sandbox's namespaces (rlimits only: samples could write "
        "your files); the mode is recorded in metrics.json and the report",
    )
    add_benchmark_arguments(parser, fixed=fixed)
    return parser


def config_from_args(args: argparse.Namespace) -> EvaluateConfig:
    if args.n_workers < 1 or args.timeout <= 0:
        raise ValueError("--n-workers must be >= 1 and --timeout > 0")
    ks = tuple(int(k) for k in args.ks.split(",") if k.strip())
    limits = Limits(timeout=args.timeout, wall_timeout=args.wall_timeout, memory_mb=args.memory_mb)
    settings = EvalConfig(
        n_workers=args.n_workers,
        limits=limits,
        ks=ks,
        allow_incomplete=args.allow_incomplete,
        allow_weak=args.allow_weak_sandbox,
    )
    bench = get_benchmark(args.benchmark)
    return EvaluateConfig(bench.name, args.samples, args.output_dir, data_choice(args, bench), settings)


def recorded_data(bench: Benchmark, samples: str) -> DataChoice:
    """The data the generation run recorded beside the samples (nothing for a foreign samples file)."""
    fingerprint = read_fingerprint(samples)
    dataset = fingerprint.get("dataset") if isinstance(fingerprint, dict) else None
    return bench.recorded(dataset) if isinstance(dataset, dict) else DataChoice()


def run(config: EvaluateConfig) -> int:
    bench = get_benchmark(config.benchmark)
    data = config.data.over(recorded_data(bench, config.samples))
    problems = bench.load(data)
    dataset = {**bench.describe(data), "num_tasks": len(problems)}
    metrics = evaluate(
        config.samples, problems, config.output_dir, config.settings, benchmark=bench.name, dataset=dataset
    )
    print_summary(metrics, config.output_dir)
    return 0


def print_summary(metrics: dict[str, Any], output_dir: str) -> None:
    scores = ", ".join(f"{k} = {100 * v:.2f}%" for k, v in metrics.items() if k.startswith("pass@"))
    print(f"{metrics['benchmark']}: {metrics['num_tasks']} tasks, n = {metrics['n']}: {scores or 'no k reportable'}")
    print(f"wrote {output_dir}/results.jsonl, metrics.json, report.md, passk.png")


def main(argv: Sequence[str] | None = None, *, fixed: str | None = None, prog: str = "python -m main.evaluate") -> int:
    """The command; `fixed` is the benchmark of an entry point that names it (main.eval_humaneval)."""
    args = build_parser(fixed=fixed, prog=prog).parse_args(argv)
    setup_logging(timestamps=False)
    return run_command(
        lambda: run(config_from_args(args)),
        bad_input=(DataError, ValueError, FileNotFoundError, SandboxError),  # SandboxError: isolation refused
        stopped="finished samples are kept; re-run the same command to evaluate the rest",
    )


if __name__ == "__main__":
    sys.exit(main())
