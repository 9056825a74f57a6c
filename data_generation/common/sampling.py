"""Per-row seeded sampling, stopping and the compact decode loop: the one sampler of the embedded
teacher (`data_generation.teacher.local`) and of `main.generate`'s transformers backend.

HF's `do_sample` draws every row of a batch from one RNG, which ties a sample to its batch mates and
to the batch size. Here each row has its own `torch.Generator` seeded from its row seed and samples
in HF's order (temperature, top-k, top-p), either as a logits processor inside `generate`
(`RowSampler`) or inside our own decode loop (`compact_decode`), which drops a finished row and its
KV cache from the batch at once. Stop strings are checked on the *new* tokens only (`StopOnText`).
torch is imported lazily so that the backends stay importable without it (vLLM / OpenAI users).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Sequence

from data_generation.common.fences import closed_fence_end

NUCLEUS_PROBE = 256  # top-p looks at the most likely 256 tokens first, widening only when needed


@dataclass(frozen=True)
class SamplingSettings:
    """Decoding of one row (or a whole batch), named as on the OpenAI wire (`teacher.base.Decoding`
    converts both ways). `greedy` ignores temperature/top-p/top-k; `top_k=0` disables top-k;
    `stop_after_fence`: a row also ends once its first fenced block is closed; the penalties follow
    OpenAI's definition (per occurrence, and once for having appeared) over the row's new tokens."""

    temperature: float = 0.2
    top_p: float = 0.95
    top_k: int = 0
    max_tokens: int = 512
    greedy: bool = False
    stop: tuple[str, ...] = ()
    stop_after_fence: bool = False
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0

    def __post_init__(self) -> None:
        if self.max_tokens < 1 or self.top_k < 0 or not 0 < self.top_p <= 1:
            raise ValueError("need max_tokens >= 1, top_k >= 0 and 0 < top_p <= 1")
        if not self.greedy and self.temperature <= 0:
            raise ValueError("temperature must be > 0 when sampling; use greedy for temperature 0")

    @property
    def penalised(self) -> bool:
        return bool(self.presence_penalty or self.frequency_penalty)


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any parts (`manual_seed` wants a non-negative int), stable across runs."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def nucleus(probs: Any, top_p: float) -> tuple[Any, Any]:
    """The most likely tokens of `probs` down to the smallest prefix whose mass reaches `top_p`:
    (their probabilities, sorted, with those past the prefix zeroed; their token ids).

    A full sort of a 50k vocabulary per row and step costs more than the model on CPU, and the
    nucleus almost always lies in the top few hundred: look at the most likely `NUCLEUS_PROBE`
    first and widen only while the probe's last token is still inside the prefix."""
    torch = _torch()
    k = min(NUCLEUS_PROBE, probs.numel())
    while True:
        top, ids = torch.topk(probs, k)  # sorted, most likely first
        keep = (torch.cumsum(top, dim=-1) - top) < top_p
        if not keep[-1] or k == probs.numel():
            return top * keep, ids
        k = min(4 * k, probs.numel())


def sample_row(logits: Any, settings: SamplingSettings, generator: Any, *, whole_vocab: bool = False) -> Any:
    """One token id (a 1-element tensor) from one row's logits, HF's order: temperature, top-k, top-p.

    No `.item()`: on a GPU the choice stays on the device. `whole_vocab` draws over the whole
    vocabulary (zeros outside the kept tokens) instead of over the kept tokens alone: the same
    distribution, but another draw from the same generator. The embedded teacher draws so (its
    cached answers depend on it), `main.generate`'s backend over the kept tokens."""
    torch = _torch()
    logits = logits / settings.temperature
    if settings.top_k:
        values, ids = torch.topk(logits, min(settings.top_k, logits.numel()))
        probs = torch.softmax(values, dim=-1)
        if settings.top_p < 1.0:
            probs = probs * ((torch.cumsum(probs, -1) - probs) < settings.top_p)
    elif settings.top_p < 1.0:
        probs, ids = nucleus(torch.softmax(logits, dim=-1), settings.top_p)
    else:
        probs, ids = torch.softmax(logits, dim=-1), None
    if whole_vocab and ids is not None:
        probs, ids = torch.zeros_like(logits).scatter_(0, ids, probs), None
    choice = torch.multinomial(probs, 1, generator=generator)
    return choice if ids is None else ids[choice]


