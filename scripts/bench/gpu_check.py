"""GPU proof: training and sampling on one GPU, measured against transformers' own tools, in one run.

    python -m scripts.bench.gpu_check [--tiny] [--output-dir DIR] [--code-alpaca PATH] [--parts a,b,...]
    bash scripts/bench/gpu_check.sh [--tiny] [DIR]        # the same, with a log and a time limit

Nothing is downloaded: the model is a Llama built from a config with random weights (~1.1B parameters,
TinyLlama's shape; `--tiny`: 2 layers of width 64, on CPU, for the test suite), and its tokenizer is a
byte-level BPE trained here on the CodeAlpaca sample's text. Parts (`--parts`, default all):

- `train`: full fine-tuning and LoRA through `main.train` (bf16, packed rows of `max_length` 2048 real
  CodeAlpaca examples), and the same model, examples and examples-per-step through transformers'
  `Trainer` (scripts/bench/gpu_anchor.py); tokens/s counts real (non-pad) tokens only, MFU is 6 x
  parameters x tokens/s over the GPU's dense bf16 peak (attention FLOPs left out), peak memory is
  torch's high-water mark;
- `qlora`: 4-bit and 8-bit QLoRA steps (bitsandbytes), peak memory against bf16 LoRA;
- `sampling`: HumanEval prompts (20 tasks x 200 samples, 128 new tokens) through main.generate's
  backend against `generate(num_return_sequences=200)` with the same stop strings;
- `paths`: fp16 with the loss scaler, fused AdamW, the 4D block-diagonal mask under sdpa in bf16 and
  the position-ids path against examples run one by one (scripts/bench/gpu_paths.py), and a checkpoint
  saved and resumed on the device, ending where an uninterrupted run ends.

Every part is timed and its failure recorded without stopping the others. results.json holds the
numbers, the package versions (and the repo's pins where they differ) and the device.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger("gpu_check")
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 125.0}  # dense
PINNED = ("torch", "transformers", "peft", "bitsandbytes", "accelerate", "tokenizers")
FULL = {"layers": 22, "hidden": 2048, "intermediate": 5632, "heads": 32, "kv_heads": 4, "vocab": 32000}
TINY = {"layers": 2, "hidden": 64, "intermediate": 128, "heads": 4, "kv_heads": 2, "vocab": 512}


def versions() -> dict[str, Any]:
    """Installed versions of the packages that matter here, and the repo's pins where they differ."""
    import importlib.metadata as md

    pins = {}
    req = Path("requirements.txt")
    if req.exists():
        for line in req.read_text().splitlines():
            m = re.match(r"([A-Za-z0-9_.-]+)==([^\s#]+)", line)
            if m:
                pins[m.group(1).lower()] = m.group(2)
    out = {}
    for name in PINNED:
        try:
            installed = md.version(name)
        except md.PackageNotFoundError:
            installed = None
        out[name] = {"installed": installed, **({"pinned": pins[name]} if pins.get(name) != installed else {})}
    return out


def device_info() -> dict[str, Any]:
    import torch

    if not torch.cuda.is_available():
        return {"kind": "cpu", "name": "cpu", "peak_bf16_tflops": None}
    name = torch.cuda.get_device_name(0)
    peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    return {"kind": "cuda", "name": name, "peak_bf16_tflops": peak, "cuda": torch.version.cuda}


