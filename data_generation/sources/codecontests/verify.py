"""Verifying chosen CodeContests solutions on their problem's tests, in parallel and resumably.

`Verifier` runs `judge.judge` on worker threads (the work happens in the jailed processes). Each
finished verdict is appended to the verdict cache, a JSONL log (`common/jsonl_log.py`) beside the
output keyed by a sha256 of everything that decides it (`judge.Job`: code, language, tests, limits,
plus the tool and its version), so an interrupted run resumes without re-running what it verified.
The cache is locked (`common.output_lock`) for the run: a second run on the same output stops at once.
Verdicts `unverified` (no toolchain, no tests, no jail) are not cached: a later run on a machine
that has what was missing verifies them.

Limits per test, from the problem: the time limit (DEFAULT_TIME_LIMIT_S when the data has none)
times `time_scale` times the language's slowdown, at most `time_cap_s`, plus start-up time (the
language's and the jail's); the memory limit (DEFAULT_MEMORY_BYTES when none, clamped to
MIN/MAX_MEMORY_BYTES) is the data segment and stack (plus the interpreter's or JVM's overhead) and
the JVM's heap.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import threading
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from data_generation.common.jsonl_log import JsonlLog
from data_generation.common.output_lock import output_lock
from data_generation.sources.codecontests.judge import FAIL_KINDS, Job, Verdict, judge
from data_generation.sources.codecontests.problems import Problem
from data_generation.sources.codecontests.toolchains import SLOWDOWN, STARTUP_S, find_toolchain

log = logging.getLogger(__name__)

TEST_SETS = ("public", "all")
DEFAULT_TIME_LIMIT_S = 2.0
DEFAULT_MEMORY_BYTES = 256 << 20
MIN_MEMORY_BYTES, MAX_MEMORY_BYTES = 64 << 20, 1 << 30
JAIL_STARTUP_S = 0.5  # a Python interpreter for the jail, namespaces and read-only mounts
CACHE_VERSION = 1  # bump when judging changes in a way that could change a verdict


@dataclass(frozen=True)
class VerifySettings:
    tests: str = "public"  # public, or all: public + private + generated
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    time_scale: float = 2.0
    time_cap_s: float = 10.0
    compile_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if self.tests not in TEST_SETS:
            raise ValueError(f"tests must be one of {TEST_SETS}, not {self.tests!r}")
        if self.workers < 1 or min(self.time_scale, self.time_cap_s, self.compile_timeout_s) <= 0:
            raise ValueError("workers must be at least 1 and the time settings positive")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_VERIFY = VerifySettings()


def add_verify_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("verification (each chosen solution runs on its tests, isolated)")
    group.add_argument(
        "--verify-tests",
        choices=TEST_SETS,
        default="public",
        help="public tests, or all: public + private + generated (default public)",
    )
    group.add_argument("--no-verify", action="store_true", help="run nothing: every record is marked unverified")
    group.add_argument(
        "--verify-workers",
        type=_positive(int),
        default=DEFAULT_VERIFY.workers,
        metavar="N",
        help=f"solutions judged at once (default: the CPU count, {DEFAULT_VERIFY.workers})",
    )
    group.add_argument(
        "--verify-time-scale",
        type=_positive(float),
        default=DEFAULT_VERIFY.time_scale,
        metavar="X",
        help=f"per-test timeout: the problem's time limit (else {DEFAULT_TIME_LIMIT_S:g} s) times X times the "
        f"language's slowdown, at most --verify-time-cap, plus start-up (default {DEFAULT_VERIFY.time_scale:g})",
    )
    group.add_argument(
        "--verify-time-cap",
        type=_positive(float),
        default=DEFAULT_VERIFY.time_cap_s,
        metavar="S",
        help=f"at most S seconds per test before start-up time (default {DEFAULT_VERIFY.time_cap_s:g})",
    )
    group.add_argument(
        "--verify-compile-timeout",
        type=_positive(float),
        default=DEFAULT_VERIFY.compile_timeout_s,
        metavar="S",
        help=f"seconds for one compilation (default {DEFAULT_VERIFY.compile_timeout_s:g})",
    )


def verify_settings(args: argparse.Namespace) -> VerifySettings | None:
    """The settings the options ask for; None with --no-verify."""
    if args.no_verify:
        return None
    return VerifySettings(
        tests=args.verify_tests,
        workers=args.verify_workers,
        time_scale=args.verify_time_scale,
        time_cap_s=args.verify_time_cap,
        compile_timeout_s=args.verify_compile_timeout,
    )


def _positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    def parse(value: str) -> float:
        number = kind(value)
        if not number > 0:
            raise argparse.ArgumentTypeError(f"must be positive, not {value}")
        return number

    return parse


def tests_digest(tests: Sequence[tuple[str, str]]) -> str:
    return hashlib.sha256(json.dumps(list(tests), ensure_ascii=False).encode("utf-8")).hexdigest()


def make_job(problem: Problem, language: str, code: str, settings: VerifySettings, digest: str) -> Job:
    """The job for one solution; `digest` is `tests_digest` of `problem_tests(problem, settings)`."""
    limit = problem.meta.get("time_limit_s") or DEFAULT_TIME_LIMIT_S
    timeout = min(settings.time_cap_s, limit * settings.time_scale * SLOWDOWN[language])
    memory = problem.meta.get("memory_limit_bytes") or DEFAULT_MEMORY_BYTES
    return Job(
        language=language,
        code=code,
        tests=problem_tests(problem, settings),
        tests_digest=digest,
        timeout_s=round(timeout + STARTUP_S[language] + JAIL_STARTUP_S, 3),
        memory_bytes=min(MAX_MEMORY_BYTES, max(MIN_MEMORY_BYTES, memory)),
        compile_timeout_s=settings.compile_timeout_s,
        input_file=problem.input_file,
        output_file=problem.output_file,
    )


def problem_tests(problem: Problem, settings: VerifySettings) -> tuple[tuple[str, str], ...]:
    """The tests to run: public ones, or all (exact repeats once)."""
    tests = problem.tests if settings.tests == "public" else problem.tests + problem.hidden_tests
    return tuple(dict.fromkeys(tests))


def cache_key(job: Job, tool: str) -> str:
    parts = [CACHE_VERSION, job.language, tool, job.code, job.tests_digest, job.timeout_s, job.memory_bytes]
    parts += [job.compile_timeout_s, job.input_file, job.output_file]
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode("utf-8")).hexdigest()


def _cache_row(row: Any) -> tuple[str, Verdict]:
    if not isinstance(row, dict) or not isinstance(row.get("key"), str):
        raise ValueError("not a verdict cache row")
    return row["key"], Verdict.from_dict(row.get("verdict"))


class Tally:
    """Per language: passed, failed by kind, unverified (by reason), and how many came from the cache."""

    def __init__(self, languages: Sequence[str]) -> None:
        self._lock = threading.Lock()
        self._counts = {
            lang: {"passed": 0, "failed": Counter(), "unverified": Counter(), "cached": 0} for lang in languages
        }

    def add(self, language: str, verdict: Verdict, cached: bool) -> None:
        with self._lock:
            counts = self._counts[language]
            if verdict.status == "passed":
                counts["passed"] += 1
            else:
                counts[verdict.status][verdict.kind if verdict.status == "failed" else verdict.reason] += 1
            counts["cached"] += cached

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                lang: {
                    "passed": c["passed"],
                    "failed": {kind: c["failed"][kind] for kind in FAIL_KINDS},
                    "unverified": sum(c["unverified"].values()),
                    "unverified_reasons": dict(sorted(c["unverified"].items())),
                    "from_cache": c["cached"],
                }
                for lang, c in self._counts.items()
            }


def summary(counts: dict[str, Any]) -> str:
    """`Tally.to_dict()` in one line, for the log."""
    parts = []
    for lang, c in counts.items():
        failed = ", ".join(f"{kind} {n}" for kind, n in c["failed"].items() if n)
        parts.append(
            f"{lang} passed {c['passed']}, failed {sum(c['failed'].values())}"
            + (f" ({failed})" if failed else "")
            + f", unverified {c['unverified']}, from cache {c['from_cache']}"
        )
    return "; ".join(parts)


class Verifier:
    """`with Verifier(settings, cache, languages) as v:` then `v.submit(job)` -> Future[Verdict]."""

    def __init__(self, settings: VerifySettings, cache: Path | None, languages: Sequence[str]) -> None:
        self.settings, self.cache = settings, cache
        self.tally = Tally(languages)
        self.judged = 0  # solutions actually run in this process (not from the cache)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._done: dict[str, Verdict] = {}
        self._log: JsonlLog | None = None
        self._stack = contextlib.ExitStack()
        self._pool: ThreadPoolExecutor | None = None

    def __enter__(self) -> "Verifier":
        with contextlib.ExitStack() as stack:
            if self.cache is not None:
                stack.enter_context(output_lock(self.cache))  # first: nothing is read before the lock
                self._log = stack.enter_context(JsonlLog.open(self.cache, _cache_row, kind="verdict cache"))
                self._done = dict(self._log.rows)
                log.info("verdict cache %s: %d verdicts from earlier runs", self.cache, len(self._done))
            self._pool = ThreadPoolExecutor(self.settings.workers, thread_name_prefix="codecontests-verify")
            stack.callback(self._pool.shutdown, wait=True, cancel_futures=True)  # Ctrl-C: no queued work,
            stack.callback(self._stop.set)  # and no further test of a running one (callbacks run last first)
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def submit(self, job: Job, label: dict[str, Any]) -> "Future[Verdict]":
        """Verify `job` on a worker; `label` (where the solution came from) goes into its cache row."""
        if self._pool is None:
            raise RuntimeError("use Verifier in a with block")
        return self._pool.submit(self._verify, job, label)

    def _verify(self, job: Job, label: dict[str, Any]) -> Verdict:
        toolchain = find_toolchain(job.language)
        if toolchain.missing or toolchain.tool is None:
            verdict = Verdict("unverified", 0, None, reason=toolchain.missing)
        elif not job.tests:
            verdict = Verdict("unverified", 0, toolchain.tool, reason=f"no {self.settings.tests} tests")
        else:
            key = cache_key(job, toolchain.tool)
            with self._lock:
                cached = self._done.get(key)
            if cached is not None:
                self.tally.add(job.language, cached, cached=True)
                return cached
            verdict = judge(job, toolchain, self._stop)
            with self._lock:
                self.judged += 1
                if verdict.status != "unverified":
                    self._done[key] = verdict
                    if self._log is not None:
                        self._log.append(
                            [{"key": key, **label, "language": job.language, "verdict": verdict.to_dict()}]
                        )
        self.tally.add(job.language, verdict, cached=False)
        return verdict
