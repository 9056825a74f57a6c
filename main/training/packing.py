"""Batches for training: packing without cross-example attention, padding, and the epoch's batch plan.

Packing puts several tokenized examples into one row. Attention must not cross examples, and each
example must see the positions it would see alone, so a packed row carries `position_ids` that
restart at 0 for every example and (by default) a 4D block-diagonal causal mask. With both, the
summed loss of a packed row equals the sum of its examples' losses run one by one (tested).

Two ways to pass the "no attention across examples" to a transformers 5 model:
- `mask="4d"`: an additive float mask `(rows, 1, L, L)` (0 = attend, dtype min = blocked) in the
  model's dtype. `masking_utils._preprocess_mask_arguments` returns any 4D mask as-is, so it is
  honoured by the eager and sdpa attention whatever the cache settings. Cost: L*L per row.
- `mask="position_ids"`: no `attention_mask` at all; transformers detects the restarts in
  `position_ids` and builds the block-diagonal mask itself (eager, sdpa, flex) or runs varlen
  flash-attention (`flash_attention_2/3`). Only when no cache is built: call the model with
  `use_cache=False`, otherwise the detection is skipped and attention silently crosses examples.

The plan of micro-batches for an epoch is a plain list of index lists, a pure function of
(examples, options, seed, epoch): a run can resume at micro-batch k and shard by rank with
`plan[rank::world]`.
"""

from __future__ import annotations

import bisect
import random
from typing import Literal, Protocol, Sequence

import torch

IGNORE_INDEX = -100
MEGABATCH_FACTOR = 50  # length grouping sorts within windows of 50 batches (as transformers' LengthGroupedSampler)


class Example(Protocol):
    input_ids: tuple[int, ...]
    labels: tuple[int, ...]


def pack(examples: Sequence[Example], max_length: int) -> list[list[int]]:
    """Bins of example indices, each bin's total length <= max_length (best-fit decreasing).

    Longest first, each into the fullest bin it still fits; ties keep index order, so the result is
    deterministic. O(n log n) with a sorted list of free capacities (fine for millions of examples).
    """
    lengths = [len(ex.input_ids) for ex in examples]
    too_long = [i for i, n in enumerate(lengths) if n > max_length]
    if too_long:
        raise ValueError(
            f"{len(too_long)} example(s) longer than max_length={max_length} (first: index "
            f"{too_long[0]}, {lengths[too_long[0]]} tokens); tokenize with the same max_length"
        )
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return _best_fit(order, lengths, max_length)


def _best_fit(order: Sequence[int], lengths: Sequence[int], capacity: int) -> list[list[int]]:
    bins: list[list[int]] = []
    free: list[tuple[int, int]] = []  # (free capacity, bin number), sorted
    for i in order:
        n = lengths[i]
        at = bisect.bisect_left(free, (n, -1))
        if at < len(free):
            room, b = free.pop(at)
        else:
            room, b = capacity, len(bins)
            bins.append([])
        bins[b].append(i)
        if room - n > 0:
            bisect.insort(free, (room - n, b))
    return bins


def rows_for(lengths: Sequence[int], max_length: int | None) -> list[list[int]]:
    """Next-fit in the given order: positions into `lengths`, one list per packed row.

    `batches(packing=True)` lists each micro-batch bin by bin, so this reproduces those bins (it can
    only merge two neighbouring bins that happen to fit together, never split one)."""
    rows: list[list[int]] = []
    used = 0
    for i, n in enumerate(lengths):
        if max_length is not None and n > max_length:
            raise ValueError(f"example of {n} tokens does not fit a packed row of max_length={max_length}")
        if not rows or (max_length is not None and used + n > max_length):
            rows.append([])
            used = 0
        rows[-1].append(i)
        used += n
    return rows


