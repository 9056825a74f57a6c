"""Reverse instruction's settings: `ReverseInstructConfig` and the command-line options that fill it."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from data_generation.common.defaults import DEFAULT_SEED
from data_generation.common.treesitter import LANGUAGES
from data_generation.sources.reverse_instruct.harvest import FilterConfig as HarvestFilter


@dataclass(frozen=True)
class ReverseInstructConfig:
    paths: tuple[str, ...] = ()  # directories or files to harvest; with no dataset either: the default corpus
    stdlib: bool = False  # harvest the running Python's standard library too (with paths or a dataset)
    max_lines: int | None = None  # harvest only functions of at most this many lines (doc comment included)
    dataset: str | None = None  # a HF dataset of functions (hub id, save_to_disk folder or file)
    code_column: str = "code"
    language_column: str = "language"
    path_column: str | None = None
    repo_column: str | None = None
    license_column: str | None = None
    split: str = "train"
    languages: tuple[str, ...] = ()  # empty: all ten
    per_language: int | None = None  # harvest quota per language
    limit: int | None = None  # functions sent to the teacher in total
    snippets_per_request: int = 3  # k in round 1, as in CodeCapybara
    requests_per_step: int = 8
    threshold: float = 0.7  # ROUGE-L F above which a statement is a near-duplicate
    min_words: int = 8
    max_words: int = 200
    seed: int = DEFAULT_SEED
    temperature: float = 0.7  # round 1
    program_temperature: float = 0.2  # round 2: programs should be conservative
    top_p: float = 1.0
    statement_max_tokens: int = 1536
    program_max_tokens: int = 2048
    check_timeout: float = 30.0
    check_workers: int = 2
    compact_prompts: bool = False  # the *_compact.txt prompts: fewer tokens for a small, CPU-bound teacher
    rejects: str | None = None  # default: OUTPUT with suffix .rejects.jsonl

    def __post_init__(self) -> None:
        if self.snippets_per_request < 1 or self.requests_per_step < 1 or self.check_workers < 1:
            raise ValueError("snippets_per_request, requests_per_step and check_workers must be >= 1")
        if (self.limit is not None and self.limit < 1) or (self.per_language is not None and self.per_language < 1):
            raise ValueError("limit and per_language must be >= 1")
        if self.max_lines is not None and self.max_lines < HarvestFilter.min_lines:
            raise ValueError(f"max_lines must be >= {HarvestFilter.min_lines} (the shortest function harvested)")
        if not 0 < self.min_words <= self.max_words:
            raise ValueError("need 0 < min_words <= max_words")
        unknown = set(self.languages) - set(LANGUAGES)
        if unknown:
            raise ValueError(f"unknown languages {sorted(unknown)}; choose from {', '.join(sorted(LANGUAGES))}")

    @property
    def step_size(self) -> int:
        return self.snippets_per_request * self.requests_per_step


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The source's own options (the teacher's come from `data_generation.teacher`)."""
    d = ReverseInstructConfig()
    g = parser.add_argument_group("functions to harvest (default: the Python stdlib + sources found here)")
    g.add_argument(
        "--paths",
        nargs="+",
        default=[],
        help="directories or files of source code, e.g. data/samples/functions (a small sample "
        "in all ten languages that ships with the repo)",
    )
    g.add_argument(
        "--stdlib",
        action="store_true",
        help="also harvest the running Python's standard library (with --paths or --dataset; "
        "without either, the default corpus includes it anyway)",
    )
    g.add_argument(
        "--max-lines",
        type=int,
        default=None,
        help="harvest only functions of at most this many lines, doc comment included "
        "(short functions suit a small teacher; default: up to 200)",
    )
    g.add_argument("--dataset", default=None, help="HF dataset of functions: hub id, save_to_disk folder or file")
    for column in ("code", "language", "path", "repo", "license"):
        g.add_argument(
            f"--{column}-column",
            default=getattr(d, f"{column}_column"),
            help=f"dataset column holding the {column}",
        )
    g.add_argument("--split", default=d.split, help="dataset split")
    g.add_argument("--languages", default="", help=f"comma-separated subset of: {', '.join(sorted(LANGUAGES))}")
    g.add_argument("--per-language", type=int, default=None, help="at most this many functions per language")
    g.add_argument("--limit", type=int, default=None, help="at most this many functions sent to the teacher")
    _generation_arguments(parser, d)


def _generation_arguments(parser: argparse.ArgumentParser, d: ReverseInstructConfig) -> None:
    g = parser.add_argument_group("generation")
    g.add_argument(
        "--snippets-per-request", type=int, default=d.snippets_per_request, help="functions per round-1 request (k)"
    )
    g.add_argument(
        "--requests-per-step",
        type=int,
        default=d.requests_per_step,
        help="round-1 requests per step (a step is the unit of resume)",
    )
    g.add_argument("--threshold", type=float, default=d.threshold, help="ROUGE-L near-duplicate threshold")
    g.add_argument("--min-words", type=int, default=d.min_words, help="shortest problem statement")
    g.add_argument("--max-words", type=int, default=d.max_words, help="longest problem statement")
    g.add_argument("--seed", type=int, default=d.seed, help="sampling seed")
    g.add_argument("--temperature", type=float, default=d.temperature, help="round 1 (statements)")
    g.add_argument("--program-temperature", type=float, default=d.program_temperature, help="round 2 (programs)")
    g.add_argument("--top-p", type=float, default=d.top_p)
    g.add_argument("--statement-max-tokens", type=int, default=d.statement_max_tokens)
    g.add_argument("--program-max-tokens", type=int, default=d.program_max_tokens)
    g.add_argument("--check-timeout", type=float, default=d.check_timeout, help="seconds per toolchain check")
    g.add_argument("--check-workers", type=int, default=d.check_workers, help="toolchain checks run together")
    g.add_argument(
        "--compact-prompts",
        action="store_true",
        help="shorter prompts (prompts/reverse_instruct_*_compact.txt) for a small teacher on a CPU, "
        "where prompt tokens cost most of the time",
    )
    g.add_argument("--rejects", default=None, help="rejects file (default: OUTPUT with .rejects.jsonl)")


def config_from_args(args: argparse.Namespace) -> ReverseInstructConfig:
    """The config the parsed options describe; ValueError for an impossible combination."""
    fields = {
        k: getattr(args, k) for k in ReverseInstructConfig.__dataclass_fields__ if k not in ("paths", "languages")
    }
    languages = tuple(x.strip() for x in args.languages.split(",") if x.strip())
    return ReverseInstructConfig(**fields, paths=tuple(args.paths), languages=languages)
