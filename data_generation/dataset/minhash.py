"""Near-duplicate removal: MinHash + LSH to find candidates, exact Jaccard to decide.

Each document is the set of its word k-shingles (hashed to 64 bits). MinHash signatures are
computed for all documents at once in numpy; LSH bands (b bands of r rows, chosen for the
threshold) propose candidate pairs; a candidate is a duplicate only if the *exact* Jaccard
similarity of the two shingle sets reaches the threshold, so LSH can only miss pairs (rarely,
by design of b and r), never invent them. The first occurrence in input order is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data_generation.common.defaults import DEFAULT_SEED
from data_generation.dataset.normalise import mix64, ngram_hashes

_MAX = np.uint64(np.iinfo(np.uint64).max)


def lsh_params(threshold: float, num_perm: int, recall: float = 0.99) -> tuple[int, int]:
    """(bands, rows): the longest bands (fewest candidates) that still make a pair *at* the threshold
    a candidate with probability >= `recall`; pairs above it are found even more surely.

    Candidates are verified exactly, so extra candidates cost only time; a missed pair costs a
    duplicate in the dataset. Hence recall first, not datasketch's balanced FP/FN optimum.
    """
    for rows in range(num_perm, 0, -1):
        bands = num_perm // rows
        if 1.0 - (1.0 - threshold**rows) ** bands >= recall:
            return bands, rows
    return num_perm, 1


@dataclass(frozen=True)
class NearDuplicate:
    index: int  # position of the dropped document
    kept_index: int  # earlier document it duplicates
    jaccard: float


def shingle_sets(ids: np.ndarray, offsets: np.ndarray, k: int) -> list[np.ndarray]:
    """Sorted unique shingle hashes per document; a document shorter than k is one shingle."""
    hashes, starts = ngram_hashes(ids, offsets, k)
    doc_of = np.searchsorted(offsets, starts, side="right") - 1
    bounds = np.searchsorted(doc_of, np.arange(len(offsets)), side="left")
    sets = []
    for d in range(len(offsets) - 1):
        s = hashes[bounds[d] : bounds[d + 1]]
        length = int(offsets[d + 1] - offsets[d])
        if len(s) == 0 and length:  # shorter than k: the whole document is its one shingle
            s = ngram_hashes(ids[offsets[d] : offsets[d + 1]], np.array([0, length]), length)[0]
        sets.append(np.unique(s))
    return sets


def minhash_signatures(sets: list[np.ndarray], num_perm: int, seed: int) -> np.ndarray:
    """(documents, num_perm) MinHash matrix; permutation p is h -> mix(h ^ salt_p)."""
    salts = np.random.default_rng(seed).integers(0, 2**63, size=num_perm, dtype=np.uint64)
    sig = np.full((len(sets), num_perm), _MAX, dtype=np.uint64)
    sizes = np.array([len(s) for s in sets])
    nonempty = np.flatnonzero(sizes)
    # Process documents in chunks so the (shingles x perms) matrix stays around 64 MB.
    chunk_shingles = max(1, (8 << 20) // num_perm)
    start = 0
    while start < len(nonempty):
        stop, total = start, 0
        while stop < len(nonempty) and (total == 0 or total + sizes[nonempty[stop]] <= chunk_shingles):
            total += sizes[nonempty[stop]]
            stop += 1
        docs = nonempty[start:stop]
        flat = np.concatenate([sets[d] for d in docs])
        perm = mix64(flat[:, None] ^ salts[None, :])
        firsts = np.concatenate([[0], np.cumsum(sizes[docs])[:-1]])
        sig[docs] = np.minimum.reduceat(perm, firsts, axis=0)
        start = stop
    return sig


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    inter = len(np.intersect1d(a, b, assume_unique=True))
    union = len(a) + len(b) - inter
    return inter / union if union else 0.0


def find_near_duplicates(
    ids: np.ndarray,
    offsets: np.ndarray,
    *,
    threshold: float = 0.85,
    num_perm: int = 128,
    shingle: int = 5,
    seed: int = DEFAULT_SEED,
) -> list[NearDuplicate]:
    """Documents (in order) whose exact shingle Jaccard with an earlier *kept* document is >= threshold."""
    sets = shingle_sets(ids, offsets, shingle)
    sig = minhash_signatures(sets, num_perm, seed)
    bands, rows = lsh_params(threshold, num_perm)
    # One 64-bit key per (document, band): a wrapping dot product of the band's rows with random weights.
    weights = np.random.default_rng(seed + 1).integers(1, 2**63, size=(bands, rows), dtype=np.uint64) | np.uint64(1)
    banded = sig[:, : bands * rows].reshape(len(sets), bands, rows)
    keys = mix64((banded * weights[None]).sum(axis=2, dtype=np.uint64)).tolist()
    buckets: list[dict[int, list[int]]] = [{} for _ in range(bands)]
    dups: list[NearDuplicate] = []
    for d, doc_keys in enumerate(keys):
        if len(sets[d]) == 0:
            continue  # no words to compare: only exact dedup applies
        match = _best_match(d, doc_keys, buckets, sets, threshold)
        if match is not None:
            dups.append(NearDuplicate(d, *match))
            continue
        for band, key in enumerate(doc_keys):
            buckets[band].setdefault(key, []).append(d)
    return dups


def _best_match(
    d: int, doc_keys: list[int], buckets: list[dict[int, list[int]]], sets: list[np.ndarray], threshold: float
) -> tuple[int, float] | None:
    seen: set[int] = set()
    best: tuple[int, float] | None = None
    for band, key in enumerate(doc_keys):
        for other in buckets[band].get(key, ()):
            if other in seen:
                continue
            seen.add(other)
            sim = jaccard(sets[d], sets[other])
            if sim >= threshold and (best is None or sim > best[1]):
                best = (other, sim)
    return best
