"""An append-only JSONL file that survives `kill -9`: the one log under a resumable source's journal
and rejects file and under the sample shards of `main.generate`.

Each `append` writes its rows as whole lines with a single `write` call, then flushes and fsyncs, so
after a crash the file holds every batch appended before it plus, at worst, a torn tail: a last line
without its newline, or a last line that does not parse (a write cut short). Opening the log cuts
such a tail off and hands back the rows that survived; a reader that does not own the file
(`read_log`) leaves it out. Damage anywhere else was not made by an interrupted append, so it is an
error that names the line: nothing guesses which rows a damaged file meant to hold.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Generic, Sequence, TypeVar

from data_generation.common.io import DataError

log = logging.getLogger(__name__)

T = TypeVar("T")


def _as_is(row: Any) -> Any:
    return row


@dataclass
class LogContents(Generic[T]):
    """What a log holds: its rows, the byte offset just past each row's line, and the torn tail."""

    rows: list[T]
    ends: list[int]
    torn: int  # bytes after the last good line (0: the file ends cleanly)

    @property
    def good_bytes(self) -> int:
        return self.ends[-1] if self.ends else 0


def read_log(path: Path, parse: Callable[[Any], T] = _as_is, *, kind: str = "log") -> LogContents[T]:
    """The rows of the log at `path`, each decoded JSON value passed through `parse` (which raises
    ValueError for a row it cannot use). A torn last line is left out, not cut; damage before it
    raises DataError naming the line."""
    lines = path.read_bytes().split(b"\n")
    complete, tail = lines[:-1], lines[-1]  # `tail` is b"" when the file ends with a newline
    rows: list[T] = []
    ends: list[int] = []
    good = 0
    for lineno, raw in enumerate(complete, start=1):
        try:
            rows.append(parse(json.loads(raw.decode("utf-8"))))
        except ValueError as exc:  # JSON, UTF-8 and `parse`'s own errors are all ValueErrors
            if lineno == len(complete) and not tail:
                tail = raw + b"\n"  # a damaged last line is a torn write too
                break
            raise DataError(
                path,
                lineno,
                f"damaged line in the middle of a {kind} ({exc}); "
                "it was not written by an interrupted run: fix or move the file",
            ) from None
        good += len(raw) + 1
        ends.append(good)
    return LogContents(rows, ends, len(tail))


class JsonlLog(Generic[T]):
    """The log opened for appending: `JsonlLog.open(path, parse)`, read `.rows`, then `append` batches."""

    def __init__(self, path: Path, handle: Any, rows: list[T], ends: list[int]) -> None:
        self.path, self._handle = path, handle  # handle: binary, opened for appending
        self.rows = rows  # what the file held when opened (after the repair)
        self._ends = ends  # byte offset just past each line, for `rewind`

    @classmethod
    def open(cls, path: str | os.PathLike, parse: Callable[[Any], T] = _as_is, *, kind: str = "log") -> "JsonlLog[T]":
        """Open (creating) `path`, cutting a torn tail off; `.rows` holds what survived."""
        path = Path(path)
        return cls.resume(path, read_log(path, parse, kind=kind) if path.exists() else LogContents([], [], 0))

    @classmethod
    def resume(cls, path: Path, contents: LogContents[T]) -> "JsonlLog[T]":
        """Open `path` for appending after `contents` (what `read_log` found there), cutting its torn tail."""
        path.parent.mkdir(parents=True, exist_ok=True)
        if contents.torn:
            log.warning("%s: cutting off a torn last line (%d bytes) left by an interrupted run", path, contents.torn)
            with open(path, "r+b") as handle:
                handle.truncate(contents.good_bytes)
                os.fsync(handle.fileno())
        return cls(path, open(path, "ab"), contents.rows, contents.ends)

    def append(self, rows: Sequence[Any]) -> int:
        """Append `rows` (JSON values) in one write, flushed and fsynced; returns how many."""
        lines = [(json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8") for row in rows]
        if lines:
            self._handle.write(b"".join(lines))
            self._handle.flush()
            os.fsync(self._handle.fileno())
            for line in lines:
                self._ends.append((self._ends[-1] if self._ends else 0) + len(line))
        return len(lines)

    @property
    def count(self) -> int:
        """Lines in the file now."""
        return len(self._ends)

    def rewind(self, keep: int) -> None:
        """Cut the log back to its first `keep` lines (e.g. drop a batch that a crash left unfinished)."""
        if keep < len(self._ends):
            self._handle.truncate(self._ends[keep - 1] if keep else 0)
            os.fsync(self._handle.fileno())
            del self._ends[keep:]

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> "JsonlLog[T]":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
