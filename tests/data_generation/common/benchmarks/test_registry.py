"""The benchmark registry: every benchmark complete and self-consistent, and the shared data options."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from data_generation.common.benchmarks import BENCHMARKS, get_benchmark
from data_generation.common.benchmarks.base import DataChoice
from data_generation.common.benchmarks.options import add_benchmark_arguments, data_choice
from data_generation.common.benchmarks.styles import STYLES


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_every_benchmark_is_complete(name: str) -> None:
    bench = BENCHMARKS[name]
    assert bench.name == name and bench.title
    assert all(style.benchmark == name and STYLES[style.name] is style for style in bench.styles)
    assert bench.style(bench.raw_style).format is None  # a base model is asked without a template
    assert bench.style("chat").templated and bench.style("alpaca").format == "alpaca"
    assert bench.splits and bench.subsets and bench.path_flag == f"--{name}-path"


def test_styles_index_every_benchmarks_styles_once() -> None:
    assert len(STYLES) == sum(len(b.styles) for b in BENCHMARKS.values())


def test_unknown_benchmark_says_what_exists() -> None:
    names = r"\['humaneval', 'humaneval_plus', 'mbpp', 'mbpp_plus'\]"
    with pytest.raises(ValueError, match=r"unknown benchmark 'humaneval\+'; choose from " + names):
        get_benchmark("humaneval+")


def test_humaneval_refuses_a_split_or_subset_it_does_not_have() -> None:
    bench = get_benchmark("humaneval")
    with pytest.raises(ValueError, match="split must be one of"):
        bench.load(DataChoice(split="train"))
    with pytest.raises(ValueError, match="no subset 'sanitized'"):
        bench.load(DataChoice(subset="sanitized"))


def test_mbpp_record_reads_back_as_the_same_choice(mbpp_sanitized: Path) -> None:
    bench = get_benchmark("mbpp")
    choice = DataChoice(str(mbpp_sanitized), "prompt", "sanitized")
    record = bench.describe(choice)
    assert record["name"] == "mbpp-sanitized" and record["sanitized"] is True and len(record["sha256"]) == 64
    assert bench.recorded(record) == choice
    assert bench.recorded({"name": "mbpp-sanitized", "path": "p"}).subset == "sanitized"  # an older record
    assert bench.describe(DataChoice())["sha256"] is None  # the hub id: nothing to hash here


def test_a_choice_fills_its_gaps_from_a_recorded_one() -> None:
    recorded = DataChoice("mbpp.jsonl", "prompt", "sanitized")
    assert DataChoice(split="test").over(recorded) == DataChoice("mbpp.jsonl", "test", "sanitized")
    assert DataChoice().over(DataChoice()) == DataChoice()


def _parse(argv: list[str], fixed: str | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_benchmark_arguments(parser, fixed=fixed)
    return parser.parse_args(argv)


def test_data_options_take_each_benchmarks_own_path_and_the_old_spellings() -> None:
    args = _parse(["--benchmark", "mbpp", "--mbpp-path", "m.jsonl", "--humaneval-path", "h.jsonl", "--split", "all"])
    assert data_choice(args, get_benchmark("mbpp")) == DataChoice("m.jsonl", "all", None)
    assert data_choice(args, get_benchmark("humaneval")).source == "h.jsonl"
    args = _parse(["--humaneval-path", "h.jsonl", "--sanitized"], fixed="humaneval")
    assert args.benchmark == "humaneval" and data_choice(args, get_benchmark("humaneval")).source == "h.jsonl"
    assert data_choice(args, get_benchmark("humaneval")).subset == "sanitized"  # refused when loading
    args = _parse(["--no-sanitized"], fixed="mbpp")
    assert data_choice(args, get_benchmark("mbpp")).subset == "full"  # overrides a recorded sanitized run
    with pytest.raises(SystemExit):
        _parse(["--benchmark", "nope"])
