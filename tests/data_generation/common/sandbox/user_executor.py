"""An Executor that runs as an ordinary user, for tests that run as root (CI does).

`UserExecutor(limits)` starts `python -m tests.as_user nobody -- python -m <this module> LIMITS`: a
process that holds a real `Executor` as user `nobody` and runs, one JSON line at a time, the programs
the test sends. The test keeps the host-side view (files, processes) as root; the harness under test
has none of root's powers, as when a user runs an evaluation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from typing import Any

from data_generation.common.sandbox.execution import ExecResult, Executor, Limits
from tests.paths import REPO

USER = "nobody"


class UserExecutor:
    """The parts of Executor's interface the sandbox tests use: run, mode, zygote_pids, uids, close."""

    def __init__(self, limits: Limits, n_workers: int = 2, env: dict[str, str] | None = None) -> None:
        command = [sys.executable, "-m", "tests.as_user", USER, "--", sys.executable, "-m", __name__]
        self._proc = subprocess.Popen(
            [*command, json.dumps({"limits": asdict(limits), "n_workers": n_workers})],
            cwd=REPO,
            env={**os.environ, **(env or {})},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._state = self._read()
        self.mode: str = self._state["mode"]
        self.uids: list[int] = self._state["uids"]

    def _read(self) -> dict[str, Any]:
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {USER} executor stopped (exit code {self._proc.wait()})")
        return json.loads(line)

    @property
    def harness_pid(self) -> int:
        return self._state["pid"]

    @property
    def zygote_pids(self) -> list[int]:
        return self._state["zygote_pids"]

    def run(self, program: str) -> ExecResult:
        self._proc.stdin.write(json.dumps(program) + "\n")
        self._proc.stdin.flush()
        self._state = self._read()
        return ExecResult(**self._state["result"])

    def close(self) -> None:
        self._proc.stdin.close()
        self._proc.wait(timeout=30)

    def __enter__(self) -> "UserExecutor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _serve(spec: dict[str, Any]) -> None:
    with Executor(spec["n_workers"], Limits(**spec["limits"])) as ex:

        def state(**extra: Any) -> None:
            print(json.dumps({"mode": ex.mode, "uids": ex.uids, "zygote_pids": ex.zygote_pids, **extra}), flush=True)

        state(pid=os.getpid())
        for line in sys.stdin:
            state(pid=os.getpid(), result=asdict(ex.run(json.loads(line))))


if __name__ == "__main__":
    _serve(json.loads(sys.argv[1]))
