"""Evaluation that cannot be broken: `kill -9` mid-run resumes to the same files, changed inputs are
refused by name, and a second run on the same output folder is refused while the first holds it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from data_generation.common.benchmarks.humaneval import load_humaneval
from data_generation.common.output_lock import output_lock
from main.evaluation.harness import PROGRESS
from tests.paths import REPO

TASKS = 40


def _samples(path: Path) -> Path:
    # Every canonical solution, each first sleeping 0.1 s so that a kill lands mid-run; every 3rd one wrong.
    rows = []
    for i, p in enumerate(load_humaneval()[:TASKS]):
        body = p.reference if i % 3 else "    return None\n"
        rows.append({"task_id": p.task_id, "completion": "    __import__('time').sleep(0.1)\n" + body, "sample": 0})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _command(samples: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "main.evaluate",
        "--benchmark",
        "humaneval",
        "--input",
        str(samples),
        "--output-dir",
        str(out),
        "--n-workers",
        "2",
        "--allow-incomplete",
        *extra,
    ]


def _run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _kill_mid_run(command: list[str], progress: Path) -> None:
    proc = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 120
    while not (progress.exists() and progress.read_text().count("\n") >= 3):  # the header + some verdicts
        assert proc.poll() is None and time.monotonic() < deadline, "the evaluation ended before it could be killed"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def test_a_killed_evaluation_resumes_to_the_files_of_an_uninterrupted_run(tmp_path: Path) -> None:
    samples = _samples(tmp_path / "samples.jsonl")
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    assert _run(_command(samples, whole)).returncode == 0
    _kill_mid_run(_command(samples, resumed), resumed / PROGRESS)
    recorded = (resumed / PROGRESS).read_text().count("\n") - 1
    assert 0 < recorded < TASKS and not (resumed / "results.jsonl").exists()

    finished = _run(_command(samples, resumed))
    assert finished.returncode == 0, finished.stderr
    assert _files(resumed).keys() == _files(whole).keys()  # the progress log is gone, nothing else is left
    assert (resumed / "results.jsonl").read_bytes() == (whole / "results.jsonl").read_bytes()
    metrics = json.loads((resumed / "metrics.json").read_text())
    assert metrics["harness"]["samples_evaluated_now"] <= TASKS - recorded  # what was recorded did not run again
    assert metrics["pass@1"] == json.loads((whole / "metrics.json").read_text())["pass@1"]
    assert metrics["harness"]["isolation"]["strong"]


def test_resuming_with_other_inputs_is_refused_by_name(tmp_path: Path) -> None:
    samples, out = _samples(tmp_path / "samples.jsonl"), tmp_path / "out"
    _kill_mid_run(_command(samples, out), out / PROGRESS)
    before = _files(out)
    refused = _run(_command(samples, out, "--timeout", "5"))
    assert refused.returncode == 2 and "other limits" in refused.stderr and str(out / PROGRESS) in refused.stderr
    samples.write_text(samples.read_text().replace("sleep(0.1)", "sleep(0.2)"), encoding="utf-8")
    refused = _run(_command(samples, out))
    assert refused.returncode == 2 and "other samples_sha256" in refused.stderr
    assert _files(out) == before


def test_a_second_run_on_the_same_output_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    samples, out = _samples(tmp_path / "samples.jsonl"), tmp_path / "out"
    with output_lock(out):  # as a first run would hold it
        refused = _run(_command(samples, out))
    assert refused.returncode == 75 and str(out) in refused.stderr and f"process {os.getpid()}" in refused.stderr
    assert not out.exists()
    first = subprocess.Popen(_command(samples, out), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while not (out / PROGRESS).exists():
        time.sleep(0.05)
    second = _run(_command(samples, out))  # a true race: two processes, one output
    assert second.returncode == 75 and "in use by process" in second.stderr
    assert first.wait(timeout=300) == 0
    assert len((out / "results.jsonl").read_text().splitlines()) == TASKS
