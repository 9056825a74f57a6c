"""`python -m data_generation COMMAND ...`: one sub-command per source, plus the dataset steps.

Source commands share one shape: `python -m data_generation SOURCE [source options] --output FILE`
writes the records (by extension: .jsonl with provenance, .json Alpaca, .parquet) and a
`FILE.manifest.json` beside it with the source's config and its read/emitted/rejected counts.
Exit codes (`data_generation.common.command`): 0 ok, 2 bad input (the message names file and line)
or a resume with settings that differ from the run's, 1 a teacher that kept failing, 75 the output is
in use by another run; stopped by Ctrl-C 130, by SIGTERM 143 (an LLM-driven, resumable source first
records where it stopped).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from pathlib import Path
from typing import Any, Callable

from data_generation.common.command import Terminated, run_command, setup_logging
from data_generation.common.io import DataError, atomic_path, write_records
from data_generation.common.journal import Journal
from data_generation.common.output_lock import output_lock
from data_generation.common.provenance import package_versions
from data_generation.dataset import merge, quality_report, rouge_dedup
from data_generation.sources import SOURCES, Source, SourceStats
from data_generation.sources.base import ResumableSource
from data_generation.sources.resume_settings import check_resume_settings
from data_generation.teacher.base import TeacherError

log = logging.getLogger("data_generation")

# Dataset steps that are not sources: name -> (add_arguments, run). Each run returns an exit code.
COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "merge": (merge.add_arguments, merge.run),
    "near-dedup": (rouge_dedup.add_arguments, rouge_dedup.run),
    "report": (quality_report.add_arguments, quality_report.run),
}
RESUME = "finished steps are kept; re-run the same command to resume"


def write_source(source: Source, output: Path) -> SourceStats:
    """Stream a quick source into `output`, rewritten atomically, and write its manifest beside it."""
    stats = SourceStats()
    from tqdm.auto import tqdm

    write_records(tqdm(source.records(stats), desc=source.name, unit="record", mininterval=1.0), output)
    _write_manifest(output, _manifest(source, output, stats, {}, status="completed"))
    return stats


def _manifest(
    source: Source,
    output: Path,
    stats: SourceStats,
    extra: dict[str, Any],
    *,
    status: str,
    stop_reason: str | None = None,
) -> dict[str, Any]:
    """`status`: running (a step boundary of a run still going, or killed without notice), completed,
    stopped (`stop_reason`: the source gave up, e.g. max_idle_steps, or SIGINT/SIGTERM) or failed
    (`stop_reason`: the error). Counts are this process's; `resumed_from` says what came before."""
    return {
        "source": source.name,
        "status": status,
        "stop_reason": stop_reason,
        "config": source.config(),
        "output": str(output),
        "counts": stats.to_dict(),
        **extra,
        "versions": package_versions(),
    }


def _write_manifest(output: Path, manifest: dict[str, Any]) -> None:
    with atomic_path(f"{output}.manifest.json") as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def resume_source(source: ResumableSource, output: Path) -> SourceStats:
    """Run an LLM-driven, hours-long source: append to the journal at `output`, continuing after what
    it holds. The caller holds `output`'s lock; this takes the side files' (the rejects file), then
    refuses changed settings, all before anything is read back or repaired."""
    stats = SourceStats()
    with contextlib.ExitStack() as locks:
        for path in source.side_files():
            locks.enter_context(output_lock(path))
        check_resume_settings(source, output)
        _append_resumable(source, output, stats)
    return stats


def _append_resumable(source: ResumableSource, output: Path, stats: SourceStats) -> None:
    """Resume from the journal at `output` and append each finished batch.

    The manifest is rewritten (atomically) at the start and after every step, with status
    `running`, so a `kill -9` leaves one that describes every finished step; on Ctrl-C, SIGTERM or
    an error it is rewritten from the last finished step with status `stopped` or `failed` and the
    reason; at the end with `completed`, or `stopped` when the source gave up (`source.stop_reason`).
    """
    with Journal.open(output, source.name) as journal:
        try:
            keep = source.resume(journal.records)
        except ValueError as exc:
            raise DataError(output, None, str(exc)) from None
        journal.rewind(keep)
        last: dict[str, Any] = {}

        def snapshot(status: str = "running", stop_reason: str | None = None) -> None:
            extra = {"resumed_from": keep, "total_records": journal.count, **source.summary()}
            last.clear()
            last.update(_manifest(source, output, stats, extra, status=status, stop_reason=stop_reason))
            _write_manifest(output, last)

        source.on_step = snapshot
        snapshot()
        try:
            for batch in source.batches(stats):
                journal.append(batch)
        except BaseException as exc:
            status, reason = _ending(exc)
            _write_manifest(output, {**last, "status": status, "stop_reason": reason, "total_records": journal.count})
            if isinstance(exc, TeacherError):
                raise TeacherError(
                    f"teacher failed: {exc} (finished work is kept; re-run the same command to resume)"
                ) from None
            raise
        finally:
            source.on_step = None
            source.close()
        snapshot("stopped" if source.stop_reason else "completed", source.stop_reason)


def _ending(exc: BaseException) -> tuple[str, str]:
    """The manifest's (status, stop_reason) for a run that `exc` ended."""
    if isinstance(exc, KeyboardInterrupt):
        return "stopped", "interrupted: SIGINT (Ctrl-C)"
    if isinstance(exc, Terminated):
        return "stopped", "terminated: SIGTERM"
    return "failed", f"{type(exc).__name__}: {exc}"


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
    setup_logging(verbose=args.verbose)
    if args.command in SOURCES:
        return run_command(
            lambda: _source_command(args), bad_input=(DataError,), failures=(TeacherError,), stopped=RESUME
        )
    return run_command(
        lambda: COMMANDS[args.command][1](args), bad_input=(DataError,), stopped="re-run the same command"
    )


def _source_command(args: argparse.Namespace) -> int:
    cls = SOURCES[args.command]
    if ResumableSource in cls.__mro__:
        # the lock first: a second run on this output stops before it builds a teacher (a local one
        # loads a model) or reads anything back
        with output_lock(args.output):
            stats = resume_source(cls.from_args(args), args.output)
    else:
        stats = write_source(cls.from_args(args), args.output)
    log.info(
        "%s: read %d, wrote %d to %s, rejected %s",
        args.command,
        stats.read,
        stats.emitted,
        args.output,
        dict(stats.rejected) or "none",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
