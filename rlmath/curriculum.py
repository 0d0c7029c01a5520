"""Which problems to sample next: plain shuffled epochs, or a pass-rate curriculum.

A GRPO group whose k samples all pass (or all fail) has zero advantage and teaches nothing, so the
curriculum keeps drawing problems whose recent pass rate is between ``low`` and ``high`` and
down-weights the ones the model has mastered or cannot touch yet (unseen problems count as useful).
"""

from __future__ import annotations

import numpy as np

from rlmath.data import Problem


class ProblemPicker:
    def __init__(self, problems: list[Problem], seed: int, *, curriculum: bool, low: float = 0.2,
                 high: float = 0.8, off_weight: float = 0.1) -> None:
        if not problems:
            raise ValueError("no training problems")
        self.problems = problems
        self.curriculum = curriculum
        self.low, self.high, self.off_weight = low, high, off_weight
        self.rng = np.random.default_rng(seed)
        self.pass_rate = np.full(len(problems), np.nan)  # latest group pass rate per problem, (P,)
        self._order: list[int] = []

    def next_batch(self, count: int) -> list[int]:
        """Indices of the next ``count`` problems (no repeats within a batch)."""
        count = min(count, len(self.problems))
        if self.curriculum:
            return self.rng.choice(len(self.problems), size=count, replace=False, p=self._weights()).tolist()
        while len(self._order) < count:
            self._order.extend(self.rng.permutation(len(self.problems)).tolist())
        batch, self._order = self._order[:count], self._order[count:]
        return batch

    def _weights(self) -> np.ndarray:
        rate = self.pass_rate
        useful = np.isnan(rate) | ((rate >= self.low) & (rate <= self.high))
        weights = np.where(useful, 1.0, self.off_weight)
        return weights / weights.sum()

    def update(self, indices: list[int], pass_rates: list[float]) -> None:
        self.pass_rate[np.asarray(indices)] = np.asarray(pass_rates, dtype=float)

    def in_band_fraction(self) -> float:
        """Share of seen problems inside the useful band: a curriculum health metric."""
        seen = ~np.isnan(self.pass_rate)
        if not seen.any():
            return float("nan")
        rate = self.pass_rate[seen]
        return float(((rate >= self.low) & (rate <= self.high)).mean())
