"""Checkpoint folders: step checkpoints that resume exactly, and the final model or adapter.

    OUTPUT/config.yaml, run.json, metrics.jsonl, loss.png
    OUTPUT/checkpoints/step-00000050/  trainer_state.json (written last: marks it complete), config.yaml,
        rng-<rank>.pt, state.pt + scheduler.pt | dcp/ (FSDP) | ds/ (DeepSpeed), adapter/ (LoRA modes)
    OUTPUT/final/                      the model (full) or the adapter (lora/qlora) + tokenizer + config.yaml

A checkpoint is written into `step-N.partial` by every rank and renamed by rank 0 once all ranks are
done, so a crash mid-save leaves no folder that looks complete. Resuming restores weights, optimizer,
scheduler and every rank's RNG; the data position is the step number, because the plan of each epoch
is a pure function of (seed, epoch).
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
from pathlib import Path
from typing import Any

import torch

from data_generation.common.io import atomic_dir, atomic_path
from data_generation.common.models import TRAINING_INFO_FILE, model_label
from data_generation.common.provenance import dataset_lineage, fingerprint, folder_sha256, package_versions
from main.training.config import ConfigError, TrainConfig, save_config
from main.training.engine import Engine, Runtime, barrier
from main.training.modeling import save_adapter

log = logging.getLogger(__name__)
STATE_FILE = "trainer_state.json"


def checkpoints(output: Path) -> list[Path]:
    """Complete step checkpoints, oldest first."""
    folder = output / "checkpoints"
    if not folder.is_dir():
        return []
    found = [p for p in folder.glob("step-*") if p.is_dir() and (p / STATE_FILE).is_file()]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def find_resume(config: TrainConfig, output: Path) -> Path | None:
    """The checkpoint to resume from, per `config.resume`; refuses to silently restart over one."""
    existing = checkpoints(output)
    if config.resume == "":
        if existing:
            raise ConfigError(
                f"{output} already has checkpoints (latest {existing[-1].name}); pass resume=auto "
                "to continue, or choose another output_dir"
            )
        return None
    if config.resume == "auto":
        if not existing:
            log.info("resume=auto: no checkpoint in %s, starting fresh", output)
        return existing[-1] if existing else None
    folder = Path(config.resume)
    if not (folder / STATE_FILE).is_file():
        raise ConfigError(f"resume={folder}: not a complete checkpoint (no {STATE_FILE})")
    return folder


def save_checkpoint(
    engine: Engine, output: Path, step: int, config: TrainConfig, data_fingerprint: dict[str, Any] | None = None
) -> Path:
    """Collective: every rank writes its part, rank 0 marks the folder complete. `data_fingerprint`
    (example and token counts) lets a resume refuse different data, where step N would mean other rows."""
    runtime = engine.runtime
    final = output / "checkpoints" / f"step-{step:08d}"
    partial = final.with_name(final.name + ".partial")
    if runtime.main:
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
    barrier(runtime)
    engine.save_state(partial)
    torch.save(rng_state(runtime), partial / f"rng-{runtime.rank}.pt")
    if config.mode != "full":
        export(engine, partial / "adapter", config, tokenizer=None)
    barrier(runtime)
    if runtime.main:
        save_config(config, partial / "config.yaml")
        state = {"step": step, "world": runtime.world, "data": data_fingerprint}
        (partial / STATE_FILE).write_text(json.dumps(state) + "\n", encoding="utf-8")
        shutil.rmtree(final, ignore_errors=True)
        os.replace(partial, final)
        log.info("checkpoint %s", final)
    barrier(runtime)
    return final


def prune_checkpoints(output: Path, keep: int, runtime: Runtime) -> None:
    if runtime.main and keep > 0:
        for old in checkpoints(output)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)


def rng_state(runtime: Runtime) -> dict[str, Any]:
    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    try:
        import numpy

        state["numpy"] = numpy.random.get_state()
    except ImportError:
        pass
    if runtime.device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(runtime.device)
    return state


def restore_rng(folder: Path, rank: int, data_fingerprint: dict[str, Any] | None = None) -> int:
    """Restore this rank's RNG from `folder`; returns the step the checkpoint was taken after."""
    saved = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
    step = saved["step"]
    if saved.get("data") and data_fingerprint and saved["data"] != data_fingerprint:
        raise ConfigError(
            f"{folder} was trained on other data ({saved['data']}, now {data_fingerprint}): resuming "
            "would not continue the same example order; use the same data and max_length"
        )
    path = folder / f"rng-{rank}.pt"
    if not path.is_file():  # resumed with more ranks than saved: data position still exact, dropout not
        log.warning("%s missing (different world size?); RNG not restored for rank %d", path.name, rank)
        return step
    state = torch.load(path, weights_only=False)  # our own file: python/numpy RNG states are tuples
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "numpy" in state:
        import numpy

        numpy.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
    return step


