"""End-to-end training on a tiny random Llama (CPU): resume, DDP and DeepSpeed equivalence, outputs."""

import json
import math
import os
import shutil
import socket
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from data_generation.common.command import BUSY
from data_generation.common.output_lock import output_lock
from main.train import main, micro_loss
from main.training.config import load_config, make_config
from main.training.engine import Engine, Runtime
from main.training.metrics import read_metrics
from tests.paths import REPO
from tests.tiny_models import make_tiny_llama


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    make_tiny_llama(root / "model", seed=5)
    rows = [
        {
            "instruction": f"Add {i} and {i + 1} in Python.",
            "input": "" if i % 3 else f"{i} {i + 1}",
            "output": f"def add(a, b):\n    return a + b  # {2 * i + 1}",
        }
        for i in range(40)
    ]
    (root / "train.json").write_text(json.dumps(rows))
    return root


def _args(setup, out, *extra):
    return [
        f"model={setup / 'model'}",
        f"train_data={setup / 'train.json'}",
        f"output_dir={out}",
        "precision=fp32",
        "lr=1e-2",
        "micro_batch_size=4",
        "global_batch_size=8",
        "plot=false",
        "num_threads=1",
        "prompt_format=alpaca",
        *extra,
    ]  # the seeds' format: the lengths below are set for it


def _weights(folder):
    name = "adapter_model.safetensors" if (folder / "adapter_model.safetensors").exists() else "model.safetensors"
    return load_file(str(folder / name))


def _assert_same(a, b, atol=0.0):
    assert a.keys() == b.keys() and a
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=atol, rtol=0 if atol == 0 else 1e-5, msg=key)


def _lines(out, kind="train"):
    return [row for row in read_metrics(out / "metrics.jsonl") if row["kind"] == kind]


@pytest.mark.parametrize(
    "extra",
    [["mode=lora"], ["mode=full", "packing=true", "micro_batch_size=2", "global_batch_size=4", "schedule=linear"]],
    ids=["lora", "full-packed"],
)
def test_resume_continues_exactly(setup, tmp_path, extra):
    """Stop after step 4 (its checkpoint alone survives), resume: same weights and losses as one run."""
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    common = [*extra, "epochs=2", "val_size=8", "eval_every=3", "save_every=2", "keep_checkpoints=5"]
    assert main(_args(setup, whole, *common)) == 0
    (resumed / "checkpoints").mkdir(parents=True)
    shutil.copytree(whole / "checkpoints" / "step-00000004", resumed / "checkpoints" / "step-00000004")
    shutil.copy(whole / "metrics.jsonl", resumed / "metrics.jsonl")
    assert main(_args(setup, resumed, *common, "resume=auto")) == 0
    _assert_same(_weights(whole / "final"), _weights(resumed / "final"))
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("time", "tokens_per_s")} for r in rows]  # noqa: E731
    assert strip(read_metrics(resumed / "metrics.jsonl")) == strip(read_metrics(whole / "metrics.jsonl"))
    if "mode=lora" not in extra:
        epoch0 = [row for row in _lines(whole) if row["epoch"] == 0]
        assert len(_lines(whole)) == 2 * len(epoch0) > 4  # the resumed part ran steps of both epochs
        packed = json.loads((whole / "run.json").read_text())["data"]["train"]["tokens"]
        assert sum(row["tokens"] for row in epoch0) == packed  # packing trains every example once per epoch
        return
    # outputs of the finished run
    train = _lines(whole)
    assert [row["step"] for row in train] == list(range(1, 9))  # 32 train examples / 8 per step x 2 epochs
    assert all(math.isfinite(row["loss"]) and 0 < row["useful_token_fraction"] <= 1 for row in train)
    assert train[0]["lr"] == 0.0 and max(row["lr"] for row in train) == pytest.approx(1e-2)  # warmup, then decay
    assert [row["step"] for row in _lines(whole, "val")] == [0, 3, 6, 8]
    assert load_config(whole / "config.yaml") == load_config(None, _args(setup, whole, *common))
    assert json.loads((whole / "run.json").read_text())["data"]["val"]["examples"] == 8
    assert sorted(p.name for p in (whole / "checkpoints").iterdir()) == [f"step-0000000{n}" for n in (2, 4, 6)]
    assert (whole / "checkpoints" / "step-00000002" / "adapter" / "adapter_model.safetensors").is_file()


