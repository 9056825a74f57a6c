"""The merge's files: reading every input into normalised records (each row counted in the
`Ledger`, kept or dropped with one reason) and publishing the output folder in one rename.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from data_generation.common.io import (
    DataError,
    atomic_dir,
    read_records,
    write_alpaca_json,
    write_hf_dataset,
    write_jsonl,
    write_parquet,
)
from data_generation.common.provenance import file_sha256
from data_generation.common.record import Record
from data_generation.dataset.normalise import normalise_whitespace
from data_generation.dataset.report import write_report

log = logging.getLogger(__name__)


@dataclass
class Ledger:
    """Counts and the drop log; `drop` is the only way a record leaves the pipeline."""

    input_by_source: Counter = field(default_factory=Counter)
    dropped: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    drops: list[dict] = field(default_factory=list)

    def drop(self, source: str, reason: str, **details: object) -> None:
        self.dropped[source][reason] += 1
        self.drops.append({"reason": reason, "source": source, **details})


def read_inputs(paths: list[str], ledger: Ledger) -> tuple[list[Record], list[dict]]:
    """Records of every input, normalised. An input without any row (a 0-byte file, a source that
    kept nothing) is reported and listed with 0 rows; the merge goes on with the others."""
    records, inputs = [], []
    for path in paths:
        default_source, n = Path(path).stem, 0
        for where, item in read_records(path, default_source=default_source, allow_empty=True):
            n += 1
            if not isinstance(item, Record):
                ledger.input_by_source[default_source] += 1
                ledger.drop(
                    default_source, f"invalid_row:{item.reason}", input=path, where=str(where), detail=str(item)
                )
                continue
            ledger.input_by_source[item.source] += 1
            rec = item.replace(
                instruction=normalise_whitespace(item.instruction),
                input=normalise_whitespace(item.input),
                output=normalise_whitespace(item.output),
            )
            if not rec.instruction or not rec.output:
                ledger.drop(rec.source, "empty_after_normalise", id=item.id, input=path, where=str(where))
                continue
            records.append(rec)
        upstream = Path(f"{path}.manifest.json")
        manifest = json.loads(upstream.read_text()) if upstream.exists() else None
        if n == 0:
            source = (manifest or {}).get("source") or default_source
            ledger.input_by_source[source] += 0  # listed in per_source with 0 rows
            why = ""
            if manifest and manifest.get("status"):  # a source run's manifest says how that run ended
                why = f"; its {source} run {manifest['status']}"
                why += f": {manifest['stop_reason']}" if manifest.get("stop_reason") else ""
            log.warning("%s: empty input (0 records%s); the merge goes on without it", path, why)
        inputs.append(
            {
                "path": path,
                "rows": n,
                "empty": n == 0,
                "sha256": file_sha256(path) if Path(path).is_file() else None,
                "upstream_manifest": manifest,
            }
        )
    if inputs and all(entry["empty"] for entry in inputs):
        raise DataError(
            ", ".join(paths), None, f"all {len(inputs)} inputs are empty (0 records each): nothing to merge"
        )
    return records, inputs


def _write_splits(formats: tuple[str, ...], splits: dict[str, list[Record]], folder: Path) -> None:
    for name, recs in splits.items():
        if "json" in formats:
            write_alpaca_json(recs, folder / f"{name}.json")
        if "jsonl" in formats:
            write_jsonl(recs, folder / f"{name}.jsonl")
        if "parquet" in formats:
            write_parquet(recs, folder / f"{name}.parquet")
    if "hf" in formats:
        write_hf_dataset(splits, folder / "hf")


def publish(
    formats: tuple[str, ...], splits: dict[str, list[Record]], manifest: dict, ledger: Ledger, out: Path
) -> None:
    """Write the dataset in `formats`, drops.jsonl, manifest.json and report.md into a temporary
    sibling of `out`, then rename it into place: a failed run leaves no partial dataset behind."""
    with atomic_dir(out) as tmp:
        _write_splits(formats, splits, tmp)
        with open(tmp / "drops.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps(d, ensure_ascii=False) + "\n" for d in ledger.drops)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        write_report(manifest, tmp / "report.md")
