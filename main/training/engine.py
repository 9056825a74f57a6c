"""One training engine for every launch: single process, DDP, FSDP (full fine-tuning) and DeepSpeed.

The loop in `main.train` only calls `Engine.sync / backward / step / save_state / load_state /
gathered_state_dict`, so the strategies differ in this file alone. Every method that touches weights is a
collective: all ranks call it and rank 0 alone writes the files that are not per-rank. (CodeCapybara
saved FSDP models from rank 0 only, which hangs: gathering a full state dict needs every rank.)
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.distributed as dist

from main.training.config import TrainConfig

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    strategy: str = "single"  # single | ddp | fsdp | deepspeed

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_runtime(config: TrainConfig) -> Runtime:
    """Read torchrun's environment, pick the device and start the process group when needed."""
    world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = config.device == "cuda" or config.device == "auto" and torch.cuda.is_available()
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    strategy = config.strategy if config.strategy != "auto" else "ddp"
    if strategy == "ddp" and world == 1:
        strategy = "single"
    if strategy != "single" and not dist.is_initialized():
        # A single process may still run FSDP or DeepSpeed (world of one): give it a rendezvous.
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(_free_port()))
        for key, value in (("RANK", rank), ("WORLD_SIZE", world), ("LOCAL_RANK", local_rank)):
            os.environ.setdefault(key, str(value))
        backend = "nccl" if cuda else "gloo"
        if strategy == "deepspeed":
            import deepspeed

            if not cuda:
                # DeepSpeed's CPU accelerator JIT-compiles a shared-memory all-reduce (about 2 min on a
                # small box) before the first collective; gloo alone is enough for CPU runs and tests.
                deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
            deepspeed.init_distributed(dist_backend=backend)
        else:
            dist.init_process_group(backend, device_id=device if cuda else None)
    return Runtime(rank, world, local_rank, device, strategy)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def all_sum(runtime: Runtime, values: list[float]) -> list[float]:
    """Sum floats over ranks (float64: token counts stay exact far beyond 2**24)."""
    if runtime.world == 1 or not dist.is_initialized():
        return list(values)
    device = runtime.device if dist.get_backend() == "nccl" else torch.device("cpu")
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def barrier(runtime: Runtime) -> None:
    if runtime.world > 1 and dist.is_initialized():
        dist.barrier()


