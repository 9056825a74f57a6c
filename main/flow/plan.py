"""The pipeline's plan: what `main.pipeline`'s setup resolved, and the stages it runs, each the command a user
could run by hand (`main.flow.stages` runs them; `main.flow.report` reads the plan to write the report)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data_generation.common.benchmarks import BENCHMARKS
from main.flow.config import SOURCE_COMMANDS, PipelineConfig, PipelineConfigError, pick_input
from main.flow.stages import Stage, StageResult, python_module, torchrun


@dataclass
class Plan:
    """What `setup` resolved: the config, where outputs go, the model's one name, the training config."""

    config: PipelineConfig
    out: Path
    model_label: str
    model_identity: dict[str, Any]  # the base weights' fingerprint: work made with other weights is redone
    train: dict[str, Any]  # the resolved main.train config (preset + overrides + what the pipeline sets)
    results: list[StageResult] = field(default_factory=list)
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> status, records, output

    @property
    def tuned_is_adapter(self) -> bool:
        return self.train["mode"] != "full"


def resolve_base_model(model: str) -> tuple[str, dict[str, Any]]:
    """The base model's one name and its weights' fingerprint; resolving it now fails early on a model
    that cannot be loaded."""
    from data_generation.common.models import (
        ModelResolutionError,
        model_fingerprint,
        model_label,
        resolve_model_spec,
    )

    try:
        path = resolve_model_spec(model)
    except ModelResolutionError as exc:
        raise PipelineConfigError(f"model: {exc}") from None
    return model_label(model, path), model_fingerprint(path)


def train_settings(config: PipelineConfig, out: Path) -> dict[str, Any]:
    """The main.train config: the preset, the `train:` keys, then what the pipeline owns; checked now."""
    from main.training.config import ConfigError, load_config

    settings = {k: v for k, v in config.train.items() if k not in ("preset", "nproc")}
    dataset = out / "dataset"
    owned = {
        "model": config.model,
        "train_data": str(dataset / "train.jsonl"),
        "val_data": str(dataset / "validation.jsonl"),
        "output_dir": str(out / "train"),
        "resume": "auto",
        "save_final": True,
    }
    overrides = [f"{k}={json.dumps(v)}" for k, v in {**settings, **owned}.items()]
    try:
        return load_config(config.train.get("preset"), overrides).to_dict()
    except ConfigError as exc:
        raise PipelineConfigError(f"train: {exc}") from None


def source_stage(plan: Plan, name: str) -> Stage:
    source = plan.config.sources[name]
    output = plan.out / "sources" / f"{name}.jsonl"
    args = ["--output", str(output)]
    inputs: list[Path] = []
    if source.input:
        chosen = str(pick_input(source.input))
        args += ["--input", chosen]
        inputs += [Path(chosen)] if Path(chosen).exists() else []  # a hub id is named in the command
    if source.teacher:
        args += ["--teacher", source.teacher]
        args += ["--model", source.teacher_model] if source.teacher_model else []
        args += ["--base-url", source.base_url] if source.base_url else []
    side = [output.with_name(output.name + ".manifest.json"), output.with_suffix(".rejects.jsonl")]
    return Stage(
        f"source:{name}",
        python_module("data_generation", SOURCE_COMMANDS[name], *args, *source.args),
        inputs=inputs,
        outputs=[output],
        clean=[output, *side],
        optional=True,
    )


def merge_stage(plan: Plan, inputs: list[Path]) -> Stage:
    merge = plan.config.merge
    dataset = plan.out / "dataset"
    sources = benchmark_sources(plan)
    data = [arg for name, source in sources.items() for arg in (BENCHMARKS[name].path_flag, source)]
    command = python_module(
        "data_generation",
        "merge",
        "--input",
        *map(str, inputs),
        "--output-dir",
        str(dataset),
        *data,
        "--validation-size",
        str(merge.validation_size),
        "--formats",
        "json,jsonl",
        "--overwrite",
        *merge.args,
    )
    files = [dataset / n for n in ("train.jsonl", "validation.jsonl", "manifest.json")]
    return Stage(
        "merge",
        command,
        inputs=[*inputs, *(Path(s) for s in sources.values() if Path(s).exists())],
        outputs=files,
        clean=[dataset],
    )


