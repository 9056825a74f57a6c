"""The shared runner behind program checks and CodeContests verification (`common.sandbox.tools`):
stdin fed from bytes, stdout and stderr apart or merged, the output cap, limits and the timeout."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from data_generation.common.sandbox.tools import Limits, ToolRun, base_env, run_isolated, run_tool


def _python(code: str, tmp_path: Path, **kwargs: Any) -> ToolRun:
    limits = kwargs.pop("limits", Limits(cpu_s=10))
    return run_isolated([sys.executable, "-I", "-c", code], tmp_path, base_env(tmp_path), 10, limits, **kwargs)


def test_stdin_bytes_reach_the_program_and_streams_stay_apart(tmp_path: Path) -> None:
    code = "import sys\nsys.stdout.buffer.write(sys.stdin.buffer.read()[::-1])\nprint('note', file=sys.stderr)"
    run = _python(code, tmp_path, stdin=b"abc\x00\xff", merge_stderr=False, require_jail=True)
    assert (run.rc, run.stdout, run.stderr, run.truncated) == (0, b"\xff\x00cba", b"note\n", False)


def test_without_stdin_it_reads_dev_null(tmp_path: Path) -> None:
    run = _python("import sys\nprint(repr(sys.stdin.read()))", tmp_path)
    assert (run.rc, run.stdout) == (0, b"''\n")


def test_output_is_capped_and_says_so(tmp_path: Path) -> None:
    run = _python("print('x' * 5000)", tmp_path, output_bytes=1000, merge_stderr=False)
    assert run.rc == 0 and run.stdout == b"x" * 1000 and run.truncated


def test_file_size_limit_stops_a_flood(tmp_path: Path) -> None:
    code = "import sys\nwhile True:\n    sys.stdout.write('y' * 65536)"
    run = _python(code, tmp_path, limits=Limits(cpu_s=10, fsize_bytes=1 << 20), merge_stderr=False)
    # Python ignores SIGXFSZ, so its write fails with EFBIG at 1 MiB (a C program dies of the signal)
    assert run.rc == 1 and b"File too large" in run.stderr and run.truncated


def test_data_limit_stops_an_allocation(tmp_path: Path) -> None:
    run = _python("x = bytearray(512 << 20)", tmp_path, limits=Limits(cpu_s=10, data_bytes=128 << 20))
    assert run.rc == 1 and b"MemoryError" in run.stdout


def test_timeout_kills_and_reports_none(tmp_path: Path) -> None:
    started = time.monotonic()
    run = run_isolated(["/bin/sh", "-c", "sleep 30"], tmp_path, base_env(tmp_path), 0.5, Limits(cpu_s=5))
    assert run.rc is None and time.monotonic() - started < 5


def test_run_tool_keeps_its_old_shape(tmp_path: Path) -> None:
    rc, out = run_tool(["/bin/sh", "-c", "echo out; echo err >&2; exit 3"], tmp_path, base_env(tmp_path), 10)
    assert (rc, sorted(out.split())) == (3, ["err", "out"])
