"""Run untrusted Python programs (model samples + benchmark tests) in a sandboxed child process.

Each program runs in its own process, forked from a small fork server (`child.py`, one clean
`python -I -B` interpreter per worker slot). The same guarantees hold whether the harness runs as root
or as an ordinary user; only the way in differs (isolation.py):

- **no network**: a new, empty network namespace (not even loopback is up);
- **no writes outside the sample's folder, none of the user's files**: a private mount namespace and a
  root of its own (read-only system folders and interpreter, fresh tmpfs /tmp and /dev/shm per
  sample, five device nodes; no /home, /root, /run, /var);
- **no other processes**: its own pid namespace (the fork server is its pid 1: samples can neither
  kill it nor outlive it) and /proc of that namespace;
- **nothing to undo it with**: as root, an unused uid per slot and no groups; as a user, a nested user
  namespace as uid 1000 with no capabilities anywhere (the fork server is not dumpable);
- **limits** (setrlimit): CPU seconds, address space, file size (also caps stdout/stderr, a memfd),
  open files, processes (default 1: no fork, no threads), no core dumps.

The table, mode by mode: main/README.md ("The sandbox"). Both modes also set
PR_SET_NO_NEW_PRIVS, a fixed minimal environment (PATH, HOME, TMPDIR, locale), System V IPC in a
namespace per sample, a wall-clock timeout (2 × the CPU limit + 1 s by default) after which the fork
server kills the sample's whole namespace, and the dying harness takes fork servers and samples with it.

**Verdict**: passed only if the child, after the program (candidate + tests) returned normally, wrote
a per-sample random nonce to a result pipe. The nonce is not in the source, argv, env, files or memory
(not even the fork server's) while candidate code runs: it waits in a second pipe that the child reads
only after the tests finished. `sys.exit(0)`, `os._exit(0)`, exceptions, signals and printed fake
markers all fail. **A sample can fail, the run cannot**: a fork server that dies for any reason (killed
from outside, out of memory) costs the sample it was running ("failed: sandbox killed (...)"); it is
started again and the run goes on. A harness failure never becomes a pass.

What it does NOT protect against: a sample that deliberately attacks this harness from inside the
interpreter (it shares the process with the tests: it can find the nonce pipe's fd and forge the
marker, install a trace function that skips asserts, or return objects whose `__eq__` is always
true); kernel exploits; exhausting the tmpfs up to its caps. Where the kernel refuses namespaces the
executor refuses to start and says how to enable them, unless the caller accepts weak isolation
(`allow_weak`, the commands' `--allow-weak-sandbox`): mode "uid" (root: uid drop and rlimits) or
"none" (rlimits only), sockets refused by an audit hook (bypassable with ctypes), writes outside the
work folder limited only by file permissions. `Executor.mode` says which mode is active; metrics.json
and the report record it.
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
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from queue import Queue
from typing import Iterable, Iterator

from data_generation.common.sandbox.processes import (
    Fds,
    SandboxError,
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


_STRONG = {
    "network": "empty network namespace",
    "filesystem": "new root: read-only system and interpreter folders, fresh tmpfs /tmp per sample",
    "processes": "own pid namespace, killed whole after each sample",
}
_MODES = {
    "full": {**_STRONG, "strong": True, "privileges": "root: uid drop to an unused uid"},
    "userns": {**_STRONG, "strong": True, "privileges": "ordinary user: nested user namespace, no capabilities"},
    "uid": {
        "strong": False,
        "privileges": "root: uid drop",
        "network": "audit hook",
        "filesystem": "permissions only",
        "processes": "process group and uid sweep",
    },
    "none": {
        "strong": False,
        "privileges": "none",
        "network": "audit hook",
        "filesystem": "permissions only",
        "processes": "process group",
    },
}
STRONG_MODES = ("full", "userns")
MAX_LOST_IN_A_ROW = 20  # then the fork server is broken, not unlucky: stop rather than fail every sample
_warned: set[str] = set()


def isolation(mode: str) -> dict[str, object]:
    """What a sandbox mode protects (recorded in metrics.json and printed in the report)."""
    return {"mode": mode, **_MODES[mode], "rlimits": True}


def weak_refusal(why: str) -> str:
    return (
        f"the sandbox cannot isolate samples on this machine: the kernel refused namespaces ({why}). "
        "Enable unprivileged user namespaces (`sudo sysctl -w kernel.unprivileged_userns_clone=1` on "
        "Debian/Ubuntu kernels, `sudo sysctl -w user.max_user_namespaces=15000` elsewhere, and on Ubuntu "
        "23.10+ `sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`) or run as root; main.evaluate "
        "runs anyway with --allow-weak-sandbox (weak isolation: rlimits only, samples could write your files)"
    )


def run_program(program: str, limits: Limits = Limits(), *, allow_weak: bool = False) -> ExecResult:
    """Run one program in a fresh sandbox (starts a fork server for it: use Executor for many)."""
    with Sandbox(limits, allow_weak=allow_weak) as sandbox:
        return sandbox.run(program)


class Sandbox:
    """One worker slot: a fork server (child.py) and, as root, an unused uid of its own.

    Not thread-safe: one sample at a time (Executor hands slots to threads).
    """

    def __init__(
        self, limits: Limits = Limits(), uid: int | None = None, *, namespaces: bool = True, allow_weak: bool = False
    ) -> None:
        self.limits = limits
        self.uid = random_uid_base() if uid is None else uid
        if self.uid == 0:
            raise ValueError("the sandbox uid must not be 0")
        self._namespaces = namespaces
        self._lost_in_a_row = 0
        self._start()
        if self.mode not in STRONG_MODES:
            if not allow_weak:
                self.close()
                raise SandboxError(weak_refusal(self.why))
            if self.mode not in _warned:
                _warned.add(self.mode)
                log.warning("sandbox runs with weak isolation %r (%s): %s", self.mode, self.why, _MODES[self.mode])

    def _start(self) -> None:
        self._sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        flags = ["-I", "-B"] + ([] if self.limits.site_packages else ["-S"])
        # start_new_session: a signal to the harness's group does not hit the zygote, and vice versa.
        self._zygote = subprocess.Popen(
            [sys.executable, *flags, _CHILD_SCRIPT, str(theirs.fileno()), "1" if self._namespaces else "0"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            pass_fds=(theirs.fileno(),),
            env=_ENV,
            cwd="/",
            start_new_session=True,
        )
        theirs.close()
        self._sock.settimeout(max(60.0, self.limits.wall + 30))  # a hung fork server must not hang the harness
        try:
            ready = self._sock.recv(4096)
        except OSError as exc:
            ready = f"E{exc}".encode()
        if not ready.startswith(b"{"):
            self.close()
            raise SandboxError(f"the sandbox fork server failed: {ready[1:].decode(errors='replace') or 'no answer'}")
        info = json.loads(ready)
        self.mode: str = info["mode"]  # "full", "userns", or weak: "uid", "none"
        self.why: str = info["why"]

    @property
    def zygote_pid(self) -> int:
        return self._zygote.pid

    def run(self, program: str, limits: Limits | None = None) -> ExecResult:
        """Run one program; `limits` overrides this slot's for it (a task's own time limit, say), except
        `site_packages`, which is fixed when the fork server starts."""
        lim = limits or self.limits
        data = program.encode("utf-8", "surrogatepass")
        nonce = os.urandom(16).hex().encode()
        fds = Fds(nonce, data)
        workdir = "-" if self.mode in STRONG_MODES else self._workdir()
        start, raw, timed_out = time.monotonic(), b"", False
        try:
            try:
                self._sock.settimeout(max(60.0, lim.wall + 30))  # a hung fork server must not hang the harness
                socket.send_fds(
                    self._sock, [json.dumps(self._request(len(data), workdir, lim)).encode()], fds.for_child()
                )
                fds.close_child_ends()
                self._answer(b"P")
                raw, timed_out = read_until_eof(fds.result_r, start + lim.wall)
                if timed_out:
                    self._sock.send(b"K")  # the fork server kills the sample and all it started
                exit_code = self._answer(b"S")
            except (SandboxError, OSError) as exc:
                return self._lost(exc, start, timed_out)
            output = os.pread(fds.out, lim.output_bytes, 0).decode("utf-8", "replace")
        finally:
            fds.close()
            if workdir != "-":
                shutil.rmtree(workdir, ignore_errors=True)
        self._lost_in_a_row = 0
        try:
            passed, result = verdict(raw, nonce, exit_code, timed_out)
        except SandboxError as exc:  # the sample never started: it fails, the run goes on
            passed, result = False, f"failed: sandbox error ({exc})"
        return ExecResult(passed, result, exit_code, timed_out, time.monotonic() - start, output)

    def _lost(self, exc: BaseException, start: float, timed_out: bool) -> ExecResult:
        """The fork server died under this sample: the sample fails, a new fork server takes the slot."""
        self._lost_in_a_row += 1
        if self._lost_in_a_row > MAX_LOST_IN_A_ROW:
            raise SandboxError(f"the sandbox fork server died {MAX_LOST_IN_A_ROW} times in a row; last: {exc}")
        log.warning("the sandbox fork server stopped (%s): that sample fails; starting a new one", exc)
        self.close()
        self._start()
        return ExecResult(False, f"failed: sandbox killed ({exc})", None, timed_out, time.monotonic() - start, "")

    def _request(self, size: int, workdir: str, lim: Limits) -> dict[str, object]:
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
        # Weak modes have no private /tmp: a fresh folder that only the sample's uid may enter.
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
            if msg.startswith(b"E"):
                why = msg[1:].decode(errors="replace")
            else:
                try:
                    why = f"exit code {self._zygote.wait(timeout=2)}"
                except subprocess.TimeoutExpired:
                    why = "it closed its socket"
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
    """A pool of `n_workers` sandbox slots (each with an unused uid of its own, as root); results in input order."""

    def __init__(
        self, n_workers: int = 2, limits: Limits = Limits(), *, namespaces: bool = True, allow_weak: bool = False
    ) -> None:
        if n_workers < 1:
            raise ValueError("n_workers must be >= 1")
        self.limits = limits
        base = random_uid_base()
        self._sandboxes: list[Sandbox] = []
        try:
            for i in range(n_workers):
                self._sandboxes.append(Sandbox(limits, base + i, namespaces=namespaces, allow_weak=allow_weak))
        except BaseException:
            for sandbox in self._sandboxes:
                sandbox.close()
            raise
        self._slots: Queue[Sandbox] = Queue()
        for sandbox in self._sandboxes:
            self._slots.put(sandbox)
        self._pool = ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="sandbox")

    def run(self, program: str, limits: Limits | None = None) -> ExecResult:
        sandbox = self._slots.get()
        try:
            return sandbox.run(program, limits)
        finally:
            self._slots.put(sandbox)

    @property
    def mode(self) -> str:
        return self._sandboxes[0].mode

    @property
    def uids(self) -> list[int]:
        """The slots' uids (as root, tests check that nothing runs under them after a sample)."""
        return [s.uid for s in self._sandboxes]

    @property
    def zygote_pids(self) -> list[int]:
        """The fork servers' pids (tests check that nothing but the server runs below them)."""
        return [s.zygote_pid for s in self._sandboxes]

    def map(self, programs: Iterable[str]) -> Iterator[ExecResult]:
        return self._pool.map(self.run, programs)

    def submit(self, program: str, limits: Limits | None = None) -> Future[ExecResult]:
        return self._pool.submit(self.run, program, limits)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)  # on Ctrl-C: samples not started are dropped
        for sandbox in self._sandboxes:
            sandbox.close()

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
