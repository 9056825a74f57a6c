"""The source protocols (every source; the resumable, LLM-driven ones), run statistics, and the shared
input loader (local file or HF hub)."""

from __future__ import annotations

import argparse
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator, Protocol, runtime_checkable

from data_generation.common.record import Record

MAX_REJECT_EXAMPLES = 20


@dataclass
class SourceStats:
    """What a source saw: rows read, records emitted, rows rejected per reason (with a few examples)."""

    read: int = 0
    emitted: int = 0
    rejected: Counter = field(default_factory=Counter)
    examples: list[dict[str, str]] = field(default_factory=list)

    def reject(self, reason: str, where: str | int, detail: str = "") -> None:
        self.rejected[reason] += 1
        if len(self.examples) < MAX_REJECT_EXAMPLES:
            self.examples.append({"reason": reason, "where": str(where), "detail": detail})

    def to_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "emitted": self.emitted,
            "rejected": dict(sorted(self.rejected.items())),
            "reject_examples": self.examples,
        }


def log_step(log: logging.Logger, source: str, step: int, kept: int, rejected: Counter, progress: str) -> None:
    """One INFO line per finished step of an LLM-driven source: kept, rejected by reason, progress."""
    reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(rejected.items(), key=lambda kv: (-kv[1], kv[0])))
    log.info(
        "%s step %d: kept %d, rejected %d%s; %s",
        source,
        step,
        kept,
        sum(rejected.values()),
        f" ({reasons})" if reasons else "",
        progress,
    )


class Source(Protocol):
    """One adapter per data source. `records` yields Records and reports bad rows to `stats`."""

    name: ClassVar[str]

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None: ...

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "Source": ...

    def config(self) -> dict[str, Any]: ...

    def records(self, stats: SourceStats) -> Iterator[Record]: ...


@runtime_checkable
class ResumableSource(Source, Protocol):
    """An LLM-driven source, hours long, that appends to a journal step by step instead of rewriting its
    output, and on a re-run continues after what the journal holds (`data_generation.cli` runs it so).

    The CLI locks the output and the `side_files` (one writer each), refuses settings that differ
    from the run's beyond `resume_may_change` (the names of `config()` entries that only extend or
    pace the work), calls `resume` with the journal's records and cuts the journal back to the count
    it returns; then it appends each list `batches` yields (one per step) and calls `on_step` once the
    step is stored (to rewrite the manifest, with `summary()` in it). `stop_reason` says why a run
    ended early (None: it did not); `close` runs whatever happened. Nothing the run writes or resumes
    from may be read before `resume`: until then another run may hold it."""

    resume_may_change: ClassVar[frozenset[str]]
    on_step: Callable[[], None] | None
    stop_reason: str | None

    def side_files(self) -> list[Path]: ...

    def resume(self, done: list[Record]) -> int: ...

    def batches(self, stats: SourceStats) -> Iterator[list[Record]]: ...

    def summary(self) -> dict[str, Any]: ...

    def close(self) -> None: ...
