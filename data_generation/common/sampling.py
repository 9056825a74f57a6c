"""Per-row sampling, stopping and the compact decode loop behind `main.sampling.backends.TransformersBackend`.

HF's `do_sample` draws every row of a batch from one RNG, which ties a sample to its batch mates and
to the batch size. Here each row has its own `torch.Generator` seeded from its row seed and samples
in HF's order (temperature, top-k, top-p), either as a logits processor inside `generate`
(`RowSampler`) or inside our own decode loop (`compact_decode`), which drops a finished row and its
KV cache from the batch at once. Stop strings are checked on the *new* tokens only (`StopOnText`).
torch is imported lazily so that `main.sampling.backends` stays importable without it (vLLM / OpenAI users).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Sequence

from main.sampling.extract import closed_fence_end

NUCLEUS_PROBE = 256  # top-p looks at the most likely 256 tokens first, widening only when needed


@dataclass(frozen=True)
class SamplingSettings:
    """Decoding shared by a batch. `greedy` ignores temperature/top-p/top-k; `top_k=0` disables top-k."""

    temperature: float = 0.2
    top_p: float = 0.95
    top_k: int = 0
    max_new_tokens: int = 512
    greedy: bool = False
    stop: tuple[str, ...] = ()
    stop_after_fence: bool = False

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1 or self.top_k < 0 or not 0 < self.top_p <= 1:
            raise ValueError("need max_new_tokens >= 1, top_k >= 0 and 0 < top_p <= 1")
        if not self.greedy and self.temperature <= 0:
            raise ValueError("temperature must be > 0 when sampling; use greedy for temperature 0")


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any parts (`manual_seed` wants a non-negative int), stable across runs."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def sample_row(logits: Any, settings: SamplingSettings, generator: Any) -> Any:
    """One token id (a 1-element tensor) from one row's logits, HF's order: temperature, top-k, top-p.

    No `.item()`: on a GPU the choice stays on the device. Top-p without top-k looks at the most
    likely `NUCLEUS_PROBE` tokens and widens only when their mass is still short of `top_p` (a full
    sort of a 50k vocabulary per row and step costs more than the model on CPU)."""
    torch = _torch()
    logits = logits / settings.temperature
    if settings.top_k:
        values, ids = torch.topk(logits, min(settings.top_k, logits.numel()))
        probs = torch.softmax(values, dim=-1)
    elif settings.top_p < 1.0:
        full = torch.softmax(logits, dim=-1)
        k = min(NUCLEUS_PROBE, full.numel())
        while True:
            probs, ids = torch.topk(full, k)
            # Complete once the mass before the last probed token reaches top_p (that token is out).
            if k == full.numel() or float(probs[:-1].sum()) >= settings.top_p:
                break
            k = min(4 * k, full.numel())
    else:
        probs, ids = torch.softmax(logits, dim=-1), None
    if settings.top_p < 1.0:
        probs = probs * ((torch.cumsum(probs, -1) - probs) < settings.top_p)
    choice = torch.multinomial(probs, 1, generator=generator)
    return choice if ids is None else ids[choice]


class RowSampler:
    """A logits processor that samples each row with its own generator and returns logits where only
    the chosen token is finite, so `generate` runs greedy and takes it. HF's `do_sample` draws every row
    from one RNG, which ties a sample to its batch mates and to the batch size."""

    def __init__(self, seeds: Sequence[int], settings: SamplingSettings, device: Any, forbidden: int | None) -> None:
        torch = _torch()
        self.settings, self.forbidden = settings, forbidden
        self.generators = [torch.Generator(device=device).manual_seed(seed) for seed in seeds]

    def choose(self, scores: Any, rows: Sequence[int]) -> Any:
        """The next token of each batch row; `rows[i]` is batch row i's index among the seeded rows."""
        torch = _torch()
        scores = scores.float()
        if self.forbidden is not None:
            scores[:, self.forbidden] = float("-inf")
        return torch.cat([sample_row(scores[i], self.settings, self.generators[row]) for i, row in enumerate(rows)])

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        torch = _torch()
        chosen = self.choose(scores, range(scores.shape[0]))
        out = torch.full_like(scores, float("-inf"), dtype=torch.float32)
        return out.scatter_(1, chosen.view(-1, 1), 0.0)


class ForbidToken:
    """Greedy decoding must not pick the pad token (it marks finished rows) when pad is not EOS."""

    def __init__(self, token: int | None) -> None:
        self.token = token

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self.token is not None:
            scores[:, self.token] = float("-inf")
        return scores

    def choose(self, scores: Any, rows: Sequence[int]) -> Any:
        return self(None, scores).argmax(dim=-1)


