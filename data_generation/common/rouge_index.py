"""Bit-parallel LCS of one token sequence against many indexed sequences at once (numpy).

For `data_generation.common.rouge`. Each indexed sequence j has a bit vector V_j over its positions
(all ones at first); one step per token t of the query applies, to every j at once, the
Allison-Dix / Hyyroe update

    U = V & M_j[t];  V = (V + U) | (V & ~M_j[t])

where M_j[t] marks the positions of t in j. At the end LCS(query, j) = the zero bits of V_j. A
step leaves V_j unchanged when t does not occur in j (M = 0), so:

- a token in few sequences updates only its postings (gather, update, scatter);
- a token in many ("a", "the", "function") sweeps a dense column of M over the whole segment,
  contiguous and in place, which costs about a nanosecond per sequence.

Sequences longer than 64 tokens use several 64-bit words with the carry propagated by hand; they
go in segments of their own width, so the common one-word case stays a flat uint64 array. A
width with only a few sequences uses Python ints instead (`_IntSegment`).
"""

from __future__ import annotations

from typing import Hashable, Iterable, Sequence

import numpy as np

_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)
# A token gets a dense column when it occurs in at least this share of a segment's sequences (and
# in _MIN_DENSE of them): measured here, a sparse update costs ~4 ns per posting plus ~2 us, a
# dense sweep ~0.9 ns per sequence, so dense wins from about a fifth of the segment.
_DENSE_SHARE = 0.2
_MIN_DENSE = 64
# Multi-word segments with at most this many rows per word use Python ints instead (`_IntSegment`).
_INT_ROWS_PER_WORD = 16


def advance(v: np.ndarray, x: np.ndarray) -> np.ndarray:
    """One LCS step V' = (V + (V & X)) | (V & ~X) for a batch of vectors, (n,) or (n, words)."""
    u = v & x
    rest = v ^ u  # V & ~X, since U is a subset of V
    if v.ndim == 1:
        return (v + u) | rest
    total = np.empty_like(v)
    carry = np.zeros(len(v), np.uint64)
    for w in range(v.shape[1]):  # the carry out of the top word is dropped, as in one long word
        s = v[:, w] + u[:, w]
        c = s < v[:, w]
        total[:, w] = s + carry
        carry = (c | (total[:, w] < s)).astype(np.uint64)
    return total | rest


def match_masks(a: Sequence[Hashable]) -> dict[Hashable, int]:
    """token -> bit mask of its positions in `a`, Python ints of any length."""
    match: dict[Hashable, int] = {}
    for i, tok in enumerate(a):
        match[tok] = match.get(tok, 0) | (1 << i)
    return match


def lcs_with_masks(match: dict[Hashable, int], length: int, b: Iterable[Hashable]) -> int:
    """LCS of the sequence behind `match_masks` (of `length` items) and `b`: one big-int step per item of b."""
    full = (1 << length) - 1
    v = full  # zero bits of v mark positions used by the LCS so far
    for tok in b:
        m = match.get(tok)
        if m:
            u = v & m
            v = ((v + u) | (v - u)) & full
    return length - v.bit_count()


def _columns(cols: np.ndarray) -> np.ndarray | slice:
    """Contiguous pool columns (the usual case) as a slice: writing through it is cheaper than a scatter."""
    lo = int(cols[0])
    return slice(lo, lo + len(cols)) if int(cols[-1]) - lo + 1 == len(cols) else cols


