"""The pipeline's configuration: one YAML file plus `section.key=value` overrides, checked before any stage runs.

    name: demo
    output_dir: data/out/demo
    model: embedded                   # the base model every stage uses (folder, hub id or `embedded`)
    sources:                          # each a `python -m data_generation NAME` command
      self_instruct: {teacher: local, args: [--num-instructions, "24"]}
      codealpaca: {input: [../shared/data/code_alpaca/code_alpaca_2k.json, sahil2801/CodeAlpaca-20k]}
    merge: {mbpp_path: [../shared/data/mbpp/mbpp.jsonl, google-research-datasets/mbpp]}
    train: {preset: scripts/configs/cpu_smollm2.yaml, max_steps: 20}   # any main.train key
    evaluate: {benchmarks: [humaneval, mbpp], limit: 20}

A mistake stops the run before anything starts, with the file (or the override), the key, what is
valid and the nearest valid key: `demo.yaml: train.max_step: unknown key; did you mean max_steps?`.
Inputs given as a list are candidates: the first local path that exists, else the first hub id.
"""

from __future__ import annotations

import dataclasses
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from data_generation.common.benchmarks import BENCHMARKS
from main.training.config import ConfigError, TrainConfig, coerce_value, nearest

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# Source kinds: the data_generation command each runs and what it needs.
SOURCE_COMMANDS = {
    "self_instruct": "self-instruct",
    "reverse_instruct": "reverse-instruct",
    "codealpaca": "codealpaca",
    "codecontests": "codecontests",
}
LLM_SOURCES = ("self_instruct", "reverse_instruct")
TEACHERS = ("local", "openai")
RUNS = ("base", "tuned")
# main.train keys the pipeline sets itself: the data comes from the merge, the model from `model`.
PIPELINE_OWNED = ("train_data", "val_data", "output_dir", "model", "resume", "save_final", "run_name")


class PipelineConfigError(ValueError):
    """A configuration that cannot run; the message names where, the key, and what is valid."""


@dataclass
class SourceConfig:
    enabled: bool = True
    input: list[str] = field(default_factory=list)  # codealpaca / codecontests: candidate files or hub ids
    teacher: str = ""  # self_instruct / reverse_instruct: local (embedded or a folder) or openai
    teacher_model: str = ""  # local: a folder or hub id (default: the embedded SmolLM2); openai: served model
    base_url: str = ""  # openai: the endpoint (default $OPENAI_BASE_URL)
    args: list[str] = field(default_factory=list)  # more options for the source command, verbatim


@dataclass
class MergeConfig:
    mbpp_path: list[str] = field(
        default_factory=lambda: ["../shared/data/mbpp/mbpp.jsonl", "google-research-datasets/mbpp"]
    )
    validation_size: float = 0.02
    args: list[str] = field(default_factory=list)


@dataclass
class EvaluateConfig:
    benchmarks: list[str] = field(default_factory=lambda: ["humaneval", "mbpp"])
    runs: list[str] = field(default_factory=lambda: list(RUNS))  # base and/or tuned
    prompt_styles: list[str] = field(default_factory=list)  # e.g. [humaneval-completion]; default: from the model
    limit: int = 0  # first N tasks of each benchmark; 0 = the full benchmark
    num_samples: int = 1  # n per task; 1 = greedy pass@1, else sampled at `temperature`
    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 0
    max_new_tokens: int = 512
    batch_size: int = 16
    nproc: int = 1  # torchrun processes for sampling
    threads: int = 0  # torch threads per sampling process; 0 = torch's default
    timeout: float = 3.0  # CPU seconds per sample in the sandbox
    workers: int = 0  # sandbox workers; 0 = one per CPU
    args: list[str] = field(default_factory=list)  # more main.generate options, verbatim


@dataclass
class PipelineConfig:
    name: str = "pipeline"
    output_dir: str = "data/out/pipeline"
    model: str = "embedded"
    sources: dict[str, SourceConfig] = field(default_factory=dict)
    merge: MergeConfig = field(default_factory=MergeConfig)
    train: dict[str, Any] = field(default_factory=dict)  # `preset`, `nproc` and any main.train key
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Origins(dict):
    """Where each setting came from: the config file, or the command-line override that set it."""

    def of(self, dotted: str) -> str:
        parts = dotted.split(".")
        for end in range(len(parts), 0, -1):
            found = self.get(".".join(parts[:end]))
            if found:
                return found
        return self["*"]


def _fail(where: Origins, key: str, message: str) -> PipelineConfigError:
    return PipelineConfigError(f"{where.of(key)}: {key}: {message}")


def _unknown(where: Origins, path: str, key: str, valid: typing.Iterable[str]) -> PipelineConfigError:
    valid = sorted(valid)
    return _fail(where, f"{path}{key}", f"unknown key{nearest(key, valid)}; valid keys: {', '.join(valid)}")