def param_groups(module: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Decay matrices only; biases and norm weights (1-D) are not decayed (the HF Trainer's rule)."""
    trainable = [p for p in module.parameters() if p.requires_grad]
    return [
        {"params": [p for p in trainable if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in trainable if p.ndim < 2], "weight_decay": 0.0},
    ]


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int):
    """The HF schedules the seeds used (lr 0 -> peak over warmup, then cosine/linear to 0, or constant)."""
    from transformers import get_scheduler

    warmup = config.warmup_steps or math.ceil(config.warmup_ratio * total_steps)
    name = {"cosine": "cosine", "linear": "linear", "constant": "constant_with_warmup"}[config.schedule]
    return get_scheduler(name, optimizer, num_warmup_steps=warmup, num_training_steps=total_steps)


class Engine:
    """The wrapped model with its optimizer, scheduler and (fp16) grad scaler."""

    def __init__(
        self,
        config: TrainConfig,
        runtime: Runtime,
        module: torch.nn.Module,
        total_steps: int,
        grad_accum: int,
        compute_dtype: torch.dtype,
    ) -> None:
        self.config, self.runtime, self.module = config, runtime, module
        self.scaler = None
        strategy = runtime.strategy
        if strategy == "deepspeed":
            self._init_deepspeed(total_steps, grad_accum)
            return
        if strategy == "ddp":
            from torch.nn.parallel import DistributedDataParallel

            ids = [runtime.device.index] if runtime.device.type == "cuda" else None
            self.model = DistributedDataParallel(module, device_ids=ids)
        elif strategy == "fsdp":
            self.model = _fully_shard(module, runtime, compute_dtype, config.fsdp_cpu_offload)
        else:
            self.model = module
        fused = runtime.device.type == "cuda" and not config.fsdp_cpu_offload
        self.optimizer = torch.optim.AdamW(
            param_groups(module, config.weight_decay),
            lr=config.lr,
            betas=(config.adam_beta1, config.adam_beta2),
            fused=fused or None,
        )
        self.scheduler = make_scheduler(self.optimizer, config, total_steps)
        if config.precision == "fp16" and runtime.device.type == "cuda":
            self.scaler = torch.amp.GradScaler("cuda")

    def _init_deepspeed(self, total_steps: int, grad_accum: int) -> None:
        import deepspeed

        ds_config = deepspeed_config(self.config, self.runtime, grad_accum)
        self.model, self.optimizer, _, self.scheduler = deepspeed.initialize(
            model=self.module,
            model_parameters=param_groups(self.module, self.config.weight_decay),
            config=ds_config,
            lr_scheduler=lambda opt: make_scheduler(opt, self.config, total_steps),
        )
        self.module = self.model.module

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16/fp16 autocast for single/DDP on GPU (FSDP and DeepSpeed cast by their own settings)."""
        if (
            self.runtime.strategy in ("single", "ddp")
            and self.runtime.device.type == "cuda"
            and self.config.precision != "fp32"
        ):
            dtype = torch.bfloat16 if self.config.precision == "bf16" else torch.float16
            return torch.autocast("cuda", dtype=dtype)
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def sync(self, last: bool) -> Iterator[None]:
        """Reduce gradients only on a step's last micro-batch (DeepSpeed counts micro-batches itself)."""
        if self.runtime.strategy == "ddp" and not last:
            with self.model.no_sync():
                yield
            return
        if self.runtime.strategy == "fsdp":
            self.model.set_requires_gradient_sync(last)
        yield

    def backward(self, loss: torch.Tensor) -> None:
        if self.runtime.strategy == "deepspeed":
            # scale_wrt_gas=False: the loss is already divided by the step's target-token count.
            self.model.backward(loss, scale_wrt_gas=False)
            self.model.step()  # a no-op except at the accumulation boundary
        elif self.scaler is not None:
            self.scaler.scale(loss).backward()
        else:
            loss.backward()

    def step(self) -> float:
        """Clip, step optimizer and scheduler; returns the global gradient norm (before clipping)."""
        if self.runtime.strategy == "deepspeed":
            norm = self.model.get_global_grad_norm()
            return float(norm) if norm is not None else float("nan")
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        params = [p for p in self.module.parameters() if p.requires_grad]
        limit = self.config.max_grad_norm if self.config.max_grad_norm > 0 else float("inf")
        norm = torch.nn.utils.clip_grad_norm_(params, limit)
        if hasattr(norm, "full_tensor"):  # FSDP: a DTensor
            norm = norm.full_tensor()
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(norm)

    def lr(self) -> float:
        return float(self.scheduler.get_last_lr()[0])

    # ------------------------------------------------------------------ state (collective)

    def save_state(self, folder: Path) -> None:
        """Optimizer, scheduler and trainable weights into `folder` (every rank calls this)."""
        strategy = self.runtime.strategy
        if strategy == "deepspeed":
            self.model.save_checkpoint(str(folder), tag="ds", exclude_frozen_parameters=self.config.mode != "full")
        elif strategy == "fsdp":
            import torch.distributed.checkpoint as dcp
            from torch.distributed.checkpoint.state_dict import get_state_dict

            model_sd, optim_sd = get_state_dict(self.model, self.optimizer)
            dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=str(folder / "dcp"))
        elif self.runtime.main:
            trainable = {n: p.detach().cpu() for n, p in self.module.named_parameters() if p.requires_grad}
            torch.save({"model": trainable, "optimizer": self.optimizer.state_dict()}, folder / "state.pt")
        if self.runtime.main and strategy != "deepspeed":
            extra = {
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler else None,
            }
            torch.save(extra, folder / "scheduler.pt")

    def load_state(self, folder: Path) -> None:
        strategy = self.runtime.strategy
        if strategy == "deepspeed":
            path, _ = self.model.load_checkpoint(str(folder), tag="ds", load_module_strict=self.config.mode == "full")
            if path is None:
                raise FileNotFoundError(f"{folder}: no DeepSpeed checkpoint (tag 'ds') to resume from")
            return
        if strategy == "fsdp":
            import torch.distributed.checkpoint as dcp
            from torch.distributed.checkpoint.state_dict import (
                get_state_dict,
                set_state_dict,
            )

            model_sd, optim_sd = get_state_dict(self.model, self.optimizer)
            state = {"model": model_sd, "optim": optim_sd}
            dcp.load(state, checkpoint_id=str(folder / "dcp"))
            set_state_dict(self.model, self.optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
        else:
            state = torch.load(folder / "state.pt", map_location="cpu", weights_only=True)
            params = dict(self.module.named_parameters())
            with torch.no_grad():
                for name, value in state["model"].items():
                    params[name].copy_(value)
            self.optimizer.load_state_dict(state["optimizer"])
        extra = torch.load(folder / "scheduler.pt", map_location="cpu", weights_only=True)
        self.scheduler.load_state_dict(extra["scheduler"])
        if self.scaler is not None and extra["scaler"]:
            self.scaler.load_state_dict(extra["scaler"])

    def gathered_state_dict(self) -> dict[str, torch.Tensor] | None:
        """The weights to export, gathered on rank 0, for FSDP and ZeRO-3 (every rank must call this);
        None where `self.module` already holds full weights on rank 0 (single, DDP, ZeRO-1/2)."""
        strategy = self.runtime.strategy
        if strategy == "fsdp":
            from torch.distributed.checkpoint.state_dict import (
                StateDictOptions,
                get_model_state_dict,
            )

            options = StateDictOptions(full_state_dict=True, cpu_offload=True)
            state = get_model_state_dict(self.model, options=options)
            return state if self.runtime.main else None
        if strategy == "deepspeed" and self.model.zero_optimization_stage() == 3:
            import deepspeed

            wanted = [
                (n, p) for n, p in self.module.named_parameters() if self.config.mode == "full" or p.requires_grad
            ]
            with deepspeed.zero.GatheredParameters([p for _, p in wanted], modifier_rank=None):
                state = {n: p.detach().cpu().clone() for n, p in wanted} if self.runtime.main else None
            return state
        return None


def _fully_shard(module: torch.nn.Module, runtime: Runtime, dtype: torch.dtype, offload: bool) -> torch.nn.Module:
    """FSDP2: shard each decoder layer (the model's `_no_split_modules`), then the root."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import (
        CPUOffloadPolicy,
        MixedPrecisionPolicy,
        fully_shard,
    )

    mesh = init_device_mesh(runtime.device.type, (runtime.world,))
    kwargs: dict[str, Any] = {
        "mesh": mesh,
        "mp_policy": MixedPrecisionPolicy(param_dtype=dtype, reduce_dtype=torch.float32),
    }
    if offload:
        kwargs["offload_policy"] = CPUOffloadPolicy()
    layer_names = set(getattr(module, "_no_split_modules", None) or [])
    layers = [m for m in module.modules() if type(m).__name__ in layer_names]
    if not layers:
        raise ValueError(f"FSDP: {type(module).__name__} names no decoder layer class (_no_split_modules)")
    for layer in layers:
        fully_shard(layer, **kwargs)
    return fully_shard(module, **kwargs)


def deepspeed_config(config: TrainConfig, runtime: Runtime, grad_accum: int) -> dict[str, Any]:
    """The shipped JSON with its "auto" values filled from the training config."""
    ds = json.loads(Path(config.deepspeed_config).read_text(encoding="utf-8"))
    micro = 1 if config.batch_tokens else config.micro_batch_size  # DeepSpeed only uses it for bookkeeping
    auto = {
        "train_micro_batch_size_per_gpu": micro,
        "gradient_accumulation_steps": grad_accum,
        "train_batch_size": micro * grad_accum * runtime.world,
        "gradient_clipping": config.max_grad_norm,
    }
    for key, value in auto.items():
        if ds.get(key, "auto") == "auto":
            ds[key] = value
    for key in ("bf16", "fp16"):
        ds.setdefault(key, {})
        if ds[key].get("enabled", "auto") == "auto":
            ds[key]["enabled"] = config.precision == key
    params = ds.setdefault("optimizer", {"type": "AdamW"}).setdefault("params", {})
    filled = {"lr": config.lr, "betas": [config.adam_beta1, config.adam_beta2], "weight_decay": config.weight_decay}
    for key, value in filled.items():
        if params.get(key, "auto") == "auto":
            params[key] = value
    offload = ds.get("zero_optimization", {}).get("offload_optimizer", {}).get("device", "none")
    if runtime.device.type == "cpu" and offload == "none":
        params.setdefault("torch_adam", True)  # FusedAdam needs CUDA
    return ds
