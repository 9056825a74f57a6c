"""The merge's drops as the quality report counts them: per layer (and method), per benchmark task,
and the most similar pairs, from drops.jsonl rows (or the merge's ledger, the same dicts).

A drop's layer is its `layer` field, else the part of its `reason` before ':'; its benchmark is its
`benchmark` field, else the reason's suffix, when it names a `task_id`. So a layer the merge gains
later (a semantic one) is counted and listed without a change here.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Iterable

from data_generation.common.record import Record

_SCORE_FIELDS = ("similarity", "score", "cosine", "jaccard")  # the first numeric one ranks a pair
_TRUNCATE = 200  # characters of each text in the most-similar pairs (drops.jsonl keeps 200 too)


def layer_of(drop: dict[str, Any]) -> str:
    return str(drop.get("layer") or drop["reason"].split(":", 1)[0])


def benchmark_of(drop: dict[str, Any]) -> str | None:
    """The benchmark a contamination drop names (`benchmark`, else the reason's suffix); None for
    drops that match no benchmark task."""
    if not drop.get("task_id"):
        return None
    return str(drop.get("benchmark") or (drop["reason"].split(":", 1)[1] if ":" in drop["reason"] else "unknown"))


def drop_counts(drops: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Drops per layer (and method within it), per reason, and per benchmark with the tasks matched."""
    layers: dict[str, Counter] = defaultdict(Counter)
    layer_reasons: dict[str, Counter] = defaultdict(Counter)
    reasons: Counter = Counter()
    benches: dict[str, dict[str, Any]] = defaultdict(lambda: {"records": 0, "methods": Counter(), "tasks": Counter()})
    for d in drops:
        layers[layer_of(d)][str(d.get("method") or "-")] += 1
        layer_reasons[layer_of(d)][d["reason"]] += 1
        reasons[d["reason"]] += 1
        bench = benchmark_of(d)
        if bench:
            b = benches[bench]
            b["records"] += 1
            b["methods"][str(d.get("method") or "-")] += 1
            b["tasks"][str(d["task_id"])] += 1
    return {
        "total": sum(reasons.values()),
        "per_layer": {
            name: {
                "records": sum(m.values()),
                "methods": dict(sorted(m.items())),
                "reasons": dict(sorted(layer_reasons[name].items())),
            }
            for name, m in sorted(layers.items())
        },
        "per_reason": dict(sorted(reasons.items())),
        "per_benchmark": {
            name: {
                "records": b["records"],
                "methods": dict(sorted(b["methods"].items())),
                "tasks": len(b["tasks"]),
                "top_tasks": dict(b["tasks"].most_common(10)),
            }
            for name, b in sorted(benches.items())
        },
    }


def _score(drop: dict[str, Any]) -> float | None:
    for name in _SCORE_FIELDS:
        if isinstance(drop.get(name), (int, float)) and not isinstance(drop.get(name), bool):
            return float(drop[name])
    return None


def _cut(text: Any) -> str:
    text = str(text or "")
    return text if len(text) <= _TRUNCATE else text[: _TRUNCATE - 1] + "…"


def similar_pairs(drops: list[dict[str, Any]], recs: list[Record], top: int) -> dict[str, list[dict[str, Any]]]:
    """Per layer, the `top` drops that name a counterpart (a kept duplicate or a benchmark task), most
    similar first (drops without a score keep their order, after the scored). Exact duplicates are
    counted, not listed: both texts are the same."""
    texts = {r.id: r.instruction for r in recs} | {d["id"]: d.get("instruction") for d in drops if d.get("id")}
    pairs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in drops:
        if layer_of(d) == "exact_duplicate" or not (d.get("duplicate_of") or d.get("task_id")):
            continue
        other = d.get("task_id") or d["duplicate_of"]
        pairs[layer_of(d)].append(
            {
                "reason": d["reason"],
                "method": d.get("method"),
                "score": _score(d),
                "source": d.get("source"),
                "id": d.get("id"),
                "text": _cut(d.get("instruction")),
                "other": str(other),
                "other_text": _cut(d.get("other_text") or d.get("evidence") or texts.get(other)),
            }
        )
    ranked = {}
    for layer, rows in sorted(pairs.items()):
        order = sorted(range(len(rows)), key=lambda i: (rows[i]["score"] is None, -(rows[i]["score"] or 0), i))
        ranked[layer] = [rows[i] for i in order[:top]]
    return ranked