def export(engine: Engine, folder: Path, config: TrainConfig, tokenizer: Any | None) -> None:
    """Collective: the adapter (lora/qlora, checked after writing) or the full model, from rank 0."""
    state = engine.gathered_state_dict()
    if not engine.runtime.main:
        return
    with atomic_dir(folder) as tmp:
        if config.mode == "full":
            engine.module.save_pretrained(str(tmp), state_dict=state)
        else:
            save_adapter(engine.module, tmp, state_dict=state)
        if tokenizer is not None:
            tokenizer.save_pretrained(str(tmp))
        save_config(config, tmp / "training_config.yaml")


def save_final(engine: Engine, tokenizer: Any, folder: Path, config: TrainConfig) -> None:
    export(engine, folder, config, tokenizer)
    barrier(engine.runtime)
    if engine.runtime.main:
        log.info("final %s written to %s", "model" if config.mode == "full" else "adapter", folder)


def write_run_info(
    output: Path,
    config: TrainConfig,
    runtime: Runtime,
    stats: dict[str, Any],
    accum: int,
    steps_per_epoch: int,
    total_steps: int,
    model_path: Path,
    prompt_format: str,
) -> None:

    info = {
        "model": model_label(config.model, model_path),
        "model_path": str(model_path),
        "prompt_format": prompt_format,
        "strategy": runtime.strategy,
        "world_size": runtime.world,
        "device": str(runtime.device),
        "grad_accum": accum,
        "steps_per_epoch": steps_per_epoch,
        "total_steps": total_steps,
        "data": stats,
        "versions": _versions(),
    }
    (output / "run.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def _versions() -> dict[str, str]:

    return package_versions(("torch", "transformers", "peft", "bitsandbytes", "deepspeed", "accelerate"))


def write_training_info(
    folder: Path,
    config: TrainConfig,
    model_path: Path,
    prompt_format: str,
    stats: dict[str, Any],
    data_fingerprint: dict[str, Any],
    metrics_path: Path,
) -> Path:
    """Rank 0, after the final save: the lineage of the weights in `folder` (see TRAINING_INFO_FILE).

    It chains the data (the training file's sha256 and the merge manifest beside it, with that
    manifest's sha256 and config fingerprint) to the training run (config and its fingerprint, data
    statistics, validation loss before and after) to the weights (sha256 over the folder's files), so
    a report can name exactly what was evaluated and what it learnt from. Rebuilding the dataset
    changes its sha256 here; nothing points at a folder that may change."""
    from main.training.metrics import read_metrics

    val = (
        [row["val_loss"] for row in read_metrics(metrics_path) if row.get("kind") == "val"]
        if metrics_path.is_file()
        else []
    )
    info = {
        "run_name": config.run_name or Path(config.output_dir).name,
        "mode": config.mode,
        "base_model": model_label(config.model, model_path),
        "base_model_path": str(model_path),
        "prompt_format": prompt_format,
        "train_data": dataset_lineage(config.train_data),
        "val_data": dataset_lineage(config.val_data) if config.val_data else None,
        "data_fingerprint": data_fingerprint,
        "data": stats,
        "config": config.to_dict(),
        "config_fingerprint": fingerprint(config.to_dict()),
        "val_loss": {"before": val[0] if val else None, "after": val[-1] if val else None},
        "weights_sha256": folder_sha256(folder, exclude=(TRAINING_INFO_FILE,)),
        "versions": _versions(),
    }

    path = folder / TRAINING_INFO_FILE
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return path
