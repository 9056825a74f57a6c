"""`python -m data_generation near-dedup --input IN --output OUT`: drop rows too similar to an earlier kept row.

Rows are read in file order from any dataset file the repo reads (.json Alpaca list, .jsonl,
.parquet, a `save_to_disk` folder); a row is kept iff its text (`--field`, default the
instruction) scores <= `--threshold` against every row kept before it, so the first occurrence
always stays. Methods are registered in `METHODS`; `rouge-l` is self-instruct's filter (ROUGE-L
F-measure exactly as `rouge_score` computes it, see `data_generation.common.rouge`).

Outputs, each written to a temporary sibling and renamed into place:
- OUT: the kept records (.jsonl full records, .json Alpaca list, .parquet), by extension;
- OUT.decisions.jsonl: one line per input row, in file order: index, where (line or row),
  id, kept, reason, max_score and the most similar earlier kept row (its index and id);
- OUT.manifest.json: config, counts, timings and package versions.
Rows that are not valid records (say an empty output) are left out with reason
`invalid_row:REASON`, as `merge` does; a malformed file stops with file:line (exit 2). One run at a
time per OUT: a second one started meanwhile stops at once (exit 75, `common.output_lock`), so the
three files always come from one run.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

from data_generation.common.io import (
    WRITERS,
    atomic_path,
    is_hf_disk_dir,
    read_records,
    write_records,
)
from data_generation.common.output_lock import output_lock
from data_generation.common.provenance import file_sha256, fingerprint, package_versions
from data_generation.common.record import Record
from data_generation.common.rouge import RougeLFilter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    """One text's outcome: `score` is its highest similarity to an earlier kept text (0.0 when there
    is none) and `match` the position of that text in the sequence scored (None when there is none)."""

    kept: bool
    score: float
    match: int | None


def rouge_l_verdicts(texts: Sequence[str], threshold: float) -> Iterator[Verdict]:
    """ROUGE-L F (rouge_score's tokenizer, no stemmer) against every earlier kept text."""
    pool = RougeLFilter(threshold, top_k=1)
    kept_at: list[int] = []  # pool index -> position in `texts`
    for pos, d in enumerate(pool.filter(texts)):
        match = kept_at[d.most_similar[0][0]] if d.most_similar else None
        if d.keep:
            kept_at.append(pos)
        yield Verdict(d.keep, d.max_score, match)


# name -> f(texts, threshold) yielding one Verdict per text, in order
METHODS: dict[str, Callable[[Sequence[str], float], Iterator[Verdict]]] = {"rouge-l": rouge_l_verdicts}

FIELDS: dict[str, Callable[[Record], str]] = {
    "instruction": lambda r: r.instruction,
    "instruction+input": lambda r: f"{r.instruction}\n{r.input}" if r.input else r.instruction,
    "input": lambda r: r.input,
    "output": lambda r: r.output,
}


@dataclass(frozen=True)
class NearDedupConfig:
    input: str
    output: str
    method: str = "rouge-l"
    threshold: float = 0.7
    field: str = "instruction"


def near_dedup(cfg: NearDedupConfig) -> dict:
    """Run the filter, write OUT, OUT.decisions.jsonl and OUT.manifest.json; return the manifest.
    Holds OUT's lock throughout (OutputBusy when another run holds it)."""
    with output_lock(cfg.output):
        return _near_dedup(cfg)


def _near_dedup(cfg: NearDedupConfig) -> dict:
    t0 = time.perf_counter()
    rows = list(read_records(cfg.input, default_source=Path(cfg.input).stem))  # DataError before any write
    valid = [i for i, (_, item) in enumerate(rows) if isinstance(item, Record)]
    t1 = time.perf_counter()
    verdicts = list(METHODS[cfg.method]([FIELDS[cfg.field](rows[i][1]) for i in valid], cfg.threshold))
    t2 = time.perf_counter()
    by_row = dict(zip(valid, verdicts))
    lines, counts = [], Counter()
    for index, (where, item) in enumerate(rows):
        line = {"index": index, "where": str(where), "id": None, "kept": False}
        if not isinstance(item, Record):
            line["reason"] = f"invalid_row:{item.reason}"
        else:
            v = by_row[index]
            match = valid[v.match] if v.match is not None else None
            line.update(
                id=item.id,
                kept=v.kept,
                reason="kept" if v.kept else "near_duplicate",
                max_score=v.score,
                most_similar_index=match,
                most_similar_id=rows[match][1].id if match is not None else None,
            )
        counts[line["reason"]] += 1
        lines.append(line)
    write_records((rows[i][1] for i in valid if by_row[i].kept), cfg.output)
    with atomic_path(f"{cfg.output}.decisions.jsonl") as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    manifest = _manifest(cfg, counts, len(rows), {"read": t1 - t0, "score": t2 - t1, "write": time.perf_counter() - t2})
    with atomic_path(f"{cfg.output}.manifest.json") as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


def _manifest(cfg: NearDedupConfig, counts: Counter, read: int, timings: dict[str, float]) -> dict:
    config = {
        **asdict(cfg),
        "tokenizer": "rouge_score default (lowercase, [a-z0-9]+ tokens, no stemmer)",
        "keep_if": "score <= threshold against every earlier kept row",
    }
    path = Path(cfg.input)
    return {
        "command": "near-dedup",
        "config": config,
        "fingerprint": fingerprint(config),
        "input": {"path": cfg.input, "sha256": None if is_hf_disk_dir(path) else file_sha256(cfg.input)},
        "counts": {
            "read": read,
            "kept": counts["kept"],
            "near_duplicate": counts["near_duplicate"],
            "invalid": {k: v for k, v in sorted(counts.items()) if k.startswith("invalid_row:")},
        },
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "versions": package_versions(),
    }


# ---------------------------------------------------------------- command line


def _threshold(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"threshold must be in [0, 1], got {text}")
    return value


def _output(text: str) -> str:
    if Path(text).suffix not in WRITERS:
        raise argparse.ArgumentTypeError(f"{text}: output must end in one of {', '.join(sorted(WRITERS))}")
    return text


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = NearDedupConfig(input="", output="")
    p.add_argument(
        "--input", required=True, help="dataset file: .json (Alpaca list), .jsonl, .parquet or a save_to_disk folder"
    )
    p.add_argument(
        "--output", required=True, type=_output, help="kept rows: .jsonl (full records), .json (Alpaca) or .parquet"
    )
    p.add_argument("--method", choices=sorted(METHODS), default=d.method, help="similarity measure")
    p.add_argument(
        "--threshold",
        type=_threshold,
        default=d.threshold,
        help="drop a row scoring above this against an earlier kept row (default %(default)s)",
    )
    p.add_argument(
        "--field",
        choices=sorted(FIELDS),
        default=d.field,
        help="text compared (default %(default)s; instruction+input joins them with a newline)",
    )


def run(args: argparse.Namespace) -> int:
    cfg = NearDedupConfig(
        input=args.input, output=args.output, method=args.method, threshold=args.threshold, field=args.field
    )
    m = near_dedup(cfg)
    c = m["counts"]
    log.info(
        "near-dedup (%s, drop above %s, field %s): read %d, kept %d, near duplicates %d, invalid %s; wrote %s",
        cfg.method,
        cfg.threshold,
        cfg.field,
        c["read"],
        c["kept"],
        c["near_duplicate"],
        c["invalid"] or "none",
        cfg.output,
    )
    return 0