def test_fresh_run_refuses_existing_checkpoints_and_bad_keys(setup, tmp_path, capsys):
    assert main(_args(setup, tmp_path, "max_steps=2", "save_every=1")) == 0
    capsys.readouterr()
    assert main(_args(setup, tmp_path, "max_steps=2")) == 2
    assert "already has checkpoints (latest step-00000001); pass resume=auto" in capsys.readouterr().err
    assert main(_args(setup, tmp_path, "max_steps=2", "max_length=160", "resume=auto")) == 2
    assert "was trained on other data" in capsys.readouterr().err
    assert main(_args(setup, tmp_path, "learning_rate=1")) == 2
    assert "unknown key(s) learning_rate; valid keys:" in capsys.readouterr().err
    assert main(_args(setup, tmp_path / "other", f"train_data={tmp_path / 'missing.json'}")) == 2
    assert "missing.json" in capsys.readouterr().err


def test_ragged_last_step_and_all_masked_micro_batch_stay_finite(setup, tmp_path):
    """40 examples in 10 micro-batches, 4 per step: the last step has 2 real micro-batches and 2
    all-masked stand-ins. Their loss is an exact 0, never 0/0."""
    out = tmp_path / "ragged"
    assert main(_args(setup, out, "grad_accum=4", "epochs=1", "plot=true")) == 0
    train = _lines(out)
    assert len(train) == 3 and all(math.isfinite(row["loss"]) and math.isfinite(row["grad_norm"]) for row in train)
    trained = json.loads((out / "run.json").read_text())["data"]["train"]["tokens"]
    assert sum(row["tokens"] for row in train) == trained  # every example exactly once, stand-ins not counted
    assert all(torch.isfinite(t).all() for t in _weights(out / "final").values())
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    from transformers import AutoModelForCausalLM

    module = AutoModelForCausalLM.from_pretrained(str(setup / "model"))
    engine = Engine(make_config({"precision": "fp32", "mode": "full"}), Runtime(), module, 10, 1, torch.float32)
    ids = torch.randint(3, 200, (2, 9))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": torch.full_like(ids, -100)}
    loss, detached = micro_loss(engine, batch, denominator=1.0, world=1)
    loss.backward()
    assert loss.item() == 0.0 and detached.item() == 0.0
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in module.parameters())


def test_chat_format_and_the_lineage_recorded_with_the_adapter(setup, tmp_path):
    """prompt_format=auto picks the tokenizer's chat template; the adapter folder records the format, the
    training file's sha256 and the manifest beside it, the validation loss before and after, and a
    sha256 of its own weights: what a report needs to chain a number back to its data."""
    from data_generation.common.models import TRAINING_INFO_FILE
    from data_generation.common.provenance import file_sha256, folder_sha256

    data = tmp_path / "merged"
    data.mkdir()
    shutil.copy(setup / "train.json", data / "train.json")
    (data / "manifest.json").write_text(json.dumps({"config_fingerprint": "cafe"}))
    out = tmp_path / "chat"
    args = [a for a in _args(setup, out, "max_steps=2", "val_size=8") if a != "prompt_format=alpaca"]
    assert main([*args, f"train_data={data / 'train.json'}"]) == 0
    info = json.loads((out / "final" / TRAINING_INFO_FILE).read_text())
    assert info["prompt_format"] == "chat" and json.loads((out / "run.json").read_text())["prompt_format"] == "chat"
    assert info["train_data"]["sha256"] == file_sha256(str(data / "train.json"))
    assert info["train_data"]["manifest"] == {
        "path": str(data / "manifest.json"),
        "config_fingerprint": "cafe",
        "sha256": file_sha256(str(data / "manifest.json")),
    }
    assert info["weights_sha256"] == folder_sha256(out / "final", exclude=(TRAINING_INFO_FILE,))
    before, after = info["val_loss"]["before"], info["val_loss"]["after"]
    assert [r["val_loss"] for r in _lines(out, "val")] == [before, after] and after < before
    assert info["run_name"] == "chat" and info["base_model"] == str(setup / "model") and info["mode"] == "lora"


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _torchrun(args, timeout=240, check=True):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(_free_port()),
        "-m",
        "main.train",
        *args,
        "num_threads=1",
    ]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0 or not check, done.stderr[-4000:]
    return done


