import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from main.generate import IncompleteSamples, finished_samples, main, merge_shards, plan, sample_seed, shard_dir
from main.problems import Problem, load_humaneval
from main.prompt_styles import COMPLETION_STOPS
from tests.tiny_models import make_tiny_llama

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    before = torch.get_num_threads()
    yield make_tiny_llama(tmp_path_factory.mktemp("tiny"), seed=1)
    torch.set_num_threads(before)


def command(model, output, *extra):
    return ["--benchmark", "humaneval", "--model", str(model), "--limit", "3", "--num-samples", "4",
            "--temperature", "0.8", "--max-new-tokens", "24", "--threads", "1", "--no-progress",
            "--output", str(output), *extra]


def lines(path):
    return path.read_text(encoding="utf-8").splitlines()


def shard_rows(output):
    return [json.loads(line) for path in sorted(shard_dir(output).glob("*.jsonl")) for line in lines(path)]


def problems(count):
    return [Problem(f"T/{i}", "p", "", None, "") for i in range(count)]


def test_plan_skips_done_samples_and_greedy_needs_one_row_per_task():
    done = {("T/0", 0), ("T/0", 2), ("T/1", 0), ("T/1", 1), ("T/1", 2)}
    work = plan(problems(2), 3, 7, False, done)
    assert [(w.problem.task_id, w.samples) for w in work] == [("T/0", (1,))]
    assert work[0].seed == sample_seed(7, "T/0", 1) != sample_seed(7, "T/0", 2) != sample_seed(8, "T/0", 1)
    greedy = plan(problems(2), 3, 7, True, {("T/0", 0)})
    assert [(w.problem.task_id, w.samples) for w in greedy] == [("T/0", (1, 2)), ("T/1", (0, 1, 2))]


def test_merge_refuses_missing_samples_and_keeps_one_copy_of_each(tmp_path):
    output = tmp_path / "s.jsonl"
    shard_dir(output).mkdir()
    row = lambda t, s: json.dumps({"task_id": t, "sample": s, "completion": f"{t}{s}"}) + "\n"
    first = row("T/0", 0) + row("T/1", 1) + row("T/0", 1) + row("T/0", 2)
    (shard_dir(output) / "rank000-of-002.jsonl").write_text(first)
    (shard_dir(output) / "rank001-of-002.jsonl").write_text(row("T/1", 0) + row("T/0", 1) + '{"task_id": "T/')
    with pytest.raises(IncompleteSamples, match=r"1 of 6 samples are missing \(T/1#2\)"):
        merge_shards(output, problems(2), 3)
    assert not output.exists()
    assert main(["--benchmark", "humaneval", "--model", "m", "--backend", "openai", "--limit", "2", "--n", "3",
                 "--merge-only", "--output", str(output)]) == 1  # missing samples: exit 1, no file
    assert not output.exists()
    assert merge_shards(output, problems(2), 2) == 4  # n=2: complete; the duplicate of T/0#1 counted once
    assert [json.loads(line)["completion"] for line in lines(output)] == ["T/00", "T/01", "T/10", "T/11"]


def test_resume_after_kill_loses_nothing_and_duplicates_nothing(tiny, tmp_path):
    output = tmp_path / "killed" / "samples.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "main.generate", *command(tiny, output, "--batch-size", "2")],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shard = shard_dir(output) / "rank000-of-001.jsonl"
    deadline = time.monotonic() + 120
    while not (shard.exists() and shard.stat().st_size) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    written = len(lines(shard))
    assert 0 < written < 12 and not output.exists()  # killed mid-run
    with open(shard, "ab") as handle:  # and as if the kill tore a write in half
        handle.write(b'{"task_id": "HumanEval/2", "sample": 3, "compl')

    assert main(command(tiny, output, "--batch-size", "2")) == 0
    rows = shard_rows(output)
    assert len(rows) == 12 and len({(r["task_id"], r["sample"]) for r in rows}) == 12
    assert rows[:written] == [json.loads(line) for line in lines(shard)[:written]]  # earlier samples kept
    # The same samples as one uninterrupted run with another batch size.
    reference = tmp_path / "reference.jsonl"
    assert main(command(tiny, reference, "--batch-size", "5")) == 0
    assert lines(output) == lines(reference)
    meta = json.loads(output.with_name("samples.jsonl.meta.json").read_text())
    assert meta["complete"] and meta["samples"] == 12 and meta["decoding"]["stop"] == list(COMPLETION_STOPS)
    assert meta["dataset"]["tasks"] == 3 and meta["decoding"]["seed"] == 1234 and meta["versions"]["torch"]
    # A resume with other decoding settings is refused rather than mixed into one pass@k.
    assert main(command(tiny, output, "--top-p", "0.5")) == 2


def test_torchrun_two_ranks_write_their_own_shards_and_match_one_process(tiny, tmp_path):
    output, reference = tmp_path / "ddp.jsonl", tmp_path / "single.jsonl"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                           "2", "-m", "main.generate", *command(tiny, output, "--batch-size", "4")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    shards = {p.name: {json.loads(line)["task_id"] for line in lines(p)} for p in shard_dir(output).glob("*.jsonl")}
    assert shards == {"rank000-of-002.jsonl": {"HumanEval/0", "HumanEval/2"}, "rank001-of-002.jsonl": {"HumanEval/1"}}
    assert main(command(tiny, reference, "--batch-size", "3")) == 0
    assert lines(output) == lines(reference)  # the world size does not change a sample
    assert finished_samples(output) == {(f"HumanEval/{t}", s) for t in range(3) for s in range(4)}


@pytest.mark.slow
def test_smollm2_generates_humaneval_samples_end_to_end(smollm2, tmp_path):
    output = tmp_path / "smollm2.jsonl"
    assert main(["--benchmark", "humaneval", "--model", str(smollm2), "--limit", "2", "--n", "2",
                 "--max-new-tokens", "64", "--batch-size", "4", "--no-progress", "--output", str(output)]) == 0
    rows = [json.loads(line) for line in lines(output)]
    prompts = {p.task_id: p.prompt for p in load_humaneval()[:2]}
    assert [(r["task_id"], r["sample"]) for r in rows] == [(t, s) for t in prompts for s in range(2)]
    for row in rows:
        assert row["raw"].startswith(row["completion"]) and row["finish_reason"] in ("stop", "eos", "length")
        assert not any(stop in row["completion"] for stop in COMPLETION_STOPS)
        assert row["num_tokens"] <= 64 and not row["completion_is_full_program"]
    assert any(r["completion"].strip() for r in rows)  # a real model writes code, not nothing
    meta = json.loads(output.with_name("smollm2.jsonl.meta.json").read_text())
    assert meta["model"].startswith("HuggingFaceTB/SmolLM2-135M-Instruct+gguf") and meta["complete"]
    assert meta["backend"]["device"] == "cpu" and meta["prompt_style"] == "humaneval-completion"
