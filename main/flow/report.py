"""The pipeline's report: the seeds' tables, plots, and one provenance.json that chains every number to its inputs.

OUT/report/report.md        pass@k tables (base vs tuned, per benchmark), the per-source data table,
                            training (validation loss before/after), the stages and their times
OUT/report/passk.png        pass@k curves of every run
OUT/report/loss.png         the training loss curve
OUT/report/composition.png  the merged dataset by source and by language
OUT/report/provenance.json  dataset manifest (sha256) -> training config + data fingerprint ->
                            adapter (sha256) -> sampling fingerprint -> metrics, with the checks that
                            each link holds (the adapter evaluated is the one trained on this dataset)
"""

from __future__ import annotations

import json
import platform
import shutil
import time
from pathlib import Path
from typing import Any

from data_generation.common.io import atomic_path
from data_generation.common.provenance import file_sha256, fingerprint, package_versions
from main.evaluation.report import benchmark_tables, details, load_run, plot
from main.flow.config import SOURCE_COMMANDS
from main.flow.plan import Plan, eval_folder, short_name
from main.flow.stages import describe
from main.training.config import make_config

SOURCE_LABELS = {
    "self_instruct": "Self-instruct",
    "reverse_instruct": "Reverse instruction (only instruction generation)",
    "codealpaca": "CodeAlpaca",
    "codecontests": "DeepMind's Code Contests",
}


def write_pipeline_report(plan: Plan, seconds: float) -> Path:
    folder = plan.out / "report"
    folder.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((plan.out / "dataset" / "manifest.json").read_text(encoding="utf-8"))
    training = json.loads((plan.out / "train" / "final" / "codecapy_training.json").read_text(encoding="utf-8"))
    runs = [(path.name, load_run(path)) for path in eval_folders(plan)]
    plot(runs, folder / "passk.png")
    _loss_plot(plan, folder)
    composition_plot(manifest, folder / "composition.png")
    provenance = build_provenance(plan, manifest, training, runs, seconds)
    with atomic_path(folder / "provenance.json") as tmp:
        tmp.write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")
    path = folder / "report.md"
    with atomic_path(path) as tmp:
        tmp.write_text(render(plan, manifest, training, runs, provenance, seconds), encoding="utf-8")
    return path


def eval_folders(plan: Plan) -> list[Path]:
    return [
        eval_folder(plan.out, run, bench)
        for bench in plan.config.evaluate.benchmarks
        for run in plan.config.evaluate.runs
    ]


def _loss_plot(plan: Plan, folder: Path) -> None:
    from main.training.metrics import plot_loss_curve

    metrics = plan.out / "train" / "metrics.jsonl"
    if metrics.is_file():
        plot_loss_curve(
            metrics,
            folder / "loss.png",
            title=f"{plan.config.name}: {plan.train['mode']} {short_name(plan.model_label)}",
        )
    elif (plan.out / "train" / "loss.png").is_file():
        shutil.copy(plan.out / "train" / "loss.png", folder / "loss.png")


