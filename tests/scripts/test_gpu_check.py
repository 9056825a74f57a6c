"""The GPU proof script's logic, in its tiny mode on CPU: every part runs and reports what it measures."""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import pytest


@pytest.mark.slow
def test_the_tiny_mode_runs_every_part_and_writes_its_results(tmp_path: Path, code_alpaca_2k: Path) -> None:
    out = tmp_path / "gpu"
    env = {**os.environ, "CODE_ALPACA": str(code_alpaca_2k), "LIMIT": "900"}
    proc = subprocess.run(
        ["bash", "scripts/bench/gpu_check.sh", "--tiny", str(out)], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    r = json.loads((out / "results.json").read_text())
    assert "every part ran" in (out / "gpu_check.log").read_text()
    assert r["mode"] == "tiny" and r["device"]["kind"] == "cpu" and r["versions"]["torch"]["installed"]
    assert r["model"]["parameters"] > 0 and (out / "model" / "config.json").exists()
    train = r["train"]
    for name in ("full", "lora", "trainer"):
        assert train[name]["tokens_per_s"] > 0, name
    assert train["trainer"]["examples_per_step"] >= 1 and train["full_vs_trainer"] > 0
    assert train["full"]["mfu"] is None  # no GPU peak to divide by on CPU
    assert r["qlora"]["lora_bf16"] == train["lora"]  # the train part's bf16 LoRA run is the reference
    for name in ("qlora_4bit", "qlora_8bit"):
        assert r["qlora"][name]["steps"] == 2 and all(math.isfinite(x) for x in r["qlora"][name]["losses"])
    assert r["sampling"]["ours"]["samples_per_s"] > 0 and r["sampling"]["generate"]["samples_per_s"] > 0
    paths = r["paths"]
    assert paths["masks"]["4d"]["agrees"] and paths["masks"]["position_ids"]["agrees"]
    assert paths["fused_adamw"]["agrees"] and paths["fp16_lora"]["finite"]
    assert paths["resume"]["identical"] and len(paths["resume"]["whole"]) == 4


def test_a_full_run_without_a_gpu_says_so(tmp_path: Path) -> None:
    proc = subprocess.run(
        ["python", "-m", "scripts.bench.gpu_check", "--output-dir", str(tmp_path)], capture_output=True, text=True
    )
    assert proc.returncode != 0 and "no CUDA device: run with --tiny" in proc.stderr
