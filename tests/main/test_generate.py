import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from data_generation.common.benchmarks.base import Problem
from data_generation.common.benchmarks.humaneval import COMPLETION_STOPS, load_humaneval
from data_generation.common.defaults import DEFAULT_SEED
from main.generate import main
from main.sampling.run import plan, sample_seed
from main.sampling.shards import IncompleteSamples, finished_samples, merge_shards, shard_dir
from tests.main.generate_cli import generate_argv
from tests.paths import REPO
from tests.tiny_models import make_tiny_llama


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    before = torch.get_num_threads()
    yield make_tiny_llama(tmp_path_factory.mktemp("tiny"), seed=1)
    torch.set_num_threads(before)


def command(model, output, *extra):
    return generate_argv(model, output, *extra)


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

    def row(t: str, s: int) -> str:
        return json.dumps({"task_id": t, "sample": s, "completion": f"{t}{s}"}) + "\n"

    first = row("T/0", 0) + row("T/1", 1) + row("T/0", 1) + row("T/0", 2)
    (shard_dir(output) / "rank000-of-002.jsonl").write_text(first)
    (shard_dir(output) / "rank001-of-002.jsonl").write_text(row("T/1", 0) + row("T/0", 1) + '{"task_id": "T/')
    with pytest.raises(IncompleteSamples, match=r"1 of 6 samples are missing \(T/1#2\)"):
        merge_shards(output, problems(2), 3)
    assert not output.exists()
    assert (
        main(
            [
                "--benchmark",
                "humaneval",
                "--model",
                "m",
                "--backend",
                "openai",
                "--limit",
                "2",
                "--num-samples",
                "3",
                "--merge-only",
                "--output",
                str(output),
            ]
        )
        == 1
    )  # missing samples: exit 1, no file
    assert not output.exists()
    assert merge_shards(output, problems(2), 2) == 4  # n=2: complete; the duplicate of T/0#1 counted once
    assert [json.loads(line)["completion"] for line in lines(output)] == ["T/00", "T/01", "T/10", "T/11"]


def test_resume_after_kill_loses_nothing_and_duplicates_nothing(tiny, tmp_path):
    output = tmp_path / "killed" / "samples.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "main.generate", *command(tiny, output, "--batch-size", "2")],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
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
    assert (
        meta["dataset"]["tasks"] == 3 and meta["decoding"]["seed"] == DEFAULT_SEED == 42 and meta["versions"]["torch"]
    )
    # A resume with other decoding settings is refused rather than mixed into one pass@k.
    assert main(command(tiny, output, "--top-p", "0.5")) == 2


def test_torchrun_two_ranks_write_their_own_shards_and_match_one_process(tiny, tmp_path):
    output, reference = tmp_path / "ddp.jsonl", tmp_path / "single.jsonl"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "main.generate",
            *command(tiny, output, "--batch-size", "4"),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    shards = {p.name: {json.loads(line)["task_id"] for line in lines(p)} for p in shard_dir(output).glob("*.jsonl")}
    assert shards == {"rank000-of-002.jsonl": {"HumanEval/0", "HumanEval/2"}, "rank001-of-002.jsonl": {"HumanEval/1"}}
    assert main(command(tiny, reference, "--batch-size", "3")) == 0
    assert lines(output) == lines(reference)  # the world size does not change a sample
    assert finished_samples(output) == {(f"HumanEval/{t}", s) for t in range(3) for s in range(4)}


@pytest.mark.slow
def test_smollm2_generates_humaneval_samples_end_to_end(smollm2, tmp_path):
    """The embedded instruct model is asked through its own chat template by default, and its code
    block becomes a full program."""
    output = tmp_path / "smollm2.jsonl"
    assert (
        main(
            [
                "--benchmark",
                "humaneval",
                "--model",
                str(smollm2),
                "--limit",
                "2",
                "--num-samples",
                "2",
                "--max-new-tokens",
                "64",
                "--batch-size",
                "4",
                "--no-progress",
                "--output",
                str(output),
            ]
        )
        == 0
    )
    rows = [json.loads(line) for line in lines(output)]
    prompts = {p.task_id: p.prompt for p in load_humaneval()[:2]}
    assert [(r["task_id"], r["sample"]) for r in rows] == [(t, s) for t in prompts for s in range(2)]
    for row in rows:
        assert row["finish_reason"] in ("stop", "eos", "length") and row["num_tokens"] <= 64
        assert row["completion_is_full_program"] and row["prompt_style"] == "humaneval-chat"
        assert "empty_cause" in row and "```" not in row["completion"]
    assert any("def " in r["completion"] for r in rows)  # a real model writes code, not nothing
    meta = json.loads(output.with_name("smollm2.jsonl.meta.json").read_text())
    assert meta["model"].startswith("HuggingFaceTB/SmolLM2-135M-Instruct+gguf") and meta["complete"]
    assert meta["backend"]["device"] == "cpu" and meta["prompt_style"] == "humaneval-chat"
    assert meta["prompt_style_chosen_by"] == "its tokenizer has a chat template"
    assert meta["base_checkpoint"] == meta["model"]  # a base model is its own base: one name


