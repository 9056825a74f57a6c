"""The parts of scripts/bench/gpu_check.py: training against Trainer, QLoRA, sampling against generate,
and the CUDA paths the CPU tests cannot reach. Each takes the run's Context and returns its numbers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from scripts.bench.gpu_check import mfu, run_train


@dataclass
class Context:
    out: Path
    model: dict[str, Any]  # path, parameters, shape
    data: str  # the CodeAlpaca sample (Alpaca JSON)
    tiny: bool
    device: dict[str, Any]
    results: dict[str, Any]  # the parts that ran before (qlora reuses train's bf16 LoRA run)

    @property
    def device_name(self) -> str:
        return "cuda" if self.device["kind"] == "cuda" else "cpu"

    def common(self) -> dict[str, Any]:
        """The training settings every main.train run here shares (steps and batch by mode)."""
        return {
            "prompt_format": "alpaca",
            "packing": True,
            "max_length": 256 if self.tiny else 2048,
            "micro_batch_size": 2 if self.tiny else 8,
            "global_batch_size": 2 if self.tiny else 8,
            "max_steps": 3 if self.tiny else 12,
            "warmup_steps": 0,
            "schedule": "constant",
            "precision": "bf16",
            "device": self.device_name,
            "val_size": 0,
            "log_every": 1,
            "num_threads": 2 if self.tiny else 0,
            "skip_invalid": True,  # the raw CodeAlpaca sample has two rows with an empty output
        }


def train(ctx: Context) -> dict[str, Any]:
    """Full fine-tuning and LoRA through main.train, and the Trainer on the same examples per step."""
    params, peak = ctx.model["parameters"], ctx.device["peak_bf16_tflops"]
    out: dict[str, Any] = {}
    for name, extra in (("full", {"mode": "full", "lr": 1e-5}), ("lora", {"mode": "lora", "lr": 2e-4})):
        extra = {**extra, "lora_targets": "llama-all"} if name == "lora" else extra
        out[name] = run_train(ctx.out, f"train_{name}", ctx.model["path"], ctx.data, {**ctx.common(), **extra})
        out[name]["mfu"] = mfu(out[name]["tokens_per_s"], params, peak) if name == "full" else None
    anchor_json = ctx.out / "anchor.json"
    settings = ctx.common()
    cmd = [sys.executable, "-m", "scripts.bench.gpu_anchor", "--model", ctx.model["path"], "--data", ctx.data]
    cmd += ["--max-length", str(settings["max_length"]), "--rows", str(settings["micro_batch_size"])]
    cmd += ["--steps", str(settings["max_steps"]), "--device", ctx.device_name, "--output", str(anchor_json)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    (ctx.out / "anchor.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"the Trainer anchor exited {proc.returncode}: {proc.stderr.strip()[-800:]}")
    out["trainer"] = json.loads(anchor_json.read_text())
    out["trainer"]["mfu"] = mfu(out["trainer"]["tokens_per_s"], params, peak)
    out["full_vs_trainer"] = out["full"]["tokens_per_s"] / out["trainer"]["tokens_per_s"]
    out["goals"] = {
        "mfu_full >= 0.40": (out["full"]["mfu"] or 0) >= 0.40,
        "full_vs_trainer >= 1.5": out["full_vs_trainer"] >= 1.5,
    }
    return out


def qlora(ctx: Context) -> dict[str, Any]:
    """4-bit and 8-bit QLoRA steps; peak memory against bf16 LoRA (the train part's run, else one here)."""
    steps = {"max_steps": 2 if ctx.tiny else 4, "lr": 2e-4}
    out: dict[str, Any] = {}
    lora = ctx.results.get("train", {}).get("lora") if ctx.results.get("train", {}).get("ok") else None
    if lora is None:
        settings = {**ctx.common(), **steps, "mode": "lora", "lora_targets": "llama-all"}
        lora = run_train(ctx.out, "lora_bf16", ctx.model["path"], ctx.data, settings)
    out["lora_bf16"] = lora
    for bits in (4, 8):
        settings = {**ctx.common(), **steps, "mode": "qlora", "quant_bits": bits, "lora_targets": "llama-all"}
        run = run_train(ctx.out, f"qlora_{bits}bit", ctx.model["path"], ctx.data, settings)
        mem, base = run["max_memory_gib"], lora["max_memory_gib"]
        run["memory_vs_bf16_lora"] = mem / base if mem and base else None
        out[f"qlora_{bits}bit"] = run
    return out


def sampling(ctx: Context) -> dict[str, Any]:
    """main.generate's backend against transformers' generate: same prompts, batch, n and stop strings."""
    import torch
    from transformers import GenerationConfig

    from data_generation.common.benchmarks.humaneval import COMPLETION_STOPS, load_humaneval
    from data_generation.common.sampling import SamplingSettings
    from main.sampling.rows import Row
    from main.sampling.run import sample_seed
    from main.sampling.transformers_backend import TransformersBackend

    tasks, n, max_new = (2, 4, 8) if ctx.tiny else (20, 200, 128)
    backend = TransformersBackend(ctx.model["path"], dtype="auto", device=ctx.device_name)
    problems = load_humaneval()[:tasks]
    decoding = {"temperature": 0.8, "top_p": 0.95}
    settings = SamplingSettings(max_tokens=max_new, stop=COMPLETION_STOPS, **decoding)
    backend.generate([Row(problems[0].prompt, 0)], SamplingSettings(max_tokens=2))  # warm-up, both share it
    started = _sync_time()
    ours = []
    for p in problems:  # one call per prompt's n samples: the same batch the anchor gets
        ours += backend.generate([Row(p.prompt, sample_seed(1, p.task_id, s)) for s in range(n)], settings)
    ours_s = _sync_time() - started
    config = GenerationConfig(
        do_sample=True,
        num_return_sequences=n,
        max_new_tokens=max_new,
        stop_strings=list(COMPLETION_STOPS),
        pad_token_id=backend.pad_id,
        eos_token_id=backend.eos_ids,
        **decoding,
    )
    torch.manual_seed(0)
    started, new_tokens = _sync_time(), 0
    for p in problems:
        encoded = backend.tokenizer([p.prompt], return_tensors="pt").to(backend.lm.device)
        with torch.inference_mode():
            output = backend.lm.generate(**encoded, generation_config=config, tokenizer=backend.tokenizer)
        new_tokens += int((output[:, encoded["input_ids"].shape[1] :] != backend.pad_id).sum())
    theirs_s = _sync_time() - started
    samples = tasks * n
    ours_tokens = sum(g.tokens for g in ours)
    return {
        "tasks": tasks,
        "n": n,
        "max_new_tokens": max_new,
        "ours": {"seconds": ours_s, "samples_per_s": samples / ours_s, "tokens_per_s": ours_tokens / ours_s},
        "generate": {"seconds": theirs_s, "samples_per_s": samples / theirs_s, "tokens_per_s": new_tokens / theirs_s},
        "speedup": theirs_s / ours_s,
        "goals": {"speedup >= 3": theirs_s / ours_s >= 3},
    }


def _sync_time() -> float:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter()


def paths(ctx: Context) -> dict[str, Any]:
    """fp16 + loss scaler, fused AdamW, masks, and a checkpoint resumed on the device."""
    from scripts.bench import gpu_paths

    out: dict[str, Any] = {"masks": gpu_paths.masks(ctx.model["path"], ctx.data, ctx.device_name)}
    out["fused_adamw"] = gpu_paths.fused_adamw(ctx.device_name)
    fp16 = run_train(
        ctx.out,
        "fp16",
        ctx.model["path"],
        ctx.data,
        {**ctx.common(), "mode": "lora", "precision": "fp16", "max_steps": 3, "lr": 2e-4},
    )
    out["fp16_lora"] = {"losses": fp16["losses"], "finite": all(x == x and abs(x) < 1e4 for x in fp16["losses"])}
    out["resume"] = resume(ctx)
    return out


def resume(ctx: Context) -> dict[str, Any]:
    """Four steps in one run, and the same run stopped at its step-2 checkpoint and resumed: the
    losses of steps 3 and 4 must be the same."""
    settings = {**ctx.common(), "mode": "lora", "lr": 2e-4, "max_steps": 4, "save_every": 2, "keep_checkpoints": 5}
    whole = run_train(ctx.out, "resume_whole", ctx.model["path"], ctx.data, settings)
    part = ctx.out / "resume_part"
    shutil.rmtree(part, ignore_errors=True)
    (part / "checkpoints").mkdir(parents=True)
    shutil.copytree(ctx.out / "resume_whole" / "checkpoints" / "step-00000002", part / "checkpoints" / "step-00000002")
    rows = (ctx.out / "resume_whole" / "metrics.jsonl").read_text().splitlines()
    (part / "metrics.jsonl").write_text("\n".join(rows[:2]) + "\n")
    resumed = run_train(ctx.out, "resume_part", ctx.model["path"], ctx.data, {**settings, "resume": "auto"})
    same = resumed["losses"] == whole["losses"]
    return {"whole": whole["losses"], "resumed": resumed["losses"], "identical": same}


PARTS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "train": train,
    "qlora": qlora,
    "sampling": sampling,
    "paths": paths,
}
