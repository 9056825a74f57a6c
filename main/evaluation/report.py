"""report.md and a pass@k plot for one or more evaluation runs (folders holding metrics.json).

The table is the seeds' layout (Model | Base checkpoint | pass@1 | pass@10 | pass@100), one table per
benchmark and task set, one row per run, in percent; a k a run cannot report (fewer than k samples per
task) shows "–". After the seeds' columns each row names its prompt style, task count, n and how many
samples had nothing to run (empty completions: a score decided by the stop rule shows here). The
heading names the task set, so a subset is never mistaken for a full-benchmark number. Rows are named
by the run (`--run-name`, else the training run's name, else the model) and the base checkpoint by its
one label. Runs that carry `base_tests` (EvalPlus: humaneval_plus, mbpp_plus) get the EvalPlus
leaderboard's columns instead, the score on the original tests then on the extended ones for each k
(HumanEval pass@1 | HumanEval+ pass@1 | ...).

Under each table: each run's interval for every reportable pass@k (main.evaluation.passk: percentile
bootstrap over tasks, the ones metrics.json holds, else computed from its per-task counts), and each later
run's difference from the first run (the base model, in the pipeline's report) with its paired bootstrap
interval over the tasks both ran and whether that interval excludes 0. Then each run's details: decoding,
outcomes, empty completions by cause, the training lineage. The plot draws the unbiased pass@k for every k
from 1 to n, from the per-task counts, with the intervals as error bars at the reported ks.

The command is `python -m main.report` (main/report.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

from main.evaluation.passk import (
    DEFAULT_KS,
    LEVEL,
    MIN_PAIRED_TASKS,
    paired_difference,
    pass_at_k,
    pass_at_k_intervals,
    reportable_ks,
)

# A table's score columns: (title, which scores). "all" is metrics.json's top level (every test the
# benchmark has: the plus tests for EvalPlus), "base" its `base_tests` (EvalPlus: the original tests only).
Part = tuple[str, str]
PLAIN: tuple[Part, ...] = (("", "all"),)
BENCHMARK_TITLES = {"humaneval": "HumanEval", "mbpp": "MBPP"}


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
    with_intervals: bool = True,
) -> list[str]:
    """One seeds'-layout table per (benchmark, task set), runs side by side, then the runs' intervals and
    differences from the first run, then each run's details."""
    groups: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = {}
    for name, m in runs:
        groups.setdefault((m.get("benchmark", "unknown"), task_set(m)), []).append((name, m))
    out = []
    for (bench, tasks), items in groups.items():
        parts = score_parts(bench, [m for _, m in items])
        # The seeds' layout keeps all its columns; EvalPlus's doubled columns only the ks some run reports.
        columns = ks if parts == PLAIN else shown_ks([m for _, m in items], ks, parts)
        full = tasks.startswith("all ")
        out += [
            f"{heading} {bench}: {tasks}" + ("" if full else " (a subset: not comparable with full-benchmark numbers)"),
            "",
            "| Model | Base checkpoint | "
            + " | ".join(column(title, k) for k in columns for title, _ in parts)
            + " | Prompt style | Tasks | n | Empty |",
            "|---|---|" + "---:|" * (len(columns) * len(parts)) + "---|---:|---:|---:|",
        ]
        out += [table_row(m, columns, parts) for _, m in items] + [""]
        if with_intervals:
            out += intervals_table(items, ks, parts) + differences(items, ks, parts)
        if with_details:
            for name, m in items:
                out += details(name, m)
    return out


def score_parts(benchmark: str, metrics: Sequence[dict[str, Any]]) -> tuple[Part, ...]:
    """PLAIN, or for runs with `base_tests` (EvalPlus) the base then the plus scores, titled after the
    benchmark: humaneval_plus -> HumanEval, HumanEval+."""
    if not any(isinstance(m.get("base_tests"), dict) for m in metrics):
        return PLAIN
    root = benchmark.removesuffix("_plus")
    title = BENCHMARK_TITLES.get(root, root)
    return ((title, "base"), (f"{title}+", "all"))


def scores(m: dict[str, Any], part: str) -> dict[str, Any]:
    """The part of a run's metrics that holds pass@k, per_task and intervals ({} when the run lacks it)."""
    if part == "all":
        return m
    base = m.get("base_tests")
    return base if isinstance(base, dict) else {}


