"""An append-only JSONL file that survives `kill -9`: long jobs write their records here as they go.

Each `append` writes one batch of complete lines with a single `write` call, then flushes and
fsyncs, so after a crash the file holds every batch appended before it plus, at worst, a torn tail
(a last line without its newline, or one that does not parse). `Journal.open` cuts such a tail off
and hands back the records that survived; the job then resumes after them, so no record is lost
twice or written twice.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Iterable

from data_generation.common.io import DataError
from data_generation.common.record import Record, RowError, record_from_row

log = logging.getLogger(__name__)


class Journal:
    """Append-only record log: `Journal.open(path, source)`, read `.records`, then `append` batches."""

    def __init__(self, path: Path, handle, records: list[Record], ends: list[int]) -> None:
        self.path, self._handle = path, handle  # handle: binary, opened for appending
        self.records = records  # what the file held when opened (after repair)
        self._ends = ends  # byte offset just past each record's line, for `rewind`

    @classmethod
    def open(cls, path: str | os.PathLike, source: str) -> "Journal":
        """Open (creating) `path` and repair a torn tail; `.records` holds what survived."""
        path = Path(path)
        if path.suffix != ".jsonl":
            raise DataError(path, None, "a resumable output must be a .jsonl file (append-only)")
        path.parent.mkdir(parents=True, exist_ok=True)
        records, ends = _recover(path, source) if path.exists() else ([], [])
        return cls(path, open(path, "ab"), records, ends)

    def append(self, records: Iterable[Record]) -> int:
        lines = [(json.dumps(r.to_dict(), ensure_ascii=False) + "\n").encode("utf-8") for r in records]
        if lines:
            self._handle.write(b"".join(lines))
            self._handle.flush()
            os.fsync(self._handle.fileno())
            for line in lines:
                self._ends.append((self._ends[-1] if self._ends else 0) + len(line))
        return len(lines)

    @property
    def count(self) -> int:
        """Records in the file now."""
        return len(self._ends)

    def rewind(self, keep: int) -> None:
        """Cut the journal back to its first `keep` records (e.g. drop an incomplete batch)."""
        if keep < len(self._ends):
            self._handle.truncate(self._ends[keep - 1] if keep else 0)
            os.fsync(self._handle.fileno())
            del self._ends[keep:]

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _recover(path: Path, source: str) -> tuple[list[Record], list[int]]:
    """Records of an existing journal and their end offsets; a torn last line is cut off, damage
    elsewhere is an error."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    complete, tail = lines[:-1], lines[-1]  # `tail` is b"" when the file ends with a newline
    records, ends, good_bytes = [], [], 0
    for lineno, raw in enumerate(complete, start=1):
        try:
            records.append(record_from_row(json.loads(raw.decode("utf-8")), default_source=source))
        except (UnicodeDecodeError, json.JSONDecodeError, RowError) as exc:
            if lineno == len(complete) and not tail:
                tail = raw  # a damaged last line is a torn write too: cut it
                break
            raise DataError(
                path,
                lineno,
                f"damaged record in the middle of a journal ({exc}); "
                "it was not written by an interrupted run: fix or move the file",
            ) from None
        good_bytes += len(raw) + 1
        ends.append(good_bytes)
    if tail:
        log.warning("%s: cutting off a torn last line (%d bytes) left by an interrupted run", path, len(tail))
        with open(path, "r+b") as handle:
            handle.truncate(good_bytes)
            os.fsync(handle.fileno())
    return records, ends