def _flatten(items: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(item, token, position) for every token of every item."""
    lens = np.fromiter((len(x) for x in items), dtype=np.int64, count=len(items))
    tok = np.concatenate(items).astype(np.int64, copy=False) if len(items) else np.zeros(0, np.int64)
    item = np.repeat(np.arange(len(items), dtype=np.int64), lens)
    pos = np.arange(len(tok), dtype=np.int64) - np.repeat(np.cumsum(lens) - lens, lens)
    return item, tok, pos


class _Segment:
    """Sequences of 1..64*words tokens at pool columns `cols`: their match masks M_j[t], by token.

    Postings (sorted by token, then sequence): `off[t]:off[t+1]` holds the sequences containing t
    (`gitem`) and the mask of t's positions in each (`masks`). Frequent tokens also get a dense
    column `dense[dense_row[t]]` with M_j[t] for every j (0 where t is absent).
    """

    def __init__(self, items: Sequence[np.ndarray], cols: np.ndarray, words: int) -> None:
        self.n, self.words, self.cols = len(items), words, _columns(cols)
        item, tok, pos = _flatten(items)
        key = tok * self.n + item
        order = np.argsort(key, kind="stable")
        key, pos = key[order], pos[order]
        first = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
        bits = np.zeros((len(key), words), np.uint64)
        bits[np.arange(len(key)), pos // 64] = np.left_shift(np.uint64(1), (pos % 64).astype(np.uint64))
        masks = np.bitwise_or.reduceat(bits, first, axis=0)
        self.masks = masks[:, 0].copy() if words == 1 else masks
        self.gitem = key[first] % self.n
        gtok = key[first] // self.n
        df = np.bincount(gtok)
        off = np.searchsorted(gtok, np.arange(len(df) + 1))
        self._build_dense(gtok, df)
        # plain lists: the per-token loop reads them with Python ints, far cheaper than numpy scalars
        self._off, self._vocab = off.tolist(), len(df)

    def _build_dense(self, gtok: np.ndarray, df: np.ndarray) -> None:
        heavy = np.flatnonzero(df >= max(_MIN_DENSE, _DENSE_SHARE * self.n))
        row = np.full(len(df), -1, np.int64)
        row[heavy] = np.arange(len(heavy))
        shape = (len(heavy), self.n) if self.words == 1 else (len(heavy), self.n, self.words)
        self.dense = np.zeros(shape, np.uint64)
        sel = row[gtok] >= 0
        self.dense[row[gtok[sel]], self.gitem[sel]] = self.masks[sel]
        self._dense_row = row.tolist()

    def lcs(self, query: np.ndarray) -> np.ndarray:
        """LCS of `query` (token ids) against every sequence of the segment."""
        shape = (self.n,) if self.words == 1 else (self.n, self.words)
        v = np.full(shape, _ONES, np.uint64)
        u, rest = np.empty(shape, np.uint64), np.empty(shape, np.uint64)
        off, dense_row, vocab = self._off, self._dense_row, self._vocab
        for t in query.tolist():
            if t >= vocab:
                continue  # the token occurs nowhere here: every V stays as it is
            d = dense_row[t]
            if d >= 0 and self.words == 1:  # in place: no temporaries on the hot path
                np.bitwise_and(v, self.dense[d], out=u)
                np.bitwise_xor(v, u, out=rest)
                np.add(v, u, out=v)
                np.bitwise_or(v, rest, out=v)
            elif d >= 0:
                v = advance(v, self.dense[d])
            elif off[t] < off[t + 1]:
                idx = self.gitem[off[t] : off[t + 1]]
                v[idx] = advance(v[idx], self.masks[off[t] : off[t + 1]])
        # bits past a sequence's length start at 1 and stay 1 (M is 0 there), so zeros = LCS
        ones = np.bitwise_count(v).astype(np.int64)
        return 64 - ones if self.words == 1 else 64 * self.words - ones.sum(axis=1)


class _IntSegment:
    """A few long sequences: one Python int per sequence as its bit vector.

    numpy pays ~1 us per call and a multi-word step takes ~7 calls per word, whatever the number of
    rows; for a handful of rows (one 5,000-token outlier among short instructions) big ints are
    ten to a hundred times cheaper.
    """

    def __init__(self, items: Sequence[np.ndarray], cols: np.ndarray) -> None:
        self.cols = _columns(cols)
        self.seqs = [(match_masks(x.tolist()), len(x)) for x in items]

    def lcs(self, query: np.ndarray) -> np.ndarray:
        q = query.tolist()
        return np.array([lcs_with_masks(match, n, q) for match, n in self.seqs], dtype=np.int64)


class LcsIndex:
    """The non-empty sequences of a list, one segment per bit-vector width (empty ones score 0)."""

    def __init__(self, items: Sequence[np.ndarray], first_col: int) -> None:
        lens = np.fromiter((len(x) for x in items), dtype=np.int64, count=len(items))
        words = (lens + 63) // 64
        self.segments: list[_Segment | _IntSegment] = []
        for w in np.unique(words[lens > 0]):
            idx = np.flatnonzero((words == w) & (lens > 0))
            seqs, cols = [items[i] for i in idx], first_col + idx
            few = w > 1 and len(idx) <= _INT_ROWS_PER_WORD * w
            self.segments.append(_IntSegment(seqs, cols) if few else _Segment(seqs, cols, int(w)))

    def lcs_into(self, query: np.ndarray, out: np.ndarray) -> None:
        """Write LCS(query, sequence) into `out` at each indexed sequence's pool column."""
        for seg in self.segments:
            out[seg.cols] = seg.lcs(query) if len(query) else 0


def build_index(items: Sequence[np.ndarray], first_col: int) -> LcsIndex | None:
    """Index `items` as pool columns first_col, first_col + 1, ...; None when there is nothing to index."""
    return LcsIndex(items, first_col) if any(len(x) for x in items) else None
