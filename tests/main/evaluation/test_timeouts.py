"""Per-task time limits from the reference solutions, cached per machine; timed-out samples run twice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data_generation.common.benchmarks import get_benchmark
from data_generation.common.benchmarks.base import DataChoice
from main.evaluation import oracle
from main.evaluation.harness import EvalConfig, evaluate
from main.evaluation.progress import hit_time_limit

LOOP = "    while True:\n        pass\n"


def _samples(path: Path, problems) -> Path:
    rows = []
    for p in problems:
        rows.append({"task_id": p.task_id, "sample": 0, "completion": p.reference})
        rows.append({"task_id": p.task_id, "sample": 1, "completion": LOOP})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_limits_follow_the_references_and_loops_run_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(oracle.CACHE_ENV, str(tmp_path / "cache"))
    bench = get_benchmark("humaneval")
    problems = bench.load(DataChoice())[:2]
    samples = _samples(tmp_path / "s.jsonl", problems)
    config = EvalConfig(n_workers=2, ks=(1,))
    metrics = evaluate(samples, problems, tmp_path / "a", config, benchmark="humaneval", dataset={"name": "humaneval"})
    t = metrics["harness"]["timeouts"]
    assert t["policy"].startswith("per task: max(3 s, 4 x") and t["calibrated"] and t["factor"] == 4.0
    assert t["retried"] == 2 and t["passed_on_retry"] == 0 and t["retried_tasks"] == ["HumanEval/0", "HumanEval/1"]
    assert metrics["num_passed"] == 2 and metrics["outcomes"]["timed out"] == 2
    cache = json.loads(Path(t["cache"]).read_text())
    assert len(cache) == 2 and all(0 < v < 1 for v in cache.values())  # keyed by the program that ran
    # The same machine reuses its measurements: a planted value decides the limit next time.
    Path(t["cache"]).write_text(json.dumps(dict.fromkeys(cache, 1.0)))
    limits, _ = oracle.calibrate(bench, problems, config.limits, config.timeouts, n_workers=1, allow_weak=False)
    assert {lim.timeout for lim in limits.values()} == {4.0}


def test_a_fixed_limit_and_no_retry_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(oracle.CACHE_ENV, str(tmp_path / "cache"))
    problems = get_benchmark("humaneval").load(DataChoice())[:1]
    samples = _samples(tmp_path / "s.jsonl", problems)
    policy = oracle.TimeoutPolicy(calibrated=False, retry_timeouts=False)
    config = EvalConfig(n_workers=2, ks=(1,), timeouts=policy)
    metrics = evaluate(samples, problems, tmp_path / "a", config, benchmark="humaneval", dataset={"name": "humaneval"})
    t = metrics["harness"]["timeouts"]
    assert t["policy"] == "fixed" and t["retried"] == 0 and not (tmp_path / "cache").exists()


def test_what_counts_as_a_time_limit() -> None:
    assert hit_time_limit("timed out") and hit_time_limit("timed out (CPU time limit)")
    assert hit_time_limit("failed: _TimeLimit: time limit of one input")
    assert not hit_time_limit("failed: AssertionError") and not hit_time_limit("passed")
