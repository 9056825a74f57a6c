"""Training data: records in, tokenized examples out (prompt masked, EOS appended), train/val split.

- `load_records`: the merged dataset (or any source output) from .jsonl/.json/.parquet, a
  `save_to_disk` folder or a hub id, through `data_generation` readers; a bad row stops with file:line.
- `split_train_val`: a held-out split that can never share a row with training (see its docstring).
- `prepare_tokenizer`: the pad-token policy for Llama-family tokenizers (see its docstring).
- `tokenize_records`: the prompt from a `data_generation.common.prompts` format (alpaca or chat: the renderer generation
  uses), labels -100 on the prompt, EOS appended to the target, truncation counted.

Batching (packing, padding, the epoch plan) lives in `main.training.packing`.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

from data_generation.common.io import DataError, iter_input_rows
from data_generation.common.prompts import (
    AlpacaFormat,
    PromptFormat,
    encode_prompts,
)
from data_generation.common.record import Record, RowError, record_from_row
from main.training.packing import IGNORE_INDEX

log = logging.getLogger(__name__)

# Added only when the vocabulary has no usable token (then the embeddings must grow by one row).
ADDED_PAD_TOKEN = "<|pad|>"
# Existing tokens a pad may reuse, best first: Llama 3.1's dedicated pad, then reserved/unused slots.
PAD_CANDIDATE = re.compile(r"pad|reserved|unused", re.IGNORECASE)


@dataclass(frozen=True)
class TokenizedExample:
    input_ids: tuple[int, ...]
    labels: tuple[int, ...]  # IGNORE_INDEX on the prompt; the target's ids then EOS (unless truncated)


@dataclass
class DataStats:
    examples: int = 0  # kept
    truncated: int = 0  # longer than max_length: the target's tail (and its EOS) cut
    dropped_all_masked: int = 0  # no target token left after truncation (prompt alone fills max_length)
    tokens: int = 0  # over kept examples
    target_tokens: int = 0  # labels != -100 over kept examples
    longest: int = 0  # longest example before truncation (prompt + target + EOS)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


# ---------------------------------------------------------------- records


def load_records(
    spec: str, *, split: str = "train", revision: str | None = None, skip_invalid: bool = False
) -> list[Record]:
    """All records of a dataset file, folder or hub id.

    A row that is not a valid record (empty output, wrong types) is a DataError naming file:line,
    or, with skip_invalid (raw source files such as CodeAlpaca's), skipped and logged.
    """
    source = Path(spec).stem or "dataset"
    records, skipped = [], []
    for where, row in iter_input_rows(spec, split=split, revision=revision):
        try:
            records.append(record_from_row(row, default_source=source))
        except RowError as err:
            if not skip_invalid:
                raise DataError(
                    spec,
                    where,
                    f"not a valid record ({err}); fix the row, clean the file with "
                    "`python -m data_generation merge`, or skip invalid rows",
                ) from None
            skipped.append(f"{spec}:{where}: {err}")
    if skipped:
        log.warning("%d invalid row(s) skipped, first: %s", len(skipped), skipped[0])
    if not records:
        raise DataError(spec, None, "no records")
    return records


def prompt_key(record: Record) -> str:
    """Case- and whitespace-folded instruction + input: records that share it ask the same question."""
    fold = lambda s: " ".join(s.casefold().split())  # noqa: E731
    return fold(record.instruction) + "\x00" + fold(record.input)


def split_train_val(records: Sequence[Record], val_size: int | float, seed: int) -> tuple[list[Record], list[Record]]:
    """(train, validation), both in input order; validation never shares a row or a question with train.

    Exact duplicates (same record id, i.e. same content) are dropped first, keeping the first. Records
    are then grouped by `prompt_key` and whole groups go to one side, so the same question with two
    answers cannot be trained on and validated on. Which groups go to validation depends only on
    sha256(seed, key): adding records to the file does not move the others across the split.
    `val_size`: a fraction in (0, 1) or a count of records (groups may overshoot it by a few).
    """
    unique: dict[str, Record] = {}
    for rec in records:
        unique.setdefault(rec.id, rec)
    kept = list(unique.values())
    if len(kept) < len(records):
        log.info("split: dropped %d exact duplicate record(s)", len(records) - len(kept))
    wanted = _val_count(val_size, len(kept))
    groups: dict[str, list[int]] = {}
    for i, rec in enumerate(kept):
        groups.setdefault(prompt_key(rec), []).append(i)
    ranked = sorted(groups, key=lambda k: hashlib.sha256(f"{seed}\x00{k}".encode()).digest())
    val_idx: set[int] = set()
    for key in ranked:
        if len(val_idx) >= wanted:
            break
        val_idx.update(groups[key])
    train = [r for i, r in enumerate(kept) if i not in val_idx]
    val = [r for i, r in enumerate(kept) if i in val_idx]
    if wanted and not train:
        raise ValueError(f"val_size={val_size} leaves no training records out of {len(kept)}")
    return train, val


def _val_count(val_size: int | float, n: int) -> int:
    if 0 < val_size < 1:
        return max(1, round(val_size * n))
    if val_size != int(val_size) or not 0 <= val_size < n:
        raise ValueError(
            f"val_size={val_size}: give a fraction in (0, 1) or a whole count below the {n} unique records"
        )
    return int(val_size)


def remove_overlap(train: Sequence[Record], val: Sequence[Record]) -> tuple[list[Record], int]:
    """Validation rows from a separate file, minus any whose id or question also occurs in train."""
    ids = {r.id for r in train}
    keys = {prompt_key(r) for r in train}
    kept = [r for r in val if r.id not in ids and prompt_key(r) not in keys]
    return kept, len(val) - len(kept)


# ---------------------------------------------------------------- tokenizer


def prepare_tokenizer(tokenizer: Any) -> Any:
    """Give the tokenizer a pad token distinct from EOS; returns the same object.

    Why: Stanford Alpaca sets pad = EOS when there is none (or adds "[PAD]" and resizes); collators
    that mask labels by `input_ids == pad_id` then also mask every real EOS, and the model never
    learns to stop. Here labels are built from lengths, never from the pad id, and EOS is appended
    by id; still, pad must differ from EOS (and BOS) so nothing downstream can confuse them.
    Choice, first that applies:
      1. the tokenizer's own pad, if it is not EOS/BOS;
      2. the unk token (Llama 2 `<unk>`, SmolLM2 `<|endoftext|>`): never produced from byte-level or
         byte-fallback text, so it is free;
      3. an existing special token named like pad/reserved/unused (Llama 3.1
         `<|finetune_right_pad_id|>`, Llama 3 `<|reserved_special_token_0|>`): pad-named first,
         then the lowest id;
      4. only then add `<|pad|>`: `needs_resize(tokenizer, model)` tells the loop to grow the
         embeddings by that one row.
    Pad positions are masked in attention and labels, so the pad's embedding is never trained on.
    """
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("the tokenizer has no EOS token; set tokenizer.eos_token to the model's end-of-text token")
    taken = {eos, tokenizer.bos_token_id}
    if tokenizer.pad_token_id is not None and tokenizer.pad_token_id not in taken:
        log.info("pad token: the tokenizer's own %r (id %d)", tokenizer.pad_token, tokenizer.pad_token_id)
        return tokenizer
    if tokenizer.unk_token_id is not None and tokenizer.unk_token_id not in taken:
        tokenizer.pad_token = tokenizer.unk_token
        log.info("pad token: unk %r (id %d), distinct from EOS", tokenizer.pad_token, tokenizer.pad_token_id)
        return tokenizer
    spare = sorted(
        (
            (tid, tok.content)
            for tid, tok in tokenizer.added_tokens_decoder.items()
            if tok.special and tid not in taken and PAD_CANDIDATE.search(tok.content)
        ),
        key=lambda t: ("pad" not in t[1].lower(), t[0]),
    )
    if spare:
        tokenizer.pad_token = spare[0][1]
        log.info("pad token: existing special token %r (id %d)", tokenizer.pad_token, tokenizer.pad_token_id)
        return tokenizer
    tokenizer.add_special_tokens({"pad_token": ADDED_PAD_TOKEN})
    log.warning(
        "pad token: added %r (id %d); the model's embeddings must grow to %d rows",
        ADDED_PAD_TOKEN,
        tokenizer.pad_token_id,
        len(tokenizer),
    )
    return tokenizer


def needs_resize(tokenizer: Any, model: Any) -> bool:
    """True only if the tokenizer has ids the model's input embeddings cannot look up."""
    return len(tokenizer) > model.get_input_embeddings().num_embeddings


# ---------------------------------------------------------------- tokenizing


def tokenize_records(
    records: Sequence[Record], tokenizer: Any, max_length: int, prompt_format: PromptFormat | None = None
) -> tuple[list[TokenizedExample], DataStats]:
    """Examples in record order (those with no target token left are dropped and counted).
    `prompt_format`: how a record becomes its prompt (default: the seeds' Alpaca format)."""
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no EOS token; call prepare_tokenizer first")
    if max_length < 2:
        raise ValueError(f"max_length must be >= 2, not {max_length}")
    fmt = prompt_format or AlpacaFormat()
    stats = DataStats()
    examples = []
    prompts = encode_prompts(tokenizer, [fmt.render(r.instruction, r.input) for r in records], templated=fmt.templated)
    targets = tokenizer([r.output for r in records], add_special_tokens=False)["input_ids"] if records else []
    for prompt, target in zip(prompts, targets):
        ex, truncated, full = _build(prompt, list(target), tokenizer.eos_token_id, max_length)
        stats.longest = max(stats.longest, full)
        stats.truncated += truncated
        if ex is None:
            stats.dropped_all_masked += 1
            continue
        examples.append(ex)
        stats.tokens += len(ex.input_ids)
        stats.target_tokens += sum(1 for t in ex.labels if t != IGNORE_INDEX)
    stats.examples = len(examples)
    if stats.truncated or stats.dropped_all_masked:
        log.warning(
            "tokenize: %d of %d examples longer than max_length=%d (target cut, no EOS); %d dropped "
            "with no target left",
            stats.truncated,
            len(records),
            max_length,
            stats.dropped_all_masked,
        )
    return examples, stats


def _build(
    prompt: list[int], target: list[int], eos: int, max_length: int
) -> tuple[TokenizedExample | None, bool, int]:
    ids = prompt + target + [eos]
    labels = [IGNORE_INDEX] * len(prompt) + target + [eos]
    full = len(ids)
    if full > max_length:
        ids, labels = ids[:max_length], labels[:max_length]
    if all(t == IGNORE_INDEX for t in labels):
        return None, full > max_length, full
    return TokenizedExample(tuple(ids), tuple(labels)), full > max_length, full