def _snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_busy_output_dir_is_refused_at_once_and_left_as_it_was(setup, tmp_path, capsys):
    """One writer per output_dir: while another process holds its lock, a run (plain, or every rank
    under torchrun) stops with exit 75 naming the holder, before it reads a checkpoint or writes."""
    out = tmp_path / "run"
    first = _args(setup, out, "max_steps=2", "save_every=1")
    assert main(first) == 0
    before = _snapshot(out)
    resume = _args(setup, out, "max_steps=4", "save_every=1", "resume=auto")
    with output_lock(out):
        capsys.readouterr()
        assert main(resume) == BUSY
        assert f"{out} is in use by process {os.getpid()}" in capsys.readouterr().err
        assert _snapshot(out) == before
        done = _torchrun(resume, check=False)  # rank 0 is refused; rank 1 waits for it and never writes
        assert done.returncode != 0 and f"{out} is in use by process {os.getpid()}" in done.stderr
        assert _snapshot(out) == before
    assert main(resume) == 0  # released: the same command resumes
    assert [r["step"] for r in _lines(out)] == [1, 2, 3, 4]


@pytest.fixture(scope="module")
def single(setup):
    """References: one process, 2 micro-batches of 4 accumulated per step (global batch 8)."""
    runs = {}
    for mode in ("lora", "full"):
        runs[mode] = setup / f"single-{mode}"
        assert main(_args(setup, runs[mode], f"mode={mode}", "lora_dropout=0", "epochs=1")) == 0
    return runs


@pytest.mark.parametrize(
    "mode, extra",
    [
        ("lora", []),
        ("lora", ["strategy=deepspeed", "deepspeed_config=scripts/configs/ds_zero2.json"]),
        ("full", ["strategy=fsdp"]),
    ],
    ids=["ddp", "deepspeed-zero2", "fsdp"],
)
def test_two_processes_match_one_process_with_the_same_global_batch(setup, single, tmp_path, mode, extra):
    """torchrun, 2 ranks x 1 micro-batch (gloo): same steps, losses and weights as 1 rank x 2.
    The checkpoint at step 4 and the final save are collectives that every rank joins."""
    out = tmp_path / "run"
    _torchrun(_args(setup, out, f"mode={mode}", "lora_dropout=0", "epochs=1", "save_every=4", *extra))
    assert json.loads((out / "run.json").read_text())["world_size"] == 2
    _assert_same(_weights(single[mode] / "final"), _weights(out / "final"), atol=1e-6)
    expected = [(r["step"], r["target_tokens"], r["tokens"]) for r in _lines(single[mode])]
    assert [(r["step"], r["target_tokens"], r["tokens"]) for r in _lines(out)] == expected  # rank 0 alone logs
    for mine, theirs in zip(_lines(out), _lines(single[mode])):
        assert mine["loss"] == pytest.approx(theirs["loss"], rel=1e-5)
    checkpoint = out / "checkpoints" / "step-00000004"
    assert (checkpoint / "rng-0.pt").is_file() and (checkpoint / "rng-1.pt").is_file()
    state = {"deepspeed": "ds", "fsdp": "dcp"}.get(extra[0].split("=")[1] if extra else "", "state.pt")
    assert (checkpoint / state).exists()
    if mode == "lora":
        assert (checkpoint / "adapter" / "adapter_model.safetensors").is_file()