def column(title: str, k: int) -> str:
    return f"{title} pass@{k}".strip()


def shown_ks(metrics: Sequence[dict[str, Any]], ks: Sequence[int], parts: Sequence[Part]) -> list[int]:
    """The ks some run reports in some part (all of ks when none does, so a table is never empty)."""
    shown = [k for k in ks if any(f"pass@{k}" in scores(m, part) for m in metrics for _, part in parts)]
    return shown or list(ks)


def table_row(m: dict[str, Any], ks: Sequence[int] = DEFAULT_KS, parts: Sequence[Part] = PLAIN) -> str:
    """One run in the seeds' columns, then its prompt style, task count, n and empty completions."""
    model, base = run_labels(m)
    fp = m.get("fingerprint") if isinstance(m.get("fingerprint"), dict) else {}
    cells = []
    for k in ks:
        for _, part in parts:
            value = scores(m, part).get(f"pass@{k}")
            cells.append("–" if value is None else f"{100 * value:.2f}")
    empty = m.get("empty") or {}
    extra = [
        f"`{fp.get('prompt_style', 'unknown')}`",
        str(m["num_tasks"]),
        str(m["n"]),
        f"{empty.get('count', '?')} of {m['num_samples']}",
    ]
    return f"| {_cell(model)} | {_cell(base)} | " + " | ".join(cells + extra) + " |"


def per_task_counts(s: dict[str, Any]) -> dict[str, tuple[int, int]]:
    return {task: (v["n"], v["c"]) for task, v in (s.get("per_task") or {}).items()}


def intervals_of(s: dict[str, Any], ks: Sequence[int]) -> dict[str, dict[str, Any]]:
    """The intervals metrics.json holds, and for a reported k it lacks (older files hold none) the same
    interval computed here from the per-task counts: with the defaults, so it is the one the harness writes."""
    found = dict(s.get("intervals") or {})
    missing = [k for k in ks if f"pass@{k}" in s and f"pass@{k}" not in found]
    counts = per_task_counts(s)
    if missing and counts:
        found.update(pass_at_k_intervals(counts, missing))
    return found


def intervals_table(
    items: Sequence[tuple[str, dict[str, Any]]], ks: Sequence[int], parts: Sequence[Part] = PLAIN
) -> list[str]:
    """One row per run: each reported pass@k's interval as "low–high" in percent; [] when no run has one."""
    columns = shown_ks([m for _, m in items], ks, parts)
    rows, settings = [], set()
    for name, m in items:
        found = {part: intervals_of(scores(m, part), columns) for _, part in parts}
        cells = []
        for k in columns:
            for _, part in parts:
                iv = found[part].get(f"pass@{k}")
                cells.append("–" if iv is None else f"{100 * iv['low']:.2f}–{100 * iv['high']:.2f}")
                if iv is not None:
                    settings.add((iv.get("level"), iv.get("method"), iv.get("resamples"), iv.get("seed")))
        rows.append(f"| {run_label(name, m)} | " + " | ".join(cells) + " |")
    if not settings:
        return []
    levels = " / ".join(sorted({_percent(level) for level, *_ in settings}))
    how = "; ".join(sorted(f"{method}, {resamples} resamples, seed {seed}" for _, method, resamples, seed in settings))
    return [
        f"**{levels} intervals** of pass@k, in percent ({how})",
        "",
        "| Run | " + " | ".join(column(title, k) for k in columns for title, _ in parts) + " |",
        "|---|" + "---:|" * (len(columns) * len(parts)),
        *rows,
        "",
    ]


def differences(
    items: Sequence[tuple[str, dict[str, Any]]], ks: Sequence[int], parts: Sequence[Part] = PLAIN
) -> list[str]:
    """Each later run minus the first, per reportable k, with the paired bootstrap verdict; [] for one run."""
    if len(items) < 2:
        return []
    first_name, first = items[0]
    lines = []
    for name, m in items[1:]:
        compared = [line for title, part in parts for line in compare(scores(first, part), scores(m, part), ks, title)]
        if compared:
            lines += [f"- {run_label(name, m)} minus {run_label(first_name, first)}:", *compared]
    if not lines:
        return []
    intro = (
        f"**Differences** from the first run (pass@k points, with the {_percent(LEVEL)} paired bootstrap "
        "interval over the tasks both ran; larger than the noise when that interval excludes 0)"
    )
    return [intro, "", *lines, ""]


