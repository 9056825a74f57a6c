"""Evaluate samples of any registered benchmark in the sandbox: results.jsonl, metrics.json, report.md, passk.png.

    python -m main.evaluate --benchmark NAME --input SAMPLES.jsonl --output-dir DIR [--n-workers N] [--timeout S]
        [--NAME-path PATH] [--split SPLIT] [--subset SUBSET | --sanitized]
    python -m main.evaluate --benchmark NAME --prediction-dir DIR [--output-dir DIR/eval] ...

`--prediction-dir` (the seeds' `--prediction_dir`) evaluates a folder of prediction files, several
runs' samples of the same tasks, merged into one samples file with n summed
(`main.evaluation.predictions`); the seeds' other flag names are accepted too (`--output_dir`,
`--n_workers`, `--num_procs`, `--k`, and `--reference_path` for the benchmark's data).

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
import logging
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from data_generation.common.benchmarks import get_benchmark
from data_generation.common.benchmarks.base import Benchmark, DataChoice
from data_generation.common.benchmarks.options import add_benchmark_arguments, data_choice
from data_generation.common.command import run_command, setup_logging
from data_generation.common.io import DataError
from data_generation.common.sandbox.execution import Limits
from data_generation.common.sandbox.processes import SandboxError
from main.evaluation.harness import EvalConfig, evaluate, read_fingerprint
from main.evaluation.oracle import TimeoutPolicy
from main.evaluation.predictions import MERGED_NAME, merge_prediction_dir

log = logging.getLogger(__name__)
# pass@k values reported by default; the seeds' eval_mbpp.py also reports pass@80.
DEFAULT_KS = {"mbpp": "1,10,80,100"}


@dataclass(frozen=True)
class EvaluateConfig:
    """One evaluation, as the command line asked for it (`data`'s gaps are filled from the samples' record)."""

    benchmark: str
    samples: str
    output_dir: str
    data: DataChoice
    settings: EvalConfig
    prediction_dir: str | None = None  # a folder of prediction files to merge into `samples` first


def build_parser(*, fixed: str | None = None, prog: str = "python -m main.evaluate") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    add_input_arguments(parser)
    parser.add_argument(
        "--n-workers",
        "--n_workers",
        "--num_procs",
        type=int,
        default=os.cpu_count() or 1,
        help="samples run in parallel",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=3.0,
        help="CPU seconds per sample (default 3, rounded up to whole seconds); with calibrated limits, the least "
        "a task gets",
    )
    parser.add_argument(
        "--fixed-timeout",
        dest="calibrated",
        action="store_false",
        help="one limit (--timeout) for every task, not one per task from its reference solution's runtime",
    )
    parser.add_argument(
        "--timeout-factor",
        type=float,
        default=TimeoutPolicy.factor,
        help="a task's limit is this many times its reference solution's time (default %(default)s, EvalPlus's)",
    )
    parser.add_argument(
        "--no-retry-timeouts",
        dest="retry_timeouts",
        action="store_false",
        help="count a sample that ran into a time limit as failed at once (default: it runs once more)",
    )
    parser.add_argument(
        "--wall-timeout",
        type=float,
        default=None,
        help="wall-clock seconds per sample (default 2 × timeout + 1: catches sleeping samples)",
    )
    parser.add_argument("--memory-mb", type=int, default=Limits.memory_mb, help="address-space limit per sample")
    parser.add_argument(
        "--ks",
        "--k",
        default=DEFAULT_KS.get(fixed or "", "1,10,100"),
        help="pass@k values to report (each only if every task has >= k samples; default %(default)s)",
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
    if fixed is not None:  # the seeds' name for the benchmark's data file; ambiguous without a fixed benchmark
        parser.add_argument(
            "--reference_path",
            dest=f"path_{fixed}",
            default=argparse.SUPPRESS,
            metavar="PATH",
            help=f"the same as --{fixed}-path (CodeCapybara's name)",
        )
    return parser


def add_input_arguments(parser: argparse.ArgumentParser) -> None:
    """The samples to evaluate, a samples file or the seeds' folder of prediction files, and where to."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--input",
        dest="samples",
        metavar="SAMPLES",
        help="samples JSONL (task_id, completion[, sample, raw, ...])",
    )
    source.add_argument(
        "--prediction-dir",
        "--prediction_dir",
        metavar="DIR",
        help="a folder of prediction files (ours or CodeCapybara's *.jsonl): samples of the same tasks from "
        "several runs, merged with n summed",
    )
    parser.add_argument(
        "--output-dir",
        "--output_dir",
        help="results.jsonl, metrics.json, report.md, passk.png (required with --input; default with "
        "--prediction-dir: DIR/eval)",
    )


def config_from_args(args: argparse.Namespace) -> EvaluateConfig:
    if args.n_workers < 1 or args.timeout <= 0 or args.timeout_factor <= 0:
        raise ValueError("--n-workers must be >= 1, --timeout and --timeout-factor > 0")
    ks = tuple(int(k) for k in args.ks.split(",") if k.strip())
    limits = Limits(timeout=args.timeout, wall_timeout=args.wall_timeout, memory_mb=args.memory_mb)
    settings = EvalConfig(
        n_workers=args.n_workers,
        limits=limits,
        ks=ks,
        allow_incomplete=args.allow_incomplete,
        allow_weak=args.allow_weak_sandbox,
        timeouts=TimeoutPolicy(
            calibrated=args.calibrated, factor=args.timeout_factor, retry_timeouts=args.retry_timeouts
        ),
    )
    bench = get_benchmark(args.benchmark)
    if args.prediction_dir is None:
        return EvaluateConfig(bench.name, args.samples, args.output_dir, data_choice(args, bench), settings)
    output_dir = args.output_dir
    if output_dir is None:
        output_dir = str(Path(args.prediction_dir) / "eval")
        log.info("no --output-dir: writing the evaluation to %s", output_dir)
    merged = str(Path(output_dir) / MERGED_NAME)
    return EvaluateConfig(bench.name, merged, output_dir, data_choice(args, bench), settings, args.prediction_dir)


def recorded_data(bench: Benchmark, samples: str) -> DataChoice:
    """The data the generation run recorded beside the samples (nothing for a foreign samples file)."""
    fingerprint = read_fingerprint(samples)
    dataset = fingerprint.get("dataset") if isinstance(fingerprint, dict) else None
    return bench.recorded(dataset) if isinstance(dataset, dict) else DataChoice()


def merge_predictions(config: EvaluateConfig) -> EvaluateConfig:
    """Merge the prediction folder into `config.samples`; the evaluation then runs on that file."""
    bench = get_benchmark(config.benchmark)
    merged = merge_prediction_dir(config.prediction_dir or "", config.samples, bench, config.data)
    print(
        f"merged {len(merged.files)} prediction files of {config.prediction_dir} ({merged.fmt} format): "
        f"{merged.num_tasks} tasks, n = {merged.n} -> {merged.path}"
    )
    return replace(config, samples=str(merged.path))


def run(config: EvaluateConfig) -> int:
    if config.prediction_dir is not None:
        config = merge_predictions(config)
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
    parser = build_parser(fixed=fixed, prog=prog)
    args = parser.parse_args(argv)
    if args.samples is not None and args.output_dir is None:
        parser.error("--output-dir is required with --input")
    setup_logging(timestamps=False)
    return run_command(
        lambda: run(config_from_args(args)),
        bad_input=(DataError, ValueError, FileNotFoundError, SandboxError),  # SandboxError: isolation refused
        stopped="finished samples are kept; re-run the same command to evaluate the rest",
    )


if __name__ == "__main__":
    sys.exit(main())
