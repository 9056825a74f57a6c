"""report.md and a pass@k plot for one or more evaluation runs (folders holding metrics.json).

The table is the seeds' layout (Model | Base checkpoint | pass@1 | pass@10 | pass@100), one table per
benchmark, one row per run, in percent; a k a run cannot report (fewer than k samples per task) shows
"–". Under it, each run's details: n, prompt style, decoding, outcomes. The plot draws the unbiased
pass@k for every k from 1 to n, from the per-task counts in metrics.json.

    python -m main.report RUN_DIR [RUN_DIR ...] --output-dir DIR
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from main.passk import DEFAULT_KS, pass_at_k


def load_run(run_dir: str | os.PathLike) -> dict[str, Any]:
    path = Path(run_dir) / "metrics.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no metrics.json (run main.eval_humaneval / main.eval_mbpp first)")
    return json.loads(path.read_text(encoding="utf-8"))


def run_labels(metrics: dict[str, Any]) -> tuple[str, str]:
    """(model, base checkpoint) from the generation fingerprint; "unknown" for foreign samples."""
    fp = metrics.get("fingerprint")
    if not isinstance(fp, dict):
        return "unknown", "unknown"
    model = str(fp.get("model") or "unknown")
    if fp.get("adapter"):
        model += f" + {fp['adapter']}"
    return model, str(fp.get("base_checkpoint") or "unknown")


def curve(metrics: dict[str, Any]) -> list[tuple[int, float]]:
    """(k, mean pass@k) for k = 1..min n, from the per-task (n, c)."""
    counts = [(v["n"], v["c"]) for v in metrics["per_task"].values()]
    top = min(n for n, _ in counts)
    return [(k, sum(pass_at_k(n, c, k) for n, c in counts) / len(counts)) for k in range(1, top + 1)]


def render_markdown(runs: Sequence[tuple[str, dict[str, Any]]], ks: Sequence[int] = DEFAULT_KS,
                    plot_name: str | None = None) -> str:
    by_bench: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for name, m in runs:
        by_bench.setdefault(m.get("benchmark", "unknown"), []).append((name, m))
    out = ["# Evaluation report", ""]
    for bench, items in by_bench.items():
        out += [f"## {bench}", "", "| Model | Base checkpoint | " + " | ".join(f"pass@{k}" for k in ks) + " |",
                "|---|---|" + "---:|" * len(ks)]
        for _, m in items:
            model, base = run_labels(m)
            cells = [f"{100 * m[f'pass@{k}']:.2f}" if f"pass@{k}" in m else "–" for k in ks]
            out.append(f"| {_cell(model)} | {_cell(base)} | " + " | ".join(cells) + " |")
        out.append("")
        for name, m in items:
            out += _details(name, m)
    if plot_name:
        out += [f"![pass@k]({plot_name})", ""]
    return "\n".join(out)


def _details(name: str, m: dict[str, Any]) -> list[str]:
    fp = m.get("fingerprint") if isinstance(m.get("fingerprint"), dict) else {}
    decoding = fp.get("decoding", "unknown")
    lines = [f"- **{_cell(name)}**: {m['num_tasks']} tasks, n = {m['n']}, {m['num_samples']} samples, "
             f"{m['num_passed']} passed; prompt style `{fp.get('prompt_style', 'unknown')}`; "
             f"decoding `{json.dumps(decoding, sort_keys=True)}`",
             "  - outcomes: " + ", ".join(f"{k} {v}" for k, v in m.get("outcomes", {}).items())]
    if "harness" in m:
        h = m["harness"]
        lines.append(f"  - harness: {h['n_workers']} workers, timeout {h['limits']['timeout']} s, "
                     f"{h['samples_per_s']} samples/s")
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
        ax.plot([k for k, _ in points], [100 * v for _, v in points], marker="o" if len(points) < 12 else None,
                label=f"{m.get('benchmark', '?')}: {model} ({name})")
    ax.set_xscale("log")
    ax.set_xlabel("k")
    ax.set_ylabel("pass@k (%)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(run_dirs: Sequence[str | os.PathLike], output_dir: str | os.PathLike,
                 ks: Sequence[int] = DEFAULT_KS) -> Path:
    """Write report.md and passk.png for the runs into output_dir; returns the report's path."""
    runs = [(Path(d).name or str(d), load_run(d)) for d in run_dirs]
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    plot(runs, out / "passk.png")
    report = out / "report.md"
    report.write_text(render_markdown(runs, ks, plot_name="passk.png"), encoding="utf-8")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m main.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+", help="evaluation output folders (each with metrics.json)")
    parser.add_argument("--output-dir", required=True, help="where report.md and passk.png go")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        path = write_report(args.run_dirs, args.output_dir)
    except (FileNotFoundError, KeyError, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
