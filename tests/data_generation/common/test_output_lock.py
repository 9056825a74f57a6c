"""One writer per output: the lock refuses a second holder at once, names the first, and dies with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from data_generation.common.command import BUSY, run_command
from data_generation.common.output_lock import OutputBusy, lock_path, output_lock


def test_a_second_holder_is_refused_naming_the_first(tmp_path: Path) -> None:
    out = tmp_path / "data" / "out.jsonl"
    with output_lock(out) as path:
        assert path == lock_path(out) == tmp_path / "data" / "out.jsonl.lock"
        with pytest.raises(OutputBusy, match=rf"{out} is in use by process {os.getpid()} on .*\(.*, since "):
            with output_lock(out):
                pass
    assert not path.exists()  # released and removed
    with output_lock(out):  # free again
        pass


def test_a_folder_is_locked_beside_it_not_inside(tmp_path: Path) -> None:
    with output_lock(tmp_path / "run") as path:
        assert path == tmp_path / "run.lock" and not (tmp_path / "run").exists()


def test_the_kernel_drops_the_lock_of_a_killed_holder(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom data_generation.common.output_lock import output_lock\n"
            f"with output_lock({str(out)!r}):\n    print('held', flush=True)\n    time.sleep(60)\n",
        ],
        cwd=Path(__file__).resolve().parents[3],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline() == "held\n"
    with pytest.raises(OutputBusy, match=f"process {holder.pid}"):
        with output_lock(out):
            pass
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert lock_path(out).exists()  # the file stays behind, but not the lock
    started = time.monotonic()
    with output_lock(out):
        assert time.monotonic() - started < 1


def test_disabled_is_a_no_op_and_busy_exits_75(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    with output_lock(out):
        with output_lock(out, enabled=False):  # e.g. a rank that does not own the output
            pass

        def body() -> int:
            with output_lock(out):
                return 0

        assert run_command(body) == BUSY
    assert "error: " in capsys.readouterr().err
