"""What `main.generate` samples, under one name, and how it asks: the model's identity and lineage
(`model_info`) and the prompt style (`choose_style`).

One name per model (`data_generation.common.models.model_label`), whatever path it was given by; what it was
tuned from (`tuned_from`); the training lineage recorded beside an adapter or a trained model
(`codecapy_training.json`: prompt format, data sha256, weights sha256), checked against the adapter
on disk. The default prompt style is the format the weights were trained in, else chat for a
tokenizer with a chat template, else the raw completion prompt; `--prompt-style` wins.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data_generation.common.benchmarks import get_benchmark
from data_generation.common.benchmarks.base import PromptStyle
from data_generation.common.prompts import has_chat_template
from main.sampling.config import GenerateConfig

log = logging.getLogger("main.generate")


@dataclass(frozen=True)
class ModelInfo:
    """What is sampled, under one name: `label` names the weights loaded (`data_generation.common.models.
    model_label`: a hub id, a converted GGUF, a folder), `base_checkpoint` what they were tuned from (the
    label of the base for an adapter or a model main.train wrote, else the model itself), `training` the
    lineage main.train recorded with the adapter or model (prompt format, data sha256, weights sha256)."""

    label: str
    path: str
    base_checkpoint: str | None
    training: dict[str, Any] | None
    adapter_sha256: str | None
    run_name: str
    weights_sha256: str | None = None  # of what main.train wrote (the adapter, or a fine-tuned model folder)


def training_summary(training: dict[str, Any] | None, weights_sha256: str | None) -> dict[str, Any] | None:
    """The part of the training lineage a report needs: data and weights hashes, format, losses, and
    whether the weights on disk (`weights_sha256`, hashed now) are the ones that training wrote."""
    if training is None:
        return None
    keys = (
        "run_name",
        "mode",
        "base_model",
        "prompt_format",
        "train_data",
        "config_fingerprint",
        "val_loss",
        "weights_sha256",
    )
    summary = {k: training.get(k) for k in keys}
    summary["weights_verified"] = weights_sha256 is not None and weights_sha256 == training.get("weights_sha256")
    return summary


def model_info(config: GenerateConfig) -> ModelInfo:
    """The model to sample under its one name, what it was tuned from, and its training lineage."""
    if config.backend.kind == "openai":
        return ModelInfo(config.model, config.model, None, None, None, config.run_name or config.model)
    from data_generation.common.models import (
        TRAINING_INFO_FILE,
        model_label,
        read_training_info,
        resolve_model_spec,
    )
    from data_generation.common.provenance import folder_sha256

    if config.adapter and not Path(config.adapter).is_dir():
        # Checked before anything is written: peft would otherwise try the name on the hub, late.
        raise ValueError(f"--adapter {config.adapter}: no such folder (give a peft LoRA adapter folder)")
    path = resolve_model_spec(config.model)
    label = model_label(config.model, path)
    trained = config.adapter or path
    training = read_training_info(trained)
    # The weights main.train wrote, hashed as it hashed them: an adapter, or a fine-tuned (or merged) model.
    weights = folder_sha256(trained, exclude=(TRAINING_INFO_FILE,)) if config.adapter or training else None
    adapter_sha = weights if config.adapter else None
    if config.adapter:
        base = label  # the weights the adapter is put on
        if training and training.get("base_model") not in (None, label):
            log.warning("%s was trained on %s; sampling it on %s", config.adapter, training["base_model"], label)
    else:
        base = tuned_from(path, label, training)
    if config.adapter and config.run_name is None and training is None:
        log.warning("%s has no %s: the report cannot chain it to its training data", config.adapter, TRAINING_INFO_FILE)
    name = config.run_name or (training or {}).get("run_name") or label.split("/")[-1]
    return ModelInfo(label, str(path), base, training, adapter_sha, name, weights)


def tuned_from(path: Path, label: str, training: dict[str, Any] | None) -> str:
    """What a model folder was tuned from, by its one name: main.train's record (a full fine-tune), the
    base of a merged LoRA (main.merge_lora's merge_info.json), or the model itself (a base model)."""
    from data_generation.common.models import model_label

    if training and training.get("base_model"):
        return training["base_model"]
    merge_info = Path(path) / "merge_info.json"
    if merge_info.is_file():
        info = json.loads(merge_info.read_text(encoding="utf-8"))
        return model_label(info["base"], Path(info.get("base_path") or info["base"]))
    return label


def choose_style(config: GenerateConfig, tokenizer: Any, training: dict[str, Any] | None) -> tuple[PromptStyle, str]:
    """The prompt style and why: `--prompt-style`; else the format the adapter or model was trained in;
    else chat for a tokenizer with a chat template; else the raw completion prompt."""
    bench = get_benchmark(config.benchmark)
    if config.prompt_style:
        return bench.style(config.prompt_style), "--prompt-style"
    trained = (training or {}).get("prompt_format")
    if trained:
        return bench.style(bench.default_style(chat_template=False, trained_format=trained)), (
            "the format it was trained in"
        )
    if tokenizer is None:
        return (
            bench.style(bench.default_style(chat_template=False)),
            "an endpoint's template is not known here: raw completion (--prompt-style chat to chat)",
        )
    chat = has_chat_template(tokenizer)
    reason = "its tokenizer has a chat template" if chat else "no chat template: raw completion"
    return bench.style(bench.default_style(chat_template=chat)), reason


def load_tokenizer(config: GenerateConfig, model: ModelInfo) -> Any:
    """The model's tokenizer, to render chat prompts; None for an OpenAI endpoint (it templates itself)."""
    if config.backend.kind == "openai":
        return None
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model.path)
