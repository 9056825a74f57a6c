"""The source protocol, its run statistics, and the shared input loader (local file or HF hub)."""

from __future__ import annotations

import argparse
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterator, Protocol

from data_generation.common.io import DataError, is_hf_disk_dir, iter_rows
from data_generation.common.record import Record

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
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


def iter_input_rows(spec: str, *, split: str = "train", revision: str | None = None) -> Iterator[tuple[str | int, Any]]:
    """Rows from a local file / `save_to_disk` folder, or from the Hugging Face hub.

    A local folder that is not a `save_to_disk` folder (e.g. a clone of a hub dataset repo) goes
    through `datasets.load_dataset` exactly as a hub id does, so the hub code path is testable offline.
    """
    path = Path(spec)
    if path.exists() and (path.is_file() or is_hf_disk_dir(path)):
        yield from iter_rows(path, split=None if path.is_file() else split)
        return
    if not path.exists() and not HUB_ID.match(spec):
        raise DataError(spec, None, "no such file, and not a Hugging Face hub id (owner/name)")
    yield from _iter_hub_rows(spec, split=split, revision=revision)


def _iter_hub_rows(spec: str, *, split: str, revision: str | None) -> Iterator[tuple[str, Any]]:
    import datasets

    try:
        ds = datasets.load_dataset(spec, split=split, revision=revision, streaming=True)
    except Exception as exc:  # hub/network/schema errors come in many types
        raise DataError(
            spec,
            None,
            f"could not load from the Hugging Face hub or folder: {exc}. "
            "Offline? Download the dataset files and pass a local path.",
        ) from None
    for n, row in enumerate(ds, start=1):
        yield f"row {n}", row
