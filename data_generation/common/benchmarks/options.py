"""The command-line options that choose a benchmark and its data, shared by the generate and evaluate
commands: `--benchmark` (any registered name), each benchmark's data path (`--humaneval-path`,
`--mbpp-path`, ...: a command may be handed all of them, and uses the chosen benchmark's), `--split`,
`--subset` and `--sanitized`."""

from __future__ import annotations

import argparse
from typing import Any

from data_generation.common.benchmarks import BENCHMARKS
from data_generation.common.benchmarks.base import Benchmark, DataChoice


def add_benchmark_arguments(parser: argparse.ArgumentParser, *, fixed: str | None = None) -> None:
    """`--benchmark` (left out when the command has it `fixed`) and the data options."""
    if fixed is None:
        parser.add_argument("--benchmark", choices=sorted(BENCHMARKS), required=True)
    else:
        parser.set_defaults(benchmark=fixed)
    d = parser.add_argument_group("data")
    for bench in BENCHMARKS.values():
        if fixed in (None, bench.name):
            d.add_argument(bench.path_flag, dest=f"path_{bench.name}", metavar="PATH", help=bench.path_help)
    splits = sorted({split for bench in BENCHMARKS.values() for split in bench.splits})
    d.add_argument("--split", dest="split", default=None, help=f"task range ({', '.join(splits)})")
    d.add_argument("--subset", default=None, help="a flavour of the release (default: the full one)")
    d.add_argument(
        "--sanitized",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the sanitized release (--subset sanitized; MBPP: 427 tasks over all splits, 257 in test)",
    )


def data_choice(args: Any, bench: Benchmark) -> DataChoice:
    """The data the options name for `bench`; what they leave open stays None (the caller fills it)."""
    subset = args.subset
    if subset is None and args.sanitized is not None:
        subset = "sanitized" if args.sanitized else bench.subsets[0]
    return DataChoice(getattr(args, f"path_{bench.name}", None), args.split, subset)