def test_no_stop_reaches_extraction_and_the_meta_records_what_ran(tiny, tmp_path):
    output = tmp_path / "free.jsonl"
    assert main([*command(tiny, output), "--no-stop", "--num-samples", "1", "--greedy"]) == 0
    rows = [json.loads(line) for line in lines(output)]
    assert all(r["completion"] == r["raw"] and r["stopped_by"] is None for r in rows)
    meta = json.loads(output.with_name("free.jsonl.meta.json").read_text())
    assert meta["decoding"]["stop"] == [] and meta["decoding"]["stop_after_fence"] is False


def test_default_style_follows_the_tokenizer_then_the_adapters_training(tiny, tmp_path):
    """Chat for a tokenizer with a chat template, the raw prompt without one, and for an adapter the
    format it was trained in, recorded beside it with the lineage the report chains to."""
    peft = pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from data_generation.common.models import TRAINING_INFO_FILE
    from data_generation.common.provenance import folder_sha256

    base = [
        "--benchmark",
        "humaneval",
        "--task-ids",
        "HumanEval/2,HumanEval/15",
        "--greedy",
        "--max-new-tokens",
        "8",
        "--threads",
        "1",
        "--no-progress",
    ]  # short prompts: the Alpaca one fits the tiny model's context
    assert main([*base, "--model", str(tiny), "--output", str(tmp_path / "chat.jsonl")]) == 0
    meta = json.loads((tmp_path / "chat.jsonl.meta.json").read_text())
    assert meta["prompt_style"] == "humaneval-chat" and meta["prompt_format"] == "chat"

    plain = tmp_path / "plain"  # the same model whose tokenizer has no chat template: a base model
    AutoModelForCausalLM.from_pretrained(tiny).save_pretrained(plain)
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    tokenizer.chat_template = None
    tokenizer.save_pretrained(plain)
    assert main([*base, "--model", str(plain), "--output", str(tmp_path / "raw.jsonl")]) == 0
    assert json.loads((tmp_path / "raw.jsonl.meta.json").read_text())["prompt_style"] == "humaneval-completion"

    adapter = tmp_path / "adapter"
    lora = peft.get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny),
        peft.LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights=False),
    )
    lora.save_pretrained(adapter)
    info = {
        "run_name": "tuned-run",
        "base_model": str(tiny),
        "prompt_format": "alpaca",
        "train_data": {"path": "train.jsonl", "sha256": "ab" * 32},
        "weights_sha256": folder_sha256(adapter),
    }
    (adapter / TRAINING_INFO_FILE).write_text(json.dumps(info))
    assert main([*base, "--model", str(tiny), "--adapter", str(adapter), "--output", str(tmp_path / "t.jsonl")]) == 0
    meta = json.loads((tmp_path / "t.jsonl.meta.json").read_text())
    assert (
        meta["prompt_style"] == "humaneval-alpaca" and meta["prompt_style_chosen_by"] == "the format it was trained in"
    )
    assert meta["run_name"] == "tuned-run" and meta["base_checkpoint"] == str(tiny) == meta["model"]
    assert meta["training"]["weights_verified"] and meta["training"]["train_data"]["sha256"] == "ab" * 32
    explicit = [*base, "--model", str(tiny), "--adapter", str(adapter), "--prompt-style", "chat"]
    assert main([*explicit, "--output", str(tmp_path / "e.jsonl")]) == 0  # an explicit style wins
    assert json.loads((tmp_path / "e.jsonl.meta.json").read_text())["prompt_style"] == "humaneval-chat"
