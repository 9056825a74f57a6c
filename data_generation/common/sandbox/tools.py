"""Running a tool, or an untrusted program, isolated: the sandbox's tool jail (`tool_jail.py`) from the
harness side. Used by the reverse-instruction program checks (compilers and linters on
teacher-written code) and by the CodeContests verification (contest solutions on their tests).

Each run gets a fresh process group (a timeout kills the whole group) and, inside the jail, no
network, every disk read-only except the `writable` folders, its own pid namespace, no capabilities
and rlimits on CPU seconds, data segment, written file size and, where asked, address space and
stack. Its environment is exactly `env`, so no API key reaches it. stdin is /dev/null unless `stdin`
bytes are given: they are fed from an unlinked temporary file the jail passes on as fd 0. stdout
and stderr go to unlinked temporary files (the tool cannot find or replace them; RLIMIT_FSIZE caps
how much it writes) and the first `output_bytes` of each are read back.

Where the kernel refuses the jail's namespaces, the jail says so on a pipe that only it holds (it
closes the pipe before the tool starts, so a tool cannot fake a refusal by printing the jail's
message and exiting with its status). A compiler or linter then runs with the rlimits alone, and a
warning says so once; a run that asked for `require_jail` (untrusted code is *executed*) raises
`JailRefused` instead, and so does every later one in this process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

log = logging.getLogger(__name__)

OUTPUT_BYTES = 64 * 1024
DATA_LIMIT_BYTES = 1 << 30  # RLIMIT_DATA: JVM, V8 and Go reserve far more, but commit less
FILE_LIMIT_BYTES = 64 << 20  # RLIMIT_FSIZE
REFUSED = 125  # the jail's status when the kernel refuses its namespaces
_JAIL = str(Path(__file__).resolve().with_name("tool_jail.py"))
_refused: str | None = None  # why the jail was refused in this process; None: not (yet)


class JailRefused(RuntimeError):
    """The kernel refused the jail's namespaces, and the run must not happen without them."""


@dataclass(frozen=True)
class Limits:
    """rlimits for one run, in seconds and bytes; None leaves one unset."""

    cpu_s: int
    data_bytes: int | None = DATA_LIMIT_BYTES
    fsize_bytes: int = FILE_LIMIT_BYTES
    as_bytes: int | None = None
    stack_bytes: int | None = None

    def spec(self) -> dict[str, int | None]:
        return {
            "cpu": self.cpu_s,
            "data": self.data_bytes,
            "fsize": self.fsize_bytes,
            "as": self.as_bytes,
            "stack": self.stack_bytes,
        }


@dataclass(frozen=True)
class ToolRun:
    """What one run left: exit status (None: killed at the timeout; -N: died of signal N), the first
    `output_bytes` of stdout (with stderr in it when merged) and of stderr, and whether stdout had more."""

    rc: int | None
    stdout: bytes
    stderr: bytes
    truncated: bool


def base_env(home: Path) -> dict[str, str]:
    """PATH, a scratch HOME and TMPDIR, LANG=C.UTF-8: all a tool's environment holds unless it adds more."""
    return {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(home), "TMPDIR": str(home), "LANG": "C.UTF-8"}


def jail_refused() -> str | None:
    """Why the kernel refused the jail in this process, or None while it has not."""
    return _refused


