"""The harness side of one sample's run: the fds it is given and reading its verdict off the result pipe
(the fork server kills what a sample leaves behind)."""

from __future__ import annotations

import os
import random
import select
import signal
import time

_READ_CAP = 1 << 16  # bytes of the result pipe kept (the rest is drained and dropped)


class SandboxError(RuntimeError):
    """The sandbox itself could not be set up (never caused by the sample)."""


class Fds:
    """The four fds a sample gets (nonce pipe, result pipe, output memfd, program memfd) and the harness's ends."""

    def __init__(self, nonce: bytes, program: bytes) -> None:
        self.nonce_r, nonce_w = os.pipe()
        os.write(nonce_w, nonce)
        os.close(nonce_w)  # the nonce now waits in the pipe, in the kernel
        self.result_r, self.result_w = os.pipe()
        self.out = os.memfd_create("sample-output")
        self.prog = os.memfd_create("sample-program")
        os.write(self.prog, program)

    def for_child(self) -> list[int]:
        return [self.nonce_r, self.result_w, self.out, self.prog]

    def close_child_ends(self) -> None:
        # Only the child may hold the result pipe's write end, so that EOF means "the child is gone".
        for name in ("nonce_r", "result_w", "prog"):
            os.close(getattr(self, name))
            setattr(self, name, -1)

    def close(self) -> None:
        for name in ("nonce_r", "result_w", "prog", "result_r", "out"):
            fd = getattr(self, name)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)


def read_until_eof(fd: int, deadline: float) -> tuple[bytes, bool]:
    """Read the result pipe until every writer closed it (the sample and all it started are gone) or
    the deadline passed (then the caller has the fork server kill them)."""
    chunks, size = [], 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return b"".join(chunks), True
        block = os.read(fd, 1 << 16)
        if not block:
            return b"".join(chunks), False
        if size < _READ_CAP:  # a flood is drained but not kept
            chunks.append(block[: _READ_CAP - size])
            size += len(chunks[-1])


def pids_of_uid(uid: int) -> list[int]:
    """Processes whose real, effective, saved or fs uid is `uid` (from /proc/PID/status: a process can
    make /proc/PID itself root-owned with PR_SET_DUMPABLE, but not its status line)."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status", encoding="ascii", errors="replace") as f:
                uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
        except (OSError, StopIteration):  # gone meanwhile
            continue
        if str(uid) in uids:
            pids.append(int(name))
    return pids


def verdict(data: bytes, nonce: bytes, exit_code: int, timed_out: bool) -> tuple[bool, str]:
    if not data.startswith(b"R"):  # the bootstrap never reached the candidate: a harness problem
        if timed_out:
            raise SandboxError("the sandbox did not start within the timeout (machine overloaded?)")
        detail = data[1:].decode("utf-8", "replace") if data.startswith(b"E") else f"exit code {exit_code}"
        raise SandboxError(f"sandbox setup failed: {detail}")
    body = data[1:]
    if body == nonce:
        return True, "passed"
    if body.startswith(b"F"):  # an exception (a daemon holding the pipe may still have run into the timeout)
        return False, "failed: " + body[1:].decode("utf-8", "replace")[:1000]
    if timed_out:
        return False, "timed out"
    if exit_code == -signal.SIGXCPU:
        return False, "timed out (CPU time limit)"
    if exit_code < 0:
        name = signal.Signals(-exit_code).name if -exit_code in signal.Signals._value2member_map_ else str(-exit_code)
        return False, f"failed: killed by {name}"
    return False, f"failed: exited before the tests finished (exit code {exit_code})"


def random_uid_base() -> int:
    # Unused uids far above any /etc/passwd entry; random so concurrent harnesses do not share slots.
    return random.SystemRandom().randrange(1_000_000_000, 2_000_000_000, 1024)