class RowSampler:
    """Chooses each row's next token with the row's own settings and generator (greedy rows take the
    most likely token). As a logits processor inside `generate` it returns logits where only the
    chosen token is finite for sampled rows, so `generate` runs greedy and takes it; `choose` serves
    `compact_decode`. `settings`: one for all rows or one per row; `forbidden`: a token never chosen
    (padding, when it is not EOS, marks finished rows); `prompt_len`: where the new tokens start in
    `generate`'s ids (for the penalties); `whole_vocab`: see `sample_row`."""

    def __init__(
        self,
        seeds: Sequence[int],
        settings: SamplingSettings | Sequence[SamplingSettings],
        device: Any,
        forbidden: int | None,
        *,
        prompt_len: int = 0,
        whole_vocab: bool = False,
    ) -> None:
        torch = _torch()
        rows = [settings] * len(seeds) if isinstance(settings, SamplingSettings) else list(settings)
        if len(rows) != len(seeds):
            raise ValueError(f"{len(seeds)} seeds but {len(rows)} settings")
        self.settings, self.forbidden, self.prompt_len, self.whole_vocab = rows, forbidden, prompt_len, whole_vocab
        self.generators = [
            None if row.greedy else torch.Generator(device=device).manual_seed(seed) for row, seed in zip(rows, seeds)
        ]
        self.penalised = any(row.penalised for row in rows)

    def _logits(self, scores: Any, rows: Sequence[int], generated: Any) -> Any:
        """float32 logits of the batch rows, the forbidden token out and each row's penalties applied."""
        torch = _torch()
        out = scores.float().clone()
        if self.forbidden is not None:
            out[:, self.forbidden] = float("-inf")
        if self.penalised and generated is not None and generated.shape[1]:
            for i, row in enumerate(rows):
                settings, logits = self.settings[row], out[i]
                if settings.penalised:
                    counts = torch.bincount(generated[i], minlength=logits.shape[0])[: logits.shape[0]]
                    logits -= settings.frequency_penalty * counts + settings.presence_penalty * (counts > 0)
        return out

    def _pick(self, logits: Any, row: int) -> Any:
        generator = self.generators[row]
        if generator is None:
            return logits.argmax().view(1)
        return sample_row(logits, self.settings[row], generator, whole_vocab=self.whole_vocab)

    def choose(self, scores: Any, rows: Sequence[int], generated: Any = None) -> Any:
        """The next token of each batch row; `rows[i]` is batch row i's index among the seeded rows,
        `generated` its new tokens so far (needed only with penalties)."""
        torch = _torch()
        logits = self._logits(scores, rows, generated)
        return torch.cat([self._pick(logits[i], row) for i, row in enumerate(rows)])

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        rows = range(scores.shape[0])
        out = self._logits(scores, rows, input_ids[:, self.prompt_len :])
        for row in rows:
            if self.generators[row] is not None:
                token = self._pick(out[row], row)
                out[row].fill_(float("-inf"))
                out[row, token] = 0.0
        return out


class ForbidToken:
    """Greedy decoding must not pick the pad token (it marks finished rows) when pad is not EOS."""

    def __init__(self, token: int | None) -> None:
        self.token = token
        self.penalised = False

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self.token is not None:
            scores[:, self.token] = float("-inf")
        return scores

    def choose(self, scores: Any, rows: Sequence[int], generated: Any = None) -> Any:
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
            if not found[i] and self.after_fence and ("`" in tail or "~" in tail):  # a fence just closed?
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
    `chooser`: a `RowSampler` or `ForbidToken` (given the rows' new tokens when it applies penalties).
    Returns each row's new token ids."""
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
        generated = torch.tensor([tokens[row] for row in active], dtype=torch.long) if chooser.penalised else None
        chosen = chooser.choose(logits, active, None if generated is None else generated.to(mask.device))
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
