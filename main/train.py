"""Fine-tune a causal LM on instruction records: `python -m main.train --config CONFIG.yaml [key=value ...]`.

Launch it plainly (one process), under `torchrun --nproc_per_node N` (DDP, or strategy=fsdp /
strategy=deepspeed), or multi-node with torchrun's usual `--nnodes/--node_rank/--rdzv_endpoint`.
Shape: `setup` (config, process group, seed) -> `main` (data, model, engine) -> `fit` (the loop).
One writer per output: rank 0 holds `OUTPUT_DIR.lock` for the whole run, so a second run on the same
output_dir exits 75 at once, naming the process that holds it, before it reads or writes anything.

The loss is summed over target tokens and divided by the number of target tokens in the whole
optimizer step (every micro-batch on every rank; the count is all-reduced first), so each target
token weighs the same whatever the padding, packing, accumulation or world size, and a micro-batch
with no target token adds exactly zero. DDP/FSDP/DeepSpeed average gradients over ranks, hence the
factor `world` on each rank's loss.
"""

from __future__ import annotations

import argparse
import logging
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from data_generation.common.command import run_command, setup_logging
from data_generation.common.io import DataError
from data_generation.common.models import resolve_model_spec
from data_generation.common.output_lock import output_lock
from data_generation.common.prompts import PromptFormat, get_format
from main.training import data, packing
from main.training.checkpoint import (
    find_resume,
    prune_checkpoints,
    restore_rng,
    save_checkpoint,
    save_final,
    write_run_info,
    write_training_info,
)
from main.training.config import (
    ConfigError,
    TrainConfig,
    grad_accum_steps,
    load_config,
    save_config,
)
from main.training.engine import Engine, Runtime, all_sum, barrier, init_runtime
from main.training.metrics import MetricsLog, plot_loss_curve
from main.training.modeling import compute_dtype, load_model, load_tokenizer

log = logging.getLogger("main.train")


@dataclass
class Data:
    train: list[data.TokenizedExample]
    val: list[data.TokenizedExample]
    stats: dict[str, Any]
    pad_id: int

    def fingerprint(self) -> dict[str, int]:
        """What a resumed run must find again for step N to mean the same micro-batches."""
        return {key: self.stats["train"][key] for key in ("examples", "tokens", "target_tokens")}


