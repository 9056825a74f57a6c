"""pass@k intervals (percentile bootstrap over tasks) and the paired comparison of two runs."""

from __future__ import annotations

import random

import numpy as np
import pytest
from scipy import stats

from main.evaluation import passk
from main.evaluation.passk import mean_pass_at_k, paired_difference, pass_at_k, pass_at_k_intervals


def random_counts(seed: int, tasks: int, n: int) -> dict[str, tuple[int, int]]:
    rng = random.Random(seed)
    return {f"t{i}": (n, rng.randint(0, n)) for i in range(tasks)}


def test_bounds_are_the_quantiles_of_the_exact_resampling_distribution() -> None:
    # Tasks scoring 0, 0, 1: a resample's mean is Binomial(3, 1/3) / 3, so P(mean <= 0) = 8/27 = 0.30,
    # P(<= 1/3) = 20/27 = 0.74, P(<= 2/3) = 26/27 = 0.96. The 95 % interval's 2.5 % and 97.5 % quantiles
    # are 0 and 1; the 80 % interval's 10 % and 90 % quantiles are 0 and 2/3.
    counts = {"a": (1, 0), "b": (1, 0), "c": (1, 1)}
    wide = pass_at_k_intervals(counts, [1], resamples=20000)["pass@1"]
    assert (wide["low"], wide["high"]) == (0.0, 1.0)
    narrow = pass_at_k_intervals(counts, [1], level=0.8, resamples=20000)["pass@1"]
    assert narrow["low"] == 0.0 and narrow["high"] == pytest.approx(2 / 3)


def test_agrees_with_scipys_percentile_bootstrap() -> None:
    counts = random_counts(1, tasks=60, n=10)
    ours = pass_at_k_intervals(counts, [1, 5], resamples=4000)
    for k in (1, 5):
        values = np.array([pass_at_k(n, c, k) for n, c in counts.values()])
        theirs = stats.bootstrap(
            (values,), np.mean, n_resamples=4000, method="percentile", random_state=np.random.default_rng(7)
        ).confidence_interval
        # two independent Monte Carlo runs: the bounds agree to well under the interval's width
        width = theirs.high - theirs.low
        assert ours[f"pass@{k}"]["low"] == pytest.approx(theirs.low, abs=0.1 * width)
        assert ours[f"pass@{k}"]["high"] == pytest.approx(theirs.high, abs=0.1 * width)


def test_record_holds_the_settings_and_contains_the_point_estimate() -> None:
    counts = random_counts(2, tasks=40, n=20)
    found = pass_at_k_intervals(counts, [1, 10, 100], level=0.9, resamples=500, seed=3)
    assert set(found) == {"pass@1", "pass@10"}  # n = 20: pass@100 is not reportable, as in mean_pass_at_k
    for key, point in mean_pass_at_k(counts, [1, 10]).items():
        record = found[key]
        assert record["low"] < point < record["high"]
        assert {k: record[k] for k in ("level", "resamples", "seed", "method")} == {
            "level": 0.9,
            "resamples": 500,
            "seed": 3,
            "method": "percentile bootstrap over tasks",
        }


def test_deterministic_given_the_seed_and_the_same_when_resampled_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    counts = random_counts(3, tasks=37, n=5)
    first = pass_at_k_intervals(counts, [1, 5], seed=11)
    assert pass_at_k_intervals(counts, [1, 5], seed=11) == first
    values = np.array([pass_at_k(n, c, 1) for n, c in counts.values()])
    # bounds are quantiles of a discrete distribution and may coincide across seeds; the resamples do not
    assert not np.array_equal(passk.bootstrap_means(values, 50, 11), passk.bootstrap_means(values, 50, 12))
    monkeypatch.setattr(passk, "_CHUNK_CELLS", 100)  # 2 resamples of 37 tasks at a time
    assert pass_at_k_intervals(counts, [1, 5], seed=11) == first


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ({"only": (10, 3)}, 0.3),  # one task: every resample is that task
        ({"a": (5, 5), "b": (5, 5)}, 1.0),  # all pass
        ({"a": (5, 0), "b": (5, 0), "c": (5, 0)}, 0.0),  # all fail
    ],
)
def test_degenerate_task_sets_give_a_zero_width_interval(counts: dict[str, tuple[int, int]], expected: float) -> None:
    record = pass_at_k_intervals(counts, [1])["pass@1"]
    assert record["low"] == pytest.approx(expected) and record["high"] == pytest.approx(expected)


def test_no_tasks_and_bad_settings() -> None:
    assert pass_at_k_intervals({}, [1]) == {}
    with pytest.raises(ValueError, match="level"):
        pass_at_k_intervals({"a": (1, 1)}, [1], level=1.0)
    with pytest.raises(ValueError, match="resamples"):
        pass_at_k_intervals({"a": (1, 1)}, [1], resamples=0)


def test_a_clearly_better_run_is_larger_than_the_noise() -> None:
    base = {f"t{i}": (1, 0) for i in range(30)}
    tuned = {f"t{i}": (1, int(i < 20)) for i in range(30)}
    d = paired_difference(base, tuned, 1)
    assert d["difference"] == pytest.approx(20 / 30) and d["a"] == 0.0 and d["b"] == pytest.approx(20 / 30)
    assert 0 < d["low"] < d["difference"] < d["high"] <= 1 and d["significant"] is True
    assert d["tasks"] == 30 and d["method"] == "paired percentile bootstrap over shared tasks"
    assert paired_difference(tuned, base, 1)["significant"] is True  # worse is as clear as better


def test_identical_runs_and_a_swap_of_two_tasks_are_within_the_noise() -> None:
    run = random_counts(4, tasks=25, n=10)
    same = paired_difference(run, dict(run), 1)
    assert (same["difference"], same["low"], same["high"], same["significant"]) == (0.0, 0.0, 0.0, False)
    a = {f"t{i}": (1, int(i < 5)) for i in range(20)}
    b = {**a, "t0": (1, 0), "t10": (1, 1)}  # one task lost, another won: same score
    swap = paired_difference(a, b, 1)
    assert swap["difference"] == 0.0 and swap["low"] < 0 < swap["high"] and swap["significant"] is False


def test_pairing_sees_a_shift_that_overlapping_unpaired_intervals_hide() -> None:
    # Tasks of every difficulty, the tuned run one more passing sample of 20 on each: the runs' own intervals
    # overlap widely (task difficulty dominates), the per-task difference is a constant +0.05.
    base = {f"t{i}": (20, i % 19) for i in range(40)}
    tuned = {t: (n, c + 1) for t, (n, c) in base.items()}
    own_a, own_b = (pass_at_k_intervals(r, [1])["pass@1"] for r in (base, tuned))
    assert own_b["low"] < own_a["high"]
    d = paired_difference(base, tuned, 1)
    assert d["low"] == pytest.approx(0.05) and d["high"] == pytest.approx(0.05) and d["significant"] is True


def test_only_shared_tasks_are_compared() -> None:
    a = {"t1": (2, 2), "t2": (2, 0), "only_a": (2, 2)}
    b = {"t1": (4, 0), "t2": (4, 0), "only_b": (4, 4)}
    d = paired_difference(a, b, 2)
    assert d["tasks"] == 2 and d["a"] == 0.5 and d["b"] == 0.0 and d["difference"] == -0.5
    with pytest.raises(ValueError, match="share no task"):
        paired_difference({"x": (1, 1)}, {"y": (1, 1)}, 1)
    with pytest.raises(ValueError, match="at least 3 samples"):
        paired_difference(a, b, 3)
