"""One writer per output: an exclusive `flock` on `OUTPUT.lock`, beside the file or folder a long job
appends to or resumes.

Resume logic trusts that nobody else writes the output meanwhile; two runs started on one output
(two terminals, a retry wrapper, a scheduler) would both "resume" and write every record twice. The
lock makes the second run stop at once, before it touches anything, naming the output and the
process that holds it. `flock` belongs to the open file, so the kernel drops it when the holder dies
for any reason, `kill -9` included: a stale lock file never blocks a later run.

The lock file is removed on release. A run that opened the old file just before that re-checks,
after it got the lock, that the path still names the file it locked, and otherwise starts over.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Iterator


class OutputBusy(RuntimeError):
    """Another live process holds the output's lock (`run_command` exits with BUSY)."""


def lock_path(output: str | os.PathLike) -> Path:
    """`OUTPUT.lock` beside the output (for a folder `runs/x`: `runs/x.lock`, outside what it guards)."""
    path = Path(output)
    return path.with_name(path.name + ".lock")


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        info = {}
    if not info:
        return "another process"
    return f"process {info.get('pid')} on {info.get('host')} ({info.get('command')}, since {info.get('since')})"


def _acquire(path: Path, output: str) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _holder(fd)
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            raise OutputBusy(
                f"{output} is in use by {holder}; wait for that run to finish or stop it "
                f"(the lock is {path}; it is released when its process ends)"
            ) from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the previous holder removed this file as we opened it: take the new one


@contextlib.contextmanager
def output_lock(output: str | os.PathLike, *, enabled: bool = True) -> Iterator[Path]:
    """Hold the exclusive lock on `output` for the block; raise OutputBusy at once when a live process
    holds it. `enabled=False` (e.g. the ranks that do not own the output) is a no-op."""
    path = lock_path(output)
    if not enabled:
        yield path
        return
    fd = _acquire(path, str(output))
    try:
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": " ".join(sys.argv)[:300],
            "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # still holding the lock: nobody can be inside between the unlink and the close
        os.close(fd)
