"""ROUGE-L against Google's `rouge_score` itself: tokenizer, floats, and the filter's decisions.

The reference filter is the naive one Alpaca runs: for each candidate in order, score it against
every kept instruction with rouge_score (candidate as target) and keep it iff the maximum is
<= threshold. RougeLFilter must give the same decisions, the same maximum and, for kept
candidates, the same `avg_similarity_score` (np.mean over the pool) and top-k scores.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

import numpy as np
import pytest
from rouge_score import rouge_scorer

from data_generation.common.rouge import (
    Decision,
    RougeLFilter,
    fmeasure,
    lcs_length,
    rouge_l,
    tokenize,
)

SCORER = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def ref_tokenize(text: str) -> list[str]:
    return SCORER._tokenizer.tokenize(text)


def ref_rouge_l(target: str, prediction: str) -> float:
    return SCORER.score(target, prediction)["rougeL"].fmeasure


@dataclass
class Ref:
    keep: bool
    scores: list[float]  # against the pool at the time, pool order

    @property
    def max_score(self) -> float:
        return max(self.scores) if self.scores else 0.0


def reference_filter(seeds: list[str], candidates: list[str], threshold: float) -> list[Ref]:
    """Alpaca's loop, without the process pool: rouge_score's tokenizer and `_score_lcs` per pair."""
    pool = [ref_tokenize(s) for s in seeds]
    out = []
    for text in candidates:
        tokens = ref_tokenize(text)
        scores = [rouge_scorer._score_lcs(tokens, other).fmeasure for other in pool]
        ref = Ref(keep=(max(scores) if scores else 0.0) <= threshold, scores=scores)
        out.append(ref)
        if ref.keep:
            pool.append(tokens)
    return out


def assert_same(decisions: list[Decision], refs: list[Ref], top_k: int = 10, stats: bool = True) -> None:
    assert len(decisions) == len(refs)
    for i, (d, ref) in enumerate(zip(decisions, refs)):
        where = f"candidate {i}"
        assert d.keep == ref.keep, where
        scores = np.array(ref.scores, dtype=float)
        assert d.max_score == ref.max_score, where
        if not len(scores):
            assert d == Decision(True, 0.0), where
            continue
        if not d.keep or not stats:  # the maximum only, at its first pool index
            assert d.most_similar == ((int(np.argmax(scores)), ref.max_score),), where
            assert d.avg_score is None, where
            continue
        assert d.avg_score == float(np.mean(ref.scores)), where  # the float Alpaca stores
        # Alpaca: np.argsort(scores)[-10:][::-1]; its order among ties is unspecified, ours is the
        # lower pool index first, so compare values with Alpaca and indices with a stable sort.
        alpaca_top = scores[np.argsort(scores)[-top_k:][::-1]] if top_k else np.zeros(0)
        expected = sorted(range(len(scores)), key=lambda j: (-scores[j], j))[:top_k]
        assert [s for _, s in d.most_similar] == alpaca_top.tolist(), where
        assert [j for j, _ in d.most_similar] == expected, where


def run_filter(seeds: list[str], candidates: list[str], threshold: float, **kwargs) -> list[Decision]:
    f = RougeLFilter(threshold, **kwargs)
    for s in seeds:
        f.add(s)
    decisions = list(f.filter(candidates))
    assert len(f) == len(seeds) + sum(d.keep for d in decisions)
    assert f.instructions[len(seeds) :] == [c for c, d in zip(candidates, decisions) if d.keep]
    return decisions


# ---------------------------------------------------------------- tokenizer and scores

TABLE = [
    "",
    " ",
    "!!!",
    "?.,;:",
    "\n\t ",
    "word",
    "Hello, World!",
    "snake_case_name and camelCaseName",
    "x=1+2; y = x**2  # comment",
    "3.14159 is pi, 2,718 is e",
    "C++ / C# / F# / .NET / Node.js",
    "café naïve résumé façade",
    "Straße ß ẞ",
    "İstanbul ıi",
    "Kelvin: \u212a degrees",
    "ǅemal ǈ",
    "１２３ ａｂｃ",
    "日本語のテキスト mixed with english",
    "emoji 🙂 in the 🚀 middle",
    "tab\tsep\nnew\r\nline",
    "a a a a a",
    "the the the cat the",
    "UPPER lower MiXeD",
    "under_score__double",
    "\u00a0nbsp\u2003em\u2009thin",
    "trailing\n",
    "ﬁ ligature ﬀ",
    "Ω ω µ μ",
    "ＡＢＣ full width",
    "0x1F 0b1010 1e10 -5",
]


@pytest.mark.parametrize("text", TABLE)
def test_tokenize_equals_rouge_score(text):
    assert tokenize(text) == ref_tokenize(text)


def test_tokenize_equals_rouge_score_on_random_and_real_text(code_alpaca_2k):
    rng = random.Random(0)
    alphabet = "aZ09 _-.,;:!?\n\t'\"()[]{}<>/\\éßİıK\u212aǅ１ａ日🙂\u00a0\u2003"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40))) for _ in range(500)]
    rows = json.loads(code_alpaca_2k.read_text(encoding="utf-8"))
    texts += [r[k] for r in rows for k in ("instruction", "input", "output")]
    for text in texts:
        assert tokenize(text) == ref_tokenize(text), repr(text)


def _pair(lcs: int, m: int, n: int) -> tuple[str, str]:
    """A target of m tokens and a prediction of n tokens whose LCS is exactly `lcs`."""
    shared = [f"s{i}" for i in range(lcs)]
    return " ".join(shared + [f"t{i}" for i in range(m - lcs)]), " ".join(shared + [f"p{i}" for i in range(n - lcs)])


# (lcs, m, n) where 2*lcs/(m+n) is exactly 0.7 but the float F lands on 0.7, above it, or below it
TIES_AT_07 = [
    ((7, 10, 10), True),
    ((14, 20, 20), True),
    ((7, 7, 13), False),
    ((7, 12, 8), False),
    ((21, 23, 37), True),
    ((21, 37, 23), True),
]


@pytest.mark.parametrize(("lcs_m_n", "kept"), TIES_AT_07)
def test_ties_at_the_threshold_decide_as_rouge_score(lcs_m_n, kept):
    target, prediction = _pair(*lcs_m_n)
    f = ref_rouge_l(target, prediction)
    assert rouge_l(target, prediction) == f
    assert (f <= 0.7) is kept  # the float rouge_score computes, not the exact fraction, decides
    (d,) = run_filter([prediction], [target], 0.7)
    assert d.keep is kept and d.max_score == f


def test_rouge_l_float_equality_on_tables_and_random_pairs():
    pairs = [(a, b) for a in TABLE for b in TABLE]
    pairs += [_pair(*t) for t, _ in TIES_AT_07]
    rng = random.Random(1)
    for _ in range(400):
        vocab = [f"w{i}" for i in range(rng.choice([2, 3, 6, 20]))]
        m, n = (rng.choice([0, 1, 2, 5, 13, 63, 64, 65, 127, 128, 129, 200]) for _ in range(2))
        pairs.append((" ".join(rng.choices(vocab, k=m)), " ".join(rng.choices(vocab, k=n))))
    for target, prediction in pairs:
        assert rouge_l(target, prediction) == ref_rouge_l(target, prediction), (target, prediction)
        t, p = ref_tokenize(target), ref_tokenize(prediction)
        ref_lcs = rouge_scorer._lcs_table(t, p)[-1][-1] if t and p else 0
        assert lcs_length(t, p) == ref_lcs
        assert fmeasure(ref_lcs, len(t), len(p)) == ref_rouge_l(target, prediction)


# ---------------------------------------------------------------- the filter


def test_table_cases_against_the_reference():
    long_a = " ".join(f"w{i % 50}" for i in range(150))  # 150 tokens: three 64-bit words
    long_b = " ".join(f"w{i % 50}" for i in range(3, 140))
    seeds = ["Write a function to add two numbers.", "", "!!!"]
    candidates = [
        "",
        "?!",
        "write a FUNCTION to add two numbers",
        "Write a function to add three numbers.",
        "Sort a list in Python",
        "sort a list in python",
        "café ß İ",
        "CAFÉ ß i̇",
        "a a a a a a a a",
        "a a a a b b b b",
        long_a,
        long_b,
        long_a + " tail",
        " ".join(long_a.split()[:64]),
        " ".join(long_a.split()[:65]),
        " ".join(long_a.split()[:128]),
        " ".join(long_a.split()[:129]),
        "Reverse a linked list in place.",
        "Reverse a doubly linked list in place.",
    ]
    for threshold in (0.0, 0.5, 0.7, 1.0):
        for batch_size in (1, 4, 256):
            decisions = run_filter(seeds, candidates, threshold, batch_size=batch_size)
            assert_same(decisions, reference_filter(seeds, candidates, threshold))


def _random_texts(rng: random.Random, n: int) -> list[str]:
    """Small vocabulary, so many near-duplicates; a few long texts (>64, >128 tokens)."""
    vocab = [f"w{i}" for i in range(rng.choice([3, 5, 8, 30]))]
    texts = []
    for _ in range(n):
        if texts and rng.random() < 0.3:  # an edited copy of an earlier text
            toks = rng.choice(texts).split()
            for _ in range(rng.randrange(1, 3)):
                if toks and rng.random() < 0.5:
                    del toks[rng.randrange(len(toks))]
                else:
                    toks.insert(rng.randrange(len(toks) + 1), rng.choice(vocab))
        else:
            length = rng.choice([0, 1, 2, 70, 140]) if rng.random() < 0.1 else rng.randrange(1, 16)
            toks = rng.choices(vocab, k=length)
        texts.append(" ".join(toks))
    return texts


@pytest.mark.parametrize("seed", range(12))
def test_random_pools_against_the_reference(seed):
    rng = random.Random(seed)
    texts = _random_texts(rng, 90)
    n_seeds = rng.choice([0, 1, 5])
    seeds, candidates = texts[:n_seeds], texts[n_seeds:]
    threshold = [0.3, 0.5, 0.7, 0.8, 0.9, 0.0, 1.0][seed % 7]
    refs = reference_filter(seeds, candidates, threshold)
    for batch_size in (1, 7, 1000):
        assert_same(run_filter(seeds, candidates, threshold, batch_size=batch_size), refs)
    assert_same(run_filter(seeds, candidates, threshold, top_k=3), refs, top_k=3)
    assert_same(run_filter(seeds, candidates, threshold, stats=False), refs, stats=False)


@pytest.mark.parametrize(("max_table", "int_rows"), [(0, 0), (1 << 20, 10**9)])
def test_every_code_path_against_the_reference(monkeypatch, max_table, int_rows):
    """Main index rebuilt mid-run; F by lookup table or arithmetic; multi-word rows as numpy words
    (many 65-200 token texts of one width) or as Python ints."""
    import data_generation.common.rouge as rouge
    import data_generation.common.rouge_index as rouge_index

    monkeypatch.setattr(rouge, "_REBUILD_EVERY", 16)  # exercise main + recent index with few texts
    monkeypatch.setattr(rouge, "_MAX_TABLE", max_table)  # 0: F by arithmetic instead of the lookup table
    monkeypatch.setattr(rouge_index, "_INT_ROWS_PER_WORD", int_rows)
    monkeypatch.setattr(rouge_index, "_MIN_DENSE", 4)  # dense columns in these small indexes too
    rng = random.Random(99)
    texts = _random_texts(rng, 150)
    vocab = [f"w{i}" for i in range(6)]
    longs = [" ".join(rng.choices(vocab, k=rng.randrange(65, 200))) for _ in range(30)]
    texts += [" ".join(t.split()[: rng.randrange(60, len(t.split()))]) for t in longs[:10]] + longs
    rng.shuffle(texts)
    refs = reference_filter(texts[:20], texts[20:], 0.7)
    assert_same(run_filter(texts[:20], texts[20:], 0.7, batch_size=9), refs)


def test_check_leaves_the_pool_unchanged():
    f = RougeLFilter(0.7)
    for s in ["sort a list of numbers", "reverse a string"]:
        f.add(s)
    d = f.check("Sort a list of numbers!")
    assert not d.keep and d.max_score == 1.0 and d.most_similar == ((0, 1.0),)
    assert len(f) == 2
    kept = f.check("compute factorial")
    assert kept.keep and kept.max_score == 0.0 and kept.avg_score == 0.0
    assert f.most_similar_instructions(d) == {"sort a list of numbers": 1.0}


def test_empty_pool_and_bad_arguments():
    (d,) = run_filter([], ["anything at all"], 0.7)
    assert d == Decision(True, 0.0)
    with pytest.raises(ValueError):
        RougeLFilter(1.5)
    with pytest.raises(ValueError):
        RougeLFilter(0.7, batch_size=0)


# ---------------------------------------------------------------- real instructions


def _near_copies(texts: list[str], rng: random.Random) -> list[str]:
    """Case changes, one-word edits, dropped words, and two instructions joined."""
    out = []
    for text in texts:
        words = text.split()
        kind = rng.randrange(4)
        if kind == 0:
            out.append(text.upper() if rng.random() < 0.5 else text.lower())
        elif kind == 1:
            words[rng.randrange(len(words))] = rng.choice(["list", "array", "string", "Java", "SQL"])
            out.append(" ".join(words))
        elif kind == 2 and len(words) > 3:
            del words[rng.randrange(len(words))]
            out.append(" ".join(words))
        else:
            out.append(text.rstrip(".") + ", then " + rng.choice(texts).lower())
    return out


def test_real_instructions_and_near_copies_against_the_reference(code_alpaca_2k):
    rows = json.loads(code_alpaca_2k.read_text(encoding="utf-8"))
    real = [r["instruction"] for r in rows]
    rng = random.Random(7)
    picked = rng.sample(real, 520)
    seeds = picked[:20]
    candidates = picked[20:] + _near_copies(rng.sample(picked, 200), rng)
    rng.shuffle(candidates)
    refs = reference_filter(seeds, candidates, 0.7)
    assert sum(not r.keep for r in refs) > 80  # the copies make many real near-duplicates
    assert_same(run_filter(seeds, candidates, 0.7, batch_size=64), refs)
