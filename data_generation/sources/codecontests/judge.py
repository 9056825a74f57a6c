"""Judging one CodeContests solution: build it, run it on each test inside the tool jail, compare.

A solution passes when every test's output matches; it fails at the first test that does not, with
one kind: `compile_error`, `time_limit` (past the wall-clock timeout or its CPU limit),
`runtime_error` (a non-zero exit or a signal, the memory limits included) or `wrong_answer` (the
output differs, or exceeds OUTPUT_BYTES). Outputs are compared token by token (any whitespace
between tokens, none at the ends, matters); an expected token that is a decimal with a point or an
exponent (not an integer: big integers must match exactly) matches a number within TOLERANCE,
absolute below 1 and relative above. Problems that name an input file get it written into the run
folder as well as on stdin; an output file, when the solution wrote one, is judged instead of stdout.

Each solution gets a temporary folder: `build/` (sources, compiled program; read-only while tests
run), `home/` (the compiler's HOME and TMPDIR) and one fresh `run/` folder per test, its working
directory, HOME and TMPDIR, and the only place it may write. A solution is never run outside the
jail: where the kernel refuses it, the verdict is `unverified`.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import re
import shutil
import signal
import stat
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data_generation.common.sandbox.tools import JailRefused, Limits, ToolRun, base_env, run_isolated
from data_generation.sources.codecontests.toolchains import OVERHEAD_BYTES, Build, Toolchain, build

FAIL_KINDS = ("wrong_answer", "time_limit", "runtime_error", "compile_error")
STATUSES = ("passed", "failed", "unverified")
TOLERANCE = 1e-6
OUTPUT_BYTES = 16 << 20  # more output than this is a wrong answer
DETAIL_CHARS = 300
_COMPILE_DATA_BYTES = 2 << 30
_STACK_FRAME = re.compile(r"\s+at |\s*\.\.\. \d+ more")  # a Java stack trace's lines below the exception
_DECIMAL = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+|\d+(?=[eE]))(?:[eE][+-]?\d+)?")


@dataclass(frozen=True)
class Job:
    """Everything that decides a verdict: the verdict cache's key is made from all of it."""

    language: str
    code: str
    tests: tuple[tuple[str, str], ...]
    tests_digest: str  # sha256 of `tests`, computed once per problem
    timeout_s: float
    memory_bytes: int
    compile_timeout_s: float
    input_file: str = ""
    output_file: str = ""


@dataclass(frozen=True)
class Verdict:
    status: str  # passed | failed | unverified
    tests_run: int
    tool: str | None
    kind: str | None = None  # failed: one of FAIL_KINDS
    reason: str | None = None  # failed: where and what; unverified: why

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "tests_run": self.tests_run,
            "tool": self.tool,
            "kind": self.kind,
            "reason": self.reason,
        }

    def meta(self, tests: str) -> dict[str, Any]:
        """A kept record's meta["verification"]; `tests`: which set (public or all)."""
        return {
            "status": self.status,
            "tests": tests,
            "tests_run": self.tests_run,
            "tool": self.tool,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, row: Any) -> "Verdict":
        if not isinstance(row, dict) or row.get("status") not in STATUSES or not isinstance(row.get("tests_run"), int):
            raise ValueError(f"not a verdict: {str(row)[:80]}")
        if row["status"] == "failed" and row.get("kind") not in FAIL_KINDS:
            raise ValueError(f"failed verdict with kind {row.get('kind')!r}")
        return cls(row["status"], row["tests_run"], row.get("tool"), row.get("kind"), row.get("reason"))


def outputs_match(actual: str, expected: str, tolerance: float = TOLERANCE) -> tuple[bool, str]:
    """(match, what differs first): tokens equal, or numerically close where `expected` is a decimal."""
    got, want = actual.split(), expected.split()
    for index, (g, w) in enumerate(zip(got, want), start=1):
        if g != w and not _close(g, w, tolerance):
            return False, f"token {index}: expected {w[:40]!r}, got {g[:40]!r}"
    if len(got) != len(want):
        return False, f"expected {len(want)} tokens, got {len(got)}"
    return True, ""


def _close(got: str, want: str, tolerance: float) -> bool:
    if not _DECIMAL.fullmatch(want):
        return False
    try:
        value = float(got)
    except ValueError:
        return False
    expected = float(want)
    return math.isfinite(value) and abs(value - expected) <= tolerance * max(1.0, abs(expected))