def setup(argv: list[str] | None = None) -> tuple[TrainConfig, Runtime]:
    parser = argparse.ArgumentParser(prog="python -m main.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, help="YAML preset (scripts/configs/*.yaml)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="override any config key")
    args = parser.parse_args(argv)
    config = load_config(args.config, args.overrides)
    runtime = init_runtime(config)
    setup_logging(rank=runtime.rank, world=runtime.world)
    seed_everything(config.seed)  # same on every rank: identical LoRA init and data plan
    return config, runtime


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy

        numpy.random.seed(seed % 2**32)
    except ImportError:
        pass


def main(argv: list[str] | None = None) -> int:
    threads = torch.get_num_threads()  # num_threads changes a process-wide setting: restore it for callers

    def body() -> int:
        run(*setup(argv))
        return 0

    try:
        return run_command(body, bad_input=(ConfigError, DataError))  # a message to act on, not a traceback
    finally:
        torch.set_num_threads(threads)
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def run(config: TrainConfig, runtime: Runtime) -> dict[str, Any]:
    """Train into `config.output_dir`, holding its lock throughout (rank 0; `OUTPUT_DIR.lock`): a second
    run on the same folder stops at once with exit 75 before it looks for a checkpoint or writes a file.
    The barrier keeps every other rank from reading or writing before rank 0 holds the lock."""
    output = Path(config.output_dir)
    with output_lock(output, enabled=runtime.main):
        barrier(runtime)
        return _run(config, runtime, output)


def _run(config: TrainConfig, runtime: Runtime, output: Path) -> dict[str, Any]:
    resume_from = find_resume(config, output)
    model_path = resolve_model_spec(config.model)
    tokenizer = load_tokenizer(model_path)
    prompt_format = get_format(config.prompt_format, tokenizer)
    log.info("prompt format: %s", prompt_format.name)
    dataset = load_data(config, tokenizer, prompt_format)
    accum = grad_accum_steps(config, runtime.world)
    steps_per_epoch = math.ceil(len(plan_for(config, dataset.train, 0)) / (accum * runtime.world))
    total_steps = config.max_steps or config.epochs * steps_per_epoch
    module = load_model(config, model_path, runtime.device if runtime.strategy != "fsdp" else torch.device("cpu"))
    if data.needs_resize(tokenizer, module):
        module.resize_token_embeddings(len(tokenizer))
    if runtime.strategy == "fsdp":
        module.to(runtime.device)
    dtype = compute_dtype(config.precision, runtime.device)
    engine = Engine(config, runtime, module, total_steps, accum, dtype)
    torch.manual_seed(config.seed + runtime.rank)  # dropout differs across ranks from here on
    start = 0
    if resume_from is not None:
        engine.load_state(resume_from)
        start = restore_rng(resume_from, runtime.rank, dataset.fingerprint())
        log.info("resumed from %s at step %d", resume_from, start)
    if runtime.main:
        output.mkdir(parents=True, exist_ok=True)
        save_config(config, output / "config.yaml")
        write_run_info(
            output, config, runtime, dataset.stats, accum, steps_per_epoch, total_steps, model_path, prompt_format.name
        )
    metrics = MetricsLog(
        output / "metrics.jsonl", enabled=runtime.main, resume_step=start if resume_from is not None else None
    )
    summary = fit(config, runtime, engine, dataset, metrics, start, total_steps, steps_per_epoch, accum, dtype)
    if config.save_final:
        save_final(engine, tokenizer, output / "final", config)
        if runtime.main:
            write_training_info(
                output / "final",
                config,
                model_path,
                prompt_format.name,
                dataset.stats,
                dataset.fingerprint(),
                output / "metrics.jsonl",
            )
    if runtime.main and config.plot:
        plot_loss_curve(
            output / "metrics.jsonl", output / "loss.png", title=f"{config.mode} {Path(str(model_path)).name}"
        )
    barrier(runtime)
    return summary


def load_data(config: TrainConfig, tokenizer: Any, prompt_format: PromptFormat) -> Data:
    if not config.train_data:
        raise ConfigError("train_data is empty: give a dataset file (e.g. data/out/merged/train.jsonl)")
    records = data.load_records(config.train_data, skip_invalid=config.skip_invalid)
    dropped_overlap = 0
    if config.val_data:
        val_records, dropped_overlap = data.remove_overlap(records, data.load_records(config.val_data))
    elif config.val_size:
        records, val_records = data.split_train_val(records, config.val_size, config.seed)
    else:
        val_records = []
    train, train_stats = data.tokenize_records(records, tokenizer, config.max_length, prompt_format)
    val, val_stats = data.tokenize_records(val_records, tokenizer, config.max_length, prompt_format)
    if not train:
        raise ConfigError(f"{config.train_data}: no example with a target token at max_length={config.max_length}")
    stats = {"train": train_stats.to_dict(), "val": val_stats.to_dict(), "val_dropped_overlap": dropped_overlap}
    return Data(train, val, stats, tokenizer.pad_token_id)


def plan_for(config: TrainConfig, examples: list, epoch: int, *, train: bool = True) -> list[list[int]]:
    size = {"batch_tokens": config.batch_tokens} if config.batch_tokens else {"batch_size": config.micro_batch_size}
    return packing.batches(
        examples,
        **size,
        packing=config.packing,
        length_grouped=config.length_grouped and train,
        max_length=config.max_length,
        seed=config.seed,
        epoch=epoch if train else 0,
    )


def collate(config: TrainConfig, examples: list, dataset: Data, dtype: torch.dtype, device: torch.device) -> dict:
    if config.packing:
        batch = packing.collate_packed(examples, dataset.pad_id, config.max_length, mask_dtype=dtype)
    else:
        batch = packing.collate_padded(examples, dataset.pad_id)
    return {key: value.to(device) for key, value in batch.items()}


def rank_share(plan: list[list[int]], first: int, count: int, runtime: Runtime) -> list[list[int] | None]:
    """This rank's `count` micro-batches of the global slice starting at plan[first] (rank r takes
    every world-th one); None where the plan has run out, so every rank runs the same number of
    forward/backward passes (an all-masked stand-in) and collectives stay in step."""
    indices = [first + j * runtime.world + runtime.rank for j in range(count)]
    return [plan[i] if i < len(plan) else None for i in indices]


def step_batches(
    config: TrainConfig,
    runtime: Runtime,
    dataset: Data,
    plan: list[list[int]],
    first: int,
    accum: int,
    dtype: torch.dtype,
) -> tuple[list[dict], int]:
    """This rank's collated micro-batches for one step, and their real (non-pad) token count.

    Past the end of the plan a rank gets a stand-in: a copy of a real micro-batch with every label
    masked, so it joins the collectives but adds exactly zero to the loss and the gradients."""
    share = rank_share(plan, first, accum, runtime)
    batches, real_tokens = [], 0
    for indices in share:
        examples = [dataset.train[i] for i in (indices if indices is not None else share[0] or plan[0])]
        batch = collate(config, examples, dataset, dtype, runtime.device)
        if indices is None:
            batch["labels"].fill_(packing.IGNORE_INDEX)
        else:
            real_tokens += sum(len(ex.input_ids) for ex in examples)
        batches.append(batch)
    return batches, real_tokens


def micro_loss(engine: Engine, batch: dict, denominator: float, world: int) -> tuple[torch.Tensor, torch.Tensor]:
    with engine.autocast():
        logits = engine.model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    total, _ = packing.target_loss_sum(logits, batch["labels"])
    return total * (world / denominator), total.detach()


def fit(
    config: TrainConfig,
    runtime: Runtime,
    engine: Engine,
    dataset: Data,
    metrics: MetricsLog,
    start: int,
    total_steps: int,
    steps_per_epoch: int,
    accum: int,
    dtype: torch.dtype,
) -> dict[str, Any]:
    from tqdm.auto import tqdm

    per_step = accum * runtime.world
    bar = tqdm(total=total_steps, initial=start, disable=not runtime.main, desc="train", dynamic_ncols=True)
    engine.model.train()
    plan, plan_epoch = [], -1
    last_val = None
    if dataset.val and start == 0:  # the base model's loss: the curve's starting point
        metrics.write(0, "val", val_loss=evaluate(config, runtime, engine, dataset, dtype))
    for step in range(start, total_steps):
        epoch, offset = divmod(step, steps_per_epoch)
        if epoch != plan_epoch:
            plan, plan_epoch = plan_for(config, dataset.train, epoch), epoch
            if len(plan) > steps_per_epoch * per_step:  # token budgets/packing can vary a plan's length
                log.warning(
                    "epoch %d: %d micro-batches past the step count fixed by epoch 0 are skipped",
                    epoch,
                    len(plan) - steps_per_epoch * per_step,
                )
        started = time.perf_counter()
        batches, real_tokens = step_batches(config, runtime, dataset, plan, offset * per_step, accum, dtype)
        local_targets = sum(int((b["labels"][:, 1:] != packing.IGNORE_INDEX).sum()) for b in batches)
        local_cells = sum(b["labels"].numel() for b in batches)
        (targets,) = all_sum(runtime, [local_targets])
        loss_sum = torch.zeros((), dtype=torch.float64)
        lr = engine.lr()  # before the step: DeepSpeed advances its scheduler inside the last backward
        for j, batch in enumerate(batches):
            with engine.sync(last=j == len(batches) - 1):
                loss, detached = micro_loss(engine, batch, max(targets, 1.0), runtime.world)
                engine.backward(loss)
            loss_sum += detached.double().cpu()
        grad_norm = engine.step()
        loss_total, tokens, cells = all_sum(runtime, [float(loss_sum), real_tokens, local_cells])
        elapsed = time.perf_counter() - started
        row = {
            "epoch": epoch,
            "loss": loss_total / max(targets, 1.0),
            "lr": lr,
            "grad_norm": grad_norm,
            "target_tokens": int(targets),
            "tokens": int(tokens),
            "tokens_per_s": tokens / elapsed,
            "useful_token_fraction": targets / max(cells, 1.0),
        }
        if runtime.device.type == "cuda":  # this rank's high-water mark so far (scripts/bench/gpu_check.py)
            row["max_memory_gib"] = torch.cuda.max_memory_allocated(runtime.device) / 2**30
        done = step + 1
        if done % config.log_every == 0 or done == total_steps:
            metrics.write(done, "train", **row)
        bar.update(1)
        bar.set_postfix(loss=f"{row['loss']:.4f}", lr=f"{lr:.2e}", tok_s=f"{row['tokens_per_s']:.0f}")
        if dataset.val and (config.eval_every and done % config.eval_every == 0 or done == total_steps):
            last_val = evaluate(config, runtime, engine, dataset, dtype)
            metrics.write(done, "val", val_loss=last_val)
            log.info("step %d: val loss %.4f", done, last_val)
        if config.save_every and done % config.save_every == 0 and done < total_steps:
            save_checkpoint(engine, Path(config.output_dir), done, config, dataset.fingerprint())
            prune_checkpoints(Path(config.output_dir), config.keep_checkpoints, runtime)
    bar.close()
    return {"steps": total_steps, "val_loss": last_val}


@torch.no_grad()
def evaluate(config: TrainConfig, runtime: Runtime, engine: Engine, dataset: Data, dtype: torch.dtype) -> float:
    """Mean loss per target token over the whole validation set (sharded over ranks, then summed)."""
    engine.model.eval()
    plan = plan_for(config, dataset.val, 0, train=False)
    rounds = math.ceil(len(plan) / runtime.world)
    total, count = 0.0, 0
    for indices in rank_share(plan, 0, rounds, runtime):
        examples = [dataset.val[i] for i in (indices if indices is not None else plan[0])]
        batch = collate(config, examples, dataset, dtype, runtime.device)
        with engine.autocast():
            logits = engine.model(**{k: v for k, v in batch.items() if k != "labels"}).logits
        loss, n = packing.target_loss_sum(logits, batch["labels"])
        if indices is not None:
            total, count = total + float(loss), count + n
    engine.model.train()
    total, count = all_sum(runtime, [total, count])
    return total / max(count, 1.0)


if __name__ == "__main__":
    raise SystemExit(main())
