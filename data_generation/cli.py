"""`python -m data_generation COMMAND ...`: one sub-command per source, plus the dataset steps.

Source commands share one shape: `python -m data_generation SOURCE [source options] --output FILE`
writes the records (by extension: .jsonl with provenance, .json Alpaca, .parquet) and a
`FILE.manifest.json` beside it with the source's config and its read/emitted/rejected counts.
Exit codes: 0 ok, 2 bad input (the message names file and line), 1 anything else.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Callable

from data_generation import merge, near_dedup
from data_generation.io import DataError, atomic_path, write_records
from data_generation.journal import Journal
from data_generation.provenance import package_versions
from data_generation.sources import SOURCES, Source, SourceStats
from data_generation.teacher.base import TeacherError

log = logging.getLogger("data_generation")

# Dataset steps that are not sources: name -> (add_arguments, run). Each run returns an exit code.
COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "merge": (merge.add_arguments, merge.run),
    "near-dedup": (near_dedup.add_arguments, near_dedup.run),
}


def run_source(source: Source, output: Path) -> SourceStats:
    """Stream a source into `output` and write its manifest beside it.

    Most sources are quick and rewrite their output atomically. A `resumable` source (LLM-driven,
    hours long) appends to a journal instead and, on a re-run, continues after what it holds.
    """
    stats = SourceStats()
    if getattr(source, "resumable", False):
        extra = _append_resumable(source, output, stats)
    else:
        write_records(source.records(stats), output)
        extra = {}
    manifest = {"source": source.name, "config": source.config(), "output": str(output),
                "counts": stats.to_dict(), **extra, "versions": package_versions()}
    with atomic_path(f"{output}.manifest.json") as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return stats


def _append_resumable(source, output: Path, stats: SourceStats) -> dict:
    """Resume from the journal at `output`, append each finished batch; manifest extras back."""
    with Journal.open(output, source.name) as journal:
        try:
            keep = source.resume(journal.records)
        except ValueError as exc:
            raise DataError(output, None, str(exc)) from None
        journal.rewind(keep)
        try:
            for batch in source.batches(stats):
                journal.append(batch)
        finally:
            source.close()
        return {"resumed_from": keep, "total_records": journal.count, **source.summary()}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m data_generation", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, cls in SOURCES.items():
        p = sub.add_parser(name, help=f"convert the {name} source into records")
        cls.add_arguments(p)
        p.add_argument("--output", required=True, type=Path, help="output file: .jsonl, .json (Alpaca) or .parquet")
    for name, (add_arguments, _) in COMMANDS.items():
        add_arguments(sub.add_parser(name, help=f"{name} step"))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command in SOURCES:
            stats = run_source(SOURCES[args.command].from_args(args), args.output)
            log.info("%s: read %d, wrote %d to %s, rejected %s", args.command, stats.read, stats.emitted,
                     args.output, dict(stats.rejected) or "none")
            return 0
        return COMMANDS[args.command][1](args)
    except DataError as err:
        log.error("%s", err)
        return 2
    except TeacherError as err:
        log.error("teacher failed: %s (finished work is kept; re-run the same command to resume)", err)
        return 1


if __name__ == "__main__":
    sys.exit(main())