def run_isolated(
    argv: list[str],
    cwd: Path,
    env: dict[str, str],
    timeout: float,
    limits: Limits,
    *,
    writable: Sequence[Path] = (),
    stdin: bytes | None = None,
    output_bytes: int = OUTPUT_BYTES,
    merge_stderr: bool = True,
    require_jail: bool = False,
) -> ToolRun:
    """Run `argv` in `cwd` inside the jail; `cwd` and `writable` are the only folders it may write.
    Raises JailRefused when the jail is refused and `require_jail` is set."""
    folders = sorted({str(Path(p).resolve()) for p in [cwd, *writable]})
    if _refused is None:
        read_end, write_end = os.pipe()
        try:
            spec = {
                "argv": argv,
                "cwd": str(cwd),
                "env": env,
                "writable": folders,
                "limits": limits.spec(),
                "report_fd": write_end,
            }
            jail = [sys.executable, "-I", "-B", _JAIL, json.dumps(spec)]
            run = _run_group(jail, cwd, timeout, None, stdin, output_bytes, merge_stderr, (write_end,))
            os.set_blocking(read_end, False)
            with contextlib.suppress(BlockingIOError):  # nothing written: the jail stood
                report = os.read(read_end, 4096).decode("utf-8", errors="replace")
                if report:
                    _refuse(report)
            if _refused is None:
                return run
        finally:
            os.close(read_end)
            os.close(write_end)
    if require_jail:
        raise JailRefused(f"the tool jail is unavailable here ({_refused})")
    return _run_group(_ulimit_command(argv, limits), cwd, timeout, env, stdin, output_bytes, merge_stderr, ())


def run_tool(
    argv: list[str],
    cwd: Path,
    env: dict[str, str],
    timeout: float,
    address_space_mib: int | None = None,
    writable: Sequence[Path] = (),
) -> tuple[int | None, str]:
    """A compiler or linter: (exit status or None on timeout, the first OUTPUT_BYTES of stdout+stderr).
    CPU seconds are the timeout plus 5; the jail may fall back to rlimits alone."""
    limits = Limits(cpu_s=int(timeout) + 5, as_bytes=address_space_mib << 20 if address_space_mib else None)
    run = run_isolated(argv, cwd, env, timeout, limits, writable=writable)
    return run.rc, run.stdout.decode("utf-8", errors="replace")


def _refuse(why: str) -> None:
    global _refused
    if _refused is None:
        log.warning("tools run without the tool jail (%s): rlimits only; untrusted programs are not run", why.strip())
    _refused = why.strip().removeprefix("codecapy-jail:").strip() or "refused"


def _ulimit_command(argv: list[str], limits: Limits) -> list[str]:
    # Limits set by `sh` right before `exec`: preexec_fn is unsafe with threads.
    caps = [f"ulimit -f {limits.fsize_bytes >> 9}", f"ulimit -t {limits.cpu_s}"]
    for flag, value in (("-d", limits.data_bytes), ("-v", limits.as_bytes), ("-s", limits.stack_bytes)):
        if value:
            caps.append(f"ulimit {flag} {value >> 10}")
    script = "; ".join(f"{cap} 2>/dev/null" for cap in caps) + '; exec "$@"'
    return ["/bin/sh", "-c", script, "sh", *argv]


def _run_group(
    command: list[str],
    cwd: Path,
    timeout: float,
    env: dict[str, str] | None,
    stdin: bytes | None,
    output_bytes: int,
    merge_stderr: bool,
    pass_fds: tuple[int, ...],
) -> ToolRun:
    with contextlib.ExitStack() as files:
        out, err = (files.enter_context(tempfile.TemporaryFile()) for _ in range(2))  # unlinked
        feed = files.enter_context(tempfile.TemporaryFile()) if stdin is not None else None
        if feed is not None and stdin is not None:
            feed.write(stdin)
            feed.seek(0)
        proc = subprocess.Popen(
            command,
            cwd=cwd,
            env=env if env is not None else {"PATH": os.defpath, "LANG": "C.UTF-8"},
            stdin=feed if feed is not None else subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT if merge_stderr else err,
            start_new_session=True,
            pass_fds=pass_fds,
        )
        try:
            rc: int | None = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # not yet reaped, so the id is still ours
            proc.wait()
            rc = None
        out.seek(0)
        err.seek(0)
        stdout = out.read(output_bytes + 1)
        return ToolRun(rc, stdout[:output_bytes], err.read(output_bytes), len(stdout) > output_bytes)
