"""Eval statistics: unbiased pass@k, maj@k, and (paired) bootstrap confidence intervals.

Kept free of models and mlflow so the numbers can be checked by hand in tests. pass@k follows
Chen et al. 2021 ("Evaluating Large Language Models Trained on Code", eq. 1): with ``n`` samples of
which ``c`` are correct, ``1 - C(n-c, k) / C(n, k)`` is an unbiased estimate of the chance that at
least one of ``k`` samples is correct, lower-variance than drawing exactly ``k`` samples.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem from ``n`` samples with ``c`` correct (Chen et al. 2021).

    Computed as a running product, not with binomials, so large ``n`` does not overflow.

    >>> pass_at_k(4, 1, 1)
    0.25
    >>> pass_at_k(4, 1, 2)  # 1 - C(3,2)/C(4,2) = 1 - 3/6
    0.5
    >>> pass_at_k(4, 0, 4), pass_at_k(4, 4, 1)
    (0.0, 1.0)
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def majority_correct(answers: Sequence[str | None], correct: Sequence[bool]) -> bool:
    """maj@k of one problem: is the most frequent answer among these samples a correct one?

    Samples with no answer do not vote; ties go to the answer seen first (deterministic, and what a
    user reading the table top-down would pick). Votes group by the answer's string, so callers pass a
    normalised form (the verifier's parsed answer) when they have it.

    >>> majority_correct(["4", "5", "4"], [True, False, True])
    True
    >>> majority_correct(["5", "4", "5", None], [False, True, False, False])
    False
    >>> majority_correct([None, None], [False, False])
    False
    """
    votes = Counter(a for a in answers if a is not None)
    if not votes:
        return False
    top = max(votes.values())
    winner = next(a for a in answers if a is not None and votes[a] == top)
    return any(ok for a, ok in zip(answers, correct) if a == winner)


def bootstrap_ci(values: Sequence[float], *, resamples: int = 2000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean (seeded, so the same results give the same interval).

    >>> bootstrap_ci([1.0] * 10)
    (1.0, 1.0)
    """
    if len(values) == 0:
        return (float("nan"), float("nan"))
    return _percentiles(_resampled_means(np.asarray(values, dtype=float), resamples, seed), level)


def _resampled_means(data: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """Means of ``resamples`` seeded bootstrap resamples of ``data`` (N,); returns (R,)."""
    rng = np.random.default_rng(seed)
    return data[rng.integers(0, len(data), size=(resamples, len(data)))].mean(axis=1)


def _percentiles(means: np.ndarray, level: float) -> tuple[float, float]:
    """The central ``level`` interval of the resampled means."""
    tail = (1.0 - level) / 2.0
    return (float(np.quantile(means, tail)), float(np.quantile(means, 1.0 - tail)))


def paired_bootstrap(base: Sequence[float], other: Sequence[float], *, resamples: int = 2000, seed: int = 0,
                     level: float = 0.95) -> dict[str, float]:
    """Mean of ``other - base`` over the same items, its CI, and the share of resamples where it is <= 0.

    Pairing matters: both models see the same problems, so item difficulty cancels and the interval
    is much tighter than two independent CIs would suggest.

    >>> paired_bootstrap([0, 0, 1, 1], [1, 1, 1, 1])["mean"]
    0.5
    """
    if len(base) != len(other):
        raise ValueError(f"paired bootstrap needs equal lengths, got {len(base)} and {len(other)}")
    diffs = np.asarray(other, dtype=float) - np.asarray(base, dtype=float)  # (N,)
    if len(diffs) == 0:
        return {"mean": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "p_le_zero": float("nan")}
    means = _resampled_means(diffs, resamples, seed)  # (R,)
    low, high = _percentiles(means, level)
    return {"mean": float(diffs.mean()), "ci_low": low, "ci_high": high, "p_le_zero": float(np.mean(means <= 0.0))}


def parse_ks(text: str) -> list[int]:
    """``"1,4,8"`` -> ``[1, 4, 8]`` (sorted, unique, each >= 1); the CLI's ``--k``.

    >>> parse_ks("8, 1,4,4")
    [1, 4, 8]
    """
    try:
        ks = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise ValueError(f"--k expects comma-separated integers like 1,4,8, got {text!r}") from None
    if not ks or ks[0] < 1:
        raise ValueError(f"--k values must be >= 1, got {text!r}")
    return ks