def train_stage(plan: Plan) -> Stage:
    """main.train with the resolved config, written to OUT/train.yaml (the preset, the `train:` keys and
    the merged data in one file a user can re-run)."""
    from main.training.config import make_config, save_config

    dataset = plan.out / "dataset"
    config_path = plan.out / "train.yaml"
    plan.out.mkdir(parents=True, exist_ok=True)
    save_config(make_config(plan.train), config_path)
    command = torchrun(int(plan.config.train.get("nproc", 1)), "main.train", "--config", str(config_path))
    return Stage(
        "train",
        command,
        inputs=[config_path, dataset / "train.jsonl", dataset / "validation.jsonl"],
        outputs=[plan.out / "train" / "final"],
        clean=[plan.out / "train"],
        settings={"base_weights": plan.model_identity},
    )


def tuned_model(plan: Plan) -> list[str]:
    final = plan.out / "train" / "final"
    return ["--model", plan.config.model, "--adapter", str(final)] if plan.tuned_is_adapter else ["--model", str(final)]


def short_name(label: str) -> str:
    """`org/Name+gguf-...@pkg` -> `Name`: the model as report rows and plot titles name it."""
    return label.split("/")[-1].split("+")[0]


def run_names(label: str, name: str, mode: str) -> dict[str, str]:
    kind = {"lora": "LoRA", "qlora": "QLoRA", "full": "full fine-tune"}[mode]
    return {"base": f"{short_name(label)} (base)", "tuned": f"{short_name(label)} + {name} {kind}"}


def eval_folder(out: Path, run: str, benchmark: str) -> Path:
    return out / "eval" / f"{run}-{benchmark}"


def without(args: list[str], options: tuple[str, ...]) -> list[str]:
    """`args` minus the given options and their values (they do not change what a command produces)."""
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in options:
            skip = True
        else:
            out.append(arg)
    return out


def benchmark_sources(plan: Plan) -> dict[str, str]:
    """Where a benchmark's problems come from when the config names the place (the others use their
    default): the MBPP file the merge decontaminates against is the one sampled and evaluated."""
    return {"mbpp": str(pick_input(plan.config.merge.mbpp_path))}


def sample_stage(plan: Plan, run: str, benchmark: str) -> Stage:
    ev = plan.config.evaluate
    samples = eval_folder(plan.out, run, benchmark) / "samples.jsonl"
    model = ["--model", plan.config.model] if run == "base" else tuned_model(plan)
    name = run_names(plan.model_label, plan.config.name, plan.train["mode"])[run]
    args = [
        "--benchmark",
        benchmark,
        *model,
        "--run-name",
        name,
        "--output",
        str(samples),
        "--max-new-tokens",
        str(ev.max_new_tokens),
        "--batch-size",
        str(ev.batch_size),
        "--num-samples",
        str(ev.num_samples),
    ]
    args += (
        ["--greedy"]
        if ev.num_samples == 1
        else ["--temperature", str(ev.temperature), "--top-p", str(ev.top_p), "--top-k", str(ev.top_k)]
    )
    style = next((s for s in ev.prompt_styles if s.startswith(f"{benchmark}-")), None)
    args += ["--prompt-style", style] if style else []
    args += ["--limit", str(ev.limit)] if ev.limit else []
    args += ["--threads", str(ev.threads)] if ev.threads else []
    source = benchmark_sources(plan).get(benchmark)
    args += [BENCHMARKS[benchmark].path_flag, source] if source else []
    inputs = [plan.out / "train" / "final"] if run == "tuned" else []
    inputs += [Path(source)] if source and Path(source).exists() else []
    side = [samples.with_name(samples.name + ".meta.json"), samples.with_name(samples.name + ".shards")]
    # Samples do not depend on the batch size, the threads or the process count (main.generate resumes
    # across them), so changing those continues the stage instead of redoing it.
    key = python_module("main.generate", *without([*args, *ev.args], ("--batch-size", "--threads")))
    return Stage(
        f"sample:{run}:{benchmark}",
        torchrun(ev.nproc, "main.generate", *args, *ev.args),
        key=key,
        inputs=inputs,
        outputs=[samples],
        clean=[samples, *side],
        settings={"base_weights": plan.model_identity},
    )


def eval_stage(plan: Plan, run: str, benchmark: str) -> Stage:
    ev = plan.config.evaluate
    folder = eval_folder(plan.out, run, benchmark)
    args = ["--input", str(folder / "samples.jsonl"), "--output-dir", str(folder), "--timeout", str(ev.timeout)]
    args = ["--benchmark", benchmark, *args]
    command = python_module("main.evaluate", *args, *(["--n-workers", str(ev.workers)] if ev.workers else []))
    return Stage(
        f"evaluate:{run}:{benchmark}",
        command,
        key=python_module("main.evaluate", *args),
        inputs=[folder / "samples.jsonl"],
        outputs=[folder / "metrics.json", folder / "results.jsonl"],
    )