def judge(job: Job, toolchain: Toolchain, stop: threading.Event | None = None) -> Verdict:
    """Build and run one solution on its tests; `toolchain` must have been found (no `missing`).
    `stop` set (the run is ending): no further test starts, and the verdict is `unverified`."""
    with tempfile.TemporaryDirectory(prefix="codecapy-judge-", ignore_cleanup_errors=True) as tmp:
        root = Path(tmp)
        build_dir, home = root / "build", root / "home"
        build_dir.mkdir()
        home.mkdir()
        try:
            commands = build(toolchain, job.code, build_dir, job.memory_bytes)
            (build_dir / commands.source).write_text(job.code, encoding="utf-8", errors="replace")
            failure = _compile(commands, job, build_dir, home)
            if failure:
                return Verdict("failed", 0, toolchain.tool, "compile_error", _clean(failure, root))
            for index, (test_in, expected) in enumerate(job.tests, start=1):
                if stop is not None and stop.is_set():
                    return Verdict("unverified", index - 1, toolchain.tool, reason="interrupted")
                failure_kind, detail = _run_test(commands, job, root / f"run{index}", test_in, expected)
                if failure_kind:
                    return Verdict(
                        "failed", index, toolchain.tool, failure_kind, f"test {index}: {_clean(detail, root)}"
                    )
        except JailRefused as exc:
            return Verdict("unverified", 0, toolchain.tool, reason=str(exc))
    return Verdict("passed", len(job.tests), toolchain.tool)


def _compile(commands: Build, job: Job, build_dir: Path, home: Path) -> str | None:
    """None when it compiled, else what the compiler said."""
    limits = Limits(cpu_s=math.ceil(job.compile_timeout_s) + 5, data_bytes=_COMPILE_DATA_BYTES)
    run = run_isolated(
        commands.compile_argv,
        build_dir,
        base_env(home),
        job.compile_timeout_s,
        limits,
        writable=[home],
        require_jail=True,
    )
    if run.rc == 0:
        return None
    if run.rc is None or run.rc == -signal.SIGXCPU:
        return f"compilation timed out after {job.compile_timeout_s:g} s"
    said = run.stdout.decode("utf-8", errors="replace").strip()
    return said or _status(run.rc)


def _run_test(commands: Build, job: Job, run_dir: Path, test_in: str, expected: str) -> tuple[str | None, str]:
    """(failure kind or None, detail) of one test, in a fresh run folder removed afterwards."""
    run_dir.mkdir()
    try:
        stdin = test_in.encode("utf-8")
        if job.input_file:
            (run_dir / Path(job.input_file).name).write_bytes(stdin)
        env = {**base_env(run_dir), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        limits = Limits(
            cpu_s=math.ceil(job.timeout_s) * 2 + 1,  # JIT and GC threads count too: the wall clock decides
            data_bytes=job.memory_bytes + OVERHEAD_BYTES[job.language],
            fsize_bytes=OUTPUT_BYTES,
            stack_bytes=job.memory_bytes,
        )
        run = run_isolated(
            commands.run_argv,
            run_dir,
            env,
            job.timeout_s,
            limits,
            stdin=stdin,
            output_bytes=OUTPUT_BYTES,
            merge_stderr=False,
            require_jail=True,
        )
        return _outcome(run, job, run_dir, expected)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def _outcome(run: ToolRun, job: Job, run_dir: Path, expected: str) -> tuple[str | None, str]:
    if run.rc is None:
        return "time_limit", f"timed out after {job.timeout_s:g} s"
    if run.rc == -signal.SIGXCPU:
        return "time_limit", "CPU time limit exceeded"
    if run.truncated or run.rc == -signal.SIGXFSZ:
        return "wrong_answer", f"more than {OUTPUT_BYTES >> 20} MiB of output"
    if run.rc != 0:
        said = (run.stderr or run.stdout).decode("utf-8", errors="replace")  # a JVM that cannot start: stdout
        last = [line for line in said.strip().splitlines() if not _STACK_FRAME.match(line)][-1:]
        return "runtime_error", _status(run.rc) + (f": {last[0].strip()}" if last else "")
    output = _output_file(run_dir / Path(job.output_file).name) if job.output_file else None
    actual = (output if output is not None else run.stdout).decode("utf-8", errors="replace")
    ok, detail = outputs_match(actual, expected)
    return (None, "") if ok else ("wrong_answer", detail)


def _output_file(path: Path) -> bytes | None:
    """The file the solution wrote, if it is a regular file (not a link to something of ours, not a FIFO)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ELOOP, errno.EACCES, errno.ENXIO):
            return None
        raise
    with contextlib.closing(os.fdopen(fd, "rb")) as handle:
        return handle.read(OUTPUT_BYTES) if stat.S_ISREG(os.fstat(fd).st_mode) else None


def _status(rc: int) -> str:
    if rc < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-rc).name}"
    return f"exit status {rc}"


def _clean(text: str, root: Path) -> str:
    """Without the temporary folder's name (the cache must not vary between runs), shortened."""
    for prefix in {str(root.resolve()), str(root)}:
        text = text.replace(prefix + os.sep, "").replace(prefix, ".")
    text = text.strip()
    if len(text) > DETAIL_CHARS:
        first = re.search(r"^.*error.*$", text, re.IGNORECASE | re.MULTILINE)
        text = text[first.start() :] if first else text
    return text[:DETAIL_CHARS]