def _coerce(where: Origins, key: str, value: Any, kind: Any) -> Any:
    """YAML value -> the field's type, as main.train coerces its keys; a single string where a list is
    expected becomes a one-item list."""
    if typing.get_origin(kind) is list:
        items = value if isinstance(value, list) else [value] if value not in (None, "") else []
        return [str(v) for v in items]
    try:
        return coerce_value(key, value, kind)
    except ConfigError as exc:
        raise _fail(where, key, str(exc).split(": ", 1)[-1]) from None


def _fill(cls: type, values: Any, where: Origins, path: str) -> Any:
    if not isinstance(values, dict):
        raise _fail(where, path.rstrip(".") or "(top)", f"expected a mapping of key: value, got {values!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    out = {}
    for key, value in values.items():
        if key not in names:
            raise _unknown(where, path, str(key), names)
        out[key] = _coerce(where, f"{path}{key}", value, hints[key])
    return cls(**out)


def _train_section(values: Any, where: Origins) -> dict[str, Any]:
    """`preset`, `nproc` and main.train keys, each checked (type, allowed values) where it was given."""
    from main.training.config import validate as validate_train

    if not isinstance(values, dict):
        raise _fail(where, "train", f"expected a mapping of key: value, got {values!r}")
    hints = {**typing.get_type_hints(TrainConfig), "preset": str, "nproc": int}
    out = {}
    for key, value in values.items():
        if key in PIPELINE_OWNED:
            raise _fail(
                where,
                f"train.{key}",
                "set by the pipeline (the merged dataset, the top-level `model`, "
                "its own output folder and run name): remove it here",
            )
        if key not in hints:
            raise _unknown(where, "train.", str(key), set(hints) - set(PIPELINE_OWNED))
        out[key] = _coerce(where, f"train.{key}", value, hints[key])
        if key == "nproc" and out[key] < 1:
            raise _fail(where, "train.nproc", f"must be >= 1, got {out[key]}")
        if key not in ("preset", "nproc"):
            try:  # the allowed values of this key alone (the whole config is checked with its preset later)
                validate_train(dataclasses.replace(TrainConfig(), **{key: out[key]}))
            except ConfigError as exc:
                if str(exc).startswith(f"{key}="):
                    raise _fail(where, f"train.{key}", str(exc)) from None
    return out


def build_config(values: dict[str, Any], where: Origins) -> PipelineConfig:
    """Values (the YAML with overrides applied) -> a checked config. `where` says which file or
    override each setting came from, for messages."""
    top = {f.name for f in dataclasses.fields(PipelineConfig)}
    for key in values:
        if key not in top:
            raise _unknown(where, "", str(key), top)
    config = PipelineConfig(
        **{k: _coerce(where, k, values[k], str) for k in ("name", "output_dir", "model") if k in values}
    )
    sources = values.get("sources") or {}
    if not isinstance(sources, dict):
        raise _fail(where, "sources", "expected a mapping of source name: settings")
    for name, settings in sources.items():
        if name not in SOURCE_COMMANDS:
            raise _unknown(where, "sources.", str(name), SOURCE_COMMANDS)
        config.sources[name] = _fill(SourceConfig, settings or {}, where, f"sources.{name}.")
    if "merge" in values:
        config.merge = _fill(MergeConfig, values["merge"], where, "merge.")
    if "evaluate" in values:
        config.evaluate = _fill(EvaluateConfig, values["evaluate"], where, "evaluate.")
    if "train" in values:
        config.train = _train_section(values["train"], where)
    validate(config, where)
    return config


def _apply_override(values: dict[str, Any], item: str, where: Origins) -> None:
    """`section.key=value` (value parsed as YAML) into the nested values."""
    dotted, sep, raw = item.partition("=")
    if not sep or not dotted.strip():
        raise PipelineConfigError(f"command-line override {item!r}: not key=value (e.g. train.max_steps=10)")
    keys = dotted.strip().split(".")
    node = values
    for key in keys[:-1]:
        if node.get(key) is None:  # `codecontests:` with no settings is an empty section
            node[key] = {}
        node = node[key]
        if not isinstance(node, dict):
            raise PipelineConfigError(f"command-line override {item!r}: {key} is not a section")
    node[keys[-1]] = yaml.safe_load(raw) if raw.strip() else ""
    where[".".join(keys)] = f"command-line override {item!r}"


def load_pipeline_config(path: str | Path | None, overrides: typing.Sequence[str] = ()) -> PipelineConfig:
    where = Origins({"*": str(path) if path else "defaults"})
    values: dict[str, Any] = {}
    if path is not None:
        if not Path(path).is_file():
            raise PipelineConfigError(f"{path}: no such config file")
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise PipelineConfigError(f"{path}: expected a mapping of key: value, got {type(loaded).__name__}")
        values.update(loaded)
    for item in overrides:
        _apply_override(values, item, where)
    return build_config(values, where)


# ---------------------------------------------------------------- checks that need no stage


def pick_input(candidates: typing.Sequence[str]) -> str | None:
    """The first candidate that is a local file or folder, else the first hub id, else None."""
    for item in candidates:
        if Path(item).exists():
            return item
    return next((item for item in candidates if HUB_ID.match(item) and not item.startswith(".")), None)


def validate(config: PipelineConfig, where: Origins) -> None:
    if not config.sources or not any(s.enabled for s in config.sources.values()):
        raise _fail(where, "sources", f"enable at least one of {', '.join(SOURCE_COMMANDS)}")
    for name, source in config.sources.items():
        _validate_source(name, source, where)
    if config.merge.validation_size <= 0:
        raise _fail(
            where,
            "merge.validation_size",
            "must be > 0 (a fraction or a count): the report measures the "
            "validation loss before and after training on it",
        )
    if pick_input(config.merge.mbpp_path) is None:
        raise _fail(where, "merge.mbpp_path", f"none of {config.merge.mbpp_path} exists (and none is a hub id)")
    preset = config.train.get("preset")
    if preset and not Path(str(preset)).is_file():
        raise _fail(where, "train.preset", f"no such file {preset} (presets live in scripts/configs/)")
    ev = config.evaluate
    bad = [b for b in ev.benchmarks if b not in BENCHMARKS]
    if bad or not ev.benchmarks:
        names = tuple(BENCHMARKS)
        raise _fail(
            where,
            "evaluate.benchmarks",
            f"{bad or 'empty'}; choose from {', '.join(names)}{nearest(bad[0], names) if bad else ''}",
        )
    bad_runs = [r for r in ev.runs if r not in RUNS]
    if bad_runs or not ev.runs:
        raise _fail(where, "evaluate.runs", f"{bad_runs or 'empty'}; choose from {', '.join(RUNS)}")
    from data_generation.common.benchmarks.styles import STYLES

    for style in ev.prompt_styles:
        if style not in STYLES:
            raise _fail(
                where, "evaluate.prompt_styles", f"{style!r}{nearest(style, STYLES)}; choose from {', '.join(STYLES)}"
            )
    for key in ("num_samples", "max_new_tokens", "batch_size", "nproc"):
        if getattr(ev, key) < 1:
            raise _fail(where, f"evaluate.{key}", f"must be >= 1, got {getattr(ev, key)}")
    if ev.limit < 0 or ev.threads < 0 or ev.workers < 0 or ev.top_k < 0 or ev.timeout <= 0:
        raise _fail(where, "evaluate", "limit, threads, workers and top_k must be >= 0 and timeout > 0")


def _validate_source(name: str, source: SourceConfig, where: Origins) -> None:
    key = f"sources.{name}"
    if not source.enabled:  # its keys were checked; what it would need is not
        return
    if name in LLM_SOURCES:
        if source.input:
            raise _fail(
                where,
                f"{key}.input",
                f"{name} makes its own data from a teacher; pass its input "
                "options (--paths, --seed-tasks, ...) in args",
            )
        if not source.teacher:
            raise _fail(
                where,
                f"{key}.teacher",
                f"{name} needs a teacher: `teacher: local` (the embedded "
                "SmolLM2, or teacher_model: a folder) or `teacher: openai` with base_url and teacher_model",
            )
        if source.teacher not in TEACHERS:
            raise _fail(
                where,
                f"{key}.teacher",
                f"{source.teacher!r}; choose from {', '.join(TEACHERS)}{nearest(source.teacher, TEACHERS)}",
            )
        if source.teacher == "openai":
            if not (source.base_url or os.environ.get("OPENAI_BASE_URL")):
                raise _fail(
                    where, f"{key}.base_url", "teacher: openai needs the endpoint (base_url, or $OPENAI_BASE_URL)"
                )
            if not (source.teacher_model or os.environ.get("OPENAI_MODEL")):
                raise _fail(
                    where,
                    f"{key}.teacher_model",
                    "teacher: openai needs the served model name (teacher_model, or $OPENAI_MODEL)",
                )
        return
    if source.teacher or source.teacher_model or source.base_url:
        raise _fail(where, f"{key}.teacher", f"{name} reads a dataset and uses no teacher")
    if not source.input:
        raise _fail(
            where,
            f"{key}.input",
            "give the dataset: a local file or folder, or a hub id (a list: the first that exists)",
        )
    if pick_input(source.input) is None:
        raise _fail(where, f"{key}.input", f"none of {source.input} exists, and none is a hub id")
