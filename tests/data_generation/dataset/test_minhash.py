import json
import random

import numpy as np
import pytest

from data_generation.dataset.minhash import (
    find_near_duplicates,
    jaccard,
    lsh_params,
    shingle_sets,
)
from data_generation.dataset.normalise import Vocab


def _encode(texts):
    vocab = Vocab()
    enc = [vocab.encode(t) for t in texts]
    return np.concatenate(enc), np.concatenate([[0], np.cumsum([len(e) for e in enc])]).astype(np.int64)


@pytest.mark.parametrize("threshold", [0.5, 0.7, 0.8, 0.85, 0.95])
def test_lsh_params_reach_the_recall_target_with_the_longest_bands(threshold):
    bands, rows = lsh_params(threshold, 128)
    assert bands * rows <= 128
    assert 1 - (1 - threshold**rows) ** bands >= 0.99
    longer = 128 // (rows + 1)
    assert 1 - (1 - threshold ** (rows + 1)) ** longer < 0.99


def test_first_occurrence_is_kept_and_pairs_are_exact():
    base = "write a python function that returns the sum of squares of the numbers in a list " * 2
    texts = [
        base,
        base.replace("numbers", "values", 1),
        "a completely different text about sorting linked lists in place without extra memory and with a stable order",
        base + " extra",
    ]
    dups = find_near_duplicates(*_encode(texts), threshold=0.7)
    assert {d.index for d in dups} == {1, 3}
    assert all(d.kept_index == 0 and d.jaccard >= 0.7 for d in dups)


def test_short_and_empty_documents():
    texts = ["hi there", "hi there", "", "?!"]
    dups = find_near_duplicates(*_encode(texts), threshold=0.8, shingle=5)
    assert [(d.index, d.kept_index) for d in dups] == [(1, 0)]  # word-less docs are left to exact dedup


def test_matches_brute_force_on_real_rows(code_alpaca_2k):
    """Against an all-pairs exact-Jaccard oracle: no false positive, and (almost) no miss."""
    rows = json.loads(code_alpaca_2k.read_text())[:600]
    rng = random.Random(1)
    texts = [f"{r['instruction']}\n{r['input']}\n{r['output']}" for r in rows]
    for t in list(texts[:200]):  # near copies: one word changed
        words = t.split(" ")
        words[rng.randrange(len(words))] = "changed"
        texts.append(" ".join(words))
    ids, offsets = _encode(texts)
    threshold = 0.8
    got = {d.index: d for d in find_near_duplicates(ids, offsets, threshold=threshold)}
    sets = shingle_sets(ids, offsets, 5)
    kept, expected = [], set()
    for i, s in enumerate(sets):
        if len(s) and any(jaccard(s, sets[k]) >= threshold for k in kept):
            expected.add(i)
        elif len(s):
            kept.append(i)
    assert set(got) <= expected  # never a false positive: every drop is a true >= threshold match
    assert all(jaccard(sets[d.index], sets[d.kept_index]) == d.jaccard >= threshold for d in got.values())
    recall = len(set(got) & expected) / len(expected)
    assert len(expected) >= 90 and recall >= 0.98, (len(expected), recall)
    # The same seed gives the same decisions.
    assert list(got) == [d.index for d in find_near_duplicates(ids, offsets, threshold=threshold)]


def test_jaccard():
    a, b = np.array([1, 2, 3], np.uint64), np.array([2, 3, 4], np.uint64)
    assert jaccard(a, b) == 0.5 and jaccard(a, a) == 1.0
    assert jaccard(np.array([], np.uint64), np.array([], np.uint64)) == 0.0
