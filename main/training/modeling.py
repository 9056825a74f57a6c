"""Model and tokenizer loading for the three training modes, LoRA presets, and adapter checks.

- `full`: every weight trains; loaded in float32 (master weights; bf16/fp16 come from autocast or
  the FSDP/DeepSpeed mixed-precision settings), as Stanford Alpaca / CodeAlpaca did.
- `lora`: the base is frozen (kept in the compute dtype on GPU to halve its memory), peft LoRA on top;
  alpaca-lora / CodeCapybara's setting is r 8, alpha 16, dropout 0.05 on q_proj and v_proj.
- `qlora`: the frozen base is quantised by bitsandbytes (4-bit NF4 with double quantisation, or 8-bit)
  and LoRA trains on top. bitsandbytes 0.50 runs both on CPU too (slowly), which is how it is tested.

Adapters are checked after saving: alpaca-lora shipped 443-byte adapters because an overridden
`state_dict` made peft save nothing. `check_adapter` reads the file back and demands a lora_A and
lora_B tensor for every adapted module.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from data_generation.common.models import torch_dtype
from main.training.config import TrainConfig

log = logging.getLogger(__name__)

LORA_PRESETS: dict[str, list[str]] = {
    "llama-qv": ["q_proj", "v_proj"],  # alpaca-lora, CodeCapybara
    "llama-attn": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "llama-all": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],  # QLoRA paper
}
ADAPTER_WEIGHTS = "adapter_model.safetensors"


class AdapterError(RuntimeError):
    """A saved adapter that is empty or incomplete."""


def lora_target_modules(targets: str | list[str]) -> list[str]:
    if isinstance(targets, list):
        return list(targets)
    if targets in LORA_PRESETS:
        return list(LORA_PRESETS[targets])
    if targets == "all-linear":  # peft's own shortcut: every linear layer but the output head
        return ["all-linear"]
    raise ValueError(
        f"lora_targets={targets!r}: use a preset ({', '.join(LORA_PRESETS)}), 'all-linear', "
        "or a list of module names such as [q_proj, v_proj]"
    )


def compute_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The dtype matmuls run in (`precision` as `models.torch_dtype` reads it). On CPU, half precision
    is slower than float32 and fp16 has no kernels for everything, so CPU runs compute in float32
    whatever `precision` says."""
    if device.type == "cpu":
        return torch.float32
    return torch_dtype(precision, device)


def load_tokenizer(path: Path):
    from transformers import AutoTokenizer

    from main.training.data import prepare_tokenizer

    return prepare_tokenizer(AutoTokenizer.from_pretrained(str(path)))


def load_model(config: TrainConfig, path: Path, device: torch.device) -> torch.nn.Module:
    """The model to train, on `device` (FSDP/DeepSpeed move it themselves: pass cpu there)."""
    from transformers import AutoModelForCausalLM

    dtype = compute_dtype(config.precision, device)
    kwargs: dict[str, Any] = {}
    if config.mode == "full":
        kwargs["dtype"] = torch.float32
    elif config.mode == "lora":
        kwargs["dtype"] = dtype
    else:
        kwargs.update(
            dtype=dtype,
            quantization_config=_bnb_config(config.quant_bits, dtype),
            device_map={"": (device.index or 0) if device.type == "cuda" else "cpu"},
        )
    model = AutoModelForCausalLM.from_pretrained(str(path), **kwargs)
    model.config.use_cache = False  # no KV cache in training; also required for packing by position_ids
    if config.mode == "qlora":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=config.gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    elif config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if config.mode == "lora":
            model.enable_input_require_grads()  # frozen embeddings: checkpointed blocks need a grad input
    if config.mode != "full":
        model = add_lora(model, config)
    if config.mode != "qlora" and device.type != "meta":
        model.to(device)
    return model


def _bnb_config(bits: int, dtype: torch.dtype):
    from transformers import BitsAndBytesConfig

    if bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=dtype
    )


def add_lora(model: torch.nn.Module, config: TrainConfig) -> torch.nn.Module:
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=lora_target_modules(config.lora_targets),
        bias="none",
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)  # peft keeps the adapter weights in float32 (autocast_adapter_dtype)
    adapted = count_lora_modules(model)
    if adapted == 0:
        raise ValueError(f"lora_targets={config.lora_targets!r} matched no module of {type(model).__name__}")
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    log.info(
        "LoRA on %d modules: %d trainable of %d parameters (%.3f %%)",
        adapted,
        trainable,
        total,
        100 * trainable / max(total, 1),
    )
    return model


def count_lora_modules(model: torch.nn.Module) -> int:
    from peft.tuners.lora import LoraLayer

    return sum(isinstance(module, LoraLayer) for module in model.modules())


def save_adapter(model: torch.nn.Module, folder: Path, state_dict: dict[str, torch.Tensor] | None = None) -> None:
    """Save the peft adapter and verify what landed on disk (see `check_adapter`)."""
    model.save_pretrained(str(folder), state_dict=state_dict, safe_serialization=True)
    check_adapter(folder, expected_modules=count_lora_modules(model))


def check_adapter(folder: Path, expected_modules: int | None = None) -> dict[str, Any]:
    """Read a saved adapter back: a config, a weights file with lora_A/lora_B pairs, none empty.

    Returns a summary (tensors, parameters, bytes). With `expected_modules`, every adapted module must
    have both matrices: a partial save fails here instead of at evaluation time.
    """
    from safetensors import safe_open

    folder = Path(folder)
    weights, config_file = folder / ADAPTER_WEIGHTS, folder / "adapter_config.json"
    if not config_file.is_file() or not weights.is_file():
        raise AdapterError(f"{folder}: missing {config_file.name} or {weights.name}")
    with safe_open(str(weights), framework="pt") as handle:
        shapes = {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
    lora_a = [key for key in shapes if ".lora_A." in key]
    lora_b = [key for key in shapes if ".lora_B." in key]
    empty = [key for key, shape in shapes.items() if not shape or 0 in shape]
    size = weights.stat().st_size
    problem = None
    if not lora_a or len(lora_a) != len(lora_b):
        problem = f"{len(lora_a)} lora_A and {len(lora_b)} lora_B tensors"
    elif empty:
        problem = f"empty tensors {empty[:3]}"
    elif expected_modules is not None and len(lora_a) != expected_modules:
        problem = f"{len(lora_a)} adapted modules saved, the model has {expected_modules}"
    if problem:
        raise AdapterError(
            f"{weights} ({size} bytes) is not a usable LoRA adapter: {problem}. An overridden "
            "model.state_dict (alpaca-lora's bug) or a ZeRO-3 save without gathering does this"
        )
    params = sum(_numel(shape) for shape in shapes.values())
    r = json.loads(config_file.read_text(encoding="utf-8")).get("r")
    return {"tensors": len(shapes), "modules": len(lora_a), "parameters": params, "bytes": size, "r": r}


def _numel(shape: tuple[int, ...]) -> int:
    count = 1
    for dim in shape:
        count *= dim
    return count
