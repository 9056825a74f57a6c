"""The whole chain in one command: sources -> merged dataset -> tuned model -> the seeds' pass@k table.

    python -m main.pipeline --config scripts/configs/demo.yaml [section.key=value ...]

Shape: `setup` (config checked, model resolved, training config built: every mistake stops here,
before any stage) -> `plan` (the stages, each the command a user could run by hand) -> `run` (the
stages in order, resumable, see `main.flow.stages`) -> `main.flow.report` (report.md, plots,
provenance.json). Sources that fail (a hub that cannot be reached) or produce nothing are reported
and left out; the rest goes on.

    OUT/sources/NAME.jsonl        each source's records (+ .manifest.json)
    OUT/dataset/                  the merge: train/validation (Alpaca JSON + JSONL), manifest.json, report.md
    OUT/train/                    metrics.jsonl, loss.png, final/ (adapter or model + codecapy_training.json)
    OUT/eval/RUN-BENCH/           samples.jsonl (+ .meta.json), results.jsonl, metrics.json, report.md
    OUT/report/                   report.md, passk.png, loss.png, composition.png, provenance.json
    OUT/stages/, OUT/logs/        stage markers (fingerprints) and each command's output
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data_generation.common.paths import REPO_ROOT
from main.flow.config import (
    SOURCE_COMMANDS,
    PipelineConfig,
    PipelineConfigError,
    load_pipeline_config,
    pick_input,
)
from main.flow.stages import Runner, Stage, StageResult, python_module, torchrun

log = logging.getLogger("main.pipeline")
REPO = REPO_ROOT


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


def setup(argv: list[str] | None = None) -> Plan:
    parser = argparse.ArgumentParser(prog="python -m main.pipeline", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True, help="pipeline YAML (scripts/configs/demo.yaml)")
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="section.key=value",
        help="override any setting, e.g. evaluate.limit=0 train.max_steps=40",
    )
    args = parser.parse_args(argv)
    config = load_pipeline_config(args.config, args.overrides)
    out = Path(config.output_dir)
    label, identity = resolve_model(config.model)
    train = train_settings(config, out)
    train["run_name"] = run_names(label, config.name, train["mode"])["tuned"]
    return Plan(config, out, label, identity, train)


def resolve_model(model: str) -> tuple[str, dict[str, Any]]:
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


# ---------------------------------------------------------------- the stages


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
    mbpp = str(pick_input(merge.mbpp_path))
    command = python_module(
        "data_generation",
        "merge",
        *map(str, inputs),
        "--output-dir",
        str(dataset),
        "--mbpp-path",
        mbpp,
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
        inputs=[*inputs, *([Path(mbpp)] if Path(mbpp).exists() else [])],
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
    mbpp = str(pick_input(plan.config.merge.mbpp_path))
    args += ["--mbpp-path", mbpp] if benchmark == "mbpp" else []
    inputs = [plan.out / "train" / "final"] if run == "tuned" else []
    inputs += [Path(mbpp)] if benchmark == "mbpp" and Path(mbpp).exists() else []
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
    args = [str(folder / "samples.jsonl"), "--output-dir", str(folder), "--timeout", str(ev.timeout)]
    command = python_module(f"main.eval_{benchmark}", *args, *(["--n-workers", str(ev.workers)] if ev.workers else []))
    return Stage(
        f"evaluate:{run}:{benchmark}",
        command,
        key=python_module(f"main.eval_{benchmark}", *args),
        inputs=[folder / "samples.jsonl"],
        outputs=[folder / "metrics.json", folder / "results.jsonl"],
    )


# ---------------------------------------------------------------- running


def count_records(path: Path) -> int:
    if not path.is_file():
        return 0
    with open(path, encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip())


def run_sources(plan: Plan, runner: Runner, total: int) -> list[Path]:
    """Every enabled source; returns the outputs that hold records. Failures and empty sources are
    reported in one line each and left out."""
    used = []
    enabled = [n for n, s in plan.config.sources.items() if s.enabled]
    for i, name in enumerate(enabled, start=1):
        stage = source_stage(plan, name)
        result = runner.run(stage, i, total)
        plan.results.append(result)
        records = count_records(stage.outputs[0]) if result.status != "failed" else 0
        status = "failed" if result.status == "failed" else "used" if records else "empty"
        plan.sources[name] = {
            "status": status,
            "records": records,
            "output": str(stage.outputs[0]),
            "command": stage.command,
            **({"error": result.error} if result.error else {}),
        }
        if status == "failed":
            print(f"source {name} could not be used ({result.error}); going on without it", flush=True)
        elif status == "empty":
            print(f"source {name} produced no record; it is left out of the merge", flush=True)
        else:
            used.append(stage.outputs[0])
    for name, source in plan.config.sources.items():
        if not source.enabled:
            plan.sources[name] = {"status": "disabled", "records": 0}
    return used


def run(plan: Plan) -> int:
    runner = Runner(plan.out, REPO)
    runs = plan.config.evaluate.runs
    benchmarks = plan.config.evaluate.benchmarks
    enabled = sum(s.enabled for s in plan.config.sources.values())
    total = enabled + 2 + 2 * len(runs) * len(benchmarks)
    started = time.monotonic()
    used = run_sources(plan, runner, total)
    if not used:
        print("error: no source produced a record; nothing to merge (see the lines above)", file=sys.stderr)
        return 1
    stages = [merge_stage(plan, used), train_stage(plan)]
    stages += [s for run in runs for b in benchmarks for s in (sample_stage(plan, run, b), eval_stage(plan, run, b))]
    for i, stage in enumerate(stages, start=enabled + 1):
        result = runner.run(stage, i, total)
        plan.results.append(result)
        if result.status == "failed":
            print(
                f"error: stage {stage.name} failed: {result.error} (log: {runner.root / 'logs'}); re-run the "
                "same command to resume",
                file=sys.stderr,
            )
            return 1
    from main.flow.report import write_pipeline_report

    report = write_pipeline_report(plan, time.monotonic() - started)
    print_summary(plan, report)
    return 0


def print_summary(plan: Plan, report: Path) -> None:
    print(f"\n{report.read_text(encoding='utf-8').split('## Data')[0].rstrip()}\n", flush=True)
    out = plan.out
    print("where everything is:")
    for what, path in (
        ("report, plots, provenance", out / "report"),
        ("dataset", out / "dataset"),
        ("adapter / model", out / "train" / "final"),
        ("samples and verdicts", out / "eval"),
        ("source outputs", out / "sources"),
        ("logs", out / "logs"),
    ):
        print(f"  {what:<26} {path}")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        plan = setup(argv)
    except PipelineConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return run(plan)


if __name__ == "__main__":
    sys.exit(main())