class StopOnText:
    """Stopping criterion: a row is done once its *new* text holds a stop string (or closes its first
    fenced block). Only the last few new tokens are decoded per step: a stop string of L characters
    lies within the last L + 1 tokens when it first appears; stop strings in the prompt never count."""

    def __init__(self, tokenizer: Any, prompt_len: int, stops: Sequence[str], after_fence: bool) -> None:
        self.tokenizer, self.prompt_len, self.stops, self.after_fence = tokenizer, prompt_len, tuple(stops), after_fence
        self.window = max([len(s) for s in self.stops] + [3]) + 2
        self.done: list[bool] = []

    def hits(self, rows: Sequence[Sequence[int]]) -> list[bool]:
        """For each row's new tokens: does its text now hold a stop string (or a closed fence)?"""
        tails = self.tokenizer.batch_decode([list(r[-self.window :]) for r in rows], skip_special_tokens=True)
        found = [any(stop in tail for stop in self.stops) for tail in tails]
        for i, tail in enumerate(tails):
            if not found[i] and self.after_fence and "`" in tail:
                text = self.tokenizer.decode(list(rows[i]), skip_special_tokens=True)
                found[i] = closed_fence_end(text) is not None
        return found

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        torch = _torch()
        new = input_ids[:, self.prompt_len :]
        if not self.done:
            self.done = [False] * new.shape[0]
        open_rows = [i for i, done in enumerate(self.done) if not done]
        if open_rows and new.shape[1]:
            for row, hit in zip(open_rows, self.hits(new[open_rows].tolist())):
                self.done[row] = hit
        return torch.tensor(self.done, dtype=torch.bool, device=input_ids.device)


# -- the decode loop ----------------------------------------------------------------------------------


def prefill(lm: Any, encoded: Any, which: Any) -> Any:
    """The KV cache of every distinct prompt but its last token, computed once and copied to each of
    its rows: n samples of one prompt pay for one prefill, not n (HF's num_return_sequences pays n)."""
    ids, mask = encoded["input_ids"][:, :-1], encoded["attention_mask"][:, :-1]
    positions = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)  # as `generate` computes them
    # logits_to_keep=1: the prefill's logits are not needed, and over a 49k vocabulary they cost.
    cache = lm(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1).cache
    cache.batch_select_indices(which)
    return cache


def compact_decode(
    lm: Any, encoded: Any, which: Any, chooser: Any, stopper: StopOnText | None, max_new: int, eos_ids: Sequence[int]
) -> list[list[int]]:
    """Our own decode loop over the shared-prefill cache that drops a row from the batch (and its
    KV cache) as soon as it ends. `generate` keeps finished rows in the batch, padding them, until
    the slowest row ends: with n samples whose lengths vary, most of its compute is padding.
    Rows are computed exactly as in `generate` (same positions, masks, sampler), so texts match.

    `encoded`: the tokenized distinct prompts (left-padded); `which`: each row's prompt index;
    `chooser`: a `RowSampler` or `ForbidToken`. Returns each row's new token ids."""
    torch = _torch()
    cache = prefill(lm, encoded, which)
    mask = encoded["attention_mask"][which]
    last = encoded["input_ids"][which, -1:]
    positions = mask.long().sum(-1, keepdim=True) - 1  # the last prompt token's position
    active = list(range(len(which)))
    tokens: list[list[int]] = [[] for _ in active]
    for _ in range(max_new):
        logits = lm(
            input_ids=last, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True, logits_to_keep=1
        ).logits[:, -1, :]
        chosen = chooser.choose(logits, active)
        for row, token in zip(active, chosen.tolist()):
            tokens[row].append(token)
        ended = [token in eos_ids for token in chosen.tolist()]
        if stopper is not None:
            ended = [e or hit for e, hit in zip(ended, stopper.hits([tokens[row] for row in active]))]
        if all(ended) or len(tokens[active[0]]) == max_new:
            break
        if any(ended):
            keep = torch.tensor([i for i, e in enumerate(ended) if not e], device=mask.device)
            cache.batch_select_indices(keep)
            mask, chosen, positions = mask[keep], chosen[keep], positions[keep]
            active = [row for row, e in zip(active, ended) if not e]
        last = chosen.view(-1, 1)
        mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
        positions = positions + 1
    return tokens


def _torch() -> Any:
    import torch

    return torch