def compare(a: dict[str, Any], b: dict[str, Any], ks: Sequence[int], title: str = "") -> list[str]:
    """One line per k both runs can report on their shared tasks; [] when they share none."""
    counts_a, counts_b = per_task_counts(a), per_task_counts(b)
    shared = [task for task in counts_a if task in counts_b]
    if not shared:
        return []
    usable = reportable_ks([counts_a[t][0] for t in shared] + [counts_b[t][0] for t in shared], ks)
    lines = []
    for k in usable:
        d = paired_difference(counts_a, counts_b, k)
        verdict = "larger than the noise" if d["significant"] else "within the noise"
        if d["tasks"] < MIN_PAIRED_TASKS:
            verdict = f"too few shared tasks to tell (fewer than {MIN_PAIRED_TASKS})"
        tasks = f"{d['tasks']} task" + ("" if d["tasks"] == 1 else "s")
        lines.append(
            f"  - {column(title, k)}: {100 * d['difference']:+.2f} points ({_percent(d['level'])} interval "
            f"{100 * d['low']:+.2f} to {100 * d['high']:+.2f}), {verdict} (paired bootstrap over {tasks})"
        )
    return lines


def run_label(name: str, m: dict[str, Any]) -> str:
    """The model and the run's folder: two runs of one model stay apart, and no row reads like a seeds' row."""
    return f"{_cell(run_labels(m)[0])} (`{_cell(name)}`)"


def _percent(level: Any) -> str:
    return f"{100 * level:g} %" if isinstance(level, (int, float)) else f"{level} level"


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


def plot(runs: Sequence[tuple[str, dict[str, Any]]], path: str | os.PathLike, ks: Sequence[int] = DEFAULT_KS) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only; no display here or in CI
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, m in runs:
        model, _ = run_labels(m)
        bench = m.get("benchmark", "?")
        for title, part in score_parts(bench, [m]):
            s = scores(m, part)
            if s.get("per_task"):  # a run without base_tests has no base curve
                draw_run(ax, s, ks, f"{title or bench}: {model} ({name})", "--" if part == "base" else "-")
    ax.set_xscale("log")
    ax.set_xlabel("k")
    ax.set_ylabel("pass@k (%)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def draw_run(ax: Any, s: dict[str, Any], ks: Sequence[int], label: str, linestyle: str) -> None:
    """The pass@k curve, and each reported k's interval as an error bar in the curve's colour."""
    points = curve(s)
    (line,) = ax.plot(
        [k for k, _ in points],
        [100 * v for _, v in points],
        marker="o" if len(points) < 12 else None,
        linestyle=linestyle,
        label=label,
    )
    found = intervals_of(s, ks)
    reported = [k for k in ks if f"pass@{k}" in s and f"pass@{k}" in found]
    if not reported:
        return
    ys = [100 * s[f"pass@{k}"] for k in reported]
    # max(0, ...): an interval stored by another method may not contain the point; matplotlib rejects negatives
    below = [max(0.0, y - 100 * found[f"pass@{k}"]["low"]) for y, k in zip(ys, reported)]
    above = [max(0.0, 100 * found[f"pass@{k}"]["high"] - y) for y, k in zip(ys, reported)]
    ax.errorbar(reported, ys, yerr=[below, above], fmt="none", ecolor=line.get_color(), capsize=3)


def write_report(
    run_dirs: Sequence[str | os.PathLike], output_dir: str | os.PathLike, ks: Sequence[int] = DEFAULT_KS
) -> Path:
    """Write report.md and passk.png for the runs into output_dir; returns the report's path."""
    runs = [(Path(d).name or str(d), load_run(d)) for d in run_dirs]
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    plot(runs, out / "passk.png", ks)
    report = out / "report.md"
    report.write_text(render_markdown(runs, ks, plot_name="passk.png"), encoding="utf-8")
    return report
