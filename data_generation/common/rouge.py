"""ROUGE-L exactly as `rouge_score` computes it, and a fast near-duplicate filter built on it.

Self-instruct keeps a generated instruction only if its ROUGE-L F-measure against every instruction
kept so far is <= 0.7 (Alpaca: `rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)`, one
pure-Python LCS table per pair, a process pool per candidate). That is quadratic with a large
constant: hours at 50k. `RougeLFilter` makes the *same* decisions with the *same* floats, fast:

- tokens: `tokenize` is rouge_score's default tokenizer without stemmer (`text.lower()`, every run
  of characters outside [a-z0-9] becomes a space, split); tokens become integer ids.
- LCS: the bit-parallel algorithm (Allison-Dix / Hyyroe). Every pool instruction has a bit vector
  over its positions; one step per candidate token updates all of them at once in numpy. A step
  changes only instructions that contain the token, so a rare token updates just its postings and a
  frequent one ("a", "the", "function") sweeps a precomputed dense column (see `rouge_index`).
- F: computed with rouge_score's formula, operation for operation (p = lcs/len(prediction),
  r = lcs/len(target), 2*p*r/(p+r)) in float64, so ties at exactly the threshold decide the same way.

Every candidate is scored against the *whole* pool, exactly. That is quadratic, but with a constant
small enough for 50k instructions in seconds, and it is what Alpaca's statistics need anyway:
`most_similar_instructions` (top 10) and `avg_similarity_score` (`np.mean` over the pool, in pool
order) come out of the same row of scores. Filters that skip pairs (prefix filtering) were tried
and dropped: at F 0.7 on 10-20 token instructions they keep a third of the pool as candidates.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Hashable, Iterable, Iterator, Sequence

import numpy as np

from data_generation.common.rouge_index import (
    LcsIndex,
    build_index,
    lcs_with_masks,
    match_masks,
)

log = logging.getLogger(__name__)

_NON_ALNUM = re.compile(r"[^a-z0-9]+")
# Instructions kept since the last full index build sit in a small "recent" index rebuilt per
# batch; the main index is rebuilt once this many have accumulated, so building stays cheap.
_REBUILD_EVERY = 4096
# Above this many (lcs, distinct length) cells the F lookup table gives way to direct arithmetic.
_MAX_TABLE = 1 << 20


# ---------------------------------------------------------------- rouge_score, exactly


def tokenize(text: str) -> list[str]:
    """rouge_score's tokenizer (no stemmer): lowercase, non-[a-z0-9] runs -> space, split."""
    # After the substitution only [a-z0-9 ] remain, so str.split equals rouge_score's split on \s+
    # followed by its ^[a-z0-9]+$ filter (which only drops the empty strings at the ends).
    return _NON_ALNUM.sub(" ", text.lower()).split()


def fmeasure(lcs: int, target_len: int, prediction_len: int) -> float:
    """rouge_score's `_score_lcs` F-measure for a given LCS length, same operations in the same order."""
    if not target_len or not prediction_len:
        return 0.0  # rouge_score returns int 0 here: equal as a number
    precision = lcs / prediction_len
    recall = lcs / target_len
    if precision + recall > 0:
        return 2 * precision * recall / (precision + recall)
    return 0.0