def build_assets(out: Path, texts: list[str], shape: dict[str, int], dtype: str) -> dict[str, Any]:
    """A byte-level BPE tokenizer trained on `texts` and a random Llama of `shape`, saved to out/model."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    special = ["<unk>", "<s>", "</s>", "<pad>"]
    trainer = trainers.BpeTrainer(
        vocab_size=shape["vocab"], special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>"
    )
    config = LlamaConfig(
        vocab_size=shape["vocab"],
        hidden_size=shape["hidden"],
        intermediate_size=shape["intermediate"],
        num_hidden_layers=shape["layers"],
        num_attention_heads=shape["heads"],
        num_key_value_heads=shape["kv_heads"],
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).to(getattr(torch, dtype))
    folder = out / "model"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    params = sum(p.numel() for p in model.parameters())
    return {"path": str(folder), "parameters": params, "tokenizer_vocab": len(tokenizer), "shape": shape}


def run_train(out: Path, name: str, model: str, data: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """`python -m main.train` with key=value overrides; steady-state tokens/s and peak memory from its
    metrics.jsonl (the first two steps, warm-up and compilation, left out)."""
    folder = out / name
    if not overrides.get("resume"):  # a fresh run: an earlier check's folder would be refused
        shutil.rmtree(folder, ignore_errors=True)
    args = {"model": model, "train_data": data, "output_dir": str(folder), "save_final": False, "plot": False}
    args.update(overrides)
    cmd = [sys.executable, "-m", "main.train", *(f"{k}={_yaml(v)}" for k, v in args.items())]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    (out / f"{name}.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"main.train {name} exited {proc.returncode}: {proc.stderr.strip()[-800:]}")
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines() if line.strip()]
    train = [r for r in rows if r.get("kind") == "train"]
    steady = train[2:] or train
    return {
        "steps": len(train),
        "tokens_per_s": statistics.median(r["tokens_per_s"] for r in steady),
        "useful_token_fraction": statistics.median(r["useful_token_fraction"] for r in steady),
        "max_memory_gib": max((r["max_memory_gib"] for r in train if "max_memory_gib" in r), default=None),
        "losses": [round(r["loss"], 6) for r in train],
        "wall_s": round(time.perf_counter() - started, 1),
    }


def _yaml(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def mfu(tokens_per_s: float, params: int, peak_tflops: float | None) -> float | None:
    return None if not peak_tflops else 6 * params * tokens_per_s / (peak_tflops * 1e12)


def part(results: dict[str, Any], name: str, fn: Callable[[], dict[str, Any]]) -> None:
    """Run one part; its failure is recorded and the others still run."""
    started = time.perf_counter()
    log.info("part %s ...", name)
    try:
        results[name] = {"ok": True, **fn()}
    except Exception as exc:  # a GPU run must report every part it could
        log.exception("part %s failed", name)
        results[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[-2000:]}
    results[name]["seconds"] = round(time.perf_counter() - started, 1)
    log.info("part %s: %s in %.0f s", name, "ok" if results[name]["ok"] else "FAILED", results[name]["seconds"])


def read_texts(path: str) -> list[str]:
    rows = json.loads(Path(path).read_text(encoding="utf-8"))
    return [f"{r['instruction']}\n{r.get('input', '')}\n{r['output']}" for r in rows]


def main(argv: list[str] | None = None) -> int:
    from scripts.bench import gpu_parts

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiny", action="store_true", help="a 2-layer model, a few steps, CPU: checks the logic")
    p.add_argument("--output-dir", type=Path, default=Path("data/out/bench/gpu"))
    p.add_argument(
        "--code-alpaca", default=os.environ.get("CODE_ALPACA", "../shared/data/code_alpaca/code_alpaca_2k.json")
    )
    p.add_argument("--parts", default="train,qlora,sampling,paths")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    out = args.output_dir
    out.mkdir(parents=True, exist_ok=True)
    dev = device_info()
    if not args.tiny and dev["kind"] != "cuda":
        raise SystemExit("no CUDA device: run with --tiny on CPU (a logic check), or on a GPU")
    results: dict[str, Any] = {"mode": "tiny" if args.tiny else "full", "device": dev, "versions": versions()}
    started = time.perf_counter()
    texts = read_texts(args.code_alpaca)
    results["model"] = build_assets(out, texts, TINY if args.tiny else FULL, "float32" if args.tiny else "bfloat16")
    ctx = gpu_parts.Context(out, results["model"], args.code_alpaca, args.tiny, dev, results)
    for name in args.parts.split(","):
        part(results, name, lambda name=name: gpu_parts.PARTS[name](ctx))
    results["total_s"] = round(time.perf_counter() - started, 1)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    failed = [k for k, v in results.items() if isinstance(v, dict) and v.get("ok") is False]
    log.info("wrote %s; %s", out / "results.json", f"failed: {failed}" if failed else "every part ran")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