def composition_plot(manifest: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per_source = {s: v["kept"] for s, v in manifest["per_source"].items() if v["kept"]}
    languages = list(manifest["per_language"].items())[:10]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    left.barh(list(per_source), list(per_source.values()), color="#4477aa")
    left.set_xscale("log")
    left.set_title("records kept per source")
    for i, v in enumerate(per_source.values()):
        left.text(v, i, f" {v:,}", va="center", fontsize="small")
    right.barh([k for k, _ in languages], [v for _, v in languages], color="#66aa55")
    right.set_xscale("log")
    right.set_title("records per language (top 10)")
    for ax in (left, right):
        ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------- provenance


def _stage_outputs(plan: Plan) -> dict[str, str]:
    outputs: dict[str, str] = {}
    for result in plan.results:
        outputs.update(result.outputs)
    return outputs


def build_provenance(
    plan: Plan,
    manifest: dict[str, Any],
    training: dict[str, Any],
    runs: list[tuple[str, dict[str, Any]]],
    seconds: float,
) -> dict[str, Any]:
    outputs = _stage_outputs(plan)
    data = _dataset_record(plan, manifest)
    evaluations = [_evaluation(name, m, outputs) for name, m in runs]
    return {
        "pipeline": {
            "name": plan.config.name,
            "config": plan.config.to_dict(),
            "config_fingerprint": fingerprint(plan.config.to_dict()),
            "model": plan.model_label,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "wall_seconds": round(seconds, 1),
            "machine": _machine(),
            "versions": package_versions(),
        },
        "sources": plan.sources,
        "dataset": data,
        "training": _training_record(plan, training),
        "evaluations": evaluations,
        "stages": describe(plan.results),
        "checks": _lineage_checks(plan, data, training, evaluations, outputs),
    }


def _dataset_record(plan: Plan, manifest: dict[str, Any]) -> dict[str, Any]:
    dataset = plan.out / "dataset"

    def hashed(name: str) -> dict[str, str]:
        return {"path": str(dataset / name), "sha256": file_sha256(str(dataset / name))}

    return {
        "manifest": str(dataset / "manifest.json"),
        "manifest_sha256": file_sha256(str(dataset / "manifest.json")),
        "config_fingerprint": manifest["config_fingerprint"],
        "train": hashed("train.jsonl"),
        "validation": hashed("validation.jsonl"),
        "inputs": [{"path": i["path"], "sha256": i["sha256"], "rows": i["rows"]} for i in manifest["inputs"]],
        "counts": manifest["counts"],
    }


def _training_record(plan: Plan, training: dict[str, Any]) -> dict[str, Any]:
    keys = ("config_fingerprint", "data_fingerprint", "train_data", "prompt_format", "base_model", "mode", "val_loss")
    return {
        "config": str(plan.out / "train.yaml"),
        **{key: training[key] for key in keys},
        "weights": str(plan.out / "train" / "final"),
        "weights_sha256": training["weights_sha256"],
    }


def _lineage_checks(
    plan: Plan,
    data: dict[str, Any],
    training: dict[str, Any],
    evaluations: list[dict[str, Any]],
    outputs: dict[str, str],
) -> dict[str, bool | None]:
    """Each link of the chain sources -> dataset -> weights -> samples -> metrics, checked by hash; None
    where a link does not apply (no run of that kind was evaluated)."""
    tuned = [e for e in evaluations if e["run"] == "tuned"]
    base = [e for e in evaluations if e["run"] == "base"]
    trained_on = training["train_data"]
    return {
        "the training data is this merge's train split": trained_on.get("sha256") == data["train"]["sha256"],
        "the training data's manifest is this merge's manifest": trained_on.get("manifest", {}).get("sha256")
        == data["manifest_sha256"],
        "every source the merge read is a source output of this run": {i["sha256"] for i in data["inputs"]}
        <= set(outputs.values()),
        "the weights were trained with this pipeline's training config": training["config_fingerprint"]
        == fingerprint(make_config(plan.train).to_dict()),
        "the weights were tuned from this pipeline's base model": training["base_model"] == plan.model_label,
        "the tuned runs sampled, hashed afresh, the weights this training wrote": (
            all(e["weights_sha256"] == training["weights_sha256"] for e in tuned) if tuned else None
        ),
        "the tuned and base runs name the same base checkpoint": (
            len({e["base_checkpoint"] for e in evaluations} | {plan.model_label}) == 1 if evaluations else None
        ),
        "the base runs sampled this pipeline's base model": (
            all(e["model"] == plan.model_label and not e["adapter"] for e in base) if base else None
        ),
        "every metrics file evaluated the samples this run generated": all(
            e["samples_sha256_matches"] for e in evaluations
        ),
    }


def _evaluation(name: str, metrics: dict[str, Any], outputs: dict[str, str]) -> dict[str, Any]:
    fp = metrics["fingerprint"] if isinstance(metrics.get("fingerprint"), dict) else {}
    samples = metrics["samples"]
    meta = Path(samples["path"] + ".meta.json")
    return {
        "run": name.split("-")[0],
        "folder": name,
        "benchmark": metrics["benchmark"],
        "run_name": fp.get("run_name"),
        "model": fp.get("model"),
        "adapter": fp.get("adapter"),
        "adapter_sha256": fp.get("adapter_sha256"),
        "weights_sha256": fp.get("weights_sha256"),
        "base_checkpoint": fp.get("base_checkpoint"),
        "prompt_style": fp.get("prompt_style"),
        "decoding": fp.get("decoding"),
        "tasks": metrics["num_tasks"],
        "subset": (fp.get("dataset") or {}).get("subset"),
        "sampling_fingerprint": fingerprint({k: v for k, v in fp.items() if k not in ("rank0_stats", "backend")}),
        "samples": samples["path"],
        "samples_sha256": samples["sha256"],
        "samples_sha256_matches": outputs.get(samples["path"]) == samples["sha256"],
        "samples_meta_sha256": file_sha256(str(meta)) if meta.is_file() else None,
        "metrics": str(Path(samples["path"]).parent / "metrics.json"),
        "metrics_sha256": file_sha256(str(Path(samples["path"]).parent / "metrics.json")),
        **{k: v for k, v in metrics.items() if k.startswith("pass@")},
        "empty": metrics.get("empty"),
    }


def _machine() -> dict[str, Any]:
    import os

    return {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()}


# ---------------------------------------------------------------- report.md


def render(
    plan: Plan,
    manifest: dict[str, Any],
    training: dict[str, Any],
    runs: list[tuple[str, dict[str, Any]]],
    provenance: dict[str, Any],
    seconds: float,
) -> str:
    machine = provenance["pipeline"]["machine"]
    skipped = sum(r.status == "skipped" for r in plan.results)
    stage_minutes = sum(r.seconds for r in plan.results) / 60
    timing = (
        f"{seconds / 60:.1f} min for the whole flow"
        if not skipped
        else f"{seconds / 60:.1f} min for this run ({skipped} of {len(plan.results)} stages were up to date); the "
        f"stages took {stage_minutes:.1f} min when they ran"
    )
    lines = [
        f"# codecapy: {plan.config.name}",
        "",
        f"{time.strftime('%Y-%m-%d')}, {machine['cpus']} CPUs, {timing}. Base model `{plan.model_label}`; "
        "every number below chains to its inputs in `provenance.json`.",
        "",
    ]
    lines += benchmark_tables(runs, heading="## pass@k:", with_details=False)
    lines += ["![pass@k](passk.png)", ""]
    lines += data_table(plan, manifest) + training_section(training, plan.out / "train")
    lines += run_details(runs)
    marks = {True: "✓", False: "✗ FAILED", None: "– (no such run)"}
    lines += ["## Provenance checks", ""] + [f"- {marks[ok]} {what}" for what, ok in provenance["checks"].items()]
    lines += ["", "## Stages", "", "| stage | status | seconds (when it ran) |", "|---|---|---:|"]
    lines += [f"| {r.name} | {r.status} | {r.seconds:.0f} |" for r in plan.results] + [""]
    return "\n".join(lines)


def data_table(plan: Plan, manifest: dict[str, Any]) -> list[str]:
    """The seeds' "Data source | No. samples" table over what the merge kept, and what was left out."""
    per_source = manifest["per_source"]
    rows = ["## Data", "", "| Data source | No. samples |", "|-|-|"]
    for name, info in plan.sources.items():
        kept = per_source.get(SOURCE_COMMANDS[name], {}).get("kept", 0)
        if info["status"] == "used":
            rows.append(f"| {SOURCE_LABELS[name]} | {kept:,} |")
    rows.append(f"| **Total** | **{manifest['counts']['kept']:,}** |")
    rows.append("")
    skipped = [
        f"{SOURCE_LABELS[n]} ({i['status']}{': ' + i['error'] if i.get('error') else ''})"
        for n, i in plan.sources.items()
        if i["status"] != "used"
    ]
    counts = manifest["counts"]
    dropped = ", ".join(f"{k} {v}" for k, v in counts["dropped"].items()) or "none"
    splits = " / ".join(f"{n:,} {name}" for name, n in counts["splits"].items())
    rows += [f"Merge: {counts['input']:,} records in, {counts['kept']:,} kept ({splits}); dropped: {dropped}.", ""]
    if skipped:
        rows += ["Sources not used: " + "; ".join(skipped) + ".", ""]
    rows += ["Data quality (tokens, lengths, drops per layer, pass rates): [quality.md](../dataset/quality.md).", ""]
    return rows + ["![dataset composition](composition.png)", ""]


def training_section(training: dict[str, Any], folder: Path) -> list[str]:
    """What was trained: steps (run.json), tokens (metrics.jsonl, when every step was logged), losses."""
    from main.training.metrics import read_metrics

    config, data = training["config"], training["data"]
    steps = json.loads((folder / "run.json").read_text(encoding="utf-8"))["total_steps"]
    logged = [r for r in read_metrics(folder / "metrics.jsonl") if r.get("kind") == "train"]
    tokens = f" ({sum(r['tokens'] for r in logged):,} tokens)" if config["log_every"] == 1 else ""
    loss = training["val_loss"]
    before, after = loss.get("before"), loss.get("after")
    change = f"{before:.4f} → {after:.4f}" if before is not None and after is not None else "not measured"
    return [
        "## Training",
        "",
        f"{training['mode']} on `{training['base_model']}` in the {training['prompt_format']} format: "
        f"{steps} steps of {config['global_batch_size']} examples{tokens} from a training split of "
        f"{data['train']['examples']:,} examples, lr {config['lr']}; validation loss {change} on "
        f"{data['val']['examples']} held-out examples.",
        "",
        "![loss](loss.png)",
        "",
    ]


def run_details(runs: list[tuple[str, dict[str, Any]]]) -> list[str]:
    lines = ["## Runs", ""]
    for name, metrics in runs:
        lines += details(name, metrics)
    return lines
