"""Running an evaluation's programs in the sandbox so that nothing finished is lost.

Verdicts go to OUTPUT_DIR/progress.jsonl as they finish (one fsync per 64 or per second); its first
line records the settings, and a later run with other inputs or limits is refused by name. A program
that ran into a time limit runs once more before it counts (a busy machine can stall one run; a
sample that loops forever times out twice), and only the final verdict is logged.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from queue import Empty, SimpleQueue
from typing import Any, Callable, Sequence

from data_generation.common.io import DataError
from data_generation.common.jsonl_log import JsonlLog
from data_generation.common.sandbox.execution import Executor, Limits

log = logging.getLogger(__name__)
PROGRESS = "progress.jsonl"  # verdicts as they finish; gone once results.jsonl is written
Verdict = tuple[bool, str]  # (passed, result)


@dataclass(frozen=True)
class Job:
    program: Callable[[], str]  # built when submitted
    limits: Limits
    label: str  # the task, for logs and the retry count


@dataclass
class RunStats:
    mode: str = ""
    ran: int = 0  # programs run now (not taken from an earlier run's log)
    retried: int = 0
    passed_on_retry: int = 0
    retried_tasks: list[str] = field(default_factory=list)


def hit_time_limit(result: str) -> bool:
    """A verdict caused by a time limit: the whole program's, or one input's (EvalPlus checks)."""
    return result.startswith("timed out") or result.startswith("failed: _TimeLimit")


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
            raise DataError(progress.path, line, f"not a verdict for one of the {n} programs")
        done[row["i"]] = (bool(row["passed"]), str(row["result"]))
    if done:
        log.info("resuming: %d of %d programs already evaluated", len(done), n)
    return done


def run_resumable(
    out: Path,
    jobs: Sequence[Job],
    settings: dict[str, Any],
    *,
    n_workers: int,
    base: Limits,
    allow_weak: bool,
    retry: bool,
    desc: str,
) -> tuple[list[Verdict], RunStats]:
    """A verdict per job, each appended to PROGRESS as it ends. At most 4 programs per worker are in
    flight, so programs are built (and held) only shortly before they run."""
    from tqdm.auto import tqdm

    out.mkdir(parents=True, exist_ok=True)
    stats = RunStats()
    with Executor(n_workers, base, allow_weak=allow_weak) as executor:
        stats.mode = executor.mode
        with JsonlLog.open(out / PROGRESS, kind="evaluation progress log") as progress:
            done = _resume(progress, {**settings, "sandbox": executor.mode}, len(jobs))
            todo = [i for i in range(len(jobs)) if i not in done]
            log.info("running %d programs with %d workers", len(todo), n_workers)
            finished: SimpleQueue = SimpleQueue()  # (index, is a retry, future), in the order they end

            def submit(i: int, again: bool) -> None:
                future = executor.submit(jobs[i].program(), jobs[i].limits)
                future.add_done_callback(lambda f: finished.put((i, again, f)))

            waiting = iter(todo)
            for i in islice(waiting, 4 * n_workers):
                submit(i, False)
            pending = len(todo)
            batch: list[dict[str, Any]] = []
            flushed = time.monotonic()
            bar = tqdm(total=len(todo), desc=desc, unit="program", mininterval=1.0)
            try:
                while pending:
                    try:
                        i, again, future = finished.get(timeout=1.0)  # a timeout keeps Ctrl-C responsive
                    except Empty:
                        continue
                    result = future.result()
                    if retry and not again and hit_time_limit(result.result):
                        stats.retried += 1
                        stats.retried_tasks.append(jobs[i].label)
                        submit(i, True)
                        continue
                    pending -= 1
                    for j in islice(waiting, 1):  # one ended: the next one starts
                        submit(j, False)
                    stats.passed_on_retry += again and result.passed
                    done[i] = (result.passed, result.result)
                    batch.append({"i": i, "passed": result.passed, "result": result.result})
                    bar.update()
                    if len(batch) >= 64 or time.monotonic() - flushed > 1.0:  # one fsync per batch, not per program
                        progress.append(batch)
                        batch, flushed = [], time.monotonic()
            finally:
                bar.close()
                progress.append(batch)  # what finished before a Ctrl-C is kept
        stats.ran = len(todo)
        return [done[i] for i in range(len(jobs))], stats
