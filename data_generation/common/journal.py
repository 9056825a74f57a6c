"""The journal of a resumable source: its records, appended step by step to the output `.jsonl` as
they are made, so a `kill -9` loses at most the step in flight.

A thin layer over `jsonl_log.JsonlLog` (one fsynced write per batch, a torn tail cut on open): the
journal reads its lines back as `Record`s and insists on a `.jsonl` output, the one format that can
be appended to. The source then resumes after the records that survived, so no record is lost twice
or written twice.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from data_generation.common.io import DataError
from data_generation.common.jsonl_log import JsonlLog
from data_generation.common.record import Record, record_from_row


class Journal:
    """Append-only record log: `Journal.open(path, source)`, read `.records`, then `append` batches."""

    def __init__(self, log: JsonlLog[Record]) -> None:
        self._log = log
        self.path = log.path
        self.records = log.rows  # what the file held when opened (after the repair)

    @classmethod
    def open(cls, path: str | os.PathLike, source: str) -> "Journal":
        """Open (creating) `path` and repair a torn tail; `.records` holds what survived."""
        path = Path(path)
        if path.suffix != ".jsonl":
            raise DataError(path, None, "a resumable output must be a .jsonl file (append-only)")
        return cls(JsonlLog.open(path, lambda row: record_from_row(row, default_source=source), kind="journal"))

    def append(self, records: Iterable[Record]) -> int:
        return self._log.append([r.to_dict() for r in records])

    @property
    def count(self) -> int:
        """Records in the file now."""
        return self._log.count

    def rewind(self, keep: int) -> None:
        """Cut the journal back to its first `keep` records (e.g. drop an incomplete batch)."""
        self._log.rewind(keep)

    def close(self) -> None:
        self._log.close()

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
