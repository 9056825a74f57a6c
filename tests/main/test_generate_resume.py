"""main.generate's promises around its output: one writer at a time (a second run exits 75 at once and
touches nothing), a failed start that blocks nothing, and a resume that either continues exactly or
refuses, naming the setting that changed."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from data_generation.common.command import BUSY
from data_generation.common.output_lock import lock_path, output_lock
from main.generate import main
from main.sampling.shards import shard_dir, shard_path
from tests.main.generate_cli import generate_argv
from tests.paths import REPO
from tests.tiny_models import make_tiny_llama


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    before = torch.get_num_threads()
    yield make_tiny_llama(tmp_path_factory.mktemp("tiny"), seed=1)
    torch.set_num_threads(before)


def command(model, output, *extra, limit=3, n=4):
    return generate_argv(model, output, *extra, limit=limit, n=n, max_new_tokens=16)


@pytest.fixture(scope="module")
def reference(tiny, tmp_path_factory):
    """The samples of one uninterrupted run of `command(tiny, ...)`."""
    output = tmp_path_factory.mktemp("reference") / "samples.jsonl"
    assert main(command(tiny, output)) == 0
    return output.read_text(encoding="utf-8")


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def started_holding_lock(tiny, output):
    """A generate subprocess on `output`, stopped (SIGSTOP) as soon as it holds the output's lock."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "main.generate", *command(tiny, output, "--batch-size", "1")],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    lock, deadline = lock_path(output), time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if json.loads(lock.read_text() or "{}").get("pid") == proc.pid:
                break
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.005)
    proc.send_signal(signal.SIGSTOP)
    assert proc.poll() is None, "the first run ended before it could be raced"
    return proc


def test_a_second_run_on_the_same_output_exits_75_at_once_and_changes_nothing(tiny, reference, tmp_path, capsys):
    output = tmp_path / "samples.jsonl"
    first = started_holding_lock(tiny, output)
    try:
        before = snapshot(tmp_path)
        started = time.monotonic()
        assert main(command(tiny, output)) == BUSY
        assert time.monotonic() - started < 5  # refused before loading anything
        err = capsys.readouterr().err
        assert f"{output} is in use by process {first.pid}" in err and "generate.py" in err
        assert snapshot(tmp_path) == before
    finally:
        first.send_signal(signal.SIGCONT)
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err.decode()[-2000:]
    assert output.read_text(encoding="utf-8") == reference  # the first run's output is a single run's


def test_a_held_shard_lock_refuses_its_rank(tiny, tmp_path, capsys):
    output = tmp_path / "samples.jsonl"
    with output_lock(shard_path(output, 0, 1)):
        assert main(command(tiny, output)) == BUSY
    assert f"{shard_path(output, 0, 1)} is in use by process {os.getpid()}" in capsys.readouterr().err
    assert not output.exists() and not list(shard_dir(output).glob("*.jsonl"))


def test_a_lock_whose_holder_was_killed_does_not_block(tiny, reference, tmp_path):
    output = tmp_path / "samples.jsonl"
    first = started_holding_lock(tiny, output)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert lock_path(output).exists()  # the killed holder left its lock file behind ...
    assert main(command(tiny, output)) == 0  # ... and the kernel dropped its flock with the process
    assert output.read_text(encoding="utf-8") == reference
    assert not lock_path(output).exists()


def test_a_run_that_failed_before_sampling_does_not_block_the_corrected_one(tiny, reference, tmp_path, capsys):
    output = tmp_path / "samples.jsonl"
    typo = tmp_path / "adaptr"
    assert main(command(tiny, output, "--adapter", str(typo))) == 2
    assert f"--adapter {typo}: no such folder" in capsys.readouterr().err
    assert not output.with_name("samples.jsonl.meta.json").exists()  # refused before anything was written
    broken = tmp_path / "adapter"  # a folder peft cannot load: fails after the meta is written
    broken.mkdir()
    assert main(command(tiny, output, "--adapter", str(broken))) == 2
    meta = json.loads(output.with_name("samples.jsonl.meta.json").read_text())
    assert meta["adapter"] == str(broken) and meta["complete"] is False
    assert main(command(tiny, output)) == 0  # no sample to protect: the corrected run starts afresh
    meta = json.loads(output.with_name("samples.jsonl.meta.json").read_text())
    assert meta["adapter"] is None and meta["complete"] and output.read_text(encoding="utf-8") == reference


@pytest.mark.parametrize(
    "extra, changed",
    [
        (["--seed", "7"], "decoding.seed (42 there, 7 now)"),
        (["--max-new-tokens", "20"], "decoding.max_new_tokens (16 there, 20 now)"),
        (["--top-p", "0.5"], "decoding.top_p (0.95 there, 0.5 now)"),
        (["--prompt-style", "chat"], "prompt_style ('humaneval-completion' there, 'humaneval-chat' now)"),
        (["--dtype", "bf16"], "engine.dtype ('float32' there, 'bfloat16' now)"),
    ],
)
def test_a_resume_with_a_changed_sampling_setting_is_refused_naming_it(tiny, tmp_path, capsys, extra, changed):
    output = tmp_path / "samples.jsonl"
    assert main(command(tiny, output, "--device", "cpu", limit=1, n=2)) == 0  # cpu: `auto` is float32
    capsys.readouterr()
    before = snapshot(tmp_path)
    assert main(command(tiny, output, "--device", "cpu", *extra, limit=2, n=2)) == 2
    err = capsys.readouterr().err
    assert f"{output} holds samples made with other settings; changed: {changed}" in err
    assert snapshot(tmp_path) == before


def test_more_samples_and_more_tasks_continue_exactly_and_fewer_merge_a_subset(tiny, reference, tmp_path):
    output = tmp_path / "samples.jsonl"
    assert main(command(tiny, output, limit=2, n=2)) == 0
    small = output.read_text(encoding="utf-8")
    # Another batch size too: it does not change a sample.
    assert main(command(tiny, output, "--batch-size", "3")) == 0
    assert output.read_text(encoding="utf-8") == reference
    rows = [json.loads(line) for p in shard_dir(output).glob("*.jsonl") for line in p.read_text().splitlines()]
    assert len(rows) == 12 == len({(r["task_id"], r["sample"]) for r in rows})  # none twice, none skipped
    assert main(command(tiny, output, limit=2, n=2)) == 0
    assert output.read_text(encoding="utf-8") == small
    meta_path = output.with_name("samples.jsonl.meta.json")
    meta = json.loads(meta_path.read_text())
    assert meta["decoding"]["n"] == 2 and meta["dataset"]["tasks"] == 2 and meta["samples"] == 4
    # A merge draws no token: its engine options neither refuse it nor replace the recorded engine.
    assert main(command(tiny, output, "--merge-only", "--dtype", "fp16", limit=2, n=2)) == 0
    assert json.loads(meta_path.read_text())["engine"] == meta["engine"]