def collate_packed(
    examples: Sequence[Example],
    pad_id: int,
    max_length: int | None = None,
    *,
    mask: Literal["4d", "position_ids"] = "4d",
    mask_dtype: torch.dtype = torch.float32,
    pad_to_multiple_of: int | None = None,
) -> dict[str, torch.Tensor]:
    """Pack `examples` in order into rows of <= max_length tokens (None: one row) and build model inputs.

    Returns input_ids, labels, position_ids (restarting at 0 per example) and, with mask="4d", an
    additive 4D block-diagonal causal `attention_mask` of `mask_dtype` (pass the model's dtype: eager
    attention adds it to the scores, sdpa wants the query's dtype). Rows are padded to the longest
    row; the padding tail is a block of its own (labels -100), so no real token attends to it and no
    softmax row is empty. The first token of every example is never a target: the token before it
    belongs to another example.
    """
    if not examples:
        raise ValueError("collate_packed needs at least one example")
    rows = rows_for([len(ex.input_ids) for ex in examples], max_length)
    width = max(sum(len(examples[i].input_ids) for i in row) for row in rows)
    if pad_to_multiple_of:
        width = -(-width // pad_to_multiple_of) * pad_to_multiple_of
    shape = (len(rows), width)
    input_ids = torch.full(shape, pad_id, dtype=torch.long)
    labels = torch.full(shape, IGNORE_INDEX, dtype=torch.long)
    position_ids = torch.zeros(shape, dtype=torch.long)
    segment = torch.zeros(shape, dtype=torch.long)
    for r, row in enumerate(rows):
        at = 0
        for s, i in enumerate(row):
            ex = examples[i]
            n = len(ex.input_ids)
            input_ids[r, at : at + n] = torch.tensor(ex.input_ids)
            labels[r, at : at + n] = torch.tensor(ex.labels)
            labels[r, at] = IGNORE_INDEX
            position_ids[r, at : at + n] = torch.arange(n)
            segment[r, at : at + n] = s
            at += n
        position_ids[r, at:] = torch.arange(width - at)
        segment[r, at:] = len(row)
    batch = {"input_ids": input_ids, "labels": labels, "position_ids": position_ids}
    if mask == "4d":
        batch["attention_mask"] = block_causal_mask(segment, mask_dtype)
    elif mask != "position_ids":
        raise ValueError(f"mask must be '4d' or 'position_ids', not {mask!r}")
    return batch


def block_causal_mask(segment: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(rows, 1, L, L) additive mask: token q sees token k iff same segment and k <= q."""
    width = segment.shape[1]
    same = segment[:, :, None] == segment[:, None, :]
    causal = torch.ones(width, width, dtype=torch.bool).tril()
    allowed = (same & causal)[:, None]
    blocked = torch.tensor(torch.finfo(dtype).min, dtype=dtype)
    return torch.where(allowed, torch.tensor(0, dtype=dtype), blocked)


def collate_padded(
    examples: Sequence[Example], pad_id: int, *, pad_to_multiple_of: int | None = None
) -> dict[str, torch.Tensor]:
    """One example per row, right-padded to the longest (Stanford Alpaca's collator); 2D attention mask."""
    if not examples:
        raise ValueError("collate_padded needs at least one example")
    width = max(len(ex.input_ids) for ex in examples)
    if pad_to_multiple_of:
        width = -(-width // pad_to_multiple_of) * pad_to_multiple_of
    shape = (len(examples), width)
    input_ids = torch.full(shape, pad_id, dtype=torch.long)
    labels = torch.full(shape, IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros(shape, dtype=torch.long)
    for r, ex in enumerate(examples):
        n = len(ex.input_ids)
        input_ids[r, :n] = torch.tensor(ex.input_ids)
        labels[r, :n] = torch.tensor(ex.labels)
        attention_mask[r, :n] = 1
    return {"input_ids": input_ids, "labels": labels, "attention_mask": attention_mask}


def useful_token_fraction(batch: dict[str, torch.Tensor]) -> float:
    """Target tokens (labels != -100: not padding, not prompt) / tokens the model computes."""
    labels = batch["labels"]
    return float((labels != IGNORE_INDEX).sum()) / labels.numel() if labels.numel() else 0.0


def target_loss_sum(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(summed next-token cross-entropy over target tokens, number of target tokens).

    Divide by the target count of the whole optimiser step (all micro-batches, all ranks) to weight
    every token equally. A batch with no target gives an exact 0 that still back-propagates, never
    the NaN of a mean over nothing (transformers' default loss does 0/0 there).
    """
    shifted = labels[:, 1:].reshape(-1).to(logits.device)
    flat = logits[:, :-1].reshape(-1, logits.shape[-1]).float()
    total = torch.nn.functional.cross_entropy(flat, shifted, ignore_index=IGNORE_INDEX, reduction="sum")
    return total, int((shifted != IGNORE_INDEX).sum())


def batches(
    examples: Sequence[Example],
    *,
    batch_size: int | None = None,
    batch_tokens: int | None = None,
    packing: bool = False,
    length_grouped: bool = False,
    max_length: int | None = None,
    seed: int = 0,
    epoch: int = 0,
) -> list[list[int]]:
    """The epoch's micro-batches as lists of indices into `examples`; same arguments, same plan.

    packing=True: examples are packed into rows of `max_length` tokens (required); a micro-batch is
    `batch_size` rows, or `batch_tokens // max_length` rows, and lists its examples row by row, so
    `collate_packed(..., max_length)` rebuilds those rows. Rows are shuffled each epoch.
    packing=False: `batch_size` examples, or as many as fit `batch_tokens` padded tokens, per
    micro-batch. Shuffled each epoch; with length_grouped, examples of similar length share a batch
    (sorted within windows of 50 batches, batches shuffled, the most expensive one first so that an
    out-of-memory shows up at step 1).
    """
    if (batch_size is None) == (batch_tokens is None):
        raise ValueError("give exactly one of batch_size (rows/examples) or batch_tokens")
    rng = random.Random(seed * 1_000_003 + epoch)
    lengths = [len(ex.input_ids) for ex in examples]
    if packing:
        return _packed_plan(lengths, max_length, batch_size, batch_tokens, rng)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if not length_grouped:
        return _chunk(order, lengths, batch_size, batch_tokens)
    window = (batch_size or max(1, batch_tokens // max(max(lengths, default=1), 1))) * MEGABATCH_FACTOR
    plan: list[list[int]] = []
    for start in range(0, len(order), window):
        group = sorted(order[start : start + window], key=lambda i: -lengths[i])
        plan.extend(_chunk(group, lengths, batch_size, batch_tokens))
    rng.shuffle(plan)
    if plan:
        costliest = max(range(len(plan)), key=lambda b: len(plan[b]) * max(lengths[i] for i in plan[b]))
        plan[0], plan[costliest] = plan[costliest], plan[0]
    return plan


def plan_tokens(
    examples: Sequence[Example], plan: Sequence[Sequence[int]], *, packing: bool, max_length: int | None = None
) -> tuple[int, int]:
    """(real tokens, tokens computed) of a plan, as the collators would lay it out (no tensors built)."""
    lengths = [len(ex.input_ids) for ex in examples]
    real = computed = 0
    for micro in plan:
        sizes = [lengths[i] for i in micro]
        real += sum(sizes)
        if packing:
            rows = rows_for(sizes, max_length)
            computed += len(rows) * max(sum(sizes[j] for j in row) for row in rows)
        else:
            computed += len(sizes) * max(sizes)
    return real, computed


def packing_helps(
    examples: Sequence[Example],
    *,
    max_length: int,
    batch_size: int | None = None,
    batch_tokens: int | None = None,
    seed: int = 0,
    margin: float = 0.02,
) -> bool:
    """Whether packing wastes clearly less compute on padding than length-grouped padded batches.

    Both plans get the same token budget per micro-batch (`batch_size` packed rows of `max_length`,
    or `batch_tokens`). A dataset of near-equal lengths gains nothing from packing, and packing's
    4D mask keeps sdpa off its fastest (mask-free) kernels, so it must win by `margin`.
    """
    budget = batch_tokens if batch_tokens is not None else (batch_size or 0) * max_length
    fill = {}
    for packed in (True, False):
        plan = batches(
            examples, batch_tokens=budget, packing=packed, length_grouped=not packed, max_length=max_length, seed=seed
        )
        real, computed = plan_tokens(examples, plan, packing=packed, max_length=max_length)
        fill[packed] = real / computed if computed else 1.0
    return fill[True] > fill[False] + margin


def _packed_plan(
    lengths: list[int], max_length: int | None, batch_size: int | None, batch_tokens: int | None, rng: random.Random
) -> list[list[int]]:
    if max_length is None:
        raise ValueError("packing needs max_length (the packed row length)")
    if any(n > max_length for n in lengths):
        raise ValueError(f"an example is longer than max_length={max_length}; tokenize with the same max_length")
    tiebreak = list(range(len(lengths)))
    rng.shuffle(tiebreak)  # equal-length examples land in different rows each epoch
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], tiebreak[i]))
    bins = _best_fit(order, lengths, max_length)
    rng.shuffle(bins)
    rows = batch_size if batch_size is not None else batch_tokens // max_length
    if rows < 1:
        raise ValueError(f"batch_tokens={batch_tokens} is less than one packed row of {max_length} tokens")
    return [[i for b in bins[k : k + rows] for i in b] for k in range(0, len(bins), rows)]


def _chunk(order: list[int], lengths: list[int], batch_size: int | None, batch_tokens: int | None) -> list[list[int]]:
    if batch_size is not None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, not {batch_size}")
        return [order[k : k + batch_size] for k in range(0, len(order), batch_size)]
    plan: list[list[int]] = []
    longest = 0
    for i in order:
        grown = max(longest, lengths[i])
        if plan and grown * (len(plan[-1]) + 1) <= batch_tokens:
            plan[-1].append(i)
            longest = grown
        else:
            plan.append([i])  # a lone example longer than batch_tokens still gets its own batch
            longest = lengths[i]
    return plan
