"""report.md and a pass@k plot for one or more evaluation runs (folders holding metrics.json).

The table is the seeds' layout (Model | Base checkpoint | pass@1 | pass@10 | pass@100), one table per
benchmark and task set, one row per run, in percent; a k a run cannot report (fewer than k samples per
task) shows "–". After the seeds' columns each row names its prompt style, task count, n and how many
samples had nothing to run (empty completions: a score decided by the stop rule shows here). The
heading names the task set, so a subset is never mistaken for a full-benchmark number. Rows are named
by the run (`--run-name`, else the training run's name, else the model) and the base checkpoint by its
one label. Under the table, each run's details: decoding, outcomes, empty completions by cause, the
training lineage. The plot draws the unbiased pass@k for every k from 1 to n, from the per-task counts.

The command is `python -m main.report` (main/report.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

from main.evaluation.passk import DEFAULT_KS, pass_at_k


def load_run(run_dir: str | os.PathLike) -> dict[str, Any]:
    path = Path(run_dir) / "metrics.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no metrics.json (run main.evaluate first)")
    return json.loads(path.read_text(encoding="utf-8"))


def run_labels(metrics: dict[str, Any]) -> tuple[str, str]:
    """(model, base checkpoint) from the generation fingerprint; "unknown" for foreign samples."""
    fp = metrics.get("fingerprint")
    if not isinstance(fp, dict):
        return "unknown", "unknown"
    model = fp.get("run_name")
    if not model:
        model = str(fp.get("model") or "unknown") + (f" + {fp['adapter']}" if fp.get("adapter") else "")
    return str(model), str(fp.get("base_checkpoint") or "unknown")


def task_set(metrics: dict[str, Any]) -> str:
    """Which tasks a run covers, as generation recorded it ("first 20 of 164 tasks"), else the count."""
    fp = metrics.get("fingerprint")
    dataset = fp.get("dataset") if isinstance(fp, dict) and isinstance(fp.get("dataset"), dict) else {}
    return str(dataset.get("subset") or f"{metrics['num_tasks']} tasks")


def curve(metrics: dict[str, Any]) -> list[tuple[int, float]]:
    """(k, mean pass@k) for k = 1..min n, from the per-task (n, c)."""
    counts = [(v["n"], v["c"]) for v in metrics["per_task"].values()]
    top = min(n for n, _ in counts)
    return [(k, sum(pass_at_k(n, c, k) for n, c in counts) / len(counts)) for k in range(1, top + 1)]


def render_markdown(
    runs: Sequence[tuple[str, dict[str, Any]]], ks: Sequence[int] = DEFAULT_KS, plot_name: str | None = None
) -> str:
    out = ["# Evaluation report", "", *benchmark_tables(runs, ks, heading="##")]
    if plot_name:
        out += [f"![pass@k]({plot_name})", ""]
    return "\n".join(out)


def benchmark_tables(
    runs: Sequence[tuple[str, dict[str, Any]]],
    ks: Sequence[int] = DEFAULT_KS,
    *,
    heading: str = "##",
    with_details: bool = True,
) -> list[str]:
    """One seeds'-layout table per (benchmark, task set), runs side by side, then each run's details."""
    groups: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = {}
    for name, m in runs:
        groups.setdefault((m.get("benchmark", "unknown"), task_set(m)), []).append((name, m))
    out = []
    for (bench, tasks), items in groups.items():
        full = tasks.startswith("all ")
        out += [
            f"{heading} {bench}: {tasks}" + ("" if full else " (a subset: not comparable with full-benchmark numbers)"),
            "",
            "| Model | Base checkpoint | "
            + " | ".join(f"pass@{k}" for k in ks)
            + " | Prompt style | Tasks | n | Empty |",
            "|---|---|" + "---:|" * len(ks) + "---|---:|---:|---:|",
        ]
        out += [table_row(m, ks) for _, m in items] + [""]
        if with_details:
            for name, m in items:
                out += details(name, m)
    return out


def table_row(m: dict[str, Any], ks: Sequence[int] = DEFAULT_KS) -> str:
    """One run in the seeds' columns, then its prompt style, task count, n and empty completions."""
    model, base = run_labels(m)
    fp = m.get("fingerprint") if isinstance(m.get("fingerprint"), dict) else {}
    cells = [f"{100 * m[f'pass@{k}']:.2f}" if f"pass@{k}" in m else "–" for k in ks]
    empty = m.get("empty") or {}
    extra = [
        f"`{fp.get('prompt_style', 'unknown')}`",
        str(m["num_tasks"]),
        str(m["n"]),
        f"{empty.get('count', '?')} of {m['num_samples']}",
    ]
    return f"| {_cell(model)} | {_cell(base)} | " + " | ".join(cells + extra) + " |"


def details(name: str, m: dict[str, Any]) -> list[str]:
    fp = m.get("fingerprint") if isinstance(m.get("fingerprint"), dict) else {}
    decoding = fp.get("decoding", "unknown")
    empty = m.get("empty") or {}
    lines = [
        f"- **{_cell(run_labels(m)[0])}** (`{_cell(name)}`): {m['num_tasks']} tasks, n = {m['n']}, "
        f"{m['num_samples']} samples, {m['num_passed']} passed; prompt style `{fp.get('prompt_style', 'unknown')}`"
        f" ({fp.get('prompt_style_chosen_by', 'as recorded')}); decoding `{json.dumps(decoding, sort_keys=True)}`",
        "  - outcomes: " + ", ".join(f"{k} {v}" for k, v in m.get("outcomes", {}).items()),
    ]
    if empty.get("count"):
        lines.append("  - empty completions: " + ", ".join(f"{k} {v}" for k, v in empty["by_cause"].items()))
    training = fp.get("training")
    if isinstance(training, dict):
        data = training.get("train_data") or {}
        lines.append(
            f"  - trained: {training.get('mode')} on `{data.get('path')}` (sha256 "
            f"{str(data.get('sha256'))[:12]}), format {training.get('prompt_format')}, val loss "
            f"{training.get('val_loss')}, weights sha256 {str(training.get('weights_sha256'))[:12]}"
            + (" (verified)" if training.get("weights_verified") else "")
        )
    if "harness" in m:
        h = m["harness"]
        iso = h.get("isolation") or {}
        sandbox = f"sandbox {iso.get('mode', 'unknown')}" + ("" if iso.get("strong", True) else " (WEAK isolation)")
        lines.append(
            f"  - harness: {h['n_workers']} workers, timeout {h['limits']['timeout']} s, {h['samples_per_s']} "
            f"samples/s, {sandbox}"
        )
    return lines + [""]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def plot(runs: Sequence[tuple[str, dict[str, Any]]], path: str | os.PathLike) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only; no display here or in CI
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, m in runs:
        points = curve(m)
        model, _ = run_labels(m)
        ax.plot(
            [k for k, _ in points],
            [100 * v for _, v in points],
            marker="o" if len(points) < 12 else None,
            label=f"{m.get('benchmark', '?')}: {model} ({name})",
        )
    ax.set_xscale("log")
    ax.set_xlabel("k")
    ax.set_ylabel("pass@k (%)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(
    run_dirs: Sequence[str | os.PathLike], output_dir: str | os.PathLike, ks: Sequence[int] = DEFAULT_KS
) -> Path:
    """Write report.md and passk.png for the runs into output_dir; returns the report's path."""
    runs = [(Path(d).name or str(d), load_run(d)) for d in run_dirs]
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    plot(runs, out / "passk.png")
    report = out / "report.md"
    report.write_text(render_markdown(runs, ks, plot_name="passk.png"), encoding="utf-8")
    return report
