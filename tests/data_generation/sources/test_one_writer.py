"""One writer per output, for the LLM-driven sources: two real `python -m data_generation` runs on one
output, the second started while the first is mid-step (its teacher holds the first request until the
test lets it go). The second exits 75 at once, naming the output and the first run's process, and
changes nothing; the first finishes with what a lone run writes. A run killed with SIGKILL leaves its
lock file behind, and it does not block the next run, which resumes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable

import pytest

from data_generation.cli import main
from data_generation.common.output_lock import output_lock
from data_generation.teacher.loopback import LoopbackServer
from data_generation.teacher.loopback_http import RecordedRequest, Reply
from tests.data_generation.sources.reverse_instruct import test_source as ri
from tests.data_generation.sources.self_instruct import test_source as si
from tests.paths import REPO

BUSY = 75
SLOW = ("--timeout", "60")  # the client waits for the held request (the last option given wins)


class Gate:
    """A scripted teacher that holds request number `hold_at` (1-based) and every later one until
    `release()`; `held` is set when it starts holding. The loopback server answers on one event
    loop, so holding one request holds the whole teacher: the run is stopped mid-step."""

    def __init__(self, replies: Callable[[RecordedRequest], Reply], hold_at: int = 1) -> None:
        self.replies, self.hold_at, self.seen = replies, hold_at, 0
        self.held, self.released = threading.Event(), threading.Event()

    def __call__(self, req: RecordedRequest) -> Reply:
        self.seen += 1
        if self.seen >= self.hold_at and not self.released.is_set():
            self.held.set()
            self.released.wait(60)
        return self.replies(req)

    def release(self) -> None:
        self.released.set()


def command(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "data_generation", *args]


def files_of(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.parent.iterdir()) if p.name.startswith(out.stem)}


def race(gate: Gate, args: list[str], out: Path) -> None:
    """Start a run on `out`, and while its teacher holds it, a second one: the second exits 75 at once
    with one `error:` line naming the output and the first run's pid, and touches nothing."""
    first = subprocess.Popen(command(args), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert gate.held.wait(60), "the first run never reached its teacher"
        before = files_of(out)
        assert f"{out.name}.lock" in before and json.loads(before[f"{out.name}.lock"])["pid"] == first.pid
        second = subprocess.run(command(args), cwd=REPO, capture_output=True, text=True, timeout=60)
        assert first.poll() is None, "the first run was still mid-step when the second gave up"
        assert second.returncode == BUSY, second.stderr
        error = [line for line in second.stderr.splitlines() if line.strip()]
        assert error == [error[-1]] and error[0].startswith(f"error: {out} is in use by process {first.pid} ")
        assert files_of(out) == before, "the refused run changed nothing"
    finally:
        gate.release()
        _, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr
    assert not Path(f"{out}.lock").exists(), "the lock file goes when its run ends"


def test_two_self_instruct_runs_on_one_output(env_key, tmp_path):
    gate = Gate(si.scripted_reply)
    out, ref = tmp_path / "si.jsonl", tmp_path / "ref.jsonl"
    with LoopbackServer(gate) as srv:
        race(gate, si.run_args(srv, out, tmp_path / "cache", *SLOW), out)
        assert main(si.run_args(srv, ref, tmp_path / "cache-ref")) == 0
    rows = si.read_jsonl(out)
    assert len(rows) == 40 and len({r["id"] for r in rows}) == 40
    assert out.read_bytes() == ref.read_bytes(), "the output is what one run alone writes"


def test_two_reverse_instruct_runs_on_one_output(env_key, tmp_path):
    gate = Gate(ri.scripted)
    out, ref = tmp_path / "ri.jsonl", tmp_path / "ref.jsonl"
    with LoopbackServer(gate) as srv:
        race(gate, ri.run_args(srv, out, tmp_path / "cache", *SLOW), out)
        assert main(ri.run_args(srv, ref, tmp_path / "cache-ref")) == 0
    assert out.read_bytes() == ref.read_bytes()
    assert out.with_suffix(".rejects.jsonl").read_bytes() == ref.with_suffix(".rejects.jsonl").read_bytes()
    rejects = [row for row in ri.read_jsonl(out.with_suffix(".rejects.jsonl")) if "step_done" not in row]
    indices = [r["meta"]["index"] for r in ri.read_jsonl(out)] + [row["index"] for row in rejects]
    assert sorted(indices) == list(range(len(indices))), "every function once: none lost, none twice"


def test_a_run_killed_with_sigkill_leaves_a_lock_that_blocks_nothing(env_key, tmp_path):
    # step 0 sends at most 2 + 6 requests: the 9th is step 1's, so step 0 is finished when it is held
    gate = Gate(ri.scripted, hold_at=9)
    out, ref = tmp_path / "ri.jsonl", tmp_path / "ref.jsonl"
    with LoopbackServer(gate) as srv:
        args = ri.run_args(srv, out, tmp_path / "cache", *SLOW)
        killed = subprocess.Popen(command(args), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert gate.held.wait(60)
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait(30)
        gate.release()
        lock = json.loads(Path(f"{out}.lock").read_text())
        assert lock["pid"] == killed.pid, "the dead run's lock file is still there"
        assert '"step_done": 0' in out.with_suffix(".rejects.jsonl").read_text()
        rerun = subprocess.run(command(args), cwd=REPO, capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0, rerun.stderr
        assert "resuming at step" in rerun.stderr
        assert main(ri.run_args(srv, ref, tmp_path / "cache-ref")) == 0
    assert out.read_bytes() == ref.read_bytes()
    assert out.with_suffix(".rejects.jsonl").read_bytes() == ref.with_suffix(".rejects.jsonl").read_bytes()


@pytest.mark.parametrize("module,replies", [(si, si.scripted_reply), (ri, ri.scripted)], ids=["self", "reverse"])
def test_a_held_output_is_refused_before_the_teacher_or_the_journal_is_touched(
    module, replies, env_key, tmp_path, capsys
):
    out = tmp_path / "out.jsonl"
    out.write_bytes(b'{"torn')  # a torn tail the run would cut, were it let in
    with LoopbackServer(replies) as srv:
        with output_lock(out):
            assert main(module.run_args(srv, out, tmp_path / "cache")) == BUSY
        assert srv.requests == []
    assert capsys.readouterr().err.startswith(f"error: {out} is in use by process {os.getpid()} ")
    assert out.read_bytes() == b'{"torn' and not out.with_suffix(".rejects.jsonl").exists()
    assert not Path(f"{out}.manifest.json").exists()
