"""CodeAlpaca: the seeds' {instruction, input, output} rows, from the hub or a local file.

Accepts the hub id `sahil2801/CodeAlpaca-20k`, a local Alpaca JSON list, JSONL, parquet or a
`save_to_disk` folder. Each row is validated; a bad row is counted with its reason and skipped,
a malformed file stops the run with file:line. The language is guessed (CodeAlpaca has no column).
"""

from __future__ import annotations

import argparse
from typing import Any, ClassVar, Iterator

from data_generation.common.io import iter_input_rows
from data_generation.common.language import guess_language
from data_generation.common.record import Record, RowError, record_from_row
from data_generation.sources.base import SourceStats

HUB_ID = "sahil2801/CodeAlpaca-20k"


class CodeAlpacaSource:
    name: ClassVar[str] = "codealpaca"

    def __init__(self, input: str = HUB_ID, split: str = "train", revision: str | None = None) -> None:
        self.input, self.split, self.revision = input, split, revision

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--input", default=HUB_ID, help=f"local file/folder or hub id (default {HUB_ID})")
        parser.add_argument("--split", default="train", help="split to read from the hub or a DatasetDict folder")
        parser.add_argument("--revision", default=None, help="hub revision (commit, tag or branch)")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "CodeAlpacaSource":
        return cls(input=args.input, split=args.split, revision=args.revision)

    def config(self) -> dict[str, Any]:
        return {"input": self.input, "split": self.split, "revision": self.revision}

    def records(self, stats: SourceStats) -> Iterator[Record]:
        for where, row in iter_input_rows(self.input, split=self.split, revision=self.revision):
            stats.read += 1
            try:
                rec = record_from_row(row, default_source=self.name)
            except RowError as err:
                stats.reject(err.reason, where, str(err))
                continue
            meta = {"origin": self.input, "row": str(where)}
            if rec.language == "unknown":
                rec = rec.replace(
                    language=guess_language(rec.instruction, rec.input, rec.output),
                    meta={**rec.meta, **meta, "language_guessed": True},
                )
            else:
                rec = rec.replace(meta={**rec.meta, **meta})
            stats.emitted += 1
            yield rec
