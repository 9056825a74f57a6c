"""`python -m data_generation report DATASET [--output-dir DIR]`: the dataset's quality report.

Writes quality.md, quality.json (the same numbers, machine-readable), lengths.png (instruction and
output length histograms) and tokens.png (tokens per source and per language) into DIR: by default
the merge folder itself, or `FILE.quality/` beside a single records file. Every file is rendered
first and all are renamed into place together at the end, so bad input (exit 2, file:line) leaves
nothing behind. The merge calls `write_quality_report` on its output folder, so every merge has one.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import time
from pathlib import Path
from typing import Any

from data_generation.common.io import atomic_path
from data_generation.common.record import Record
from data_generation.dataset.quality import Dataset, compute_quality, load_dataset, upstream_manifests

log = logging.getLogger(__name__)
FILES = ("quality.md", "quality.json", "lengths.png", "tokens.png")


def default_output_dir(dataset: str | Path) -> Path:
    path = Path(dataset)
    return path if path.is_dir() else path.with_name(f"{path.name}.quality")


def write_quality_report(
    dataset: str | Path,
    *,
    output_dir: str | Path | None = None,
    splits: dict[str, list[Record]] | None = None,
    manifest: dict[str, Any] | None = None,
    drops: list[dict[str, Any]] | None = None,
    top: int = 10,
) -> dict[str, Any]:
    """Write the report of `dataset` (a merge folder or a records file) and return its numbers.
    `splits`, `manifest` and `drops`: what a merge holds in memory, used instead of reading it back."""
    if splits is not None:
        records = [r for recs in splits.values() for r in recs]
        sizes = {name: len(recs) for name, recs in splits.items()}
        data = Dataset(Path(dataset), records, sizes, manifest, drops, upstream_manifests(manifest or {}))
    else:
        data = load_dataset(dataset)
    quality = compute_quality(data, top=top)
    files = {
        "quality.md": render_markdown(quality).encode("utf-8"),
        "quality.json": (json.dumps(quality, indent=2, ensure_ascii=False) + "\n").encode("utf-8"),
        "lengths.png": lengths_plot(quality),
        "tokens.png": tokens_plot(quality),
    }
    out = Path(output_dir) if output_dir is not None else default_output_dir(dataset)
    with contextlib.ExitStack() as stack:  # every temporary written before any is renamed into place
        for name, content in files.items():
            stack.enter_context(atomic_path(out / name)).write_bytes(content)
    return quality


# ---------------------------------------------------------------- quality.md


def _cell(value: Any) -> str:
    text = "–" if value is None else f"{value:,}" if isinstance(value, int) else str(value)
    return text.replace("|", "\\|").replace("\r", "").replace("\n", " ↵ ")


def _table(header: tuple[str, ...], rows: list[tuple]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows] + [""]


def render_markdown(q: dict[str, Any]) -> str:
    splits = ", ".join(f"{name} {n:,}" for name, n in q["splits"].items())
    t, kind = q["tokens"], "A merged dataset" if q["kind"] == "merge" else "A records file"
    lines = [
        f"# Dataset quality: `{q['dataset']}`",
        "",
        f"{kind}: {q['records']:,} records ({splits}), {t['total']:,} tokens (instructions "
        f"{t['instruction']:,}, inputs {t['input']:,}, outputs {t['output']:,}). Tokens counted with "
        f"{q['tokenizer']}. The same numbers are in `quality.json`.",
        "",
    ]
    lines += _composition(q)
    lines += _lengths(q["lengths"])
    lines += _drops(q["drops"], q["similar_pairs"])
    lines += _verification(q["verification"])
    lines += _teacher(q["teacher_cost"])
    return "\n".join(lines)


def _composition(q: dict[str, Any]) -> list[str]:
    merged = q["kind"] == "merge"
    header = ("Source", "Records", "Share", "Tokens", "Mean tokens") + (("Merge input", "Dropped") if merged else ())
    rows = [
        (name, v["records"], f"{v['records'] / max(q['records'], 1):.1%}", v["tokens"], v["mean_tokens"])
        + ((v.get("input"), v.get("dropped")) if merged else ())
        for name, v in q["per_source"].items()
    ]
    lines = ["## Records and tokens per source", ""] + _table(header, rows)
    rows = [(name, v["records"], v["tokens"], v["mean_tokens"]) for name, v in q["per_language"].items()]
    lines += ["## Per language", ""] + _table(("Language", "Records", "Tokens", "Mean tokens"), rows)
    return lines + ["![tokens per source and language](tokens.png)", ""]


def _lengths(lengths: dict[str, dict[str, Any]]) -> list[str]:
    rows = [
        (field, h["count"], h.get("mean"), h.get("p50"), h.get("p90"), h.get("p99"), h.get("max"), h.get("zero"))
        for field, h in lengths.items()
    ]
    header = ("Field", "Records", "Mean", "Median", "p90", "p99", "Max", "Empty")
    return ["## Lengths (tokens)", ""] + _table(header, rows) + ["![length histograms](lengths.png)", ""]


def _drops(drops: dict[str, Any] | None, pairs: dict[str, list[dict]] | None) -> list[str]:
    lines = ["## What the merge dropped, per layer", ""]
    if drops is None:
        return lines + ["Not known: a records file, not a merge folder (no drops.jsonl).", ""]
    if not drops["total"]:
        return lines + ["The merge dropped nothing.", ""]
    rows = [
        (layer, v["records"], ", ".join(f"{m} {n}" for m, n in v["methods"].items() if m != "-") or "–", reasons)
        for layer, v in drops["per_layer"].items()
        for reasons in [", ".join(f"{r} {n}" for r, n in v["reasons"].items())]
    ]
    lines += _table(("Layer", "Records", "Methods", "Reasons"), rows)
    if drops["per_benchmark"]:
        rows = [
            (
                bench,
                v["records"],
                v["tasks"],
                ", ".join(f"{m} {n}" for m, n in v["methods"].items()),
                ", ".join(f"{task} ({n})" for task, n in v["top_tasks"].items()),
            )
            for bench, v in drops["per_benchmark"].items()
        ]
        lines += ["Per benchmark:", ""]
        lines += _table(("Benchmark", "Records", "Tasks", "Methods", "Most matched tasks"), rows)
    for layer, items in (pairs or {}).items():
        if not items:  # --top 0
            continue
        lines += [f"### Most similar pairs: {layer}", ""]
        rows = [
            (p["score"] if p["score"] is not None else p["method"], p["source"], p["text"], p["other"], p["other_text"])
            for p in items
        ]
        lines += _table(("Score / method", "Source", "Dropped record", "Matched", "Matched text"), rows)
    return lines


def _verification(ver: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    lines = ["## Verification", ""]
    if not ver:
        return lines + ["No record carries `meta.checks` or `meta.verification`.", ""]
    rows = [
        (source, lang, v["records"], ", ".join(f"{s} {n}" for s, n in v["statuses"].items()), f"{v['pass_rate']:.1%}")
        for source, langs in ver.items()
        for lang, v in langs.items()
    ]
    return lines + _table(("Source", "Language", "Records checked", "Statuses", "Pass rate"), rows)


def _teacher(cost: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["## Teacher cost (LLM-written sources)", ""]
    if not cost:
        return lines + ["No LLM-written source.", ""]
    rows = []
    for source, c in cost.items():
        if not c["known"]:
            models = ", ".join(c["models"])
            rows.append((source, models, "unknown", "unknown", "unknown", "unknown", "unknown", "no source manifest"))
            continue
        note = f"run {c['run_status']}"
        if c["resumed_from"]:  # the manifest counts the last process only
            note += f"; last run only (resumed after {c['resumed_from']} records)"
        cost_usd = f"{c['cost_usd']:.4f}" if isinstance(c["cost_usd"], (int, float)) else None
        model = f"{c['model']} ({c['backend']})"
        rows.append(
            (source, model, c["requests"], c["cache_hits"], c["prompt_tokens"], c["completion_tokens"], cost_usd, note)
        )
    header = ("Source", "Teacher", "Requests", "Cache hits", "Tokens in", "Tokens out", "Cost (USD)", "Note")
    return lines + _table(header, rows)


# ---------------------------------------------------------------- plots


def _figure(ncols: int) -> tuple[Any, Any, Any]:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display here or in CI
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(10, 3.8))
    return plt, fig, axes


def _png(plt: Any, fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def lengths_plot(q: dict[str, Any]) -> bytes:
    """The histograms quality.json holds (log-spaced bins), instruction and output side by side."""
    plt, fig, axes = _figure(2)
    for ax, (field, h) in zip(axes, q["lengths"].items()):
        if h["count"]:
            edges = h["bin_edges"]
            ax.stairs(h["bin_counts"], edges, fill=True, color="#4477aa")
            ax.set_xscale("log")
        ax.set_title(f"{field} length ({h['count']:,} records)")
        ax.set_xlabel("tokens")
        ax.set_ylabel("records")
    return _png(plt, fig)


def tokens_plot(q: dict[str, Any]) -> bytes:
    from matplotlib.ticker import NullFormatter

    plt, fig, axes = _figure(2)
    for ax, (title, groups) in zip(axes, (("source", q["per_source"]), ("language (top 10)", q["per_language"]))):
        items = sorted(((name, v["tokens"]) for name, v in groups.items() if v["tokens"]), key=lambda x: -x[1])[:10]
        ax.barh([n for n, _ in items], [v for _, v in items], color="#66aa55")
        for i, (_, v) in enumerate(items):
            ax.text(v, i, f" {v:,}", va="center", fontsize="small")
        ax.set_xscale("log")  # sources differ by orders of magnitude; bars start at 1 token
        ax.set_xlim(left=1, right=max((v for _, v in items), default=1) * 10)
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.invert_yaxis()
        ax.set_title(f"tokens per {title}")
    return _png(plt, fig)


# ---------------------------------------------------------------- command


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "dataset", metavar="DATASET", help="a merge output folder, or one records file (.jsonl, .json, .parquet)"
    )
    p.add_argument(
        "--output-dir", help="where quality.md, quality.json and the plots go (default: the folder / FILE.quality/)"
    )
    p.add_argument("--top", type=int, default=10, help="most similar pairs listed per drop layer")


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    out = Path(args.output_dir) if args.output_dir else default_output_dir(args.dataset)
    q = write_quality_report(args.dataset, output_dir=out, top=args.top)
    drops = q["drops"]["total"] if q["drops"] else "unknown"
    log.info(
        "report: %d records, %d tokens (%s), %s drops; wrote %s in %.1f s",
        q["records"],
        q["tokens"]["total"],
        q["tokenizer"],
        drops,
        out / "quality.md",
        time.perf_counter() - start,
    )
    return 0
