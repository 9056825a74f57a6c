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
import logging
import sys
import time
from pathlib import Path

from data_generation.common.command import run_command, setup_logging
from data_generation.common.output_lock import output_lock
from data_generation.common.paths import REPO_ROOT
from main.flow.config import PipelineConfigError, load_pipeline_config
from main.flow.plan import (
    Plan,
    eval_stage,
    merge_stage,
    resolve_base_model,
    run_names,
    sample_stage,
    source_stage,
    train_settings,
    train_stage,
)
from main.flow.stages import Runner

log = logging.getLogger("main.pipeline")


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
    label, identity = resolve_base_model(config.model)
    train = train_settings(config, out)
    train["run_name"] = run_names(label, config.name, train["mode"])["tuned"]
    return Plan(config, out, label, identity, train)


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
    """Run the stages, holding the run folder's lock (`OUT.lock`) throughout: a second pipeline on the
    same folder stops at once with exit 75 before it looks at a stage marker. Each stage's command
    takes its own lock on its own output as well."""
    with output_lock(plan.out):
        return run_stages(plan)


def run_stages(plan: Plan) -> int:
    runner = Runner(plan.out, REPO_ROOT)
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
    setup_logging()
    return run_command(lambda: run(setup(argv)), bad_input=(PipelineConfigError,))


if __name__ == "__main__":
    sys.exit(main())
