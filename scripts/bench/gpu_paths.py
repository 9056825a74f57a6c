"""CUDA paths of training that the CPU tests cannot reach, each checked against a plain computation.

- masks: the same examples run one by one, packed with main.training's 4D block-diagonal mask, and
  packed with position ids alone (transformers then builds the mask), in the model's dtype under sdpa:
  the summed target loss and the gradients must agree (bf16: to about 1e-2).
- fused AdamW: three steps with `fused=True` and with the for-each implementation on the same
  parameters and gradients agree to float32 rounding.
"""

from __future__ import annotations

from typing import Any

import torch

from main.training.packing import collate_packed, target_loss_sum

PROBES = ("lm_head.weight", "model.layers.0.self_attn.q_proj.weight", "model.embed_tokens.weight")


def _grads(model: torch.nn.Module, batches: list[dict[str, torch.Tensor]]) -> tuple[float, dict[str, torch.Tensor]]:
    """Summed target loss over `batches` and the gradients of the probe parameters."""
    model.zero_grad(set_to_none=True)
    total = 0.0
    for batch in batches:
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
        loss, _ = target_loss_sum(logits, batch["labels"])
        loss.backward()
        total += float(loss)
    params = dict(model.named_parameters())
    return total, {name: params[name].grad.float().flatten().clone() for name in PROBES if name in params}


def masks(model_path: str, data: str, device: str) -> dict[str, Any]:
    from transformers import AutoModelForCausalLM

    from main.training.data import TokenizedExample
    from scripts.bench.gpu_anchor import examples

    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype, attn_implementation="sdpa").to(device)
    model.config.use_cache = False  # required for packing by position ids
    rows = examples(model_path, data, 512)[:8]
    exs = [TokenizedExample(tuple(r["input_ids"]), tuple(r["labels"])) for r in rows]
    pad = model.config.pad_token_id
    to = lambda b: {k: v.to(device) for k, v in b.items()}  # noqa: E731
    alone = [to(collate_packed([ex], pad, None, mask="4d", mask_dtype=dtype)) for ex in exs]
    loss_1, grads_1 = _grads(model, alone)
    out: dict[str, Any] = {"dtype": str(dtype), "examples": len(exs), "one_by_one_loss": loss_1}
    for mode in ("4d", "position_ids"):
        packed = to(collate_packed(exs, pad, None, mask=mode, mask_dtype=dtype))
        loss, grads = _grads(model, [packed])
        cosines = {n: float(torch.nn.functional.cosine_similarity(grads[n], grads_1[n], dim=0)) for n in grads}
        out[mode] = {"loss": loss, "relative_loss_difference": abs(loss - loss_1) / abs(loss_1), "grad_cosine": cosines}
        out[mode]["agrees"] = out[mode]["relative_loss_difference"] < 2e-2 and min(cosines.values()) > 0.99
    return out


def fused_adamw(device: str) -> dict[str, Any]:
    torch.manual_seed(0)
    shapes = [(256, 256), (1024,), (64, 512)]
    runs = {}
    for fused in (True, False):
        params = [
            torch.nn.Parameter(torch.randn(s, generator=torch.Generator().manual_seed(i)).to(device))
            for i, s in enumerate(shapes)
        ]
        opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01, fused=fused, foreach=None if fused else True)
        for step in range(3):
            for i, p in enumerate(params):
                p.grad = torch.randn(p.shape, generator=torch.Generator().manual_seed(100 * step + i)).to(device)
            opt.step()
        runs[fused] = [p.detach().cpu() for p in params]
    diff = max(float((a - b).abs().max()) for a, b in zip(runs[True], runs[False]))
    return {"max_abs_difference": diff, "agrees": diff < 1e-5}