def lcs_length(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """Length of the longest common subsequence, bit-parallel with a Python int as the bit vector."""
    return lcs_with_masks(match_masks(a), len(a), b) if a and b else 0


def rouge_l(target: str, prediction: str) -> float:
    """ROUGE-L F-measure, equal (as a float) to rouge_score's `score(target, prediction)["rougeL"].fmeasure`."""
    t, p = tokenize(target), tokenize(prediction)
    return fmeasure(lcs_length(t, p), len(t), len(p))


def fmeasure_array(lcs: np.ndarray, target_len: np.ndarray | int, prediction_len: np.ndarray | int) -> np.ndarray:
    """`fmeasure` element-wise: numpy float64 operations round exactly as Python's do."""
    lcs = np.asarray(lcs, dtype=np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = lcs / prediction_len
        recall = lcs / target_len
        f = 2 * precision * recall / (precision + recall)
    return np.where(lcs > 0, f, 0.0)


def _score_row(
    lcs: np.ndarray, target_len: int, length_rank: np.ndarray, lengths: np.ndarray, tables: dict[int, np.ndarray]
) -> np.ndarray:
    """F of one candidate against many: `fmeasure_array`, through a lookup table when that is small.

    For a fixed candidate length F depends only on (lcs, prediction length), so a table over the
    distinct lengths (`lengths[length_rank[j]]` is j's length) holds the very same float64 values,
    and one gather is several times cheaper than the arithmetic over a 50k row. `tables` caches
    them by candidate length for as long as `lengths` stays the same.
    """
    if (target_len + 1) * len(lengths) > _MAX_TABLE:
        return fmeasure_array(lcs, target_len, lengths[length_rank])
    if target_len not in tables:
        tables[target_len] = fmeasure_array(np.arange(target_len + 1)[:, None], target_len, lengths[None, :]).ravel()
    return tables[target_len][lcs * len(lengths) + length_rank]


# ---------------------------------------------------------------- the filter


@dataclass(frozen=True)
class Decision:
    """The outcome for one candidate; scores are rouge_score's ROUGE-L F-measure (candidate as target).

    keep: max_score <= threshold (the candidate then joins the pool, under `filter`).
    max_score: the highest F against the pool (0.0 when the pool is empty), always exact.
    most_similar: (pool index, F), best first, ties to the earlier pool index. Kept candidates with
        statistics: the top-k (Alpaca's `most_similar_instructions`); otherwise the maximum only
        (empty when the pool is).
    avg_score: `np.mean` of F over the whole pool in pool order (Alpaca's `avg_similarity_score`),
        for kept candidates with statistics; None otherwise or when the pool is empty.
    """

    keep: bool
    max_score: float
    most_similar: tuple[tuple[int, float], ...] = ()
    avg_score: float | None = None


def _top_k(row: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest scores, highest first, ties by lower index (deterministic, unlike argsort)."""
    k = min(k, len(row))
    if k == 0:
        return np.zeros(0, np.int64)
    if k == 1:  # the first maximum, without partitioning the whole row
        return np.array([int(np.argmax(row))])
    kth = np.partition(row, len(row) - k)[len(row) - k]
    idx = np.flatnonzero(row >= kth)
    return idx[np.lexsort((idx, -row[idx]))][:k]


class RougeLFilter:
    """Keep an instruction only if its ROUGE-L F against every instruction kept so far is <= threshold.

        f = RougeLFilter(0.7)
        for seed in seeds:
            f.add(seed)                      # unconditionally
        for decision in f.filter(generated): # in order; kept ones join the pool
            ...
        f.check(text)                        # decide one candidate, pool unchanged
        f.decide(texts)                      # decide several as `filter` would, pool unchanged

    Decisions and scores equal rouge_score's (see the module docstring); pool indices are the order
    in which instructions joined (`instructions[i]`). `stats=False` skips the top-k and the mean
    (every candidate is scored against the whole pool either way, so it saves only a little).
    """

    def __init__(self, threshold: float = 0.7, *, top_k: int = 10, stats: bool = True, batch_size: int = 256) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        if top_k < 0 or batch_size < 1:
            raise ValueError("top_k must be >= 0 and batch_size >= 1")
        self.threshold, self.top_k, self.stats, self.batch_size = threshold, top_k, stats, batch_size
        self.instructions: list[str] = []
        self._vocab: dict[str, int] = {}
        self._tokens: list[np.ndarray] = []  # pool token ids, pool order
        self._lens = np.zeros(0, np.int64)
        self._main: LcsIndex | None = None  # index over the first _main_size pool entries
        self._main_size = 0

    def __len__(self) -> int:
        return len(self.instructions)

    def encode(self, text: str) -> np.ndarray:
        vocab = self._vocab
        return np.fromiter((vocab.setdefault(w, len(vocab)) for w in tokenize(text)), dtype=np.int64)

    def add(self, instruction: str) -> None:
        """Put an instruction in the pool without checking it (seed instructions)."""
        self._join(instruction, self.encode(instruction))

    def check(self, candidate: str) -> Decision:
        """Decide one candidate against the pool; the pool is left unchanged."""
        return self._decide([self.encode(candidate)])[0]

    def decide(self, candidates: Sequence[str]) -> list[Decision]:
        """Decide candidates in order exactly as `filter` would (each against the pool and the earlier
        candidates it would keep) but pool none of them: a probe before paying for more work on them."""
        return self._decide([self.encode(text) for text in candidates]) if candidates else []

    def filter(self, candidates: Iterable[str]) -> Iterator[Decision]:
        """Decide candidates in order, each against the pool *and the earlier kept candidates*."""
        chunk: list[str] = []
        for text in candidates:
            chunk.append(text)
            if len(chunk) == self.batch_size:
                yield from self._filter_chunk(chunk)
                chunk = []
        if chunk:
            yield from self._filter_chunk(chunk)

    def most_similar_instructions(self, decision: Decision) -> dict[str, float]:
        """Alpaca's form: {instruction: score}, best first."""
        return {self.instructions[i]: score for i, score in decision.most_similar}

    def _join(self, text: str, tokens: np.ndarray) -> None:
        self.instructions.append(text)
        self._tokens.append(tokens)
        if len(self._tokens) > len(self._lens):  # amortised growth of the length array
            self._lens = np.concatenate([self._lens, np.zeros(max(64, len(self._lens)), np.int64)])
        self._lens[len(self._tokens) - 1] = len(tokens)

    def _filter_chunk(self, chunk: list[str]) -> list[Decision]:
        tokens = [self.encode(text) for text in chunk]
        decisions = self._decide(tokens)
        for text, toks, d in zip(chunk, tokens, decisions):
            if d.keep:
                self._join(text, toks)
        return decisions

    def _decide(self, items: list[np.ndarray]) -> list[Decision]:
        """Decisions for a batch as if its candidates came one at a time (kept ones joining the pool).

        The batch is indexed with the recent pool entries (columns pool + b), so each candidate is
        scored against every column at once; only the pool and its *kept* earlier batch-mates count.
        """
        pool = len(self._tokens)
        if pool - self._main_size >= _REBUILD_EVERY:
            self._main, self._main_size = build_index(self._tokens, 0), pool
            log.debug("rebuilt the main ROUGE-L index over %d instructions", pool)
        recent = build_index(self._tokens[self._main_size :] + items, self._main_size)
        indexes = [ix for ix in (self._main, recent) if ix is not None]
        batch_lens = np.fromiter((len(x) for x in items), dtype=np.int64, count=len(items))
        # distinct lengths and each column's rank among them, for the F lookup table
        lengths, rank = np.unique(np.concatenate([self._lens[:pool], batch_lens]), return_inverse=True)
        tables: dict[int, np.ndarray] = {}
        lcs = np.zeros(pool + len(items), np.int64)
        mates: list[int] = []  # batch positions kept so far; the k-th becomes pool index pool + k
        decisions = []
        for b, toks in enumerate(items):
            for ix in indexes:
                ix.lcs_into(toks, lcs)
            cols = np.asarray(mates, dtype=np.int64)
            row_lcs = np.concatenate([lcs[:pool], lcs[pool + cols]])
            row_rank = np.concatenate([rank[:pool], rank[pool + cols]])
            d = self._judge(_score_row(row_lcs, len(toks), row_rank, lengths, tables))
            if d.keep:
                mates.append(b)
            decisions.append(d)
        return decisions

    def _judge(self, row: np.ndarray) -> Decision:
        """Decision from the candidate's scores against the pool, in pool order."""
        if not len(row):
            return Decision(True, 0.0)
        best = int(np.argmax(row))  # the first maximum: ties go to the earlier pool index
        max_score = float(row[best])
        if max_score > self.threshold or not self.stats:
            return Decision(max_score <= self.threshold, max_score, ((best, max_score),))
        top = _top_k(row, self.top_k)
        return Decision(True, max_score, tuple((int(i), float(row[i])) for i in top), float(np.mean(row)))
